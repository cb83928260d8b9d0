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
import uuid
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from guruconnect.server.audit_types import AuditType
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


#: High-volume events (chat, clipboard) waiting for a batched write, at most; beyond it
#: they are counted and the count is audited instead (a flood must not flood the database).
MAX_QUEUED = 10_000
#: Events per transaction when draining the queue (other writers get the database between).
BATCH = 200


class AuditLog:
    def __init__(self, engine: AsyncEngine, *, max_queued: int = MAX_QUEUED) -> None:
        self._engine = engine
        self._max_queued = max_queued
        self._queued: list[Event] = []
        self._dropped: dict[uuid.UUID | None, int] = {}
        self._draining = False

    async def record(self, event: Event) -> None:
        await self.record_many([event])

    async def record_many(self, batch: list[Event]) -> None:
        """Write events in one transaction of their own."""
        keep: dict[uuid.UUID, bool] = {}
        written = []
        async with self._engine.begin() as conn:
            for event in batch:
                if CONTENT_KEY in event.detail:
                    tenant = event.tenant_id
                    if tenant is not None and tenant not in keep:
                        keep[tenant] = (await accounts.policy(conn, tenant)).audit_keep_content
                    if tenant is None or not keep[tenant]:
                        detail = {k: v for k, v in event.detail.items() if k != CONTENT_KEY}
                        event = dataclasses.replace(event, detail=detail)
                await events.append(conn, event)
                written.append(event)
        for event in written:
            self._log(event)

    async def record_in(self, conn: AsyncConnection, event: Event) -> None:
        """Write ``event`` in the caller's transaction: for an event that is only true if
        that transaction commits (an agent's connect, in the one transaction it takes).
        Never for an event carrying transferred text (that goes through :meth:`record`)."""
        if CONTENT_KEY in event.detail:
            raise ValueError("an event with transferred text is written by record()")
        await events.append(conn, event)
        self._log(event)

    @staticmethod
    def _log(event: Event) -> None:
        log.info(
            "audit",
            event_type=str(event.event_type),
            tenant_id=str(event.tenant_id) if event.tenant_id else None,
            user_id=str(event.user_id) if event.user_id else None,
            actor=event.actor,
            source_address=event.source_address,
            **{f"detail_{k}": v for k, v in event.detail.items() if k != CONTENT_KEY},
        )

    # -- batched writes for high-volume events ---------------------------------------------

    def queue(self, event: Event) -> bool:
        """Queue an event for a batched write, without waiting. True: no drain is running,
        the caller must start :meth:`drain` (as a task of its own)."""
        if len(self._queued) < self._max_queued:
            self._queued.append(event)
        else:
            self._dropped[event.tenant_id] = self._dropped.get(event.tenant_id, 0) + 1
        if self._draining:
            return False
        self._draining = True
        return True

    async def drain(self) -> None:
        """Write what is queued, :data:`BATCH` events per transaction, until none is left."""
        try:
            while self._queued or self._dropped:
                batch, self._queued = self._queued[:BATCH], self._queued[BATCH:]
                dropped, self._dropped = self._dropped, {}
                batch += [
                    Event(AuditType.LIMIT_AUDIT_DROPPED, tenant_id=tenant, detail={"dropped": n})
                    for tenant, n in dropped.items()
                ]
                try:
                    await self.record_many(batch)
                except Exception:
                    log.exception("audit batch write failed", events=len(batch))
        finally:
            self._draining = False
