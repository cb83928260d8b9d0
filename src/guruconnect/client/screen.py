"""What a viewer sees: raw+zstd frames applied to a picture of the remote display."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import zstandard

from guruconnect.protocol import Codec, VideoFrame

Picture = npt.NDArray[np.uint8]


class FrameError(ValueError):
    """A frame that cannot be applied (bad geometry or a tile that lies about its size)."""


class TileDecoder:
    """Applies raw+zstd frames to a BGRA picture of the whole display, bit for bit."""

    def __init__(self) -> None:
        self.picture: Picture = np.zeros((0, 0, 4), np.uint8)
        self._decompressor = zstandard.ZstdDecompressor()
        self.frames = 0
        self.tiles = 0

    def apply(self, frame: VideoFrame) -> int:
        """Apply one frame; returns how many tiles it carried."""
        if frame.codec != Codec.CODEC_RAW_ZSTD:
            raise FrameError(f"not a raw+zstd frame: codec {frame.codec}")
        if self.picture.shape[:2] != (frame.height, frame.width):
            if not 0 < frame.width <= 16384 or not 0 < frame.height <= 16384:
                raise FrameError(f"bad display size {frame.width}x{frame.height}")
            self.picture = np.zeros((frame.height, frame.width, 4), np.uint8)
        for tile in frame.tiles:
            if tile.x + tile.width > frame.width or tile.y + tile.height > frame.height:
                raise FrameError("tile outside the frame")
            size = tile.width * tile.height * 4
            try:
                declared = zstandard.frame_content_size(tile.data)
                if declared not in (size, -1):
                    raise FrameError(f"tile declares {declared} bytes, expected {size}")
                raw = self._decompressor.decompress(tile.data, max_output_size=size)
            except zstandard.ZstdError as exc:
                raise FrameError(f"tile is not valid zstd: {exc}") from None
            if len(raw) != size:
                raise FrameError(f"tile holds {len(raw)} bytes, expected {size}")
            block = np.frombuffer(raw, np.uint8).reshape(tile.height, tile.width, 4)
            self.picture[tile.y : tile.y + tile.height, tile.x : tile.x + tile.width] = block
        self.frames += 1
        self.tiles += len(frame.tiles)
        return len(frame.tiles)

    def rgb(self) -> Picture:
        """The picture as RGB (what a screenshot tool would show)."""
        rgb: Picture = self.picture[:, :, 2::-1]
        return rgb
