"""Write audit events in their own transaction.

A failed login ends its request with an error, which rolls the request's transaction back;
the audit row must survive that, so it never rides on the caller's transaction.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from guruconnect.server.db import events
from guruconnect.server.db.events import Event

log = structlog.get_logger(__name__)


class AuditLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, event: Event) -> None:
        async with self._engine.begin() as conn:
            await events.append(conn, event)
        self._log(event)

    async def record_in(self, conn: AsyncConnection, event: Event) -> None:
        """Write ``event`` in the caller's transaction: for an event that is only true if
        that transaction commits (an agent's connect, in the one transaction it takes)."""
        await events.append(conn, event)
        self._log(event)

    @staticmethod
    def _log(event: Event) -> None:
        log.info(
            "audit",
            event_type=event.event_type,
            tenant_id=str(event.tenant_id) if event.tenant_id else None,
            user_id=str(event.user_id) if event.user_id else None,
            actor=event.actor,
            source_address=event.source_address,
            **{f"detail_{k}": v for k, v in event.detail.items()},
        )
