"""deploy/guruconnect.service: the shipped unit passes ``systemd-analyze verify`` without a
warning and keeps its hardening."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import IN_CI

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "guruconnect.service"
SHIPPED_BINARY = "/opt/guruconnect/venv/bin/guruconnect"


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found[key].append(value)
    return found


def test_the_unit_is_hardened() -> None:
    unit = directives(UNIT.read_text(encoding="utf-8"))
    expected = {
        "User": ["guruconnect"],
        "StateDirectory": ["guruconnect"],
        "LoadCredential": ["jwt_secret:/etc/guruconnect/jwt_secret"],
        "ProtectSystem": ["strict"],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        "NoNewPrivileges": ["yes"],
        "CapabilityBoundingSet": [""],
        "RestrictAddressFamilies": ["AF_INET AF_INET6 AF_UNIX"],
        "UMask": ["0077"],
    }
    for key, values in expected.items():
        assert unit[key] == values, key
    assert "@system-service" in unit["SystemCallFilter"]
    assert {"JWT_SECRET_FILE=%d/jwt_secret", "GURUCONNECT_HOME=/var/lib/guruconnect"} <= set(
        unit["Environment"]
    )
    assert "JWT_SECRET" not in " ".join(unit["Environment"]).replace("JWT_SECRET_FILE", "")
    assert unit["RestartPreventExitStatus"] == ["2"]
    assert unit["ExecStart"] == [f"{SHIPPED_BINARY} server"]


def test_systemd_analyze_verifies_the_shipped_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if IN_CI:
            pytest.fail("systemd-analyze is missing (Debian package systemd)")
        pytest.skip("systemd-analyze is missing")
    shipped = UNIT.read_text(encoding="utf-8")
    # verify checks that ExecStart exists: the one change is this checkout's binary.
    binary = str(Path(sys.executable).parent / "guruconnect")
    copy = shipped.replace(SHIPPED_BINARY, binary)
    changed = [a for a, b in zip(shipped.splitlines(), copy.splitlines(), strict=True) if a != b]
    assert changed == [f"ExecStart={SHIPPED_BINARY} server"]
    unit = tmp_path / "guruconnect.service"
    unit.write_text(copy, encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # Unknown or misspelt directives are only warnings: none allowed.
    assert result.stderr.strip() == "", result.stderr
