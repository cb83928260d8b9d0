"""The built wheel is a working server with its dashboard: no checkout, no Node.

The wheel is built from the repository, installed into a fresh venv under the test's
temporary directory, and ``guruconnect server`` from that venv serves the dashboard
and the committed browser bundle. The runtime dependencies come from the test's own
environment (a ``.pth`` line) so the test does not download them again (a full install
takes minutes); the package itself must come from the wheel, which the test checks.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import httpx
import pytest

from guruconnect.server.background import ServerProcess
from guruconnect.server.web.routes import WIRE_BUNDLE
from tests.conftest import JWT_SECRET
from tests.timing import scaled

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(scaled(400))
def test_the_wheel_serves_the_dashboard(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
        check=True,
        capture_output=True,
        timeout=scaled(180),
    )
    [wheel] = dist.glob("guruconnect-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Dependencies only: the test environment's site-packages, after the venv's own.
    (Path(purelib) / "zz_test_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    install = ["install", "-q", "--no-deps", "--no-index", str(wheel)]
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), *install],
        check=True,
        capture_output=True,
        timeout=scaled(120),
    )
    where = subprocess.run(
        [python, "-c", "import guruconnect; print(guruconnect.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout.strip()
    assert where.startswith(purelib), where  # the wheel's copy, not the checkout

    server = ServerProcess(
        {"JWT_SECRET": JWT_SECRET, "GURUCONNECT_HOME": str(tmp_path / "home")},
        tmp_path / "server.log",
        cwd=tmp_path,
    )
    server.command = [str(env_dir / "bin" / "guruconnect"), "server"]
    try:
        server.start(timeout=scaled(30))
        with httpx.Client(base_url=server.url, timeout=scaled(10)) as client:
            page = client.get("/", follow_redirects=True)
            assert page.status_code == 200
            assert '<script type="module" src="/static/js/dashboard.js">' in page.text
            assert client.get("/static/js/dashboard.js").status_code == 200
            bundle = client.get("/static/build/wire.js")
            assert bundle.status_code == 200
            assert bundle.content == WIRE_BUNDLE.read_bytes()
    finally:
        server.stop()
