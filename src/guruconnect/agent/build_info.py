"""What a frozen agent build was built with: version, default server, update keys.

``scripts/build_agent.py`` writes ``_build.json`` and ``release_keys.pem`` next to this
module inside the build. In a virtualenv neither file exists: the version is the package's
and there is no default server and no embedded release key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

_HERE = Path(__file__).resolve().parent

#: Written by the build (a JSON object); absent outside a build.
BUILD_FILE = _HERE / "_build.json"
#: The agent's root of trust for updates (the format is the release code's); fixed path.
RELEASE_KEYS_FILE = _HERE / "release_keys.pem"


@dataclass(frozen=True)
class AgentBuild:
    #: The version the build was made as (``AGENT_VERSION``), None outside a build.
    version: str | None
    #: The server baked in with ``AGENT_SERVER``, the default for ``--server``.
    server: str | None
    #: The embedded release keys, or None when the build has none.
    release_keys: Path | None
    git_hash: str | None = None
    build_time: str | None = None
    #: The hash of the build inputs (sources, pyproject, AGENT_* values).
    build_key: str | None = None

    @property
    def is_build(self) -> bool:
        return self.version is not None


def _text(data: dict[str, object], name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) and value else None


def load() -> AgentBuild:
    try:
        data = json.loads(BUILD_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    keys = RELEASE_KEYS_FILE if RELEASE_KEYS_FILE.is_file() else None
    return AgentBuild(
        version=_text(data, "version"),
        server=_text(data, "server"),
        release_keys=keys,
        git_hash=_text(data, "git_hash"),
        build_time=_text(data, "build_time"),
        build_key=_text(data, "build_key"),
    )
