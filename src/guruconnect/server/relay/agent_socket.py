"""``/ws/agent``: where agents authenticate and stream.

A persistent agent proves itself with its key (``Authorization: Bearer cak_...`` on the
upgrade, or an ``AgentHello`` as the first message); an ad-hoc one with a support code in
its ``AgentHello``. The machine it gets is the one its key is bound to, never one it names.
Nothing in the URL is a credential: a query string is refused outright.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import SQLAlchemyError
from starlette.websockets import WebSocket

from guruconnect.protocol import AuthResult, ClipboardText, Heartbeat, decode, encode
from guruconnect.protocol.close_codes import CloseCode
from guruconnect.protocol.errors import ProtocolError
from guruconnect.protocol.planes import VIDEO_TYPES, Plane, inbound_type
from guruconnect.releases.manifest import ARCHES, PLATFORMS
from guruconnect.server import console_events
from guruconnect.server.audit_types import AuditType
from guruconnect.server.auth import secrets_format
from guruconnect.server.auth.secrets_format import CredentialKind
from guruconnect.server.db import agent_keys, machines, sessions, support_codes, users
from guruconnect.server.db.events import Event
from guruconnect.server.rate_limits import LimiterUnavailable, rate
from guruconnect.server.relay.agent_limits import (
    ChatThrottle,
    check_cursor_shape,
    check_displays,
)
from guruconnect.server.relay.gate import WRONG_PLANE, admit, bearer, limit_event, refuse, source_of
from guruconnect.server.relay.peers import AgentPeer, Peer
from guruconnect.server.state import AppState, app_state

log = structlog.get_logger(__name__)
PLANE = "agent"


class Refused(Exception):
    def __init__(self, code: int, why: str, audit_reason: str) -> None:
        super().__init__(why)
        self.code = code
        self.why = why
        self.audit_reason = audit_reason


@dataclass
class Hello:
    credential: str | None
    is_code: bool
    hostname: str = ""
    os: str = ""
    agent_version: str = ""


async def _hello(ws: WebSocket, state: AppState) -> Hello:
    """The credential: from the upgrade's header, else from the first message."""
    header = bearer(ws)
    if header is not None:
        return Hello(credential=header, is_code=False)
    try:
        async with asyncio.timeout(state.settings.auth_timeout_seconds):
            message = await ws.receive()
    except TimeoutError:
        raise Refused(CloseCode.UNAUTHORIZED, "no credential in time", "auth_timeout") from None
    data = message.get("bytes")
    if message["type"] == "websocket.disconnect" or data is None:
        raise Refused(CloseCode.UNAUTHORIZED, "missing agent credential", "missing_credential")
    try:
        kind = inbound_type(Plane.AGENT, data, max_size=64 * 1024)
        envelope = decode(data)
    except ProtocolError as exc:
        raise Refused(exc.close_code, str(exc), "malformed_hello") from None
    if kind != "agent_hello":
        raise Refused(CloseCode.UNAUTHORIZED, "first message must be AgentHello", "no_hello")
    hello = envelope.agent_hello
    which = hello.WhichOneof("credential")
    return Hello(
        credential=getattr(hello, which) if which else None,
        is_code=which == "support_code",
        hostname=hello.hostname[:255],
        os=hello.os[:255],
        agent_version=hello.agent_version[:64],
    )


class _LostBind(Exception):
    """Another connection bound this fresh key to its machine first."""


async def _by_key(state: AppState, key: str, hello: Hello, source: str) -> AgentPeerSeed:
    lookup = secrets_format.agent_key_lookup(key)
    if lookup is None:
        raise Refused(CloseCode.UNAUTHORIZED, "invalid agent key", "malformed_key")
    try:
        return await _bind_key(state, key, lookup, hello, source)
    except _LostBind:
        # The winner's transaction has committed: this one (and the machine it had
        # created, rolled back with it) is gone; the retry finds the key bound.
        return await _bind_key(state, key, lookup, hello, source)


