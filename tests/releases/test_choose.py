"""Which release the relay offers a machine: the newest its update policy allows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from guruconnect.server.db.releases import Release, UpdatePolicy, choose

T = datetime(2026, 12, 1, tzinfo=UTC)


def release(version: str) -> Release:
    return Release(
        id=uuid.uuid4(),
        version=version,
        platform="linux",
        arch="x86_64",
        channel="stable",
        filename=f"guruconnect-agent-{version}-linux-x86_64",
        sha256="ab" * 32,
        size_bytes=1,
        notes=None,
        created_at=T,
        manifest="{}",
        signature="x",
        key_id="k",
        expires_at=T,
    )


def policy(pinned: str | None = None, paused: bool = False) -> UpdatePolicy:
    return UpdatePolicy(uuid.uuid4(), uuid.uuid4(), None, None, pinned, paused, T)


AVAILABLE = [release("1.2.0"), release("1.10.0"), release("1.9.1")]


def test_the_newest_release_is_offered() -> None:
    chosen = choose(AVAILABLE, None, "1.2.0-abc")
    assert chosen is not None
    assert chosen.version == "1.10.0"


def test_nothing_when_already_newest_or_nothing_published() -> None:
    assert choose(AVAILABLE, None, "1.10.0") is None
    assert choose([], None, "0.1.0") is None


def test_a_pinned_machine_is_not_offered_a_newer_version() -> None:
    chosen = choose(AVAILABLE, policy(pinned="1.9.1"), "1.2.0")
    assert chosen is not None
    assert chosen.version == "1.9.1"
    assert choose(AVAILABLE, policy(pinned="1.9.1"), "1.9.1") is None
    assert choose(AVAILABLE, policy(pinned="1.0"), "1.2.0") is None


def test_paused_updates_offer_nothing() -> None:
    assert choose(AVAILABLE, policy(paused=True), "0.1.0") is None
