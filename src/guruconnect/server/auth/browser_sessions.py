"""How the browser holds a dashboard token: an HttpOnly cookie plus a CSRF token.

The dashboard never sees its access token. ``POST /api/auth/session`` puts it in a cookie
that page scripts cannot read (``HttpOnly``), that no other site's page can make the
browser send (``SameSite=Strict``), that only travels to ``/api`` and, over HTTPS, only
over HTTPS (``Secure``). An XSS could still act while the page is open, but could not
carry the token away to use later, which a token in ``localStorage`` would allow.

A cookie rides along with every request the browser makes to us, so each cookie-borne
write must also prove it comes from our own page: it carries ``X-CSRF-Token``, an HMAC of
the token's ``jti`` that the page learns from ``/api/auth/session`` or ``/api/auth/me`` (a
read other origins cannot perform). Bearer-header requests need no CSRF token: a browser
never adds that header on its own.

No I/O here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

#: The cookie holding the access token.
COOKIE_NAME = "guruconnect_session"
COOKIE_PATH = "/api"
#: The header a cookie-authenticated write must carry.
CSRF_HEADER = "x-csrf-token"
#: Methods that change nothing; every other method needs the CSRF header.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(secret: str, jti: uuid.UUID) -> str:
    """The CSRF token bound to one access token (so it dies with it)."""
    mac = hmac.new(secret.encode(), b"csrf:" + jti.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_valid(secret: str, jti: uuid.UUID, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(csrf_token(secret, jti), presented)


def cookie_secure(public_url: str | None, request_scheme: str) -> bool:
    """``Secure`` when the public URL is https; without one, when this request came over
    HTTPS (directly, or through a trusted proxy's ``X-Forwarded-Proto``)."""
    if public_url is not None:
        return public_url.startswith("https://")
    return request_scheme == "https"
