"""What the technicians' consoles are told, as it happens: machines coming online or going
offline or changing, sessions created / changing state / ending, support codes redeemed.

Everything goes through one interface, :class:`EventFeed` (publish, subscribe). This
process has :class:`InMemoryFeed`; several server nodes would put a backplane behind the
same two calls (publish to it, subscribe from it) and nothing else would change.

An event says *what* changed, never the data a user may not see: ids, a state, the
machine's tenant. Who may receive it is decided per subscriber by the stream endpoint
(``api/console.py``), with the same rules the REST API uses; the browser then reads the
row through the REST API, which checks again.

A subscriber's queue is bounded: a consumer that falls behind is cut off (its stream ends,
the browser reconnects and reloads its rows), so a slow browser never grows memory.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from guruconnect.server.state import AppState

#: Events a subscriber may have waiting before it is cut off.
DEFAULT_QUEUE_LIMIT = 256


class EventKind(StrEnum):
    MACHINE_ONLINE = "machine.online"
    MACHINE_OFFLINE = "machine.offline"
    MACHINE_CHANGED = "machine.changed"
    SESSION_CREATED = "session.created"
    SESSION_STATE = "session.state"
    SESSION_ENDED = "session.ended"
    SUPPORT_CODE_REDEEMED = "support_code.redeemed"


@dataclass(frozen=True)
class ConsoleEvent:
    kind: EventKind
    tenant_id: uuid.UUID
    machine_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    code_id: uuid.UUID | None = None
    #: A session's state ("awaiting_consent", "active", "ended") or a machine's "online".
    state: str | None = None
    #: Why a session ended.
    reason: str | None = None
    #: Who asked for the session or created the code (support-code sessions are visible
    #: to that technician even without access to the ad-hoc machine).
    technician_id: uuid.UUID | None = None
    #: The session's kind: "attended", "unattended", "support_code".
    session_kind: str | None = None

    def to_json(self) -> dict[str, Any]:
        """What the browser receives (the tenant and technician are for the filter)."""
        out: dict[str, Any] = {"kind": self.kind.value}
        for name in ("machine_id", "session_id", "code_id", "state", "reason"):
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value)
        return out


class SessionLike(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def tenant_id(self) -> uuid.UUID: ...
    @property
    def machine_id(self) -> uuid.UUID: ...
    @property
    def technician_id(self) -> uuid.UUID | None: ...
    @property
    def kind(self) -> str: ...


def machine_event(tenant_id: uuid.UUID, machine_id: uuid.UUID, *, online: bool) -> ConsoleEvent:
    kind = EventKind.MACHINE_ONLINE if online else EventKind.MACHINE_OFFLINE
    return ConsoleEvent(kind, tenant_id, machine_id, state="online" if online else "offline")


def session_event(
    kind: EventKind, session: SessionLike, state: str, reason: str | None = None
) -> ConsoleEvent:
    return ConsoleEvent(
        kind,
        session.tenant_id,
        session.machine_id,
        session_id=session.id,
        state=state,
        reason=reason,
        technician_id=session.technician_id,
        session_kind=session.kind,
    )


def code_redeemed(
    tenant_id: uuid.UUID,
    code_id: uuid.UUID,
    *,
    machine_id: uuid.UUID,
    session_id: uuid.UUID,
    created_by: uuid.UUID | None,
) -> ConsoleEvent:
    return ConsoleEvent(
        EventKind.SUPPORT_CODE_REDEEMED,
        tenant_id,
        machine_id,
        session_id=session_id,
        code_id=code_id,
        technician_id=created_by,
        session_kind="support_code",
    )


class Subscription:
    """One consumer's bounded queue. Iterate it; the iteration ends when the feed closes
    it (shutdown) or it overflowed (:attr:`overflowed` says which)."""

    def __init__(self, feed: InMemoryFeed, tenant_id: uuid.UUID, limit: int) -> None:
        self.tenant_id = tenant_id
        self.overflowed = False
        self._feed = feed
        self._queue: asyncio.Queue[ConsoleEvent | None] = asyncio.Queue(limit + 1)
        self._limit = limit
        self._closed = False

    def offer(self, event: ConsoleEvent) -> None:
        """Queue without waiting; a full queue ends the subscription instead of growing."""
        if self._closed:
            return
        if self._queue.qsize() >= self._limit:
            self.overflowed = True
            self.close()
            return
        self._queue.put_nowait(event)

    async def get(self, timeout: float) -> ConsoleEvent | None:
        """The next event; None when ``timeout`` passed with none. Raises
        :class:`StopAsyncIteration` once closed and drained."""
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        try:
            event = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if event is None:
            raise StopAsyncIteration
        return event

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._feed.unsubscribe(self)
        # The sentinel always fits: the queue holds one more than the limit.
        self._queue.put_nowait(None)

    @property
    def closed(self) -> bool:
        return self._closed


class EventFeed(Protocol):
    """Publish/subscribe of console events. ``publish`` never waits (it is called from the
    hub's paths); ``subscribe`` returns a bounded subscription for one tenant."""

    def publish(self, event: ConsoleEvent) -> None: ...

    def subscribe(
        self, tenant_id: uuid.UUID, *, limit: int = DEFAULT_QUEUE_LIMIT
    ) -> Subscription: ...

    def close(self) -> None: ...


class InMemoryFeed:
    """The feed of one process."""

    def __init__(self) -> None:
        self._subscribers: dict[uuid.UUID, set[Subscription]] = {}
        self.published = 0

    def publish(self, event: ConsoleEvent) -> None:
        self.published += 1
        for subscription in list(self._subscribers.get(event.tenant_id, ())):
            subscription.offer(event)

    def subscribe(self, tenant_id: uuid.UUID, *, limit: int = DEFAULT_QUEUE_LIMIT) -> Subscription:
        subscription = Subscription(self, tenant_id, limit)
        self._subscribers.setdefault(tenant_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        found = self._subscribers.get(subscription.tenant_id)
        if found is None:
            return
        found.discard(subscription)
        if not found:
            del self._subscribers[subscription.tenant_id]

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def close(self) -> None:
        """End every subscription (server shutdown)."""
        for subscriptions in list(self._subscribers.values()):
            for subscription in list(subscriptions):
                subscription.close()


def notify_machine_changed(state: AppState, tenant_id: uuid.UUID, machine_id: uuid.UUID) -> None:
    """Tell the consoles a machine's row changed (renamed, moved to another client, notes,
    deleted...). Call it after the change is committed: the browsers re-read the row."""
    state.hub.console.publish(ConsoleEvent(EventKind.MACHINE_CHANGED, tenant_id, machine_id))
