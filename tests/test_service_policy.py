"""PostgreSQL and Redis tests fail in CI when the service is missing, and skip elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE = {
    "GURUCONNECT_TEST_POSTGRES_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/test",
    "GURUCONNECT_TEST_REDIS_URL": "redis://127.0.0.1:1/0",
}
SELECTION = [
    "tests/server/test_health.py",
    "tests/server/test_rate_limit.py::test_redis_shares_the_count_between_nodes",
]


def _pytest(ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"} | UNREACHABLE
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SELECTION],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("ci", ["true", "1"])
def test_missing_services_fail_in_ci(ci: str) -> None:
    result = _pytest(ci)
    assert result.returncode == 1, result.stdout
    assert "PostgreSQL unavailable" in result.stdout
    assert "Redis unavailable" in result.stdout
    # SQLite passes; the PostgreSQL one and both Redis ones (one per database) error out
    # in their fixtures.
    assert "1 passed, 3 errors" in result.stdout


def test_missing_services_skip_elsewhere() -> None:
    result = _pytest(None)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 3 skipped" in result.stdout
