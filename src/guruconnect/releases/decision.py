"""The agent's update decisions, with no I/O: offer in, decision out.

:func:`judge_offer` looks at a signed manifest before anything is downloaded;
:func:`judge_artifact` looks at what was downloaded. The agent's updater only carries out
what these return, so every refusal rule is tested here with literal inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from packaging.version import InvalidVersion, Version

from guruconnect.releases.manifest import Manifest, ManifestError, parse, verify


class Reason(StrEnum):
    """Why an update was refused: the ``reason`` of an ``agent.update_refused`` event."""

    NO_TRUSTED_KEYS = "no_trusted_keys"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed_manifest"
    EXPIRED = "expired"
    WRONG_PLATFORM = "wrong_platform"
    OLDER_VERSION = "older_version"
    SIZE_MISMATCH = "size_mismatch"
    HASH_MISMATCH = "hash_mismatch"
    DOWNLOAD_FAILED = "download_failed"
    DOES_NOT_START = "does_not_start"
    CANNOT_INSTALL = "cannot_install"


@dataclass(frozen=True)
class Install:
    manifest: Manifest


@dataclass(frozen=True)
class Ignore:
    """Nothing to do (the offer is this very version); not worth an audit event."""

    why: str


@dataclass(frozen=True)
class Refuse:
    reason: Reason
    detail: str

    @property
    def line(self) -> str:
        return f"update refused: {self.reason.value}: {self.detail}"


Decision = Install | Ignore | Refuse


def version_key(text: str) -> Version:
    """A release's version as compared for "newer" (PEP 440; unparseable sorts lowest).

    An agent's full version (``0.1.0-48076e1-dirty``) compares as its release part.
    """
    for candidate in (text, text.split("-", 1)[0]):
        try:
            return Version(candidate)
        except InvalidVersion:
            continue
    return Version("0")


def judge_offer(
    manifest_bytes: bytes,
    signature: str,
    *,
    keys: Sequence[Ed25519PublicKey],
    current_version: str,
    platform: str,
    arch: str,
    now: datetime,
) -> Decision:
    """Whether to download the artifact a signed manifest describes.

    The signature is checked before the manifest is even parsed: nothing the server says
    is believed unless a trusted offline key said it.
    """
    if not keys:
        return Refuse(Reason.NO_TRUSTED_KEYS, "this build trusts no release key")
    if not verify(manifest_bytes, signature, keys):
        return Refuse(Reason.BAD_SIGNATURE, "no trusted release key signed this manifest")
    try:
        manifest = parse(manifest_bytes)
    except ManifestError as exc:
        return Refuse(Reason.MALFORMED, str(exc))
    if manifest.expires_at <= now:
        return Refuse(
            Reason.EXPIRED,
            f"manifest for {manifest.version} expired at {manifest.expires_at:%Y-%m-%d %H:%M}Z",
        )
    if (manifest.platform, manifest.arch) != (platform, arch):
        return Refuse(
            Reason.WRONG_PLATFORM,
            f"release is for {manifest.platform}/{manifest.arch}, this is {platform}/{arch}",
        )
    new, old = version_key(manifest.version), version_key(current_version)
    if new < old:
        return Refuse(Reason.OLDER_VERSION, f"{manifest.version} is older than {current_version}")
    if new == old:
        return Ignore(f"already running {current_version}")
    return Install(manifest)


def judge_artifact(manifest: Manifest, *, size: int, sha256: str) -> Refuse | None:
    """Whether the downloaded bytes are the ones the manifest signed for."""
    if size != manifest.size:
        return Refuse(
            Reason.SIZE_MISMATCH, f"downloaded {size} bytes, the manifest says {manifest.size}"
        )
    if sha256 != manifest.sha256:
        return Refuse(
            Reason.HASH_MISMATCH,
            f"SHA-256 {sha256[:16]}… does not match the signed {manifest.sha256[:16]}…",
        )
    return None
