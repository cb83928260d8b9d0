"""Raw video: the screen cut into tiles, only the tiles that changed, each zstd-compressed.

The encoder keeps two preallocated frames, padded up to whole tiles: the one being filled
by the capture and the last one sent. After a whole frame is sent the two swap, so steady
state allocates nothing per frame but the compressed tiles themselves. The diff compares
the frames as 64-bit words (a tile row of 64 BGRA pixels is 32 words) into a preallocated
boolean buffer, then reduces it to one flag per tile.

When the caller knows what changed (X DAMAGE, DXGI dirty rectangles) it captures only
those areas into the buffer (``window``) and passes them as ``damage``: the diff then
covers only them, and the changed areas are copied into the reference instead of swapping
the buffers, so the reference stays the whole picture the viewer has.

There is no Python loop per tile on the pixels: the changed tiles are gathered with one
tile-major copy per tile shape (interior 64x64 tiles, the partial bottom row, the partial
right column, the corner), compressed in one call across threads
(``multi_compress_to_buffer``), and each tile is still its own zstd frame in its own
``Tile`` message, so the wire format is what every viewer already decodes.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import zstandard

from guruconnect.protocol import Codec, VideoFrame

TILE = 64
#: Tiles per VideoFrame message at most by size: a keyframe of a busy 1080p screen is
#: bigger than the relay's 8 MiB message limit, so it is split into several messages.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: Below this many tiles one thread compresses them: starting threads costs more.
THREADED_FROM = 48
#: Protobuf overhead of one Tile field, beyond its data, counted toward the message limit.
TILE_OVERHEAD = 24

Frame = npt.NDArray[np.uint8]
Flags = npt.NDArray[np.bool_]


def _padded(length: int) -> int:
    return -(-length // TILE) * TILE


@dataclass(frozen=True, slots=True)
class TileRect:
    """A block of whole tiles: rows ``row0 <= r < row1``, columns ``col0 <= c < col1``."""

    row0: int
    col0: int
    row1: int
    col1: int

    @property
    def tiles(self) -> int:
        return (self.row1 - self.row0) * (self.col1 - self.col0)


@dataclass(slots=True)
class EncodedFrame:
    """One captured frame, ready to send: one or more VideoFrame messages."""

    messages: list[VideoFrame]
    tiles: int
    keyframe: bool

    @property
    def payload_bytes(self) -> int:
        return sum(len(t.data) for m in self.messages for t in m.tiles)


class _BatchCompressor:
    """zstd of many equal-sized blocks in one call, one zstd frame per block."""

    def __init__(self, level: int, threads: int | None) -> None:
        self._compressor = zstandard.ZstdCompressor(level=level)
        # The C extension has the multi-buffer API; the cffi backend (PyPy) does not.
        self._batched = hasattr(self._compressor, "multi_compress_to_buffer")
        # One core stays free for the event loop and the user's programs: on two cores a
        # second compression thread measured slower than one (bench/capture.py).
        cores = os.cpu_count() or 1
        self._threads = threads if threads is not None else max(1, min(4, cores - 1))

    def compress(self, groups: Sequence[Frame]) -> list[bytes]:
        """Each group is n x (block) contiguous pixels; returns n compressed blocks per
        group, in order."""
        groups = [g for g in groups if len(g)]
        if not groups:
            return []
        if not self._batched:  # pragma: no cover - only the cffi backend lacks it
            return [self._compressor.compress(block.data) for g in groups for block in g]
        buffers = []
        count = 0
        for group in groups:
            n = len(group)
            size = group[0].nbytes
            segments = np.empty((n, 2), np.uint64)
            segments[:, 0] = np.arange(n, dtype=np.uint64) * size
            segments[:, 1] = size
            block = np.ascontiguousarray(group)  # a copy only for a lone corner tile
            buffers.append(zstandard.BufferWithSegments(block.data, segments.tobytes()))
            count += n
        data = zstandard.BufferWithSegmentsCollection(*buffers)  # type: ignore[no-untyped-call]
        threads = self._threads if count >= THREADED_FROM and self._threads > 1 else 0
        out = self._compressor.multi_compress_to_buffer(data, threads=threads)
        return [out[index].tobytes() for index in range(len(out))]


class TileEncoder:
    """Dirty-tile encoder for one display of a fixed size (make a new one on resize)."""

    def __init__(
        self, width: int, height: int, *, level: int = 1, threads: int | None = None
    ) -> None:
        """``threads``: compression threads for big frames (default: one per core but
        one, up to 4; 1 compresses on the calling thread only)."""
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
        self._batch = _BatchCompressor(level, threads)
        self._have_previous = False
        self.frame_number = 0
        # Whole tiles and the partial edges (0 when the size is a multiple of the tile).
        self._full_rows, self._edge_h = divmod(height, TILE)
        self._full_cols, self._edge_w = divmod(width, TILE)

    @property
    def target(self) -> Frame:
        """The buffer the next capture is copied into (only its top-left width x height)."""
        return self._current[: self.height, : self.width]

    @property
    def needs_whole_frame(self) -> bool:
        """Nothing was sent yet: the next frame must be captured whole (a keyframe)."""
        return not self._have_previous

    def pixels(self, rect: TileRect) -> tuple[int, int, int, int]:
        """(x, y, width, height) of a block of tiles on the display (edges clipped)."""
        x, y = rect.col0 * TILE, rect.row0 * TILE
        return x, y, min(rect.col1 * TILE, self.width) - x, min(rect.row1 * TILE, self.height) - y

    def window(self, rect: TileRect) -> Frame:
        """The part of the target buffer a capture of ``rect`` is copied into."""
        x, y, w, h = self.pixels(rect)
        return self._current[y : y + h, x : x + w]

    def load(self, pixels: Frame | bytes | bytearray | memoryview) -> None:
        """Copy a captured frame (BGRA rows, width x height) into the target buffer."""
        if isinstance(pixels, np.ndarray):
            source = pixels
        else:
            source = np.frombuffer(pixels, np.uint8).reshape(self.height, self.width, 4)
        np.copyto(self.target, source)

    def dirty_tiles(self) -> Flags:
        """rows x cols flags: which tiles differ from the last frame sent."""
        rows, words = self._changed.shape
        current = self._current.reshape(rows, words * 8).view(np.uint64)
        previous = self._previous.reshape(rows, words * 8).view(np.uint64)
        np.not_equal(current, previous, out=self._changed)
        per_tile = self._changed.reshape(self.rows, TILE, self.cols, TILE * 4 // 8)
        return np.asarray(per_tile.any(axis=(1, 3)), np.bool_)

    def _dirty_in(self, damage: Sequence[TileRect]) -> Flags:
        """Like ``dirty_tiles`` but comparing only the tiles in ``damage``."""
        flags = np.zeros((self.rows, self.cols), np.bool_)
        for rect in damage:
            y0, y1, x0, x1 = rect.row0 * TILE, rect.row1 * TILE, rect.col0 * TILE, rect.col1 * TILE
            # One 32-bit word per pixel: a block's rows are not contiguous across pixels.
            current = self._current[y0:y1, x0:x1].view(np.uint32)
            previous = self._previous[y0:y1, x0:x1].view(np.uint32)
            words = np.not_equal(current, previous)
            per_tile = words.reshape(rect.row1 - rect.row0, TILE, rect.col1 - rect.col0, TILE)
            flags[rect.row0 : rect.row1, rect.col0 : rect.col1] = per_tile.any(axis=(1, 3))
        return flags

    def changed(self) -> bool:
        """Whether the loaded frame differs from the last one committed."""
        return not self._have_previous or bool(self.dirty_tiles().any())

    def commit(self) -> None:
        """The loaded frame was sent (whole, by another codec): it becomes the reference,
        and the old reference is the buffer the next capture overwrites."""
        self._previous, self._current = self._current, self._previous
        self._have_previous = True

    def _gather(self, flags: Flags) -> tuple[list[Frame], npt.NDArray[np.intp]]:
        """The flagged tiles as one contiguous tile-major array per tile shape (one copy
        each), and the (row, col) of every tile in the same order."""
        fr, fc, eh, ew = self._full_rows, self._full_cols, self._edge_h, self._edge_w
        frame = self._current
        groups: list[Frame] = []
        where: list[npt.NDArray[np.intp]] = []
        if fr and fc:
            mask = flags[:fr, :fc]
            interior = frame[: fr * TILE, : fc * TILE].reshape(fr, TILE, fc, TILE, 4)
            groups.append(interior.transpose(0, 2, 1, 3, 4)[mask])
            where.append(np.argwhere(mask))
        if eh and fc:
            cols = np.flatnonzero(flags[fr, :fc])
            bottom = frame[fr * TILE : fr * TILE + eh, : fc * TILE].reshape(eh, fc, TILE, 4)
            groups.append(bottom.transpose(1, 0, 2, 3)[cols])
            where.append(np.column_stack([np.full(len(cols), fr, np.intp), cols]))
        if ew and fr:
            rows = np.flatnonzero(flags[:fr, fc])
            right = frame[: fr * TILE, fc * TILE : fc * TILE + ew].reshape(fr, TILE, ew, 4)
            groups.append(right[rows])
            where.append(np.column_stack([rows, np.full(len(rows), fc, np.intp)]))
        if eh and ew and flags[fr, fc]:
            groups.append(frame[fr * TILE : fr * TILE + eh, fc * TILE : fc * TILE + ew][None])
            where.append(np.array([[fr, fc]], np.intp))
        return groups, np.concatenate(where) if where else np.zeros((0, 2), np.intp)

    def encode(
        self,
        *,
        keyframe: bool = False,
        session_id: str = "",
        display_id: int = 1,
        now_us: int = 0,
        damage: Sequence[TileRect] | None = None,
    ) -> EncodedFrame | None:
        """Encode the loaded frame against the last one sent. None when nothing changed
        (and no keyframe was asked for): the caller sends nothing.

        ``damage``: only these blocks of tiles were captured (into ``window(rect)``) and
        only they may have changed; everything else is taken as it was. Ignored for a
        keyframe, which needs the whole frame loaded."""
        keyframe = keyframe or not self._have_previous
        partial = damage is not None and not keyframe
        flags: Flags
        if keyframe:
            flags = np.ones((self.rows, self.cols), np.bool_)
        elif damage is not None:
            flags = self._dirty_in(damage)
        else:
            flags = self.dirty_tiles()
        if not keyframe and not flags.any():
            return None
        self.frame_number += 1
        groups, where = self._gather(flags)
        compressed = self._batch.compress(groups)
        positions = where * TILE
        xs = positions[:, 1].tolist()
        ys = positions[:, 0].tolist()
        messages = self._messages(
            xs,
            ys,
            compressed,
            keyframe,
            session_id=session_id,
            display_id=display_id,
            now_us=now_us,
        )
        if partial:
            assert damage is not None
            for rect in damage:  # the reference takes the captured areas; no swap
                y0, y1 = rect.row0 * TILE, rect.row1 * TILE
                x0, x1 = rect.col0 * TILE, rect.col1 * TILE
                self._previous[y0:y1, x0:x1] = self._current[y0:y1, x0:x1]
        else:
            self.commit()  # everything that changed was sent
        return EncodedFrame(messages, len(compressed), keyframe)

    def _messages(
        self,
        xs: list[int],
        ys: list[int],
        data: list[bytes],
        keyframe: bool,
        *,
        session_id: str,
        display_id: int,
        now_us: int,
    ) -> list[VideoFrame]:
        width, height = self.width, self.height
        # Split under the message limit; usually one message.
        bounds = [0]
        size = 0
        for index, length in enumerate(map(len, data)):
            if size and size + length > MAX_MESSAGE_BYTES:
                bounds.append(index)
                size = 0
            size += length + TILE_OVERHEAD
        bounds.append(len(data))
        messages = []
        for number, (start, end) in enumerate(itertools.pairwise(bounds)):
            message = VideoFrame(
                session_id=session_id,
                display_id=display_id,
                codec=Codec.CODEC_RAW_ZSTD,
                timestamp_us=now_us,
                keyframe=keyframe and number == 0,  # only the first part starts a picture
                width=width,
                height=height,
                frame_number=self.frame_number,
            )
            add = message.tiles.add  # built in place: no Tile objects to copy in
            for x, y, d in zip(xs[start:end], ys[start:end], data[start:end], strict=True):
                add(x=x, y=y, width=min(TILE, width - x), height=min(TILE, height - y), data=d)
            messages.append(message)
        return messages
