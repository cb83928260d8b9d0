"""Build the single-file agent with PyInstaller, or copy it from the build cache.

    python scripts/build_agent.py            # what `make agent-dist` runs

Inputs (environment): AGENT_VERSION (default: the package's version), AGENT_RELEASE_KEYS
(a file of release public keys embedded as ``guruconnect/agent/release_keys.pem``),
AGENT_SERVER (the default ``--server``), AGENT_DIST (the output file, default
``dist/guruconnect-linux-x86_64``), GURUCONNECT_BUILD_CACHE (default
``~/.cache/guruconnect-build``).

The cache is keyed by a hash of everything that goes into the file: the sources, the
packaging files, pyproject.toml, the AGENT_* values, the release keys' bytes and the
versions of Python, PyInstaller and every installed distribution. A hit is a file copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WINDOWS = sys.platform == "win32"
# The Windows pieces run on a Windows runner only (.github/workflows/windows-agent.yml).
SPEC = ROOT / "packaging" / ("windows" if WINDOWS else "linux") / "guruconnect.spec"
DEFAULT_NAME = "guruconnect-windows-x86_64.exe" if WINDOWS else "guruconnect-linux-x86_64"
# Nothing in these goes into the agent: the dashboard's files, the wire bundle.
SKIP_DIRS = {"__pycache__", "static", "templates"}


def say(message: str) -> None:
    print(f"build_agent: {message}", file=sys.stderr, flush=True)


def package_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def source_files() -> list[Path]:
    files = [ROOT / "pyproject.toml", Path(__file__).resolve()]
    files += sorted(p for p in (ROOT / "packaging").rglob("*") if p.is_file())
    for path in sorted((ROOT / "src" / "guruconnect").rglob("*")):
        relative = path.relative_to(ROOT / "src" / "guruconnect")
        if not path.is_file() or SKIP_DIRS.intersection(relative.parts[:-1]):
            continue
        if path.suffix in {".pyc", ".pyo"} or path.name == "_build_info.json":
            continue
        files.append(path)
    return [p for p in files if "__pycache__" not in p.parts]


def environment_fingerprint() -> str:
    dists = sorted(
        f"{d.metadata['Name']}=={d.version}".lower()
        for d in metadata.distributions()
        if d.metadata["Name"]
    )
    return "\n".join([sys.version, platform.machine(), *dists])


def build_key(inputs: dict[str, str], keys: bytes | None) -> str:
    digest = hashlib.sha256()
    for path in source_files():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps(inputs, sort_keys=True).encode())
    digest.update(b"keys\0" + (keys or b""))
    digest.update(environment_fingerprint().encode())
    return digest.hexdigest()[:32]


def git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def build(stage: Path, work: Path, name: str) -> Path:
    env = {**os.environ, "GURUCONNECT_BUILD_STAGE": str(stage), "GURUCONNECT_BUILD_NAME": name}
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        str(work / "dist"),
        "--workpath",
        str(work / "build"),
        str(SPEC),
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"build_agent: PyInstaller failed (exit {result.returncode})")
    return work / "dist" / name


def main() -> int:
    version = os.environ.get("AGENT_VERSION") or package_version()
    server = os.environ.get("AGENT_SERVER", "")
    keys_path = os.environ.get("AGENT_RELEASE_KEYS", "")
    dist = Path(os.environ.get("AGENT_DIST") or ROOT / "dist" / DEFAULT_NAME)
    cache_root = Path(
        os.environ.get("GURUCONNECT_BUILD_CACHE") or Path.home() / ".cache" / "guruconnect-build"
    )
    keys: bytes | None = None
    if keys_path:
        try:
            keys = Path(keys_path).read_bytes()
        except OSError as exc:
            say(f"cannot read AGENT_RELEASE_KEYS={keys_path}: {exc.strerror}")
            return 2
    if server and not server.startswith(("http://", "https://")):
        say(f"AGENT_SERVER must be an http:// or https:// URL, not {server!r}")
        return 2
    inputs = {"version": version, "server": server, "name": DEFAULT_NAME}
    key = build_key(inputs, keys)
    cached = cache_root / key / DEFAULT_NAME
    if not cached.is_file():
        started = time.monotonic()
        say(f"building {DEFAULT_NAME} {version} (cache miss {key})")
        cache_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="work-", dir=cache_root) as tmp:
            work = Path(tmp)
            stage = work / "stage"
            stage.mkdir()
            info = {
                "version": version,
                "server": server or None,
                "git_hash": git("rev-parse", "--short=7", "HEAD"),
                "build_time": datetime.now(UTC).isoformat(timespec="seconds"),
                "build_key": key,
            }
            (stage / "_build.json").write_text(json.dumps(info, indent=2) + "\n")
            if keys is not None:
                (stage / "release_keys.pem").write_bytes(keys)
            built = build(stage, work, DEFAULT_NAME)
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_name(cached.name + ".partial")
            shutil.copy2(built, partial)
            partial.replace(cached)  # atomic: a concurrent build never sees half a file
        say(f"built in {time.monotonic() - started:.0f} s")
    else:
        say(f"cache hit {key}")
    dist.parent.mkdir(parents=True, exist_ok=True)
    partial = dist.with_name(dist.name + ".partial")
    shutil.copy2(cached, partial)
    partial.chmod(0o755)
    os.replace(partial, dist)  # Path.replace too, but spelled as what Windows needs
    say(f"{dist} ({dist.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
