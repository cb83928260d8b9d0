"""The schema: every table, as SQLAlchemy Core.

Conventions (SPEC "Data model"): UUID primary keys, aware UTC timestamps, ``tenant_id`` on
every customer-owned row, ``deleted_at`` where history matters (users, machines), and
foreign keys that say what happens on delete. The Alembic migrations build exactly this;
``tests/server/test_migrations.py`` fails when the two drift apart.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    false,
)

from guruconnect.server.db.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ROLES = ("admin", "technician")
CONSENT_POLICIES = ("ask", "unattended")
SESSION_KINDS = ("attended", "unattended", "support_code")
SESSION_STATES = ("requested", "awaiting_consent", "active", "ended")


def _created() -> Column[object]:
    return Column("created_at", UTCDateTime(), nullable=False)


def _tenant_fk() -> Column[object]:
    return Column("tenant_id", Uuid(), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)


tenants = Table(
    "tenants",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    _created(),
    Column("deleted_at", UTCDateTime()),
    # Policy: every user must log in with a second factor (TOTP).
    Column("mfa_required", Boolean(), nullable=False, default=False, server_default=false()),
    # Policy: the audit trail keeps the text of chat messages and clipboard transfers
    # (otherwise only their length and SHA-256).
    Column("audit_keep_content", Boolean(), nullable=False, default=False, server_default=false()),
)

users = Table(
    "users",
    metadata,
    Column("id", Uuid(), primary_key=True),
    _tenant_fk(),
    # Stored lower-cased; login looks users up by name alone, so live names are global.
    Column("username", String(64), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(20), nullable=False),
    Column("display_name", String(100)),
    Column("disabled", Boolean(), nullable=False, default=False),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("last_login_at", UTCDateTime()),
    Column("deleted_at", UTCDateTime()),
    # Set by an admin's password reset: only a password change is allowed until done.
    Column(
        "must_change_password", Boolean(), nullable=False, default=False, server_default=false()
    ),
    # TOTP: the confirmed secret (base32), one being enrolled, when it was confirmed, and
    # the last time step accepted (a code is never accepted twice).
    Column("mfa_secret", String(64)),
    Column("mfa_pending_secret", String(64)),
    Column("mfa_enabled_at", UTCDateTime()),
    Column("mfa_last_step", BigInteger()),
    CheckConstraint("role IN ('admin', 'technician')", name="role"),
    Index(None, "tenant_id"),
)
# A deleted user keeps its row (history) but frees its name.
Index(
    "uq_users_username_live",
    users.c.username,
    unique=True,
    sqlite_where=users.c.deleted_at.is_(None),
    postgresql_where=users.c.deleted_at.is_(None),
)

user_permissions = Table(
    "user_permissions",
    metadata,
    Column("id", Uuid(), primary_key=True),
    _tenant_fk(),
    Column("user_id", Uuid(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("permission", String(64), nullable=False),
    _created(),
    UniqueConstraint("user_id", "permission"),
)

#: A customer of the MSP: machines are grouped by client, then by site. A machine's
#: ``client_name`` mirrors its client's name (client access is granted by that name).
clients = Table(
    "clients",
    metadata,
    Column("id", Uuid(), primary_key=True),
    _tenant_fk(),
    Column("name", String(255), nullable=False),
    _created(),
    UniqueConstraint("tenant_id", "name"),
)

#: A place within a client (an office, a branch).
sites = Table(
    "sites",
    metadata,
    Column("id", Uuid(), primary_key=True),
    _tenant_fk(),
    Column("client_id", Uuid(), ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    _created(),
    UniqueConstraint("client_id", "name"),
)

machines = Table(
    "machines",
    metadata,
    Column("id", Uuid(), primary_key=True),
    _tenant_fk(),
    Column("name", String(255), nullable=False),
    # The customer ("client") a machine belongs to; client access can be granted by it.
    Column("client_name", String(255)),
    Column("hostname", String(255)),
    Column("os", String(255)),
    Column("agent_version", String(64)),
    Column("consent_policy", String(20), nullable=False, default="ask"),
    # Created by a support-code redemption rather than a persistent agent's key.
    Column("ad_hoc", Boolean(), nullable=False, default=False, server_default=false()),
    Column("online", Boolean(), nullable=False, default=False),
    #: The server node the machine's agent is connected to (while online).
    Column("node_id", String(64)),
    Column("last_seen_at", UTCDateTime()),
    _created(),
    Column("deleted_at", UTCDateTime()),
    Column("notes", Text()),
    #: A JSON list of short labels.
    Column("tags", JSON(), nullable=False, server_default="[]"),
    CheckConstraint("consent_policy IN ('ask', 'unattended')", name="consent_policy"),
    Index(None, "tenant_id", "client_name"),
)

#: Which client (and site) a machine is filed under; no row: none. A table of its own
#: rather than columns of ``machines``: SQLite can add a foreign-key column only without
#: a reflectable constraint, and rebuilding ``machines`` with foreign keys on would
#: cascade into its sessions. Deleting a client ungroups its machines; a site, unsites them.
machine_placements = Table(
    "machine_placements",
    metadata,
    Column("id", Uuid(), primary_key=True),
    _tenant_fk(),
    Column(
        "machine_id",
        Uuid(),
        ForeignKey("machines.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("client_id", Uuid(), ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
    Column("site_id", Uuid(), ForeignKey("sites.id", ondelete="SET NULL")),
    Index(None, "client_id"),
    Index(None, "site_id"),
)

user_client_access = Table(
    "user_client_access",
    metadata,
    Column("id", Uuid(), primary_key=True),
    _tenant_fk(),
    Column("user_id", Uuid(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # Exactly one of: a single machine, or every machine of one client.
    Column("machine_id", Uuid(), ForeignKey("machines.id", ondelete="CASCADE")),
    Column("client_name", String(255)),
    _created(),
    CheckConstraint("(machine_id IS NULL) <> (client_name IS NULL)", name="machine_xor_client"),
    UniqueConstraint("user_id", "machine_id", "client_name"),
)

agent_keys = Table(
    "agent_keys",
    metadata,
    Column("id", Uuid(), primary_key=True),
    _tenant_fk(),
    Column("machine_id", Uuid(), ForeignKey("machines.id", ondelete="CASCADE")),
    # The public start of the key: found by index, then the hash is compared.
    Column("prefix", String(32), nullable=False, unique=True),
    Column("key_hash", String(128), nullable=False),
    Column("label", String(255)),
    Column("created_by", Uuid(), ForeignKey("users.id", ondelete="SET NULL")),
    _created(),
    Column("last_used_at", UTCDateTime()),
    Column("revoked_at", UTCDateTime()),
    Index(None, "tenant_id"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Uuid(), primary_key=True),
    _tenant_fk(),
    Column("machine_id", Uuid(), ForeignKey("machines.id", ondelete="CASCADE"), nullable=False),
    Column("technician_id", Uuid(), ForeignKey("users.id", ondelete="SET NULL")),
    Column("kind", String(20), nullable=False),
    # What the technician asked for and the local user consented to: view or control.
    Column("scope", String(10), nullable=False, server_default="control"),
    Column("state", String(20), nullable=False),
    Column("codec", String(20)),
    _created(),
    Column("started_at", UTCDateTime()),
    Column("ended_at", UTCDateTime()),
    Column("end_reason", String(255)),
    #: The server node that runs the session.
    Column("node_id", String(64), nullable=False, server_default="default"),
    CheckConstraint("kind IN ('attended', 'unattended', 'support_code')", name="kind"),
    CheckConstraint("state IN ('requested', 'awaiting_consent', 'active', 'ended')", name="state"),
    Index(None, "machine_id", "state"),
    Index(None, "tenant_id", "created_at"),
)

support_codes = Table(
    "support_codes",
    metadata,
    Column("id", Uuid(), primary_key=True),
    _tenant_fk(),
    # SHA-256 of the normalised code: the code itself is shown once and never stored.
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("created_by", Uuid(), ForeignKey("users.id", ondelete="SET NULL")),
    _created(),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("redeemed_at", UTCDateTime()),
    Column("machine_id", Uuid(), ForeignKey("machines.id", ondelete="SET NULL")),
    Column("session_id", Uuid(), ForeignKey("sessions.id", ondelete="SET NULL")),
    Index(None, "tenant_id", "created_at"),
)

#: The audit trail. Rows outlive what they point at (SET NULL), so nothing is lost.
session_events = Table(
    "session_events",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("tenant_id", Uuid(), ForeignKey("tenants.id", ondelete="CASCADE")),
    Column("session_id", Uuid(), ForeignKey("sessions.id", ondelete="SET NULL")),
    Column("machine_id", Uuid(), ForeignKey("machines.id", ondelete="SET NULL")),
    Column("user_id", Uuid(), ForeignKey("users.id", ondelete="SET NULL")),
    Column("event_type", String(64), nullable=False),
    # Who acted, as text that survives deletion: a username, a key prefix, "cli".
    Column("actor", String(255)),
    Column("source_address", String(64)),
    Column("detail", JSON(), nullable=False),
    _created(),
    Index(None, "tenant_id", "created_at"),
    Index(None, "session_id"),
    Index(None, "machine_id"),
    Index(None, "event_type", "created_at"),
)

#: Single-use MFA recovery codes: SHA-256 of the normalised code (random, high entropy).
mfa_recovery_codes = Table(
    "mfa_recovery_codes",
    metadata,
    Column("id", Uuid(), primary_key=True),
    _tenant_fk(),
    Column("user_id", Uuid(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("code_hash", String(64), nullable=False),
    _created(),
    Column("used_at", UTCDateTime()),
    UniqueConstraint("user_id", "code_hash"),
)

#: Every access token issued. A row with ``revoked_at`` is the blacklist entry for its
#: ``jti``; rows are pruned once the token has expired anyway.
auth_tokens = Table(
    "auth_tokens",
    metadata,
    Column("id", Uuid(), primary_key=True),  # the JWT's jti
    _tenant_fk(),
    Column("user_id", Uuid(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("audience", String(32), nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
    Column("revoked_reason", String(64)),
    Index(None, "user_id", "revoked_at"),
    Index(None, "expires_at"),
)

#: Single-use, short-lived tickets for one viewer socket of one session. ``token_id`` is
#: the user token that minted it: revoking that token also refuses its tickets.
viewer_tickets = Table(
    "viewer_tickets",
    metadata,
    Column("id", Uuid(), primary_key=True),
    _tenant_fk(),
    Column("session_id", Uuid(), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Uuid(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_id", Uuid(), nullable=False),
    Column("scope", String(10), nullable=False),
    Column("ticket_hash", String(64), nullable=False, unique=True),
    _created(),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime()),
    CheckConstraint("scope IN ('view', 'control')", name="scope"),
    Index(None, "expires_at"),
)

#: Agent builds offered for download; not customer-owned, so no tenant.
releases = Table(
    "releases",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("version", String(64), nullable=False),
    Column("platform", String(32), nullable=False),
    Column("arch", String(32), nullable=False),
    Column("channel", String(32), nullable=False, default="stable"),
    Column("filename", String(255), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", BigInteger(), nullable=False),
    Column("notes", Text()),
    _created(),
    Column("deleted_at", UTCDateTime()),
    # The operator's signed manifest, verbatim, and its Ed25519 signature (base64). The
    # server stores and relays them; it holds no key that could make new ones.
    Column("manifest", Text()),
    Column("signature", String(128)),
    Column("key_id", String(16)),
    Column("expires_at", UTCDateTime()),
    UniqueConstraint("version", "platform", "arch"),
    UniqueConstraint("filename"),
)

update_policies = Table(
    "update_policies",
    metadata,
    Column("id", Uuid(), primary_key=True),
    _tenant_fk(),
    # At most one of: one machine, every machine of one client; neither: the whole tenant.
    Column("machine_id", Uuid(), ForeignKey("machines.id", ondelete="CASCADE")),
    Column("client_name", String(255)),
    # Offer nothing newer than this version (None: the newest release).
    Column("pinned_version", String(64)),
    Column("paused", Boolean(), nullable=False, default=False, server_default=false()),
    _created(),
    CheckConstraint("machine_id IS NULL OR client_name IS NULL", name="machine_or_client"),
    UniqueConstraint("tenant_id", "machine_id", "client_name"),
)
