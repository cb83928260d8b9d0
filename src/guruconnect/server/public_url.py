"""The server's public base URL, as customers' machines reach it.

One function so install commands, download links and the join page agree: the
``GURUCONNECT_PUBLIC_URL`` setting, or without it the request's own base URL (which the
trusted-host and forwarded-headers rules already made trustworthy).
"""

from __future__ import annotations

from fastapi import Request

from guruconnect.server.config import Settings


def public_url(request: Request, settings: Settings) -> str:
    """``https://support.example.com`` (no trailing slash)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")