async def _bind_key(
    state: AppState, key: str, lookup: str, hello: Hello, source: str
) -> AgentPeerSeed:
    """The whole connect in one transaction: check the key, bind or find its machine,
    mark both used and online, and audit the connect (true only if this commits)."""
    async with state.engine.begin() as conn:
        row = await agent_keys.by_prefix(conn, lookup)
        # Compare even when nothing was found, so a miss costs what a mismatch costs.
        matches = secrets_format.same_digest(key, row.key_hash if row else "0" * 64)
        if row is None or not matches:
            raise Refused(CloseCode.UNAUTHORIZED, "unknown agent key", "unknown_key")
        if row.revoked_at is not None:
            raise Refused(CloseCode.UNAUTHORIZED, "agent key revoked", "revoked_key")
        machine = await machines.get_any_tenant(conn, row.machine_id) if row.machine_id else None
        if row.machine_id is not None and machine is None:
            raise Refused(CloseCode.UNAUTHORIZED, "this key's machine was deleted", "machine_gone")
        if machine is None:
            name = row.label or hello.hostname or f"machine-{row.prefix.removeprefix('cak_')}"
            machine = await machines.create(conn, tenant_id=row.tenant_id, name=name)
            # Compare-and-set: of several first connections racing, one binds the key;
            # the others roll back (their new machine with them) and use the winner's.
            if not await agent_keys.bind_machine(conn, row.id, machine.id):
                raise _LostBind
        await agent_keys.touch(conn, row.id)
        await machines.set_connected(
            conn,
            machine.id,
            state.settings.node_id,
            hostname=hello.hostname,
            os=hello.os,
            agent_version=hello.agent_version,
        )
        # Without the hello's version and hostname (a key in the upgrade header) the row
        # waits for the agent's first status, outside this transaction.
        audited = bool(hello.agent_version or hello.hostname)
        if audited:
            await state.audit.record_in(conn, _connected_event(machine, row.prefix, hello, source))
    return AgentPeerSeed(machine=machine, key_id=row.id, key_prefix=row.prefix, audited=audited)


def _connected_event(
    machine: machines.Machine, actor: str | None, hello: Hello, source: str
) -> Event:
    return Event(
        AuditType.AGENT_CONNECTED,
        tenant_id=machine.tenant_id,
        machine_id=machine.id,
        actor=actor or "support_code",
        source_address=source,
        detail={"agent_version": hello.agent_version, "hostname": hello.hostname},
    )


async def _by_code(state: AppState, code: str, hello: Hello, source: str) -> AgentPeerSeed:
    # Every attempt counts, and counting is the check: parallel guesses cannot all slip
    # through between a check and a count.
    try:
        allowed = await state.rate_limits.hit(
            rate(state.settings.support_code_rate_limit), "support_code", source
        )
    except LimiterUnavailable:
        allowed = False  # redemption is an authentication: refuse rather than run unguarded
    if not allowed:
        raise Refused(CloseCode.RATE_LIMITED, "too many support code attempts", "code_rate_limited")
    code_hash = secrets_format.support_code_digest(code)
    async with state.engine.begin() as conn:
        redeemed = await support_codes.consume(conn, code_hash) if code_hash else None
        if redeemed is not None:
            machine = await machines.create(
                conn,
                tenant_id=redeemed.tenant_id,
                name=hello.hostname or "support session",
                ad_hoc=True,
            )
            await machines.update_status(
                conn,
                machine.id,
                hostname=hello.hostname,
                os=hello.os,
                agent_version=hello.agent_version,
            )
            await machines.set_online(conn, machine.id, True, state.settings.node_id)
            session = await sessions.create(
                conn,
                tenant_id=redeemed.tenant_id,
                machine_id=machine.id,
                technician_id=redeemed.created_by,
                kind="support_code",
                scope="control",
                node_id=state.settings.node_id,
            )
            await support_codes.attach(
                conn, redeemed.id, machine_id=machine.id, session_id=session.id
            )
            technician = (
                await users.get(conn, redeemed.tenant_id, redeemed.created_by)
                if redeemed.created_by
                else None
            )
    if redeemed is None:
        raise Refused(
            CloseCode.UNAUTHORIZED, "support code invalid, used or expired", "bad_support_code"
        )
    await state.audit.record(
        Event(
            "support_code.redeemed",
            tenant_id=redeemed.tenant_id,
            machine_id=machine.id,
            session_id=session.id,
            source_address=source,
            detail={"code_id": str(redeemed.id), "hostname": hello.hostname},
        )
    )
    state.hub.console.publish(
        console_events.code_redeemed(
            redeemed.tenant_id,
            redeemed.id,
            machine_id=machine.id,
            session_id=session.id,
            created_by=redeemed.created_by,
        )
    )
    name = (technician.display_name or technician.username) if technician else "technician"
    return AgentPeerSeed(machine=machine, session=session, technician=name)


@dataclass
class AgentPeerSeed:
    machine: machines.Machine
    key_id: uuid.UUID | None = None
    key_prefix: str | None = None
    session: sessions.Session | None = None
    technician: str = ""
    #: The connect's audit event was written with the rest of it.
    audited: bool = False


