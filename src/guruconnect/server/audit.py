"""Write audit events in their own transaction.

A failed login ends its request with an error, which rolls the request's transaction back;
the audit row must survive that, so it never rides on the caller's transaction.

Chat messages and clipboard transfers are audited by length and SHA-256. Their emitters
pass the text too (:func:`content_detail`), and it is kept only when the tenant's policy
says so (``tenants.audit_keep_content``); the decision is made here, in the background
write, so the relay's frame path never waits on the database. Content never goes to the
log.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from guruconnect.server.db import accounts, events
from guruconnect.server.db.events import Event

log = structlog.get_logger(__name__)

#: The detail key holding transferred text, dropped unless the tenant keeps content.
CONTENT_KEY = "content"


def content_detail(text: str) -> dict[str, Any]:
    """How a chat message or clipboard transfer is described in the audit trail."""
    return {
        "length": len(text),
        "sha256": hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
        CONTENT_KEY: text,
    }


class AuditLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, event: Event) -> None:
        async with self._engine.begin() as conn:
            if CONTENT_KEY in event.detail:
                keep = event.tenant_id is not None and (
                    (await accounts.policy(conn, event.tenant_id)).audit_keep_content
                )
                if not keep:
                    detail = {k: v for k, v in event.detail.items() if k != CONTENT_KEY}
                    event = dataclasses.replace(event, detail=detail)
            await events.append(conn, event)
        log.info(
            "audit",
            event_type=str(event.event_type),
            tenant_id=str(event.tenant_id) if event.tenant_id else None,
            user_id=str(event.user_id) if event.user_id else None,
            actor=event.actor,
            source_address=event.source_address,
            **{f"detail_{k}": v for k, v in event.detail.items() if k != CONTENT_KEY},
        )
