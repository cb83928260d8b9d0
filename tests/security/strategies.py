"""Hypothesis strategies for what a hostile peer can put on the wire.

Messages are built from the protobuf descriptors, so every field of every payload type
gets values a well-behaved peer would never send: NUL characters, huge and negative
numbers, unknown enum values, empty and oversized strings, deep repeated fields. Bytes
come as they are, or as a valid envelope after a few mutations.
"""

from __future__ import annotations

import os
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from guruconnect.protocol import Envelope, encode
from guruconnect.protocol.planes import INBOUND, Plane

#: Examples per fuzz target in CI; ``make fuzz-long`` raises it (GURUCONNECT_FUZZ_EXAMPLES).
EXAMPLES = int(os.environ.get("GURUCONNECT_FUZZ_EXAMPLES", "0")) or None


def budget(ci_examples: int) -> settings:
    """Fixed, derandomized examples (a CI failure reproduces with a plain rerun); the
    long run draws random ones, many more of them."""
    long_run = EXAMPLES is not None
    return settings(
        max_examples=EXAMPLES or ci_examples,
        deadline=None,
        derandomize=not long_run,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Text a peer controls: NUL, controls, right-to-left marks, astral characters. Surrogates
# cannot be encoded as UTF-8 at all (protobuf refuses them before anything is sent).
hostile_text = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    st.sampled_from(["", "\x00", "a\x00b", "\u202e", "' OR 1=1 --", "%s%n", "../../etc"]),
    st.text(st.sampled_from("\x00\x01\n\r\t\\\"'<>&%"), min_size=1, max_size=8),
    st.integers(256, 5000).map(lambda n: "x" * n),
)

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _scalar(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        return st.one_of(
            st.sampled_from([0, 1, -1 if low < 0 else 2, low, high]), st.integers(low, high)
        )
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    if kind == FieldDescriptor.TYPE_STRING:
        return hostile_text
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FieldDescriptor.TYPE_ENUM:
        # proto3 enums are open: any int32 arrives, named or not.
        known = [value.number for value in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))
    assert kind == FieldDescriptor.TYPE_MESSAGE
    return message_of(field.message_type, depth + 1)


def message_of(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """A message of ``descriptor``'s type with any subset of its fields set, at any value."""
    cls = _message_class(descriptor)
    if depth > 3:
        return st.just(cls())
    fields = {}
    for field in descriptor.fields:
        value = _scalar(field, depth)
        if field.is_repeated:
            value = st.lists(value, max_size=4 if depth else 8)
        fields[field.name] = st.none() | value

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        message = cls()
        for name, strategy in fields.items():
            value = draw(strategy)
            if value is None:
                continue
            field = descriptor.fields_by_name[name]
            if field.containing_oneof is not None and message.WhichOneof(
                field.containing_oneof.name
            ):
                continue
            target = getattr(message, name) if field.type == FieldDescriptor.TYPE_MESSAGE else None
            if field.is_repeated:
                container = getattr(message, name)
                for item in value:
                    if field.type == FieldDescriptor.TYPE_MESSAGE:
                        container.add().CopyFrom(item)
                    else:
                        container.append(item)
            elif target is not None:
                target.CopyFrom(value)
            else:
                setattr(message, name, value)
        return message

    return build()


def _message_class(descriptor: Descriptor) -> type[Message]:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


_PAYLOAD = {field.name: field for field in Envelope.DESCRIPTOR.oneofs_by_name["payload"].fields}


def envelope_of(kind: str) -> st.SearchStrategy[bytes]:
    """A serialized envelope carrying a ``kind`` payload with hostile contents."""
    descriptor = _PAYLOAD[kind].message_type
    return st.builds(
        lambda message, seq: encode(message, seq=seq),  # type: ignore[arg-type]
        message_of(descriptor),
        st.one_of(st.just(0), st.integers(0, 2**64 - 1)),
    )


@st.composite
def mutate(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """``base`` after one to three bit flips, truncations, insertions or splices."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        how = draw(st.sampled_from(["flip", "truncate", "insert", "splice"]))
        if how == "flip" and data:
            bit = draw(st.integers(0, len(data) * 8 - 1))
            data[bit // 8] ^= 1 << (bit % 8)
        elif how == "truncate":
            del data[at:]
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[at:] = draw(base)
    return bytes(data)


def plane_messages(plane: Plane) -> st.SearchStrategy[bytes]:
    """What a peer of ``plane`` could send: every allowed type with hostile contents, the
    other plane's types, mutated envelopes and plain garbage."""
    allowed = sorted(INBOUND[plane])
    hostile = st.sampled_from(allowed).flatmap(envelope_of)
    foreign = st.sampled_from(sorted(set(_PAYLOAD) - set(allowed))).flatmap(envelope_of)
    return st.one_of(
        hostile,
        hostile,
        hostile,
        mutate(hostile),
        foreign,
        st.binary(max_size=64),
    )
