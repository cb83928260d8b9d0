"""The agent's root of trust for updates: the release public keys built into it.

``make agent-dist`` embeds ``AGENT_RELEASE_KEYS`` (one or more PEM public keys, for
rotation) as :data:`guruconnect.agent.build_info.RELEASE_KEYS_FILE`. An agent without that
file (a virtualenv, a package, a build made without keys) trusts no release and refuses
every update offer.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from guruconnect.releases.manifest import ManifestError, load_public_keys
from guruconnect.self_exec import frozen


def release_keys(path: Path | None) -> list[Ed25519PublicKey]:
    if path is None:
        return []
    try:
        return load_public_keys(path.read_bytes())
    except (OSError, ManifestError):
        return []


def built_executable() -> Path | None:
    """The single file this agent runs from, when it is one."""
    return Path(sys.executable).resolve() if frozen() else None


def this_platform() -> tuple[str, str]:
    system = {"linux": "linux", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    return system, arch
