"""The signed release manifest and its Ed25519 keys.

A manifest is a small JSON document naming one artifact (version, platform, arch, size,
SHA-256, channel, expiry). The operator signs its exact bytes with a private key that
never reaches the server; the agent verifies them with the public keys built into it.
Several public keys may be trusted at once, so a key can be rotated: build agents that
trust old and new, publish with the new, then drop the old.

Why not python-tuf: TUF's root/targets/snapshot/timestamp roles need a timestamp key that
re-signs online (or an operator re-signing every few days) and a metadata repository
layout the relay would have to serve and the frozen agent to carry. One offline signature
per artifact, with an expiry and the agent's own no-rollback rule, covers what the issue
asks (forged, tampered, older, expired, wrong platform) with one small dependency.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

#: Names what the signature is for, so it cannot be replayed as another kind of document.
MANIFEST_TYPE = "guruconnect-agent-release/1"
PLATFORMS = frozenset({"linux", "windows"})
ARCHES = frozenset({"x86_64", "arm64"})
CHANNELS = frozenset({"stable", "beta"})
VERSION_PATTERN = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}")
_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: A manifest larger than this is not one of ours (checked before parsing).
MAX_MANIFEST_BYTES = 4096


class ManifestError(ValueError):
    """A manifest, key or signature that cannot be used; the message says why."""


@dataclass(frozen=True)
class Manifest:
    version: str
    platform: str
    arch: str
    size: int
    sha256: str
    channel: str
    filename: str
    expires_at: datetime

    def encode(self) -> bytes:
        """The exact bytes that are signed (sorted keys, no spaces)."""
        document = {
            "type": MANIFEST_TYPE,
            "version": self.version,
            "platform": self.platform,
            "arch": self.arch,
            "size": self.size,
            "sha256": self.sha256,
            "channel": self.channel,
            "filename": self.filename,
            "expires_at": self.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    def validate(self) -> Manifest:
        if not VERSION_PATTERN.fullmatch(self.version):
            raise ManifestError(f"bad version {self.version!r}")
        if self.platform not in PLATFORMS:
            raise ManifestError(f"unknown platform {self.platform!r}")
        if self.arch not in ARCHES:
            raise ManifestError(f"unknown arch {self.arch!r}")
        if self.channel not in CHANNELS:
            raise ManifestError(f"unknown channel {self.channel!r}")
        if not _SHA256.fullmatch(self.sha256):
            raise ManifestError("sha256 is not 64 lowercase hex digits")
        if not _FILENAME.fullmatch(self.filename) or ".." in self.filename:
            raise ManifestError(f"bad file name {self.filename!r}")
        if self.size <= 0:
            raise ManifestError("size must be positive")
        return self


def parse(data: bytes) -> Manifest:
    """Decode a manifest's bytes; raises :class:`ManifestError`. Verify the signature first."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError("manifest too large")
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("type") != MANIFEST_TYPE:
            raise ManifestError("not a GuruConnect release manifest")
        size = document["size"]
        if not isinstance(size, int) or isinstance(size, bool):
            raise ManifestError("size is not an integer")
        fields = ("version", "platform", "arch", "sha256", "channel", "filename", "expires_at")
        text = {name: document[name] for name in fields}
        if not all(isinstance(value, str) for value in text.values()):
            raise ManifestError("a field is not a string")
        expires = datetime.strptime(text.pop("expires_at"), "%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, ManifestError):
            raise
        raise ManifestError(f"malformed manifest ({exc.__class__.__name__})") from None
    return Manifest(size=size, expires_at=expires.replace(tzinfo=UTC), **text).validate()


# -- keys and signatures -----------------------------------------------------------------


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ManifestError("the private key is not an Ed25519 key")
    return key


_PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


def load_public_keys(pem: bytes) -> list[Ed25519PublicKey]:
    """Every public key in a file of concatenated PEM blocks (old and new, for rotation)."""
    keys = []
    for block in _PEM_BLOCK.findall(pem):
        try:
            key = serialization.load_pem_public_key(block)
        except ValueError as exc:
            raise ManifestError(f"unreadable public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ManifestError("a release public key is not an Ed25519 key")
        keys.append(key)
    return keys


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint for logs and the admin's eyes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(data: bytes, key: Ed25519PrivateKey) -> str:
    """The signature of ``data``, base64 (as stored and sent)."""
    return base64.b64encode(key.sign(data)).decode("ascii")


def verify(data: bytes, signature: str, keys: Iterable[Ed25519PublicKey]) -> bool:
    """True when any trusted key made ``signature`` over exactly ``data``."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    for key in keys:
        try:
            key.verify(raw, data)
        except InvalidSignature:
            continue
        return True
    return False


def signed_by(data: bytes, signature: str, keys: Sequence[Ed25519PublicKey]) -> str | None:
    """The id of the trusted key that signed ``data``, or None."""
    for key in keys:
        if verify(data, signature, [key]):
            return key_id(key)
    return None
