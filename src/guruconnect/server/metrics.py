"""Prometheus metrics (``/metrics``), one registry per app.

Counters are incremented where things happen (the relay's hot path, the gate, the login
route, the HTTP middleware); the gauges (agents, viewers, sessions by state) are read from
the hub when Prometheus scrapes, so they can never drift from what the hub holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from guruconnect.protocol import SessionState

if TYPE_CHECKING:
    from guruconnect.server.relay.hub import Hub


class _HubGauges(Collector):
    def __init__(self) -> None:
        self.hub: Hub | None = None

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        agents = GaugeMetricFamily("guruconnect_agents_online", "Agents connected to this node.")
        viewers = GaugeMetricFamily("guruconnect_viewers", "Viewers connected to live sessions.")
        by_state = GaugeMetricFamily(
            "guruconnect_sessions", "Live sessions on this node, by state.", labels=["state"]
        )
        counts = {
            name.removeprefix("STATE_").lower(): 0
            for name in SessionState.State.keys()  # noqa: SIM118 (a protobuf enum)
            if name not in {"STATE_UNSPECIFIED", "STATE_ENDED"}
        }
        viewer_count = 0
        if hub is not None:
            for live in list(hub.sessions.values()):
                name = SessionState.State.Name(live.state).removeprefix("STATE_").lower()
                counts[name] = counts.get(name, 0) + 1
                viewer_count += len(live.viewers)
        agents.add_metric([], len(hub.agents) if hub is not None else 0)
        viewers.add_metric([], viewer_count)
        for name, count in sorted(counts.items()):
            by_state.add_metric([name], count)
        yield agents
        yield viewers
        yield by_state


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self._gauges = _HubGauges()
        registry.register(self._gauges)
        self.frames_relayed = Counter(
            "guruconnect_frames_relayed",
            "Video frames queued to viewers (one per viewer a frame reaches).",
            registry=registry,
        )
        self.bytes_relayed = Counter(
            "guruconnect_relayed_bytes",
            "Bytes of video queued to viewers.",
            registry=registry,
        )
        self.frames_dropped = Counter(
            "guruconnect_frames_dropped",
            "Video frames dropped for a viewer whose queue was full (a slow viewer).",
            registry=registry,
        )
        self.refusals = Counter(
            "guruconnect_refusals",
            "WebSocket connections refused, by plane and reason.",
            ["plane", "reason"],
            registry=registry,
        )
        self.login_failures = Counter(
            "guruconnect_login_failures",
            "Refused dashboard/API logins, by reason.",
            ["reason"],
            registry=registry,
        )
        self.database_errors = Counter(
            "guruconnect_database_errors",
            "HTTP requests that failed because the database was unavailable (answered 503).",
            registry=registry,
        )
        self.request_seconds = Histogram(
            "guruconnect_http_request_duration_seconds",
            "HTTP request latency, by method and status class.",
            ["method", "status"],
            registry=registry,
        )

    def watch(self, hub: Hub | None) -> None:
        """Read the gauges from ``hub`` (``None``: the server is not running)."""
        self._gauges.hub = hub

    def render(self) -> bytes:
        return generate_latest(self.registry)
