"""The committed guruconnect_pb2 module is exactly what protoc makes of the .proto file."""

from __future__ import annotations

import difflib
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTO = Path("proto") / "guruconnect.proto"
COMMITTED = ROOT / "src" / "guruconnect" / "protocol"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pb2")
    # The same command as `make proto`, with this interpreter's grpcio-tools (pinned in
    # pyproject.toml: another protoc version writes different bytes).
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-Iproto",
            f"--python_out={out}",
            f"--pyi_out={out}",
            str(PROTO),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("name", ["guruconnect_pb2.py", "guruconnect_pb2.pyi"])
def test_generated_module_is_current(generated: Path, name: str) -> None:
    fresh = (generated / name).read_bytes()
    committed = (COMMITTED / name).read_bytes()
    if fresh != committed:
        diff = difflib.unified_diff(
            committed.decode(errors="replace").splitlines(),
            fresh.decode(errors="replace").splitlines(),
            f"committed/{name}",
            f"protoc/{name}",
            lineterm="",
            n=1,
        )
        pytest.fail(
            f"src/guruconnect/protocol/{name} is stale or hand-edited: run `make proto` "
            f"(grpcio-tools {version('grpcio-tools')})\n" + "\n".join(list(diff)[:40])
        )
