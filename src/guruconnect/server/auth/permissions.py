"""Roles and fine-grained permissions.

An admin holds every permission and reaches every machine of its tenant. A technician
holds exactly what ``user_permissions`` grants (a new technician starts with
``TECHNICIAN_DEFAULTS``; an admin may narrow that, e.g. to view-only, or widen it) and
reaches only the machines ``user_client_access`` names (one machine, or every machine of
one client).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    TECHNICIAN = "technician"


class Permission(StrEnum):
    SESSIONS_VIEW = "sessions.view"
    SESSIONS_CONTROL = "sessions.control"
    SUPPORT_CODES_CREATE = "support_codes.create"
    AGENT_KEYS_MANAGE = "agent_keys.manage"
    AUDIT_READ = "audit.read"


PERMISSION_NAMES = frozenset(p.value for p in Permission)

TECHNICIAN_DEFAULTS = frozenset(
    {Permission.SESSIONS_VIEW, Permission.SESSIONS_CONTROL, Permission.SUPPORT_CODES_CREATE}
)


def effective_permissions(role: Role, granted: frozenset[str]) -> frozenset[Permission]:
    if role is Role.ADMIN:
        return frozenset(Permission)
    return frozenset(Permission(name) for name in granted if name in PERMISSION_NAMES)


def for_scope(scope: str) -> Permission:
    """The permission a session scope needs: ``control`` or (anything else) ``view``."""
    return Permission.SESSIONS_CONTROL if scope == "control" else Permission.SESSIONS_VIEW
