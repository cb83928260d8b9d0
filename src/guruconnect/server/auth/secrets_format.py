"""The credentials of the agent and viewer planes: format, generation, hashing.

Each plane's credential has its own shape, so none can pass for another (SPEC "Plane
separation"): agent keys start ``cak_``, viewer tickets ``cvt_``, user tokens are JWTs
(``eyJ...``), support codes are ten characters of an unambiguous alphabet. A credential is
stored only as a SHA-256 digest: the keys and tickets carry 256 random bits, and a support
code lives ten minutes, so a slow password hash would buy nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

AGENT_KEY_PREFIX = "cak_"
VIEWER_TICKET_PREFIX = "cvt_"
#: ``cak_`` + 12 characters: public, indexed, shown in lists; 72 random bits of lookup.
AGENT_KEY_LOOKUP_LENGTH = 16
_RANDOM_PART = r"[A-Za-z0-9_-]{43}"  # token_urlsafe(32)
_AGENT_KEY = re.compile(rf"{AGENT_KEY_PREFIX}{_RANDOM_PART}")
_VIEWER_TICKET = re.compile(rf"{VIEWER_TICKET_PREFIX}{_RANDOM_PART}")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")

#: No 0/O, 1/I/L: a code read over the phone survives. 31 symbols, 10 of them: ~49.5 bits.
SUPPORT_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
SUPPORT_CODE_LENGTH = 10
_SUPPORT_CODE = re.compile(rf"[{SUPPORT_CODE_ALPHABET}]{{{SUPPORT_CODE_LENGTH}}}")


class CredentialKind(StrEnum):
    AGENT_KEY = "agent_key"
    VIEWER_TICKET = "viewer_ticket"
    USER_TOKEN = "user_token"  # noqa: S105 - a kind, not a secret
    SUPPORT_CODE = "support_code"
    UNKNOWN = "unknown"


def classify(text: str) -> CredentialKind:
    """What a presented credential looks like, to refuse and audit the wrong plane's."""
    if _AGENT_KEY.fullmatch(text):
        return CredentialKind.AGENT_KEY
    if _VIEWER_TICKET.fullmatch(text):
        return CredentialKind.VIEWER_TICKET
    if _JWT.fullmatch(text):
        return CredentialKind.USER_TOKEN
    if _SUPPORT_CODE.fullmatch(normalise_support_code(text)):
        return CredentialKind.SUPPORT_CODE
    return CredentialKind.UNKNOWN


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_digest(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)


@dataclass(frozen=True)
class NewAgentKey:
    key: str  # shown once
    lookup: str
    key_hash: str


def new_agent_key() -> NewAgentKey:
    key = AGENT_KEY_PREFIX + secrets.token_urlsafe(32)
    return NewAgentKey(key=key, lookup=key[:AGENT_KEY_LOOKUP_LENGTH], key_hash=digest(key))


def agent_key_lookup(key: str) -> str | None:
    """The indexed prefix of a well-formed agent key, or None for anything else."""
    return key[:AGENT_KEY_LOOKUP_LENGTH] if _AGENT_KEY.fullmatch(key) else None


def new_viewer_ticket() -> tuple[str, str]:
    """(ticket shown once, its digest)."""
    ticket = VIEWER_TICKET_PREFIX + secrets.token_urlsafe(32)
    return ticket, digest(ticket)


def is_viewer_ticket(text: str) -> bool:
    return _VIEWER_TICKET.fullmatch(text) is not None


def new_support_code() -> str:
    return "".join(secrets.choice(SUPPORT_CODE_ALPHABET) for _ in range(SUPPORT_CODE_LENGTH))


def normalise_support_code(text: str) -> str:
    """Upper-case without separators: ``abcde-fghjk`` and ``ABCDE FGHJK`` are one code."""
    return re.sub(r"[\s-]", "", text).upper()


def support_code_digest(text: str) -> str | None:
    code = normalise_support_code(text)
    return digest(code) if _SUPPORT_CODE.fullmatch(code) else None


def display_support_code(code: str) -> str:
    """``ABCDE-FGHJK``: easier to read out."""
    half = SUPPORT_CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"
