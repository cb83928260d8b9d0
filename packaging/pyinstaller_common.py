"""What every PyInstaller build of the agent needs, Linux and Windows alike.

Read by ``packaging/*/guruconnect.spec``. Modules imported by name at run time are listed
here, because PyInstaller only follows ``import`` statements it can see.
"""

from __future__ import annotations

import os
from pathlib import Path

from PyInstaller.utils.hooks import collect_submodules

ROOT = Path(__file__).resolve().parents[1]
ENTRY = str(ROOT / "packaging" / "agent_entry.py")

#: Loaded by name at run time: Xlib's extensions and transport, the Tk consent and session
#: windows (a child started with --run-module), mss's per-platform backends, PyAV, zstd.
HIDDEN_IMPORTS = sorted(
    {
        "guruconnect.agent.desktop_ui",
        "tkinter",
        "tkinter.ttk",
        "zstandard",
        "av",
        *collect_submodules("guruconnect.agent"),
        *collect_submodules("guruconnect.client"),
        *collect_submodules("guruconnect.protocol"),
        *collect_submodules("mss"),
        *collect_submodules("Xlib"),
        *collect_submodules("av"),
    }
)

#: Server-only packages the agent never imports; leaving them out keeps the file small.
#: The ``server`` and ``admin`` commands say so clearly when run from the agent build.
EXCLUDES = [
    "alembic",
    "asyncpg",
    "aiosqlite",
    "sqlalchemy",
    "fastapi",
    "starlette",
    "uvicorn",
    "argon2",
    "redis",
    "limits",
    "grpc_tools",
    "uvloop",
    "yaml",
    # (pydantic stays: typer coerces option values with it.)
    "pydantic_settings",
    # zstandard's CFFI backend; the C backend (what it loads first) is kept.
    "zstandard._cffi",
    "grpc",
    "pytest",
    "hypothesis",
    "playwright",
    "schemathesis",
    "mypy",
    "IPython",
    "matplotlib",
]


def stage_datas() -> list[tuple[str, str]]:
    """The build's own inputs (``_build.json``, ``release_keys.pem``) written by
    ``scripts/build_agent.py`` into ``$GURUCONNECT_BUILD_STAGE``, placed next to
    ``guruconnect/agent/build_info.py`` inside the build."""
    stage = os.environ.get("GURUCONNECT_BUILD_STAGE")
    if not stage:
        return []
    return [
        (str(path), "guruconnect/agent")
        for path in sorted(Path(stage).iterdir())
        if path.name in {"_build.json", "release_keys.pem"}
    ]
