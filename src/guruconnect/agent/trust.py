"""The agent's root of trust for updates: the release public keys built into it.

``make agent-dist`` copies ``AGENT_RELEASE_KEYS`` (one or more PEM public keys, for
rotation) to ``release_keys.pem`` beside this module. An agent without that file (run from
a virtualenv or a package) trusts no release and refuses every update offer.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from guruconnect.releases.manifest import ManifestError, load_public_keys

KEYS_FILE = Path(__file__).with_name("release_keys.pem")


def release_keys(path: Path = KEYS_FILE) -> list[Ed25519PublicKey]:
    try:
        return load_public_keys(path.read_bytes())
    except (OSError, ManifestError):
        return []


def built_executable() -> Path | None:
    """The single file this agent runs from, when it is one (PyInstaller sets ``frozen``)."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve()
    return None


def this_platform() -> tuple[str, str]:
    system = {"linux": "linux", "win32": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    return system, arch
