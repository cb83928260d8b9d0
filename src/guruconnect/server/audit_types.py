"""The one vocabulary of audit event types.

Every row of ``session_events`` carries one of these values; the browser gets the same list
(with a readable label each) from ``/web/audit-types.json``, so the audit page's
suggestions cannot drift from what the server writes. ``tests/server/test_audit_export.py``
scans the server's emitters and fails on a type that is not here.
"""

from __future__ import annotations

from enum import StrEnum


class AuditType(StrEnum):
    # -- dashboard authentication ----------------------------------------------------------
    AUTH_LOGIN = "auth.login"
    AUTH_LOGIN_FAILED = "auth.login_failed"
    AUTH_LOGIN_RATE_LIMITED = "auth.login_rate_limited"
    AUTH_LOGIN_THROTTLED = "auth.login_throttled"
    AUTH_LOGOUT = "auth.logout"
    AUTH_CSRF_REJECTED = "auth.csrf_rejected"
    AUTH_TOKENS_REVOKED = "auth.tokens_revoked"
    AUTH_MFA_CHALLENGED = "auth.mfa_challenged"
    AUTH_MFA_FAILED = "auth.mfa_failed"
    AUTH_MFA_RATE_LIMITED = "auth.mfa_rate_limited"
    AUTH_MFA_RECOVERY_USED = "auth.mfa_recovery_code_used"
    AUTH_MFA_ENROLLING = "auth.mfa_enrolling"
    AUTH_MFA_ENABLED = "auth.mfa_enabled"
    AUTH_MFA_DISABLED = "auth.mfa_disabled"
    AUTH_MFA_RECOVERY_CODES_RENEWED = "auth.mfa_recovery_codes_renewed"
    AUTH_PASSWORD_CHANGED = "auth.password_changed"  # noqa: S105 - an event name
    AUTH_PASSWORD_CHANGE_FAILED = "auth.password_change_failed"  # noqa: S105
    # -- users and the tenant ----------------------------------------------------------------
    TENANT_CREATED = "tenant.created"
    TENANT_POLICY_SET = "tenant.policy_set"
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    USER_DELETED = "user.deleted"
    USER_PERMISSIONS_SET = "user.permissions_set"
    USER_CLIENT_ACCESS_SET = "user.client_access_set"
    USER_PASSWORD_RESET = "user.password_reset"  # noqa: S105 - an event name
    USER_MFA_RESET = "user.mfa_reset"
    # -- agents, keys, codes ------------------------------------------------------------------
    AGENT_CONNECTED = "agent.connected"
    AGENT_DISCONNECTED = "agent.disconnected"
    AGENT_REPLACED = "agent.replaced"
    AGENT_AUTH_FAILED = "agent.auth_failed"
    AGENT_UPDATED = "agent.updated"
    AGENT_UPDATE_INSTALLING = "agent.update_installing"
    AGENT_UPDATE_REFUSED = "agent.update_refused"
    AGENT_UPDATE_ROLLED_BACK = "agent.update_rolled_back"
    AGENT_KEY_ISSUED = "agent_key.issued"
    AGENT_KEY_REVOKED = "agent_key.revoked"
    SUPPORT_CODE_CREATED = "support_code.created"
    SUPPORT_CODE_REDEEMED = "support_code.redeemed"
    RELEASE_PUBLISHED = "release.published"
    # -- machines, clients, sites --------------------------------------------------------------
    MACHINE_RENAMED = "machine.renamed"
    MACHINE_UPDATED = "machine.updated"
    MACHINE_DELETED = "machine.deleted"
    MACHINE_REKEYED = "machine.rekeyed"
    CLIENT_CREATED = "client.created"
    SITE_CREATED = "site.created"
    UPDATE_POLICY_SET = "update_policy.set"
    UPDATE_POLICY_DELETED = "update_policy.deleted"
    # -- sessions ----------------------------------------------------------------------------
    SESSION_CREATED = "session.created"
    SESSION_ENDED = "session.ended"
    CONSENT_REQUESTED = "consent.requested"
    CONSENT_GRANTED = "consent.granted"
    CONSENT_DENIED = "consent.denied"
    CONSENT_TIMEOUT = "consent.timeout"
    VIEWER_TICKET_ISSUED = "viewer.ticket_issued"
    VIEWER_AUTH_FAILED = "viewer.auth_failed"
    VIEWER_JOINED = "viewer.joined"
    VIEWER_LEFT = "viewer.left"
    CONTROL_CHANGED = "control.changed"
    CHAT_MESSAGE = "chat.message"
    CLIPBOARD_SENT = "clipboard.sent"
    # -- limits and bad input ----------------------------------------------------------------
    LIMIT_MESSAGE_TOO_BIG = "limit.message_too_big"
    LIMIT_AGENT_OVER_LIMIT = "limit.agent_over_limit"
    LIMIT_PROTOCOL_ERROR = "limit.protocol_error"
    LIMIT_INPUT_THROTTLED = "limit.input_throttled"
    LIMIT_INPUT_WITHOUT_CONTROL = "limit.input_without_control"
    LIMIT_VIEW_INPUT_DROPPED = "limit.view_input_dropped"
    LIMIT_CHAT_THROTTLED = "limit.chat_throttled"
    LIMIT_CHAT_TOO_LONG = "limit.chat_too_long"
    LIMIT_AUDIT_DROPPED = "limit.audit_dropped"
    REQUEST_INVALID = "request.invalid"
    REQUEST_HOST_REFUSED = "request.host_refused"
    AUDIT_EXPORTED = "audit.exported"


