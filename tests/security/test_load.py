"""The load bench at a reduced size (``make load`` runs the full one): idle agents all held,
the healthy sessions at full frame rate next to the abusers, memory per idle agent small.
The viewer that never reads is left to ``test_socket_abuse`` (its cut-off takes a while)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from bench.load import run

pytestmark = pytest.mark.timeout(120)


def test_reduced_load(tmp_path: Path) -> None:
    report = asyncio.run(
        run(agents=50, sessions=2, seconds=4, workdir=tmp_path, stalled_viewer=False)
    )
    print("\n" + report.table())
    assert report.agents_held == report.agents
    assert report.fps_min >= 0.8 * report.fps_target
    assert report.frames_delivered_share >= 0.9
    assert report.abusers_cut_off == report.abusers
    # Generous: an idle agent costs about 0.1 MiB; ten times that would be a leak.
    assert report.kib_per_idle_agent < 1024