async def _authenticate(ws: WebSocket, state: AppState) -> tuple[AgentPeerSeed, Hello]:
    if ws.url.query:
        raise Refused(
            CloseCode.UNAUTHORIZED, "credentials are not accepted in the URL", "credential_in_url"
        )
    hello = await _hello(ws, state)
    credential = hello.credential
    if not credential:
        raise Refused(CloseCode.UNAUTHORIZED, "missing agent credential", "missing_credential")
    if hello.is_code:
        return await _by_code(state, credential, hello, source_of(ws)), hello
    kind = secrets_format.classify(credential)
    if kind in WRONG_PLANE and kind is not CredentialKind.AGENT_KEY:
        audit_reason, why = WRONG_PLANE[kind]
        raise Refused(CloseCode.UNAUTHORIZED, why, f"{audit_reason}_on_agent_plane")
    return await _by_key(state, credential, hello, source_of(ws)), hello


async def agent_endpoint(ws: WebSocket) -> None:
    state = app_state(ws)
    source = source_of(ws)
    if not await admit(ws, state, PLANE):
        return
    await ws.accept()
    try:
        seed, hello = await _authenticate(ws, state)
    except Refused as exc:
        await refuse(
            ws, state, plane=PLANE, code=exc.code, why=exc.why, audit_reason=exc.audit_reason
        )
        return
    # The upgrade's headers have been read for the last time (origin, credential): an
    # idle agent need not hold them for as long as it stays connected.
    ws.scope["headers"] = []
    ws.__dict__.pop("_headers", None)
    settings = state.settings
    machine = seed.machine
    agent = AgentPeer(
        peer=Peer(ws, source=source, video_limit=settings.viewer_video_queue),
        machine_id=machine.id,
        tenant_id=machine.tenant_id,
        machine_name=machine.name,
        key_id=seed.key_id,
        support_session_id=seed.session.id if seed.session else None,
        chat=ChatThrottle(
            settings.agent_chat_per_second, max(1, 2 * round(settings.agent_chat_per_second))
        ),
    )
    agent.peer.send(
        encode(
            AuthResult(
                ok=True,
                machine_id=str(machine.id),
                session_id=str(seed.session.id) if seed.session else "",
                heartbeat_interval_s=max(1, round(settings.heartbeat_interval_seconds)),
            )
        )
    )
    hub = state.hub
    await hub.agent_connected(agent)
    if seed.key_id is not None and hub.key_revoked(seed.key_id):
        # Revoked between the check above and registering here: the revocation's sweep
        # of the hub may have run before this socket was in it.
        agent.peer.close(CloseCode.REVOKED, "agent key revoked")
    # A key sent in the upgrade header comes without the hello's version and hostname: they
    # arrive in the first AgentStatus, and the row waits for it (issue 16).
    identified = bool(hello.agent_version or hello.hostname)
    pending_connected: list[Event] = []
    if not seed.audited:
        connected = _connected_event(machine, seed.key_prefix, hello, source)
        if identified:
            await state.audit.record(connected)
        else:
            pending_connected.append(connected)
    if seed.session is not None:
        await hub.start_session(seed.session, technician=seed.technician, consent_required=True)

    async def handle(data: bytes) -> None:
        try:
            kind = inbound_type(Plane.AGENT, data, max_size=settings.agent_max_message_bytes)
            if kind in VIDEO_TYPES:
                if kind == "cursor_shape":  # rare and small: checked; frames are not parsed
                    check_cursor_shape(decode(data).cursor_shape, settings)
                hub.from_agent_video(agent, data)
                await hub.pace(agent)
            else:
                await _control(state, agent, kind, data)
                if pending_connected and kind == "agent_status":
                    status = decode(data).agent_status
                    hub.audit_later(
                        dataclasses.replace(
                            pending_connected.pop(),
                            detail={
                                "agent_version": status.agent_version[:64],
                                "hostname": status.hostname[:255],
                            },
                        )
                    )
        except ProtocolError as exc:
            agent.peer.close(exc.close_code, str(exc))
            hub.audit_later(
                Event(
                    limit_event(exc),
                    tenant_id=agent.tenant_id,
                    machine_id=agent.machine_id,
                    source_address=source,
                    detail={"plane": PLANE, "error": str(exc), "close_code": int(exc.close_code)},
                )
            )

    try:
        await agent.peer.run(handle, heartbeats=hub.heartbeats)
    finally:
        if pending_connected:  # gone before any status: what the machine row knows
            await hub.audit(
                dataclasses.replace(
                    pending_connected.pop(),
                    detail={
                        "agent_version": machine.agent_version or "",
                        "hostname": machine.hostname or "",
                        "status": "none",
                    },
                )
            )
        await _disconnected(state, agent)