#: What each type means, in words a technician reads on the audit page.
LABELS: dict[AuditType, str] = {
    AuditType.AUTH_LOGIN: "Logged in",
    AuditType.AUTH_LOGIN_FAILED: "Login failed",
    AuditType.AUTH_LOGIN_RATE_LIMITED: "Login refused: too many attempts",
    AuditType.AUTH_LOGIN_THROTTLED: "Login slowed down: username under attack",
    AuditType.AUTH_LOGOUT: "Logged out",
    AuditType.AUTH_CSRF_REJECTED: "Request refused: missing CSRF token",
    AuditType.AUTH_TOKENS_REVOKED: "Every session of a user ended by an admin",
    AuditType.AUTH_MFA_CHALLENGED: "Password accepted, second factor asked",
    AuditType.AUTH_MFA_FAILED: "Wrong second-factor code",
    AuditType.AUTH_MFA_RATE_LIMITED: "Second factor refused: too many attempts",
    AuditType.AUTH_MFA_RECOVERY_USED: "Logged in with a recovery code",
    AuditType.AUTH_MFA_ENROLLING: "Started setting up two-factor login",
    AuditType.AUTH_MFA_ENABLED: "Two-factor login turned on",
    AuditType.AUTH_MFA_DISABLED: "Two-factor login turned off",
    AuditType.AUTH_MFA_RECOVERY_CODES_RENEWED: "New recovery codes made",
    AuditType.AUTH_PASSWORD_CHANGED: "Changed own password",
    AuditType.AUTH_PASSWORD_CHANGE_FAILED: "Password change refused",
    AuditType.TENANT_CREATED: "Tenant created",
    AuditType.TENANT_POLICY_SET: "Security policy changed",
    AuditType.USER_CREATED: "User created",
    AuditType.USER_UPDATED: "User changed",
    AuditType.USER_DELETED: "User deleted",
    AuditType.USER_PERMISSIONS_SET: "Permissions set",
    AuditType.USER_CLIENT_ACCESS_SET: "Client access set",
    AuditType.USER_PASSWORD_RESET: "Password reset by an admin",
    AuditType.USER_MFA_RESET: "Two-factor login reset by an admin",
    AuditType.AGENT_CONNECTED: "Agent connected",
    AuditType.AGENT_DISCONNECTED: "Agent disconnected",
    AuditType.AGENT_REPLACED: "Agent replaced by a newer connection",
    AuditType.AGENT_AUTH_FAILED: "Agent refused",
    AuditType.AGENT_UPDATED: "Agent updated",
    AuditType.AGENT_UPDATE_INSTALLING: "Agent installing an update",
    AuditType.AGENT_UPDATE_REFUSED: "Agent refused an update",
    AuditType.AGENT_UPDATE_ROLLED_BACK: "Agent update rolled back",
    AuditType.AGENT_KEY_ISSUED: "Agent key issued",
    AuditType.AGENT_KEY_REVOKED: "Agent key revoked",
    AuditType.SUPPORT_CODE_CREATED: "Support code created",
    AuditType.SUPPORT_CODE_REDEEMED: "Support code redeemed",
    AuditType.RELEASE_PUBLISHED: "Agent release published",
    AuditType.MACHINE_RENAMED: "Machine renamed",
    AuditType.MACHINE_UPDATED: "Machine changed",
    AuditType.MACHINE_DELETED: "Machine forgotten",
    AuditType.MACHINE_REKEYED: "Machine given a new agent key",
    AuditType.CLIENT_CREATED: "Client created",
    AuditType.SITE_CREATED: "Site created",
    AuditType.UPDATE_POLICY_SET: "Update policy set",
    AuditType.UPDATE_POLICY_DELETED: "Update policy removed",
    AuditType.SESSION_CREATED: "Session started",
    AuditType.SESSION_ENDED: "Session ended",
    AuditType.CONSENT_REQUESTED: "Consent asked",
    AuditType.CONSENT_GRANTED: "Consent given",
    AuditType.CONSENT_DENIED: "Consent denied",
    AuditType.CONSENT_TIMEOUT: "Consent not answered in time",
    AuditType.VIEWER_TICKET_ISSUED: "Viewer ticket issued",
    AuditType.VIEWER_AUTH_FAILED: "Viewer refused",
    AuditType.VIEWER_JOINED: "Viewer joined",
    AuditType.VIEWER_LEFT: "Viewer left",
    AuditType.CONTROL_CHANGED: "Control taken or released",
    AuditType.CHAT_MESSAGE: "Chat message",
    AuditType.CLIPBOARD_SENT: "Clipboard sent",
    AuditType.LIMIT_MESSAGE_TOO_BIG: "Message refused: too big",
    AuditType.LIMIT_AGENT_OVER_LIMIT: "Agent over its limit",
    AuditType.LIMIT_PROTOCOL_ERROR: "Malformed or unexpected message",
    AuditType.LIMIT_INPUT_THROTTLED: "Input throttled",
    AuditType.LIMIT_INPUT_WITHOUT_CONTROL: "Input without control dropped",
    AuditType.LIMIT_VIEW_INPUT_DROPPED: "Input from a view-only viewer dropped",
    AuditType.LIMIT_CHAT_THROTTLED: "Chat throttled",
    AuditType.LIMIT_CHAT_TOO_LONG: "Chat message too long",
    AuditType.LIMIT_AUDIT_DROPPED: "Chat or clipboard events not recorded (flood)",
    AuditType.REQUEST_INVALID: "Invalid request",
    AuditType.REQUEST_HOST_REFUSED: "Request refused: unknown Host name",
    AuditType.AUDIT_EXPORTED: "Audit log exported",
}


def browser_table() -> list[dict[str, str]]:
    """``[{"type": ..., "label": ...}]`` in declaration order, for the audit page."""
    return [{"type": t.value, "label": LABELS.get(t, t.value)} for t in AuditType]
