"""Codec negotiation: the best codec the agent encodes and every viewer decodes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest

from guruconnect.protocol import AgentStatus, Codec, ViewerHello, negotiate

H264 = Codec.CODEC_H264
RAW = Codec.CODEC_RAW_ZSTD
UNSPECIFIED = Codec.CODEC_UNSPECIFIED
FUTURE = 99  # a codec a newer peer might announce; proto3 enums keep unknown values

CASES = [
    pytest.param([H264, RAW], [], RAW, id="no-viewers-raw-until-they-say-more"),
    pytest.param([RAW], [], RAW, id="no-viewers-raw-agent"),
    pytest.param([], [], RAW, id="agent-announces-nothing"),
    pytest.param([H264, RAW], [[H264, RAW]], H264, id="one-h264-viewer"),
    pytest.param([RAW, H264], [[RAW, H264], [H264]], H264, id="all-viewers-h264"),
    pytest.param([H264, RAW], [[H264, RAW], [RAW]], RAW, id="one-viewer-without-h264"),
    pytest.param([H264, RAW], [[RAW]], RAW, id="raw-only-viewer"),
    pytest.param([RAW], [[H264, RAW]], RAW, id="agent-without-h264"),
    pytest.param([H264], [[H264]], H264, id="raw-left-unsaid"),
    pytest.param([H264], [[RAW]], RAW, id="nothing-common-falls-back"),
    pytest.param([H264, RAW], [[]], RAW, id="viewer-announces-nothing"),
    pytest.param([UNSPECIFIED], [], RAW, id="unspecified-agent"),
    pytest.param([UNSPECIFIED, H264], [[UNSPECIFIED]], RAW, id="unspecified-is-not-a-codec"),
    pytest.param([FUTURE], [[FUTURE]], RAW, id="unknown-common-codec-ignored"),
    pytest.param([FUTURE, H264], [[FUTURE, H264]], H264, id="unknown-next-to-h264"),
]


@pytest.mark.parametrize(("agent", "viewers", "expected"), CASES)
def test_negotiate(agent: list[Codec], viewers: list[list[Codec]], expected: Codec) -> None:
    assert negotiate(agent, viewers) == expected


def test_from_the_messages() -> None:
    status = AgentStatus(encoders=[H264, RAW])
    hellos = [ViewerHello(codecs=[H264, RAW]), ViewerHello(codecs=[RAW])]
    assert negotiate(status.encoders, [hello.codecs for hello in hellos]) == RAW
    assert negotiate(status.encoders, [hellos[0].codecs]) == H264


def test_iterables_are_read_once() -> None:
    def once(codecs: list[Codec]) -> Iterator[Codec]:
        yield from codecs

    def viewers() -> Iterable[Iterator[Codec]]:
        yield once([H264, RAW])
        yield once([H264])

    assert negotiate(once([RAW, H264]), viewers()) == H264
