"""Hatch build hook: record the git revision and build time next to the package.

The file it writes (``src/guruconnect/_build_info.json``) is gitignored and read by
``guruconnect.version`` when the package runs outside a git checkout (an installed wheel).
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


class BuildInfoHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
        info = {
            "git_hash": _git(root, "rev-parse", "--short=7", "HEAD"),
            "branch": _git(root, "rev-parse", "--abbrev-ref", "HEAD"),
            "dirty": bool(status) if status is not None else None,
            "build_time": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        target = root / "src" / "guruconnect" / "_build_info.json"
        target.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
