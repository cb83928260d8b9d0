"""Which release the relay offers a machine: the newest its update policy allows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

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


# -- what the install commands and the service unit say ---------------------------------


def test_install_commands_verify_before_installing_and_keep_the_key_off_argv() -> None:
    from guruconnect.server import install_commands as ic

    sha = "ab" * 32
    linux = ic.linux("https://support.example.com", "guruconnect-agent-1-linux-x86_64", sha)
    lines = linux.splitlines()
    check = lines.index(f"echo '{sha}  guruconnect-agent' | sha256sum -c -")
    install = next(i for i, line in enumerate(lines) if line.startswith("sudo install"))
    assert check < install  # nothing is installed before the hash matches
    assert "--key-file agent.key" in linux
    assert "--key " not in linux
    assert "(umask 077; " in linux
    windows = ic.windows(
        "https://support.example.com", "guruconnect-agent-1-windows-x86_64.exe", sha
    )
    assert f"-ne '{sha.upper()}')" in windows
    assert "throw 'SHA-256 mismatch: not installing'" in windows
    assert ic.KEY_PLACEHOLDER in windows
    assert windows.index("Get-FileHash") < windows.index("agent install")


def test_a_built_agents_unit_runs_the_file_and_may_write_its_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from guruconnect.agent.service import Install

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/guruconnect/guruconnect-agent")
    unit = Install(server="https://s.example", key="cak_x", user="alice").unit()
    assert "ExecStart=/opt/guruconnect/guruconnect-agent agent --server" in unit
    assert "ReadWritePaths=/opt/guruconnect\n" in unit
    assert "ProtectSystem=strict" in unit
    monkeypatch.setattr(sys, "frozen", False)
    monkeypatch.setattr(sys, "executable", "/v/bin/python")
    venv = Install(server="https://s.example", key="cak_x", user="alice").unit()
    assert " -m guruconnect agent " in venv
    assert "ReadWritePaths" not in venv
