"""What a logged-in user may do before their account is in order. No I/O.

Two states hold a user to a few routes until they act:

- **a forced password change** (after an admin's reset): only who-am-I, log out and
  change-password;
- **MFA required by the tenant but not set up**: those, plus the MFA enrolment routes.

Everything else answers 403 with a message that says what to do. The check runs in the
request's authentication dependency, so no route can forget it.
"""

from __future__ import annotations

from guruconnect.server.db.accounts import AccountState

PASSWORD_CHANGE_REQUIRED = "password change required: change your password first"  # noqa: S105
MFA_ENROLMENT_REQUIRED = "two-factor login required: set it up on your account page first"

_ALWAYS = frozenset(
    {
        ("GET", "/api/auth/me"),
        ("POST", "/api/auth/logout"),
        ("POST", "/api/auth/password"),
        ("GET", "/api/auth/account"),
        ("GET", "/api/auth/policy"),
    }
)
_ENROLMENT = frozenset({("POST", "/api/auth/mfa/setup"), ("POST", "/api/auth/mfa/enable")})


def refusal(method: str, path: str, account: AccountState) -> str | None:
    """Why this request is refused, or None if it may go on."""
    route = (method.upper(), path.rstrip("/") or "/")
    if route in _ALWAYS:
        return None
    if account.must_change_password:
        return PASSWORD_CHANGE_REQUIRED
    if account.mfa_enrolment_required and route not in _ENROLMENT:
        return MFA_ENROLMENT_REQUIRED
    return None