async def _control(state: AppState, agent: AgentPeer, kind: str, data: bytes) -> None:
    hub = state.hub
    if kind == "display_list":
        displays = decode(data).display_list.displays
        check_displays(displays, state.settings)
        agent.displays = list(displays)
        hub.to_viewers(agent, data)
    elif kind == "agent_status":
        status = decode(data).agent_status
        check_displays(status.displays, state.settings)
        agent.encoders = list(status.encoders) or agent.encoders
        agent.displays = list(status.displays)
        agent.user_name = status.user_name[:100]
        await _store_status(state, agent, status.hostname, status.os, status.agent_version)
        hub.agent_status_changed(agent)
        first = not agent.agent_version
        agent.agent_version = status.agent_version[:64]
        # Only names a release can carry; anything else means "cannot update itself".
        agent.platform = status.platform if status.platform in PLATFORMS else ""
        agent.arch = status.arch if status.arch in ARCHES else ""
        if first:
            await hub.offer_update(agent)
    elif kind == "update_result":
        await hub.update_result(agent, decode(data).update_result)
    elif kind == "consent_response":
        answer = decode(data).consent_response
        await hub.consent_answer(agent, answer.session_id, answer.granted, answer.reason)
    elif kind == "session_response":
        response = decode(data).session_response
        live = hub.live_session_for_machine(agent.machine_id)
        if not response.accepted and live is not None and str(live.id) == response.session_id:
            # Refused before it started, or ended by the person at the machine later.
            why = "ended_at_machine" if live.active else "agent_refused"
            await hub.end_session(live.id, why)
    elif kind == "chat":
        chat = decode(data).chat
        if not 0 < len(chat.text) <= state.settings.chat_max_chars:
            return
        if agent.chat is not None and not agent.chat.allow():
            dropped = agent.chat.drop()
            if dropped is not None:
                hub.audit_later(
                    Event(
                        "limit.chat_throttled",
                        tenant_id=agent.tenant_id,
                        machine_id=agent.machine_id,
                        source_address=agent.peer.source,
                        detail={"plane": PLANE, "dropped": dropped},
                    )
                )
            return
        hub.chat_from_agent(agent, chat)
    elif kind == "clipboard":
        clip = decode(data).clipboard
        if len(clip.text) <= state.settings.clipboard_max_chars:
            hub.to_viewers(agent, encode(ClipboardText(text=clip.text)), control_only=True)
            live = hub.live_session_for_machine(agent.machine_id)
            if live is not None and live.active:  # audited like chat (issue 16)
                hub.audit_transfer(live, AuditType.CLIPBOARD_SENT, clip.text, agent=agent)
    elif kind == "heartbeat":
        beat = decode(data).heartbeat
        if not beat.reply:
            agent.peer.send(encode(Heartbeat(sent_at_ms=beat.sent_at_ms, reply=True)))
    elif kind == "disconnect":
        agent.leaving = True
        agent.peer.close(CloseCode.NORMAL, "agent left")
    elif kind == "agent_hello":
        agent.peer.close(CloseCode.PROTOCOL_ERROR, "already authenticated")


async def _store_status(
    state: AppState, agent: AgentPeer, hostname: str, os: str, agent_version: str
) -> None:
    """Write what the agent says about its machine, when that changed: an agent may send
    status as often as it likes without a database write each time, and a database that is
    away costs the agent nothing (the next change, or reconnect, writes it)."""
    reported = (hostname, os, agent_version)
    if reported == agent.stored_status:
        return
    try:
        async with state.engine.begin() as conn:
            await machines.update_status(
                conn, agent.machine_id, hostname=hostname, os=os, agent_version=agent_version
            )
    except (SQLAlchemyError, OSError) as exc:
        log.warning(
            "could not store agent status", machine_id=str(agent.machine_id), error=repr(exc)
        )
        return
    agent.stored_status = reported
    console_events.notify_machine_changed(state, agent.tenant_id, agent.machine_id)


async def _disconnected(state: AppState, agent: AgentPeer) -> None:
    hub = state.hub
    replaced = hub.agents.get(agent.machine_id) is not agent
    await hub.agent_disconnected(agent)
    code = agent.peer.close_code or agent.peer.remote_close_code
    if not replaced:
        try:
            async with state.engine.begin() as conn:
                await machines.set_online(conn, agent.machine_id, False)
        except Exception:
            log.exception("could not mark machine offline", machine_id=str(agent.machine_id))
    if code == CloseCode.MESSAGE_TOO_BIG:
        await hub.audit(
            Event(
                "limit.message_too_big",
                tenant_id=agent.tenant_id,
                machine_id=agent.machine_id,
                source_address=agent.peer.source,
                detail={"plane": PLANE, "limit": state.settings.agent_max_message_bytes},
            )
        )
    await hub.audit(
        Event(
            "agent.disconnected",
            tenant_id=agent.tenant_id,
            machine_id=agent.machine_id,
            source_address=agent.peer.source,
            detail={"close_code": code, "reason": agent.peer.close_reason, "replaced": replaced},
        )
    )
