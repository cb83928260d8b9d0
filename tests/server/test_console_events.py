"""The console's event feed (console_events.py) without a server: tenants kept apart, a
bounded queue per subscriber that cuts a slow one off instead of growing, and events that
carry ids and states only."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from guruconnect.server.console_events import (
    ConsoleEvent,
    EventKind,
    InMemoryFeed,
    code_redeemed,
    machine_event,
)


def test_a_subscriber_receives_only_its_tenants_events_in_order() -> None:
    async def go() -> None:
        feed = InMemoryFeed()
        ours, theirs = uuid.uuid4(), uuid.uuid4()
        subscription = feed.subscribe(ours)
        first, second = uuid.uuid4(), uuid.uuid4()
        feed.publish(machine_event(ours, first, online=True))
        feed.publish(machine_event(theirs, uuid.uuid4(), online=True))
        feed.publish(machine_event(ours, second, online=False))
        got = [await subscription.get(1.0), await subscription.get(1.0)]
        assert [(e.kind, e.machine_id) for e in got if e] == [
            (EventKind.MACHINE_ONLINE, first),
            (EventKind.MACHINE_OFFLINE, second),
        ]
        assert await subscription.get(0.01) is None  # nothing of the other tenant's
        subscription.close()
        assert feed.subscriber_count() == 0

    asyncio.run(go())


def test_a_slow_subscriber_is_cut_off_not_buffered_without_bound() -> None:
    async def go() -> None:
        feed = InMemoryFeed()
        tenant = uuid.uuid4()
        slow = feed.subscribe(tenant, limit=3)
        fast = feed.subscribe(tenant, limit=100)
        for _ in range(10):
            feed.publish(machine_event(tenant, uuid.uuid4(), online=True))
        assert slow.overflowed
        assert slow.closed
        assert feed.subscriber_count() == 1  # the slow one is gone from the feed
        # What it had queued drains, then the iteration ends.
        for _ in range(3):
            assert await slow.get(1.0) is not None
        with pytest.raises(StopAsyncIteration):
            await slow.get(1.0)
        assert not fast.overflowed
        feed.close()
        assert fast.closed
        assert feed.subscriber_count() == 0

    asyncio.run(go())


def test_events_sent_to_browsers_carry_no_tenant_or_technician() -> None:
    tenant, creator = uuid.uuid4(), uuid.uuid4()
    event = code_redeemed(
        tenant, uuid.uuid4(), machine_id=uuid.uuid4(), session_id=uuid.uuid4(), created_by=creator
    )
    sent = event.to_json()
    assert sent["kind"] == "support_code.redeemed"
    assert str(tenant) not in sent.values()
    assert str(creator) not in sent.values()
    assert ConsoleEvent(EventKind.MACHINE_CHANGED, tenant, uuid.uuid4()).to_json().keys() == {
        "kind",
        "machine_id",
    }
