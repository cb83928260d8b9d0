"""Pick the video codec for a session from what the agent encodes and the viewers decode."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from guruconnect.protocol.guruconnect_pb2 import Codec

__all__ = ["FALLBACK", "PREFERENCE", "negotiate"]

#: Best first. Each viewer must decode the session's one stream, so the choice is the
#: best codec common to the agent and all viewers, not a per-viewer one.
PREFERENCE: Final[tuple[Codec, ...]] = (Codec.CODEC_H264, Codec.CODEC_RAW_ZSTD)

#: Every agent and every viewer has it, whatever they announce.
FALLBACK: Final[Codec] = Codec.CODEC_RAW_ZSTD


def negotiate(agent_encoders: Iterable[Codec], viewer_decoders: Iterable[Iterable[Codec]]) -> Codec:
    """Return the best codec the agent encodes and every current viewer decodes.

    With no viewers, :data:`FALLBACK`: nobody watches yet, and whoever joins first can
    decode it, so the first frames a viewer gets are never in a codec it lacks (the session
    moves up to H.264 once the viewers have said they decode it). ``CODEC_UNSPECIFIED``
    and values this build does not know (a newer peer's) are ignored; :data:`FALLBACK`
    when nothing else is common.
    """
    common = set(PREFERENCE).intersection(agent_encoders)
    anyone = False
    for decoders in viewer_decoders:
        common.intersection_update(decoders)
        anyone = True
    if not anyone:
        return FALLBACK
    return next((codec for codec in PREFERENCE if codec in common), FALLBACK)
