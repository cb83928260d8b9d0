"""bench/latency.py's measuring core, once, with a handful of samples, so it cannot rot:
a real agent on Xvfb, the real server, the Python viewer decoding raw tiles and H.264,
Chromium's viewer page polled on animation frames, and key presses read by an X client.
No figure is judged here (timings belong to the bench); only that each one was taken."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from bench.latency import CHROMIUM, Config, run, table

from tests.agent.conftest import require_tool
from tests.conftest import IN_CI, PASSWORD, LiveServer
from tests.timing import scaled

pytestmark = pytest.mark.timeout(180)


def test_latency_bench_measures_every_figure(
    tmp_path: Path, sqlite_server: Callable[..., LiveServer]
) -> None:
    require_tool("Xvfb")
    # The bench starts its own server process; here the suite's in-process one saves the
    # time of starting another (the agent, the viewers and the X clients are the bench's).
    server = sqlite_server()
    server.create_user("root", is_admin=True)
    browser = Path(CHROMIUM).exists() and shutil.which("chromium") is not None
    if not browser and IN_CI:
        pytest.fail(f"{CHROMIUM} is not installed (make system installs it)", pytrace=False)
    config = Config(
        samples=2,
        key_samples=3,
        codecs=("raw", "h264"),
        motions=(False,),
        browser=browser,
        browser_codecs=("raw",),
        baseline=None,
        rounds=1,
        warmup=1,
        tmp=tmp_path,
        server=(server.url, "root", PASSWORD),
        time_scale=scaled(1),
    )
    report = asyncio.run(run(config))
    print("\n" + table(report, config))
    wanted = [("glass", "raw"), ("glass", "h264"), ("key", "raw"), ("key", "h264")]
    wanted += [("key+mouse", "raw"), ("key+mouse", "h264")]
    if browser:
        wanted.append(("browser", "raw"))
    for what, codec in wanted:
        figure = report.figures.get((what, codec, False, "new"))
        assert figure is not None, (what, codec, report.notes)
        assert figure.samples, (what, codec, figure.missed, report.notes)
    assert not report.notes, report.notes
