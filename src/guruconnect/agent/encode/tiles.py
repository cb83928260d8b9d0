"""Raw video: the screen cut into tiles, only the tiles that changed, each zstd-compressed.

The encoder keeps two preallocated frames, padded up to whole tiles: the one being filled
by the capture and the last one sent. After a frame is sent the two swap, so steady state
allocates nothing per frame but the compressed tiles themselves. The diff compares the
frames as 64-bit words (a tile row of 64 BGRA pixels is 32 words) into a preallocated
boolean buffer, then reduces it to one flag per tile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import zstandard

from guruconnect.protocol import Codec, Tile, VideoFrame

TILE = 64
#: Tiles per VideoFrame message at most by size: a keyframe of a busy 1080p screen is
#: bigger than the relay's 8 MiB message limit, so it is split into several messages.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

Frame = npt.NDArray[np.uint8]


def _padded(length: int) -> int:
    return -(-length // TILE) * TILE


@dataclass(slots=True)
class EncodedFrame:
    """One captured frame, ready to send: one or more VideoFrame messages."""

    messages: list[VideoFrame]
    tiles: int
    keyframe: bool

    @property
    def payload_bytes(self) -> int:
        return sum(len(t.data) for m in self.messages for t in m.tiles)


class TileEncoder:
    """Dirty-tile encoder for one display of a fixed size (make a new one on resize)."""

    def __init__(self, width: int, height: int, *, level: int = 1) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"bad frame size {width}x{height}")
        self.width = width
        self.height = height
        self.rows = _padded(height) // TILE
        self.cols = _padded(width) // TILE
        shape = (self.rows * TILE, self.cols * TILE, 4)
        self._current: Frame = np.zeros(shape, np.uint8)
        self._previous: Frame = np.zeros(shape, np.uint8)
        words = (shape[0], shape[1] * 4 // 8)
        self._changed = np.zeros(words, np.bool_)
        self._compressor = zstandard.ZstdCompressor(level=level)
        self._have_previous = False
        self.frame_number = 0

    @property
    def target(self) -> Frame:
        """The buffer the next capture is copied into (only its top-left width x height)."""
        return self._current[: self.height, : self.width]

    def load(self, pixels: Frame | bytes | bytearray | memoryview) -> None:
        """Copy a captured frame (BGRA rows, width x height) into the target buffer."""
        if isinstance(pixels, np.ndarray):
            source = pixels
        else:
            source = np.frombuffer(pixels, np.uint8).reshape(self.height, self.width, 4)
        np.copyto(self.target, source)

    def dirty_tiles(self) -> npt.NDArray[np.bool_]:
        """rows x cols flags: which tiles differ from the last frame sent."""
        rows, words = self._changed.shape
        current = self._current.reshape(rows, words * 8).view(np.uint64)
        previous = self._previous.reshape(rows, words * 8).view(np.uint64)
        np.not_equal(current, previous, out=self._changed)
        per_tile = self._changed.reshape(self.rows, TILE, self.cols, TILE * 4 // 8)
        return np.asarray(per_tile.any(axis=(1, 3)), np.bool_)

    def changed(self) -> bool:
        """Whether the loaded frame differs from the last one committed."""
        return not self._have_previous or bool(self.dirty_tiles().any())

    def commit(self) -> None:
        """The loaded frame was sent (whole, by another codec): it becomes the reference,
        and the old reference is the buffer the next capture overwrites."""
        self._previous, self._current = self._current, self._previous
        self._have_previous = True

    def encode(
        self, *, keyframe: bool = False, session_id: str = "", display_id: int = 1, now_us: int = 0
    ) -> EncodedFrame | None:
        """Encode the loaded frame against the last one sent. None when nothing changed
        (and no keyframe was asked for): the caller sends nothing."""
        keyframe = keyframe or not self._have_previous
        flags: npt.NDArray[np.bool_]
        if keyframe:
            flags = np.ones((self.rows, self.cols), np.bool_)
        else:
            flags = self.dirty_tiles()
            if not flags.any():
                return None
        self.frame_number += 1

        def message() -> VideoFrame:
            return VideoFrame(
                session_id=session_id,
                display_id=display_id,
                codec=Codec.CODEC_RAW_ZSTD,
                timestamp_us=now_us,
                keyframe=keyframe,
                width=self.width,
                height=self.height,
                frame_number=self.frame_number,
            )

        messages = [message()]
        size = 0
        count = 0
        for row, col in np.argwhere(flags):
            y, x = int(row) * TILE, int(col) * TILE
            h, w = min(TILE, self.height - y), min(TILE, self.width - x)
            block = np.ascontiguousarray(self._current[y : y + h, x : x + w])
            data = self._compressor.compress(block.data)
            if size and size + len(data) > MAX_MESSAGE_BYTES:
                messages.append(message())
                messages[-1].keyframe = False  # only the first part starts a picture
                size = 0
            messages[-1].tiles.append(Tile(x=x, y=y, width=w, height=h, data=data))
            size += len(data) + 24
            count += 1
        self.commit()  # everything that changed was sent
        return EncodedFrame(messages, count, keyframe)
