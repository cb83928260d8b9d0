"""The hub: which agents and viewers are connected, the live sessions between them, and
every decision about what may flow.

State changes that matter later (session states, audit events) are written to the
database; what only matters while connected (queues, who holds control) lives here.
One hub per process; several nodes would share sessions through a backplane.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from guruconnect.protocol import (
    ChatMessage,
    ClipboardText,
    Codec,
    ConsentRequest,
    Error,
    Heartbeat,
    KeyframeRequest,
    Scope,
    SessionRequest,
    SessionState,
    UpdateAvailable,
    UpdateResult,
    decode,
    encode,
)
from guruconnect.protocol.close_codes import CloseCode
from guruconnect.protocol.codecs import negotiate
from guruconnect.protocol.end_reasons import EndReason
from guruconnect.protocol.planes import INPUT_TYPES
from guruconnect.server.audit import AuditLog, content_detail
from guruconnect.server.audit_types import AuditType
from guruconnect.server.auth.permissions import effective_permissions, for_scope
from guruconnect.server.config import Settings
from guruconnect.server.console_events import (
    EventFeed,
    EventKind,
    InMemoryFeed,
    machine_event,
    session_event,
)
from guruconnect.server.db import auth_tokens, machines, releases, sessions, users
from guruconnect.server.db.events import Event
from guruconnect.server.metrics import Metrics
from guruconnect.server.relay.peers import AgentPeer, Heartbeats, ViewerPeer

log = structlog.get_logger(__name__)

State = SessionState.State
#: A plain int: reading the enum through protobuf's wrapper costs more than the frame path
#: can spare (``LiveSession.active`` is asked twice a frame).
_ACTIVE = int(State.STATE_ACTIVE)
_SCOPES = {"view": Scope.SCOPE_VIEW, "control": Scope.SCOPE_CONTROL}
_CODEC_NAMES: dict[int, str] = {Codec.CODEC_RAW_ZSTD: "raw_zstd", Codec.CODEC_H264: "h264"}
#: Drop counters are audited at most this often per viewer.
DROP_AUDIT_INTERVAL = 10.0
#: Keyframe requests to one agent are coalesced to at most one per this many seconds.
KEYFRAME_INTERVAL = 0.25
#: A viewer whose writer has not moved for this long is stalled: it no longer paces the
#: agent (its frames are dropped instead), and no pause waits longer than this.
STALL_SECONDS = 1.0


@dataclass(frozen=True)
class Refusal:
    code: int
    why: str
    audit_reason: str


@dataclass(eq=False)
class LiveSession:
    id: uuid.UUID
    tenant_id: uuid.UUID
    machine_id: uuid.UUID
    kind: str
    scope: str
    technician: str
    consent_required: bool
    #: Who asked for the session (for a support code: who created the code).
    technician_id: uuid.UUID | None = None
    state: int = State.STATE_WAITING_FOR_AGENT
    codec: Codec = Codec.CODEC_RAW_ZSTD
    viewers: set[ViewerPeer] = field(default_factory=set)
    controller: ViewerPeer | None = None
    timer: asyncio.Task[None] | None = None
    frames_dropped_before_consent: int = 0
    last_keyframe_request: float = 0.0
    #: Frames dropped for slow viewers, not yet reported to the agent.
    dropped_unreported: int = 0
    #: A keyframe request waiting for the end of the interval since the last one.
    keyframe_timer: asyncio.Task[None] | None = None
    #: Set when any viewer's video queue has room again.
    room: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def active(self) -> bool:
        return self.state == _ACTIVE


class Hub:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        audit: AuditLog,
        metrics: Metrics,
        console: EventFeed | None = None,
    ) -> None:
        self.settings = settings
        #: What the technicians' consoles are told (console_events.py).
        self.console: EventFeed = console if console is not None else InMemoryFeed()
        self.metrics = metrics
        self._engine = engine
        self._audit = audit
        self.agents: dict[uuid.UUID, AgentPeer] = {}  # by machine id
        self.sessions: dict[uuid.UUID, LiveSession] = {}
        self._by_machine: dict[uuid.UUID, LiveSession] = {}
        self._viewers_by_user: dict[uuid.UUID, set[ViewerPeer]] = defaultdict(set)
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Every connected peer's heartbeat, from one task.
        self.heartbeats = Heartbeats(settings.heartbeat_interval_seconds)
        #: Agent keys revoked through this process (few: revocations are rare).
        self._revoked_keys: set[uuid.UUID] = set()

    # -- helpers --------------------------------------------------------------------------

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def audit(self, event: Event) -> None:
        try:
            await self._audit.record(event)
        except Exception:
            log.exception("audit write failed", event_type=event.event_type)

    def audit_later(self, event: Event) -> None:
        """Audit from a synchronous path (the frame path must not wait on the database)."""
        self._spawn(self.audit(event), "audit")

    def live_session_for_machine(self, machine_id: uuid.UUID) -> LiveSession | None:
        return self._by_machine.get(machine_id)

    def is_online(self, machine_id: uuid.UUID) -> bool:
        return machine_id in self.agents

    def _state_message(self, live: LiveSession, viewer: ViewerPeer | None, why: str = "") -> bytes:
        agent = self.agents.get(live.machine_id)
        return encode(
            SessionState(
                session_id=str(live.id),
                state=live.state,  # type: ignore[arg-type]
                reason=why,
                controller=live.controller.username if live.controller else "",
                scope=_SCOPES[viewer.scope] if viewer else Scope.SCOPE_UNSPECIFIED,
                displays=agent.displays if agent else [],
                codec=live.codec,
            )
        )

    def _broadcast_state(self, live: LiveSession, why: str = "") -> None:
        for viewer in live.viewers:
            viewer.peer.send(self._state_message(live, viewer, why))

    async def _persist_state(self, live: LiveSession, db_state: str) -> None:
        async with self._engine.begin() as conn:
            await sessions.set_state(conn, live.id, db_state, codec=_CODEC_NAMES.get(live.codec))
        self.console.publish(session_event(EventKind.SESSION_STATE, live, db_state))

    def _session_event(self, live: LiveSession, event_type: str, **detail: Any) -> Event:
        return Event(
            event_type,
            tenant_id=live.tenant_id,
            session_id=live.id,
            machine_id=live.machine_id,
            detail=detail,
        )

    @staticmethod
    def _viewer_event(
        viewer: ViewerPeer, event_type: str, machine_id: uuid.UUID | None = None, **detail: Any
    ) -> Event:
        return Event(
            event_type,
            tenant_id=viewer.tenant_id,
            session_id=viewer.session_id,
            machine_id=machine_id,
            user_id=viewer.user_id,
            actor=viewer.username,
            source_address=viewer.peer.source,
            detail=detail,
        )

    # -- agents ---------------------------------------------------------------------------

    async def agent_connected(self, agent: AgentPeer) -> None:
        old = self.agents.get(agent.machine_id)
        # Registered before anything awaits: the old socket's cleanup, which may run during
        # the audit write below, must already see that it was replaced, not disconnected.
        self.agents[agent.machine_id] = agent
        self.console.publish(machine_event(agent.tenant_id, agent.machine_id, online=True))
        if old is not None and old is not agent:
            old.peer.close(CloseCode.REPLACED, "replaced by a newer connection with this key")
            await self.audit(
                Event(
                    "agent.replaced",
                    tenant_id=agent.tenant_id,
                    machine_id=agent.machine_id,
                    source_address=old.peer.source,
                    detail={"new_source": agent.peer.source},
                )
            )
        live = self.live_session_for_machine(agent.machine_id)
        if live is not None:
            if live.timer is not None:
                live.timer.cancel()
                live.timer = None
            # A session that was running when the agent dropped resumes without asking
            # again: the local user already consented to this session.
            resumed = live.state in (State.STATE_RECONNECTING, State.STATE_ACTIVE)
            await self._offer(live, agent, consent_required=live.consent_required and not resumed)

    async def agent_disconnected(self, agent: AgentPeer) -> None:
        if self.agents.get(agent.machine_id) is not agent:
            return  # a newer connection replaced this one; nothing changes
        del self.agents[agent.machine_id]
        self.console.publish(machine_event(agent.tenant_id, agent.machine_id, online=False))
        live = self.live_session_for_machine(agent.machine_id)
        if live is None:
            return
        if agent.leaving:
            # Stopped on purpose: no reconnect to wait for.
            await self.end_session(live.id, EndReason.AGENT_STOPPED)
        elif live.state == State.STATE_ACTIVE and self.settings.agent_reconnect_grace_seconds > 0:
            live.state = State.STATE_RECONNECTING
            self._broadcast_state(live, "the remote machine is reconnecting")
            live.timer = self._spawn(
                self._end_after(
                    live, self.settings.agent_reconnect_grace_seconds, "agent_disconnected"
                ),
                "reconnect-grace",
            )
        else:
            await self.end_session(live.id, "agent_disconnected")

    def agent_status_changed(self, agent: AgentPeer) -> None:
        live = self.live_session_for_machine(agent.machine_id)
        if live is not None:
            self._renegotiate(live)
            self._broadcast_state(live)

    # -- updates --------------------------------------------------------------------------

    async def offer_update(self, agent: AgentPeer) -> bool:
        """Send the agent the release its update policy allows, if newer than what it runs.

        The offer is the operator's signed manifest, forwarded as stored: the relay cannot
        make one the agent accepts. Support-code agents are never offered updates.
        """
        if not agent.platform or agent.support_session_id is not None:
            return False
        try:
            async with self._engine.connect() as conn:
                machine = await machines.get_any_tenant(conn, agent.machine_id)
                policy = await releases.effective_policy(
                    conn,
                    agent.tenant_id,
                    agent.machine_id,
                    machine.client_name if machine else None,
                )
                available = await releases.candidates(
                    conn, platform=agent.platform, arch=agent.arch
                )
        except Exception:
            log.exception("update offer lookup failed", machine_id=str(agent.machine_id))
            return False
        chosen = releases.choose(available, policy, agent.agent_version)
        if chosen is None or chosen.manifest is None or chosen.signature is None:
            return False
        log.info(
            "offering update",
            machine_id=str(agent.machine_id),
            version=chosen.version,
            running=agent.agent_version,
        )
        agent.peer.send(
            encode(UpdateAvailable(manifest=chosen.manifest.encode(), signature=chosen.signature))
        )
        return True

    async def offer_updates(self, tenant_id: uuid.UUID) -> int:
        """Offer updates to every connected agent of a tenant (after a publish or a policy
        change); returns how many were offered one."""
        offered = 0
        for agent in list(self.agents.values()):
            if agent.tenant_id == tenant_id and await self.offer_update(agent):
                offered += 1
        return offered

    async def update_result(self, agent: AgentPeer, result: UpdateResult) -> None:
        names = {
            UpdateResult.OUTCOME_REFUSED: "agent.update_refused",
            UpdateResult.OUTCOME_INSTALLING: "agent.update_installing",
            UpdateResult.OUTCOME_ROLLED_BACK: "agent.update_rolled_back",
            UpdateResult.OUTCOME_INSTALLED: "agent.updated",
        }
        event_type = names.get(result.outcome)
        if event_type is None:
            return
        await self.audit(
            Event(
                event_type,
                tenant_id=agent.tenant_id,
                machine_id=agent.machine_id,
                actor=agent.machine_name[:255],
                source_address=agent.peer.source,
                detail={
                    "version": result.version[:64],
                    "reason": result.reason[:64],
                    "detail": result.detail[:500],
                    "running": agent.agent_version,
                },
            )
        )

    # -- sessions -------------------------------------------------------------------------

    async def start_session(
        self,
        session: sessions.Session,
        *,
        technician: str,
        consent_required: bool,
    ) -> LiveSession:
        """Make a new session live; if the machine has one already (two technicians asked
        at the same moment), the new one ends at once and the live one is returned."""
        current = self._by_machine.get(session.machine_id)
        if current is not None:
            async with self._engine.begin() as conn:
                await sessions.end(conn, session.id, "superseded")
            return current
        live = LiveSession(
            id=session.id,
            tenant_id=session.tenant_id,
            machine_id=session.machine_id,
            kind=session.kind,
            scope=session.scope,
            technician=technician,
            consent_required=consent_required,
            technician_id=session.technician_id,
        )
        self.sessions[live.id] = live
        self._by_machine[live.machine_id] = live
        self.console.publish(session_event(EventKind.SESSION_CREATED, live, "waiting_for_agent"))
        await self.audit(
            self._session_event(
                live, "session.created", technician=technician, kind=live.kind, scope=live.scope
            )
        )
        agent = self.agents.get(live.machine_id)
        if agent is not None:
            await self._offer(live, agent, consent_required=consent_required)
        return live

    async def _offer(self, live: LiveSession, agent: AgentPeer, *, consent_required: bool) -> None:
        live.codec = self._negotiate(live, agent)
        agent.peer.send(
            encode(
                SessionRequest(
                    session_id=str(live.id),
                    technician=live.technician,
                    scope=_SCOPES[live.scope],
                    codecs=[live.codec],
                    consent_required=consent_required,
                )
            )
        )
        if consent_required:
            live.state = State.STATE_AWAITING_CONSENT
            timeout = self.settings.consent_timeout_seconds
            agent.peer.send(
                encode(
                    ConsentRequest(
                        session_id=str(live.id),
                        technician=live.technician,
                        scope=_SCOPES[live.scope],
                        timeout_s=max(1, round(timeout)),
                    )
                )
            )
            live.timer = self._spawn(self._end_after(live, timeout, "consent_timeout"), "consent")
            await self._persist_state(live, "awaiting_consent")
            await self.audit(self._session_event(live, "consent.requested", timeout_s=timeout))
            self._broadcast_state(live)
        else:
            await self._activate(live)

    async def _activate(self, live: LiveSession) -> None:
        live.state = State.STATE_ACTIVE
        await self._persist_state(live, "active")
        self._broadcast_state(live)
        self._request_keyframe(live, force=True)

    async def consent_answer(
        self, agent: AgentPeer, session_id: str, granted: bool, why: str
    ) -> None:
        live = self.live_session_for_machine(agent.machine_id)
        if live is None or str(live.id) != session_id or live.state != State.STATE_AWAITING_CONSENT:
            return  # late or foreign answers change nothing
        if live.timer is not None:
            live.timer.cancel()
            live.timer = None
        if granted:
            await self.audit(self._session_event(live, "consent.granted"))
            await self._activate(live)
        else:
            await self.audit(self._session_event(live, "consent.denied", reason=why[:200]))
            await self.end_session(live.id, "consent_denied")

    async def _end_after(self, live: LiveSession, delay: float, why: str) -> None:
        await asyncio.sleep(delay)
        live.timer = None
        if why == "consent_timeout":
            await self.audit(self._session_event(live, "consent.timeout"))
        await self.end_session(live.id, why)

    async def end_session(self, session_id: uuid.UUID, why: str, *, by: str | None = None) -> bool:
        """End a session everywhere: database, viewers (closed), agent (told). Idempotent."""
        live = self.sessions.pop(session_id, None)
        if live is not None and self._by_machine.get(live.machine_id) is live:
            del self._by_machine[live.machine_id]
        async with self._engine.begin() as conn:
            ended = await sessions.end(conn, session_id, why)
        if live is None:
            return ended
        self.console.publish(session_event(EventKind.SESSION_ENDED, live, "ended", why))
        if live.timer is not None and live.timer is not asyncio.current_task():
            live.timer.cancel()
        if live.keyframe_timer is not None:
            live.keyframe_timer.cancel()
        live.state = State.STATE_ENDED
        message = self._state_message(live, None, why)
        for viewer in list(live.viewers):
            viewer.peer.send(self._state_message(live, viewer, why))
            viewer.peer.close(CloseCode.SESSION_ENDED, f"session ended: {why}", flush=True)
        live.viewers.clear()
        agent = self.agents.get(live.machine_id)
        if agent is not None:
            agent.peer.send(message)
            if agent.support_session_id == live.id:
                # A support code buys one session: its agent is not left online for another
                # (an agent that ignores the end is disconnected all the same).
                agent.peer.close(CloseCode.SESSION_ENDED, "the support session is over", flush=True)
        detail: dict[str, Any] = {"reason": why}
        if by:
            detail["by"] = by
        if live.frames_dropped_before_consent:
            detail["frames_dropped_before_consent"] = live.frames_dropped_before_consent
        await self.audit(self._session_event(live, "session.ended", **detail))
        return ended

    # -- viewers --------------------------------------------------------------------------

    async def viewer_joined(self, viewer: ViewerPeer) -> LiveSession | None:
        live = self.sessions.get(viewer.session_id)
        if live is None:
            return None
        live.viewers.add(viewer)
        self._viewers_by_user[viewer.user_id].add(viewer)
        viewer.peer.outbox.on_room = live.room.set
        viewer.peer.on_caught_up = lambda: self._caught_up(live, viewer)
        if viewer.scope == "control" and live.controller is None:
            live.controller = viewer
        self._renegotiate(live)
        self._broadcast_state(live)
        if live.active:
            self._request_keyframe(live, force=True)
        await self.audit(
            self._viewer_event(viewer, "viewer.joined", live.machine_id, scope=viewer.scope)
        )
        return live

    async def viewer_left(self, viewer: ViewerPeer) -> None:
        self._viewers_by_user[viewer.user_id].discard(viewer)
        if not self._viewers_by_user[viewer.user_id]:
            del self._viewers_by_user[viewer.user_id]
        live = self.sessions.get(viewer.session_id)
        if live is not None and viewer in live.viewers:
            live.viewers.discard(viewer)
            if live.controller is viewer:
                live.controller = None
                await self._control_changed(live, viewer, "released")
            self._renegotiate(live)
            self._broadcast_state(live)
        detail: dict[str, Any] = {
            "close_code": viewer.peer.close_code or viewer.peer.remote_close_code,
            "reason": viewer.peer.close_reason,
        }
        if viewer.dropped_input or viewer.dropped_view_input:
            detail["input_dropped"] = viewer.dropped_input
            detail["view_input_dropped"] = viewer.dropped_view_input
        await self.audit(self._viewer_event(viewer, "viewer.left", **detail))

    async def _control_changed(self, live: LiveSession, viewer: ViewerPeer, what: str) -> None:
        # The agent hears who holds control, so it lets go of keys and buttons the previous
        # controller left pressed (a viewer that vanishes mid-chord leaves a stuck Ctrl).
        agent = self.agents.get(live.machine_id)
        if agent is not None:
            agent.peer.send(self._state_message(live, None))
        await self.audit(
            self._viewer_event(viewer, "control.changed", live.machine_id, action=what)
        )

    # -- codec negotiation and keyframes ------------------------------------------------

    def _negotiate(self, live: LiveSession, agent: AgentPeer) -> Codec:
        return negotiate(agent.encoders, [v.codecs for v in live.viewers])

    def _renegotiate(self, live: LiveSession) -> None:
        agent = self.agents.get(live.machine_id)
        if agent is None or live.state not in (State.STATE_ACTIVE, State.STATE_AWAITING_CONSENT):
            return
        codec = self._negotiate(live, agent)
        if codec != live.codec:
            live.codec = codec
            agent.peer.send(
                encode(
                    SessionRequest(
                        session_id=str(live.id),
                        technician=live.technician,
                        scope=_SCOPES[live.scope],
                        codecs=[codec],
                        consent_required=False,
                    )
                )
            )
            self._spawn(self._persist_codec(live), "persist-codec")

    async def _persist_codec(self, live: LiveSession) -> None:
        with contextlib.suppress(Exception):
            async with self._engine.begin() as conn:
                await sessions.set_codec(conn, live.id, _CODEC_NAMES.get(live.codec, "raw_zstd"))

    async def _keyframe_later(self, live: LiveSession, delay: float) -> None:
        await asyncio.sleep(delay)
        live.keyframe_timer = None
        self._request_keyframe(live)

    def _caught_up(self, live: LiveSession, viewer: ViewerPeer) -> None:
        """A viewer that had frames dropped has room again: it needs a keyframe, and the
        agent hears how many frames were lost (its cue to send less)."""
        dropped = viewer.peer.outbox.video_dropped
        live.dropped_unreported += dropped - viewer.dropped_reported
        viewer.dropped_reported = dropped
        self._request_keyframe(live)

    def _request_keyframe(self, live: LiveSession, *, force: bool = False) -> None:
        agent = self.agents.get(live.machine_id)
        if agent is None or not live.active:
            return
        now = time.monotonic()
        wait = live.last_keyframe_request + KEYFRAME_INTERVAL - now
        if not force and wait > 0:
            # Too soon after the last one: ask once the interval is over, never drop the
            # request (the viewer that needs it would keep a stale picture).
            if live.keyframe_timer is None:
                live.keyframe_timer = self._spawn(self._keyframe_later(live, wait), "keyframe")
            return
        live.last_keyframe_request = now
        dropped, live.dropped_unreported = live.dropped_unreported, 0
        agent.peer.send(
            encode(KeyframeRequest(session_id=str(live.id), dropped_frames=min(dropped, 2**32 - 1)))
        )

    # -- routing: agent -> viewers ------------------------------------------------------

    def from_agent_video(self, agent: AgentPeer, data: bytes) -> None:
        """The hot path: forward the bytes as they came, to every viewer, never waiting."""
        live = self.live_session_for_machine(agent.machine_id)
        if live is None:
            return
        if not live.active:
            # Before consent (or after it lapsed) nothing the agent sends reaches a viewer.
            live.frames_dropped_before_consent += 1
            return
        sent = dropped = 0
        for viewer in live.viewers:
            if viewer.peer.send_video(data):
                sent += 1
            elif not viewer.peer.outbox.is_shut:
                dropped += 1
        metrics = self.metrics
        if sent:
            metrics.frames_relayed.inc(sent)
            metrics.bytes_relayed.inc(sent * len(data))
        if dropped:
            metrics.frames_dropped.inc(dropped)

    async def pace(self, agent: AgentPeer) -> None:
        """Hold the agent back while every viewer that is still reading has a full queue.

        The fastest live viewer sets the pace; a viewer that has stalled altogether is left
        out (it gets its frames dropped), so no viewer can stop the agent for long.
        """
        live = self._by_machine.get(agent.machine_id)
        while live is not None and live.active and live.viewers:
            if not all(v.peer.outbox.video_full for v in live.viewers):
                return  # the common case: someone has room
            now = time.monotonic()
            reading = [
                v.peer.outbox
                for v in live.viewers
                if now - v.peer.outbox.last_progress < STALL_SECONDS
            ]
            if not reading or not all(outbox.video_full for outbox in reading):
                return
            live.room.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STALL_SECONDS):
                    await live.room.wait()

    def to_viewers(self, agent: AgentPeer, data: bytes, *, control_only: bool = False) -> None:
        live = self.live_session_for_machine(agent.machine_id)
        if live is None or not live.active:
            return
        for viewer in live.viewers:
            if not control_only or viewer.scope == "control":
                viewer.peer.send(data)

    def chat_from_agent(self, agent: AgentPeer, message: ChatMessage) -> None:
        live = self.live_session_for_machine(agent.machine_id)
        if live is None or not live.active:
            return
        out = encode(
            ChatMessage(
                session_id=str(live.id),
                sender=agent.user_name or agent.machine_name,
                text=message.text,
                sent_at_ms=int(time.time() * 1000),
            )
        )
        for viewer in live.viewers:
            viewer.peer.send(out)
        self.audit_transfer(live, AuditType.CHAT_MESSAGE, message.text, agent=agent)

    # -- audit of chat and clipboard (issue 16): length and SHA-256; the text itself only
    # if the tenant's policy keeps it (decided by AuditLog in the background write) -------

    def audit_transfer(
        self,
        live: LiveSession,
        event_type: AuditType,
        text: str,
        *,
        viewer: ViewerPeer | None = None,
        agent: AgentPeer | None = None,
    ) -> None:
        """Audit a chat message or clipboard transfer without waiting on the database."""
        detail = {"direction": "to_agent" if viewer else "from_agent", **content_detail(text)}
        if viewer is not None:
            event = self._viewer_event(viewer, event_type, live.machine_id, **detail)
        else:
            event = Event(
                event_type,
                tenant_id=live.tenant_id,
                session_id=live.id,
                machine_id=live.machine_id,
                actor=(agent.user_name or agent.machine_name)[:255] if agent else None,
                source_address=agent.peer.source if agent else None,
                detail=detail,
            )
        # Batched: a chat flood costs a few transactions, not one per line.
        if self._audit.queue(event):
            self._spawn(self._audit.drain(), "audit")

    # -- routing: viewer -> agent -------------------------------------------------------

    def from_viewer(self, viewer: ViewerPeer, kind: str, data: bytes) -> None:
        live = self.sessions.get(viewer.session_id)
        if live is None:
            return
        agent = self.agents.get(live.machine_id)
        if kind in INPUT_TYPES:
            self._input(live, viewer, agent, data)
        elif kind == "heartbeat":
            beat = decode(data).heartbeat
            if not beat.reply:
                viewer.peer.send(encode(Heartbeat(sent_at_ms=beat.sent_at_ms, reply=True)))
        elif kind == "viewer_hello":
            codecs = [c for c in decode(data).viewer_hello.codecs if c in _CODEC_NAMES]
            viewer.codecs = codecs or [Codec.CODEC_RAW_ZSTD]
            self._renegotiate(live)
        elif kind == "keyframe_request":
            self._request_keyframe(live)
        elif kind == "display_switch":
            if live.controller is viewer and agent is not None and live.active:
                agent.peer.send(data)
        elif kind == "chat":
            self._chat_from_viewer(live, viewer, agent, decode(data).chat)
        elif kind == "clipboard":
            self._clipboard_from_viewer(live, viewer, agent, decode(data).clipboard)
        elif kind == "control_request":
            self._spawn(
                self._control_request(live, viewer, decode(data).control_request.take), "control"
            )
        elif kind == "disconnect":
            viewer.peer.close(CloseCode.NORMAL, "viewer left")

    def _input(
        self, live: LiveSession, viewer: ViewerPeer, agent: AgentPeer | None, data: bytes
    ) -> None:
        now = time.monotonic()
        if viewer.scope != "control" or live.controller is not viewer:
            viewer.dropped_view_input += 1
            self._audit_drops(live, viewer, now)
            return
        if not viewer.bucket.allow(now):
            viewer.dropped_input += 1
            self._audit_drops(live, viewer, now)
            return
        if agent is not None and live.active:
            agent.peer.send(data)

    def _audit_drops(self, live: LiveSession, viewer: ViewerPeer, now: float) -> None:
        if now - viewer.last_drop_audit < DROP_AUDIT_INTERVAL and viewer.last_drop_audit:
            return
        viewer.last_drop_audit = now
        event_type = (
            "limit.view_input_dropped"
            if viewer.dropped_view_input and viewer.scope != "control"
            else "limit.input_throttled"
            if viewer.dropped_input
            else "limit.input_without_control"
        )
        self.audit_later(
            self._viewer_event(
                viewer,
                event_type,
                live.machine_id,
                throttled=viewer.dropped_input,
                without_control=viewer.dropped_view_input,
            )
        )

    def _chat_from_viewer(
        self, live: LiveSession, viewer: ViewerPeer, agent: AgentPeer | None, chat: ChatMessage
    ) -> None:
        if len(chat.text) > self.settings.chat_max_chars or not chat.text:
            viewer.peer.send(
                encode(
                    Error(
                        code=413,
                        message=f"chat text must be 1 to {self.settings.chat_max_chars} characters",
                    )
                )
            )
            self.audit_later(
                self._viewer_event(viewer, "limit.chat_too_long", length=len(chat.text))
            )
            return
        out = encode(
            ChatMessage(
                session_id=str(live.id),
                sender=viewer.username,
                text=chat.text,
                sent_at_ms=int(time.time() * 1000),
            )
        )
        if agent is not None and live.active:
            agent.peer.send(out)
        for other in live.viewers:
            other.peer.send(out)
        self.audit_transfer(live, AuditType.CHAT_MESSAGE, chat.text, viewer=viewer)

    def _clipboard_from_viewer(
        self, live: LiveSession, viewer: ViewerPeer, agent: AgentPeer | None, clip: ClipboardText
    ) -> None:
        if live.controller is not viewer or agent is None or not live.active:
            return
        if len(clip.text) > self.settings.clipboard_max_chars:
            viewer.peer.send(encode(Error(code=413, message="clipboard text too long")))
            return
        agent.peer.send(encode(ClipboardText(text=clip.text)))
        self.audit_transfer(live, AuditType.CLIPBOARD_SENT, clip.text, viewer=viewer)

    async def _control_request(self, live: LiveSession, viewer: ViewerPeer, take: bool) -> None:
        if take:
            if viewer.scope != "control" or live.controller is viewer:
                return
            live.controller = viewer
            await self._control_changed(live, viewer, "taken")
        elif live.controller is viewer:
            live.controller = None
            await self._control_changed(live, viewer, "released")
        else:
            return
        self._broadcast_state(live)

    # -- revocation: reaches open sockets -----------------------------------------------

    def close_viewers(self, predicate: Any, code: int, why: str) -> int:
        closed = 0
        for group in list(self._viewers_by_user.values()):
            for viewer in list(group):
                if predicate(viewer):
                    viewer.peer.close(code, why)
                    closed += 1
        return closed

    def revoke_token(self, token_id: uuid.UUID) -> int:
        return self.close_viewers(
            lambda v: v.token_id == token_id, CloseCode.REVOKED, "token revoked"
        )

    def revoke_user(self, user_id: uuid.UUID, why: str = "user's access revoked") -> int:
        return self.close_viewers(lambda v: v.user_id == user_id, CloseCode.REVOKED, why)

    async def refusal(self, conn: AsyncConnection, viewer: ViewerPeer) -> Refusal | None:
        """Why this viewer may not watch, or None if it still may.

        The same rules as minting its ticket: live user, live token, reach, permission.
        """
        user = await users.get(conn, viewer.tenant_id, viewer.user_id)
        if user is None or user.disabled:
            return Refusal(CloseCode.REVOKED, "this user's access was revoked", "revoked_user")
        if not await auth_tokens.is_live(conn, viewer.token_id, viewer.user_id):
            return Refusal(CloseCode.REVOKED, "token revoked", "revoked_user")
        live = self.sessions.get(viewer.session_id)
        if live is None or live.tenant_id != user.tenant_id:
            return Refusal(CloseCode.SESSION_ENDED, "session is not live", "session_not_live")
        if not await users.can_reach_session(
            conn, user, machine_id=live.machine_id, technician_id=live.technician_id, kind=live.kind
        ):
            return Refusal(CloseCode.REVOKED, "no access to this machine", "no_access")
        granted = effective_permissions(user.role, await users.permissions_of(conn, user.id))
        needed = for_scope(viewer.scope)
        if needed not in granted:
            return Refusal(
                CloseCode.REVOKED, f"permission {needed.value} was removed", "permission_removed"
            )
        return None

    async def _recheck(self, viewers: list[ViewerPeer]) -> int:
        closed = 0
        if not viewers:
            return closed
        async with self._engine.connect() as conn:
            for viewer in viewers:
                refused = await self.refusal(conn, viewer)
                if refused is not None:
                    viewer.peer.close(refused.code, refused.why)
                    closed += 1
        return closed

    async def recheck_user(self, user_id: uuid.UUID) -> int:
        """After a change to a user (role, grants, client access): close what they may no
        longer watch."""
        return await self._recheck(list(self._viewers_by_user.get(user_id, ())))

    async def recheck_machine(self, machine_id: uuid.UUID) -> int:
        """After a change to a machine (its client): close viewers who lost it."""
        live = self._by_machine.get(machine_id)
        return await self._recheck(list(live.viewers) if live else [])

    def revoke_agent_key(self, key_id: uuid.UUID) -> int:
        """Close every socket of this key (a key bound to one machine normally has one, but
        stopping at the first would leave any other online); return how many.

        Called once the revocation has committed; the key is remembered, so that a connect
        that checked the key just before that commit, and registers just after this sweep,
        is closed too (:meth:`key_revoked`) without asking the database again."""
        self._revoked_keys.add(key_id)
        closed = 0
        for agent in list(self.agents.values()):
            if agent.key_id == key_id:
                agent.peer.close(CloseCode.REVOKED, "agent key revoked")
                closed += 1
        return closed

    def key_revoked(self, key_id: uuid.UUID) -> bool:
        """Whether this process has revoked the key since it started."""
        return key_id in self._revoked_keys

    # -- lifecycle --------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Startup: sessions and machines a previous process left live are not live now."""
        async with self._engine.begin() as conn:
            node = self.settings.node_id
            stale = await sessions.end_all_live(conn, "server_restart", node)
            offline = await machines.mark_all_offline(conn, node)
        for session in stale:
            await self.audit(
                Event(
                    "session.ended",
                    tenant_id=session.tenant_id,
                    session_id=session.id,
                    machine_id=session.machine_id,
                    detail={"reason": "server_restart", "reconciled": True},
                )
            )
        if stale or offline:
            log.info("reconciled after restart", sessions=len(stale), machines=offline)

    async def shutdown(self) -> None:
        self.console.close()
        for agent in list(self.agents.values()):
            agent.peer.close(CloseCode.GOING_AWAY, "server shutting down")
        for live in list(self.sessions.values()):
            for viewer in list(live.viewers):
                viewer.peer.close(CloseCode.GOING_AWAY, "server shutting down")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.heartbeats.stop()
