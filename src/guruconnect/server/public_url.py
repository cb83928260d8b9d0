"""The server's public base URL, as customers' machines reach it.

One function so install commands, download links and the join page agree. Until the
``GURUCONNECT_PUBLIC_URL`` setting exists it is derived from the request (which the
forwarded-headers rules already made trustworthy).
"""

from __future__ import annotations

from fastapi import Request

from guruconnect.server.config import Settings


def public_url(request: Request, settings: Settings) -> str:
    """``https://support.example.com`` (no trailing slash)."""
    configured = getattr(settings, "public_url", None)
    if configured:
        return str(configured).rstrip("/")
    return str(request.base_url).rstrip("/")
