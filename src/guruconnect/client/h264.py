"""What a viewer sees of an H.264 session: access units decoded with PyAV (FFmpeg).

The picture is converted back to BGRA with the matrix and range the stream's VUI signals
(BT.601 limited range from GuruConnect's agent), so tests compare it with the screen.
"""

from __future__ import annotations

from typing import Any

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter

from guruconnect.protocol import Codec, VideoFrame

Picture = npt.NDArray[np.uint8]

_MATRICES = {1: Colorspace.ITU709, 5: Colorspace.ITU601, 6: Colorspace.ITU601}


class H264Decoder:
    def __init__(self) -> None:
        self._context: Any = av.CodecContext.create("h264", "r")
        # One reformatter for the stream: it keeps its scaler between pictures (a
        # frame's own ``reformat`` sets one up for every picture).
        self._reformatter = VideoReformatter()
        self.picture: Picture = np.zeros((0, 0, 4), np.uint8)
        self.frames = 0
        self.keyframes = 0

    def apply(self, frame: VideoFrame) -> int:
        """Decode one access unit; returns how many pictures came out (0 or 1)."""
        if frame.codec != Codec.CODEC_H264:
            raise ValueError(f"not an H.264 frame: codec {frame.codec}")
        pictures = self._context.decode(av.Packet(frame.data))
        for picture in pictures:
            matrix = _MATRICES.get(int(picture.colorspace), Colorspace.ITU601)
            full = int(picture.color_range) == int(ColorRange.JPEG)
            rgb = self._reformatter.reformat(
                picture,
                format="bgra",
                src_colorspace=matrix,
                dst_colorspace=matrix,
                src_color_range=ColorRange.JPEG if full else ColorRange.MPEG,
                dst_color_range=ColorRange.JPEG,
            ).to_ndarray()
            self.picture = np.ascontiguousarray(rgb[: frame.height, : frame.width])
        self.frames += 1
        if frame.keyframe:
            self.keyframes += 1
        return len(pictures)

    def rgb(self) -> Picture:
        rgb: Picture = self.picture[:, :, 2::-1]
        return rgb


def psnr(a: Picture, b: Picture) -> float:
    """Peak signal-to-noise ratio of two 8-bit pictures (RGB or BGR, same shape), in dB."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean(diff * diff))
    return float("inf") if mse == 0 else 10 * float(np.log10(255.0**2 / mse))
