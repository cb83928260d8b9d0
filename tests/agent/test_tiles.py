"""Dirty tiles + zstd: the encoder and the reference client's decoder, without a screen."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import zstandard

from guruconnect.agent.encode import tiles
from guruconnect.agent.encode.tiles import TILE, TileEncoder, TileRect
from guruconnect.client.screen import FrameError, TileDecoder
from guruconnect.protocol import Codec, Tile, VideoFrame

Frame = np.ndarray[Any, np.dtype[np.uint8]]


def screen(height: int, width: int, seed: int = 0) -> Frame:
    rng = np.random.default_rng(seed)
    frame = np.zeros((height, width, 4), np.uint8)
    frame[..., 0] = np.arange(width, dtype=np.uint8)[None, :]
    frame[..., 1] = np.arange(height, dtype=np.uint8)[:, None]
    frame[height // 3 : height // 2, width // 3 : width // 2] = rng.integers(
        0, 256, (height // 2 - height // 3, width // 2 - width // 3, 4), dtype=np.uint8
    )
    return frame


def send(encoder: TileEncoder, frame: Frame, decoder: TileDecoder, **kw: Any) -> int | None:
    encoder.load(frame)
    encoded = encoder.encode(**kw)
    if encoded is None:
        return None
    for message in encoded.messages:
        decoder.apply(VideoFrame.FromString(message.SerializeToString()))
    return encoded.tiles


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (100, 70), (64, 64), (1, 1)])
def test_first_frame_is_a_keyframe_that_decodes_bit_for_bit(width: int, height: int) -> None:
    encoder, decoder = TileEncoder(width, height), TileDecoder()
    frame = screen(height, width)
    assert send(encoder, frame, decoder) == encoder.rows * encoder.cols
    assert np.array_equal(decoder.picture, frame)


def test_an_unchanged_frame_sends_nothing_and_a_change_sends_only_its_tiles() -> None:
    encoder, decoder = TileEncoder(1920, 1080), TileDecoder()
    frame = screen(1080, 1920)
    send(encoder, frame, decoder)
    assert send(encoder, frame.copy(), decoder) is None

    changed = frame.copy()
    changed[130, 70] ^= 1  # one byte in tile (row 2, col 1)
    changed[1079, 1919, 3] ^= 0xFF  # the bottom-right edge tile (partial: 1080 = 16*64 + 56)
    changed[200:260, 640:700] = 7  # tiles rows 3-4, cols 10
    encoder.load(changed)
    flags = encoder.dirty_tiles()
    assert {tuple(int(v) for v in rc) for rc in np.argwhere(flags)} == {
        (2, 1),
        (16, 29),
        (3, 10),
        (4, 10),
    }
    encoded = encoder.encode()
    assert encoded is not None
    assert not encoded.keyframe
    assert encoded.tiles == 4
    edge = next(t for t in encoded.messages[0].tiles if t.y == 16 * TILE)
    assert (edge.x, edge.width, edge.height) == (29 * TILE, 1920 - 29 * TILE, 1080 - 16 * TILE)
    for message in encoded.messages:
        decoder.apply(message)
    assert np.array_equal(decoder.picture, changed)


def test_a_keyframe_request_resends_every_tile() -> None:
    encoder, decoder = TileEncoder(256, 128), TileDecoder()
    frame = screen(128, 256)
    send(encoder, frame, decoder)
    assert send(encoder, frame, decoder, keyframe=True) == 8


def test_the_diff_is_against_the_last_frame_sent_across_buffer_swaps() -> None:
    """The encoder swaps its two buffers after each frame; a change reverted two frames
    later must still be seen as a change against what the viewer has."""
    encoder, decoder = TileEncoder(128, 64), TileDecoder()
    a = screen(64, 128, seed=1)
    b = a.copy()
    b[0, 0] ^= 1
    send(encoder, a, decoder)
    assert send(encoder, b, decoder) == 1
    assert send(encoder, a, decoder) == 1
    assert np.array_equal(decoder.picture, a)


def test_a_big_keyframe_is_split_under_the_message_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiles, "MAX_MESSAGE_BYTES", 200_000)
    encoder, decoder = TileEncoder(640, 480), TileDecoder()
    noise = np.random.default_rng(3).integers(0, 256, (480, 640, 4), dtype=np.uint8)
    encoder.load(noise)
    encoded = encoder.encode()
    assert encoded is not None
    assert len(encoded.messages) > 1
    assert [m.keyframe for m in encoded.messages] == [True] + [False] * (len(encoded.messages) - 1)
    assert len({m.frame_number for m in encoded.messages}) == 1
    for message in encoded.messages:
        assert message.ByteSize() < 200_000 + 64 * 64 * 4 + 100
        decoder.apply(message)
    assert np.array_equal(decoder.picture, noise)


def test_steady_state_reuses_the_same_two_buffers() -> None:
    encoder, decoder = TileEncoder(320, 200), TileDecoder()
    buffers = {id(encoder._current), id(encoder._previous)}
    for seed in range(4):
        send(encoder, screen(200, 320, seed), decoder)
    assert {id(encoder._current), id(encoder._previous)} == buffers


def bad_frame(**tile: Any) -> VideoFrame:
    values = {"x": 0, "y": 0, "width": 2, "height": 2, "data": zstandard.compress(bytes(16))}
    values.update(tile)
    return VideoFrame(codec=Codec.CODEC_RAW_ZSTD, width=4, height=4, tiles=[Tile(**values)])


@pytest.mark.parametrize(
    "frame",
    [
        bad_frame(x=3),  # sticks out of the display
        bad_frame(data=b"not zstd at all"),
        bad_frame(data=zstandard.compress(bytes(15))),  # one byte short
        bad_frame(data=zstandard.compress(bytes(1 << 20))),  # a decompression bomb
        VideoFrame(codec=Codec.CODEC_RAW_ZSTD, width=100_000, height=4),
        VideoFrame(codec=Codec.CODEC_H264, width=4, height=4),
    ],
)
def test_the_decoder_refuses_frames_that_lie(frame: VideoFrame) -> None:
    with pytest.raises(FrameError):
        TileDecoder().apply(frame)


def test_tiles_are_separate_zstd_frames_that_declare_their_size() -> None:
    """The batched compressor keeps the wire format: one zstd frame per tile."""
    encoder = TileEncoder(100, 70)
    encoder.load(screen(70, 100))
    encoded = encoder.encode()
    assert encoded is not None
    for tile in encoded.messages[0].tiles:
        size = tile.width * tile.height * 4
        assert zstandard.frame_content_size(tile.data) == size
        assert len(zstandard.ZstdDecompressor().decompress(tile.data)) == size
    shapes = sorted((t.x, t.y, t.width, t.height) for t in encoded.messages[0].tiles)
    assert shapes == [(0, 0, 64, 64), (0, 64, 64, 6), (64, 0, 36, 64), (64, 64, 36, 6)]


def grab_blocks(encoder: TileEncoder, frame: Frame, blocks: list[TileRect]) -> None:
    """What the streamer does with damage: only the damaged blocks are captured."""
    for block in blocks:
        x, y, w, h = encoder.pixels(block)
        np.copyto(encoder.window(block), frame[y : y + h, x : x + w])


def test_damage_limits_the_capture_and_the_diff_and_the_picture_stays_exact() -> None:
    encoder, decoder = TileEncoder(200, 150), TileDecoder()
    frame = screen(150, 200, seed=4)
    send(encoder, frame, decoder)
    changed = frame.copy()
    changed[70, 130] ^= 0x55  # tile (1, 2)
    changed[140:150, 192:200] = 9  # the corner tile (2, 3), partial both ways
    changed[5, 5] ^= 1  # tile (0, 0): drawn, but not reported as damage
    blocks = [TileRect(1, 1, 3, 4)]
    grab_blocks(encoder, changed, blocks)
    encoded = encoder.encode(damage=blocks)
    assert encoded is not None
    assert sorted((t.y // TILE, t.x // TILE) for t in encoded.messages[0].tiles) == [
        (1, 2),
        (2, 3),
    ]
    for message in encoded.messages:
        decoder.apply(message)
    expected = changed.copy()
    expected[5, 5] = frame[5, 5]  # what was not reported is not sent...
    assert np.array_equal(decoder.picture, expected)
    # ...and the whole-frame check finds it later, against the picture the viewer has.
    encoder.load(changed)
    assert send(encoder, changed, decoder) == 1
    assert np.array_equal(decoder.picture, changed)


def test_partial_then_whole_frames_keep_the_reference_whole() -> None:
    """Partial frames update the reference in place; a whole frame swaps the buffers;
    mixing both must never leave stale pixels in what the diff compares against."""
    encoder, decoder = TileEncoder(256, 192), TileDecoder()
    rng = np.random.default_rng(5)
    frame = screen(192, 256, seed=5)
    send(encoder, frame, decoder)
    for step in range(12):
        frame = frame.copy()
        row, col = int(rng.integers(0, 3)), int(rng.integers(0, 4))
        frame[row * TILE + 3, col * TILE + 7] ^= 0xFF
        if step % 3 == 2:
            assert send(encoder, frame, decoder) == 1
        else:
            grab_blocks(encoder, frame, [TileRect(row, col, row + 1, col + 1)])
            encoded = encoder.encode(damage=[TileRect(row, col, row + 1, col + 1)])
            assert encoded is not None
            assert encoded.tiles == 1
            for message in encoded.messages:
                decoder.apply(message)
        assert np.array_equal(decoder.picture, frame)
    # A fresh viewer joining now gets the whole picture from one keyframe.
    late = TileDecoder()
    encoder.load(frame)
    keyframe = encoder.encode(keyframe=True)
    assert keyframe is not None
    for message in keyframe.messages:
        late.apply(VideoFrame.FromString(message.SerializeToString()))
    assert np.array_equal(late.picture, frame)


def test_damage_that_changed_nothing_sends_nothing() -> None:
    encoder, decoder = TileEncoder(128, 128), TileDecoder()
    frame = screen(128, 128)
    send(encoder, frame, decoder)
    grab_blocks(encoder, frame, [TileRect(0, 0, 2, 2)])
    assert encoder.encode(damage=[TileRect(0, 0, 2, 2)]) is None
