"""Version and build identity: ``VERSION-GITHASH[-dirty]``.

Inside a git checkout the revision is read live from git, so a developer's
``guruconnect --version`` always names the code that runs. An installed wheel has no
checkout; it reads what the build hook recorded in ``_build_info.json``.
"""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_BUILD_INFO = _PACKAGE_DIR / "_build_info.json"

try:
    __version__ = metadata.version("guruconnect")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"


@dataclass(frozen=True)
class BuildInfo:
    version: str
    git_hash: str | None
    branch: str | None
    dirty: bool | None
    build_time: str | None
    platform: str

    @property
    def full_version(self) -> str:
        """``0.1.0-48076e1``, ``0.1.0-48076e1-dirty``, or ``0.1.0-unknown`` without git data."""
        text = f"{self.version}-{self.git_hash or 'unknown'}"
        return f"{text}-dirty" if self.dirty else text


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv, no shell
            ["git", *args],  # noqa: S607 - git from PATH is the point
            cwd=_PACKAGE_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _from_checkout() -> tuple[str, str | None, bool] | None:
    toplevel = _git("rev-parse", "--show-toplevel")
    if not toplevel or not (Path(toplevel) / "pyproject.toml").is_file():
        return None
    git_hash = _git("rev-parse", "--short=7", "HEAD")
    if not git_hash:
        return None
    branch = _git("rev-parse", "--abbrev-ref", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return git_hash, branch, bool(status)


def _recorded() -> dict[str, object]:
    try:
        data = json.loads(_BUILD_INFO.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def build_info() -> BuildInfo:
    from guruconnect.agent import build_info as agent_build

    agent = agent_build.load()
    if agent.is_build:  # a frozen agent: what the build recorded, no git, no metadata
        assert agent.version is not None
        return BuildInfo(
            version=agent.version,
            git_hash=agent.git_hash,
            branch=None,
            dirty=False,
            build_time=agent.build_time,
            platform=platform.platform(),
        )
    recorded = _recorded()
    build_time = recorded.get("build_time")
    live = _from_checkout()
    git_hash: str | None
    if live is not None:
        git_hash, branch, dirty = live
    else:
        rec_hash, rec_branch, rec_dirty = (
            recorded.get("git_hash"),
            recorded.get("branch"),
            recorded.get("dirty"),
        )
        git_hash = rec_hash if isinstance(rec_hash, str) else None
        branch = rec_branch if isinstance(rec_branch, str) else None
        dirty = rec_dirty if isinstance(rec_dirty, bool) else False
    return BuildInfo(
        version=__version__,
        git_hash=git_hash,
        branch=branch,
        dirty=dirty,
        build_time=build_time if isinstance(build_time, str) else None,
        platform=platform.platform(),
    )
