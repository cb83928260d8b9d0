"""The agent's main loop: connect, say what this machine is, serve sessions, come back.

One connection at a time. While connected, one task reads from the relay (input, session
requests, chat, heartbeats) and, per active session, a ``Streamer`` sends the picture.
Input is injected only for a session the local user (or the unattended policy) allowed and
whose scope is control: the relay enforces that too, the agent does not rely on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import platform
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from ssl import SSLContext
from typing import Any
from urllib.parse import urlsplit

import structlog
from websockets.exceptions import InvalidHandshake

from guruconnect.agent import consent
from guruconnect.agent.capture import Capturer, DisplayInfo, open_capturer
from guruconnect.agent.capture.cursor import CursorSource, open_cursor
from guruconnect.agent.desktop import Desktop, LocalEvent
from guruconnect.agent.encode import h264
from guruconnect.agent.inject import InjectError, Injector, open_injector
from guruconnect.agent.preflight import first_connect_error
from guruconnect.agent.stream import CaptureWorker, Streamer
from guruconnect.agent.tls import untrusted_certificate
from guruconnect.agent.transport import EXIT_OK, EXIT_REFUSED, AgentExit, Backoff, fatal_refusal
from guruconnect.agent.updater import Updater
from guruconnect.client import AgentClient, ClientError, Refused
from guruconnect.protocol import (
    AgentStatus,
    ChatMessage,
    ClipboardText,
    Codec,
    ConsentPolicy,
    ConsentResponse,
    Disconnect,
    DisplayList,
    Envelope,
    ProtocolError,
    Scope,
    SessionRequest,
    SessionResponse,
    SessionState,
    UpdateAvailable,
    UpdateResult,
    payload,
)
from guruconnect.protocol import keys as keytable
from guruconnect.releases.decision import Ignore, Reason, Refuse
from guruconnect.version import build_info

log = structlog.get_logger(__name__)

#: Capture errors in a row after which a session ends (one a second is retried).
MAX_CAPTURE_FAILURES = 5
#: How long a session paused by a lost connection waits to be offered again after it.
RESUME_WAIT_SECONDS = 5.0
#: Heartbeat periods of silence after which the relay is taken for gone.
SILENT_PERIODS = 3
DEFAULT_HEARTBEAT_SECONDS = 15
#: A connection that lasted this long resets the backoff: the next loss starts at 1 s.
STABLE_SECONDS = 30.0


@dataclass
class AgentConfig:
    server: str
    key: str | None = None
    code: str | None = None
    display: str | None = None
    fps: float = 30.0
    keyframe_interval: float = 10.0
    unattended: bool = False
    hostname: str = field(default_factory=socket.gethostname)
    reconnect_cap: float = 60.0
    desktop_ui: bool = True
    #: H.264 encoders to probe, best first (None: hardware, then software; empty: none).
    h264_encoders: tuple[str, ...] | None = None
    max_rate_kbps: int = 8000
    #: TLS for ``wss://`` relays (see agent/tls.py); None: the system's CA store.
    tls: SSLContext | None = None
    #: Installs signed releases the relay offers (None: this agent never updates itself).
    updater: Updater | None = None
    #: Show a tray icon (state, chat, end session; exit unless unattended).
    tray: bool = False


@dataclass
class ActiveSession:
    id: str
    technician: str
    scope: int
    codec: int = Codec.CODEC_RAW_ZSTD
    allowed: bool = False
    controller: str = ""
    streamer: Streamer | None = None
    task: asyncio.Task[None] | None = None
    asking: asyncio.Task[None] | None = None

    @property
    def scope_name(self) -> str:
        return "control" if self.scope == Scope.SCOPE_CONTROL else "view"


def _user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return ""


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        capturer: Callable[[], Capturer] | None = None,
        cursor: Callable[[], CursorSource] | None = None,
        injector: Callable[[], Injector] | None = None,
    ) -> None:
        if (config.key is None) == (config.code is None):
            raise ValueError("give exactly one of an agent key or a support code")
        self.config = config
        self.worker = CaptureWorker(
            capturer or (lambda: open_capturer(config.display)),
            cursor or (lambda: open_cursor(config.display)),
        )
        self._open_injector = injector or (lambda: open_injector(config.display))
        self._injector: Injector | None = None
        self.desktop = Desktop(config.display)
        self.backoff = Backoff(cap=config.reconnect_cap)
        self.session: ActiveSession | None = None
        #: Sessions the local user allowed; survives reconnects of this process, so a
        #: resumed session is not asked again.
        self._allowed: set[str] = set()
        self._conn: AgentClient | None = None
        self._displays: list[DisplayInfo] = []
        self._background: set[asyncio.Task[None]] = set()
        self._updating = False
        self._watchdog: asyncio.Task[None] | None = None
        self.connections = 0
        #: Why ``run`` returned, once it has.
        self.stopped: AgentExit | None = None
        #: The H.264 encoder that opened here, if any (probed once at start).
        self.h264: str | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> int:
        """Serve until a refusal no retry can fix, or a support-code session is over."""
        if self.config.desktop_ui and await self.desktop.start() and self.config.tray:
            # Whoever runs an unattended machine for the technician decides when it stops,
            # not the person at it (who can still end any session).
            self.desktop.start_tray(allow_exit=not self.config.unattended)
        order = self.config.h264_encoders
        found = await asyncio.to_thread(h264.probe, *(() if order is None else (order,)))
        self.h264 = found[0] if found else None
        log.info("video encoders", h264=self.h264 or "none", probed=found)
        self._watchdog = self._start_probation()
        try:
            while True:
                try:
                    await self._until_exit(self._connect_and_serve())
                except AgentExit as stop:
                    # A failure is for the person who runs the agent: the CLI prints it
                    # as its one line (docs/agent.md, exit codes).
                    self.stopped = stop
                    if stop.exit_code == EXIT_OK:
                        log.info(stop.message)
                    return stop.exit_code
                delay = self.backoff.next()
                log.info("reconnecting", in_seconds=round(delay, 1))
                await self._until_exit(asyncio.sleep(delay))
        finally:
            await self._end_session("the agent is stopping")
            await self.desktop.close()
            if self._injector is not None:
                self._injector.close()
            self.worker.close()

    async def _until_exit(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` unless Exit is chosen in the tray menu first (AgentExit then)."""
        task = asyncio.create_task(work)
        chosen = asyncio.create_task(self.desktop.exit_requested.wait())
        try:
            await asyncio.wait({task, chosen}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            chosen.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.desktop.exit_requested.is_set():
            raise AgentExit("stopped from the tray menu", EXIT_OK)
        task.result()

    async def _connect_and_serve(self) -> None:
        config = self.config
        try:
            conn = await AgentClient.connect(
                config.server,
                key=config.key,
                code=config.code,
                hostname=config.hostname,
                os=_os_name(),
                agent_version=build_info().full_version,
                ssl=config.tls,
            )
        except Refused as refused:
            stop = fatal_refusal(refused, support_code=config.code is not None)
            if stop is None and self.connections == 0:
                stop = first_connect_error(config.server, refused)
            if stop is not None:
                raise stop from None
            log.warning("relay refused the connection", code=refused.code, reason=refused.reason)
            return
        except (ClientError, OSError, TimeoutError, InvalidHandshake) as exc:
            # An untrusted certificate is never a relay in trouble: it ends the agent at any
            # time. Before the first connection, other answers that can only mean a wrong URL
            # end it too; later, the same is a relay in trouble and is retried.
            # A self-updated version on probation never ends itself: the watchdog puts the
            # previous file back if it cannot get online.
            stop = None if self._on_probation() else untrusted_certificate(exc)
            if stop is None and self.connections == 0 and not self._on_probation():
                stop = first_connect_error(config.server, exc)
            if stop is not None:
                raise stop from None
            log.warning("cannot reach the relay", error=str(exc))
            return
        self._conn = conn
        self.connections += 1
        log.info("connected", machine_id=conn.auth.machine_id)
        self.desktop.status(connected=True, server=_host_port(config.server))
        await self._report_update(conn)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await self._serve(conn)
        except asyncio.CancelledError:
            # The agent is stopping (Ctrl+C, service stop, tray Exit): say so, so the relay
            # ends the session at once instead of waiting for a reconnect that never comes.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.send(Disconnect(reason="the agent is stopping")), 1)
            raise
        except Refused as refused:
            log.warning("connection closed", code=refused.code, reason=refused.reason)
            stop = fatal_refusal(refused, support_code=config.code is not None)
            if stop is not None:
                raise stop from None
        except (ClientError, OSError) as exc:
            log.warning("connection lost", error=str(exc))
        finally:
            self._conn = None
            self.desktop.status(connected=False, server=_host_port(config.server))
            await self._pause_session()
            with contextlib.suppress(Exception):
                await conn.close()
            if loop.time() - started >= STABLE_SECONDS:
                self.backoff.reset()
        if config.code is not None:
            # A support code works once: there is nothing to come back to.
            raise AgentExit("the support session is over", EXIT_OK)

    async def _serve(self, conn: AgentClient) -> None:
        # The relay sends a heartbeat every interval; a relay silent for three of them is
        # gone (a dead link does not always close the socket) and the agent reconnects.
        interval = conn.auth.heartbeat_interval_s or DEFAULT_HEARTBEAT_SECONDS
        silence = SILENT_PERIODS * interval
        displays = self._displays = await self.worker.displays()
        await conn.send(self._status(displays))
        await conn.send(DisplayList(displays=[d.message() for d in displays]))
        log.info("online", server=self.config.server)
        local = asyncio.create_task(self._local_events(conn), name="local-events")
        paused = self.session
        if paused is not None and paused.task is None:
            # The relay offers a session it still holds again as soon as the agent is back;
            # one it ended meanwhile (grace over, ended from the dashboard) never comes.
            asyncio.get_running_loop().call_later(
                RESUME_WAIT_SECONDS, lambda: self._forget_if_not_resumed(paused)
            )
        try:
            while True:
                try:
                    envelope = await conn.recv(idle=silence)
                except TimeoutError:
                    raise ClientError(f"the relay has been silent for {silence:.0f} s") from None
                except ProtocolError as exc:
                    raise ClientError(f"the relay sent something unreadable: {exc}") from None
                await self._dispatch(conn, envelope)
        finally:
            local.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await local

    def _forget_if_not_resumed(self, session: ActiveSession) -> None:
        if self.session is session and session.task is None:
            task = asyncio.create_task(
                self._end_session("the session ended while the connection was down")
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    # -- self-update ---------------------------------------------------------------------

    def _on_probation(self) -> bool:
        updater = self.config.updater
        return updater is not None and updater.probation() is not None

    def _start_probation(self) -> asyncio.Task[None] | None:
        """A freshly updated agent that is not online by the deadline rolls back."""
        updater = self.config.updater
        state = updater.probation() if updater else None
        if updater is None or state is None:
            return None
        deadline = state.get("deadline")
        remaining = float(deadline) - time.time() if isinstance(deadline, int | float) else 0.0

        async def watch() -> None:
            await asyncio.sleep(max(0.0, remaining))
            if updater.probation() is not None:
                updater.rollback(f"not online within {updater.probation_seconds:.0f} s")
                assert updater.executable is not None
                updater.restart(updater.executable)

        log.info("new version on probation", seconds=round(max(0.0, remaining), 1))
        return asyncio.create_task(watch(), name="update-probation")

    async def _report_update(self, conn: AgentClient) -> None:
        updater = self.config.updater
        if updater is None:
            return
        for result in (updater.confirm(), updater.rolled_back_report()):
            if result is not None:
                if self._watchdog is not None and result.outcome == UpdateResult.OUTCOME_INSTALLED:
                    self._watchdog.cancel()
                await conn.send(result)

    async def _update(self, conn: AgentClient, offer: UpdateAvailable) -> None:
        updater = self.config.updater
        if updater is None or self._updating:
            return
        decision = updater.judge(offer)
        claimed = _claimed_version(offer.manifest)
        if isinstance(decision, Ignore):
            return
        if isinstance(decision, Refuse):
            await conn.send(updater.refused(decision, claimed))
            return
        manifest = decision.manifest
        if updater.executable is None:
            log.info("a newer release exists; update this agent with its package", version=claimed)
            return
        if updater.is_rolled_back_version(manifest.version):
            log.info("update skipped: this version was rolled back", version=manifest.version)
            return
        self._updating = True
        try:
            log.info("downloading update", version=manifest.version)
            result = await asyncio.to_thread(updater.download, manifest)
            if isinstance(result, Refuse):
                await conn.send(updater.refused(result, manifest.version))
                return
            if self.session is not None:  # never restart under a technician's session
                result.unlink(missing_ok=True)
                log.info("update deferred: a session is open", version=manifest.version)
                return
            try:
                await asyncio.to_thread(updater.swap, result, manifest)
            except OSError as exc:  # e.g. a read-only install directory
                result.unlink(missing_ok=True)
                refusal = Refuse(
                    Reason.CANNOT_INSTALL, f"cannot replace {updater.executable}: {exc}"
                )
                await conn.send(updater.refused(refusal, manifest.version))
                return
            await conn.send(
                UpdateResult(outcome=UpdateResult.OUTCOME_INSTALLING, version=manifest.version)
            )
            log.info("update installed; restarting", version=manifest.version)
            with contextlib.suppress(Exception):
                await conn.close()
            updater.restart(updater.executable)
        finally:
            self._updating = False

    def _status(self, displays: list[DisplayInfo]) -> AgentStatus:
        policy = (
            ConsentPolicy.CONSENT_POLICY_UNATTENDED
            if self.config.unattended
            else ConsentPolicy.CONSENT_POLICY_ASK
        )
        return AgentStatus(
            hostname=self.config.hostname,
            os=_os_name(),
            agent_version=build_info().full_version,
            displays=[d.message() for d in displays],
            encoders=[Codec.CODEC_H264, Codec.CODEC_RAW_ZSTD]
            if self.h264
            else [Codec.CODEC_RAW_ZSTD],
            consent_policy=policy,
            user_name=_user_name(),
            platform=self.config.updater.platform if self.config.updater else "",
            arch=self.config.updater.arch if self.config.updater else "",
        )

    # -- messages from the relay ----------------------------------------------------------

    async def _dispatch(self, conn: AgentClient, envelope: Envelope) -> None:
        kind, message = payload(envelope)
        session = self.session
        if kind == "session_request":
            await self._session_request(conn, envelope.session_request)
        elif kind == "consent_request":
            request = envelope.consent_request
            if session is not None and session.id == request.session_id and not session.allowed:
                session.asking = asyncio.create_task(
                    self._ask(conn, session, float(request.timeout_s), answer_relay=True)
                )
        elif kind == "session_state":
            await self._session_state(envelope.session_state)
        elif kind == "keyframe_request":
            if session is not None and session.streamer is not None:
                dropped = envelope.keyframe_request.dropped_frames
                session.streamer.request_keyframe(dropped_frames=dropped)
        elif kind == "display_switch":
            if session is not None and session.streamer is not None and session.allowed:
                switch = envelope.display_switch
                session.streamer.switch(0 if switch.all else switch.display_id)
        elif kind in ("key_event", "mouse_event", "special_key"):
            self._input(kind, envelope)
        elif kind == "chat":
            if session is not None and session.allowed:
                self.desktop.chat(envelope.chat.sender, envelope.chat.text)
        elif kind == "clipboard":
            if session is not None and session.allowed and self._controls(session):
                self.desktop.set_clipboard(envelope.clipboard.text)
        elif kind == "update_available":
            task = asyncio.create_task(self._update(conn, envelope.update_available))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        elif kind == "disconnect":
            log.info("relay says goodbye", reason=envelope.disconnect.reason)
        else:
            log.debug("ignored", kind=kind, message=type(message).__name__)

    async def _session_request(self, conn: AgentClient, request: SessionRequest) -> None:
        session_id = request.session_id
        current = self.session
        if current is not None and current.id == session_id:
            # The same session again: a codec renegotiation, or the offer after a reconnect.
            current.codec = request.codecs[0] if request.codecs else Codec.CODEC_RAW_ZSTD
            if current.streamer is not None:
                current.streamer.set_codec(current.codec)
            if current.allowed and current.task is None:
                await self._start(conn, current)
            return
        if current is not None:
            await self._end_session("replaced by a new session")
        session = ActiveSession(
            id=session_id,
            technician=request.technician,
            scope=request.scope,
            codec=request.codecs[0] if request.codecs else Codec.CODEC_RAW_ZSTD,
        )
        self.session = session
        server_requires = request.consent_required
        if session_id in self._allowed:
            session.allowed = True  # this process already asked (a resumed session)
        elif server_requires:
            return  # the ConsentRequest that follows starts the dialog
        elif consent.must_ask(server_requires=False, agent_unattended=self.config.unattended):
            session.asking = asyncio.create_task(
                self._ask(conn, session, consent.LOCAL_TIMEOUT_SECONDS, answer_relay=False)
            )
            return
        else:
            session.allowed = True
            self._allowed.add(session_id)
        await self._start(conn, session)

    async def _ask(
        self, conn: AgentClient, session: ActiveSession, timeout: float, *, answer_relay: bool
    ) -> None:
        granted, reason = await self.desktop.ask_consent(
            session.id, session.technician, session.scope_name, timeout
        )
        log.info("consent", session_id=session.id, granted=granted, reason=reason)
        if self.session is not session:
            return
        with contextlib.suppress(ClientError):
            if answer_relay:
                await conn.send(
                    ConsentResponse(session_id=session.id, granted=granted, reason=reason)
                )
            if granted:
                session.allowed = True
                self._allowed.add(session.id)
                await self._start(conn, session)
            elif not answer_relay:
                await conn.send(
                    SessionResponse(session_id=session.id, accepted=False, reason=reason)
                )
        if not granted:
            self.session = None

    async def _start(self, conn: AgentClient, session: ActiveSession) -> None:
        streamer = session.streamer or Streamer(
            self.worker,
            conn.send_raw,
            session.id,
            fps=self.config.fps,
            keyframe_interval=self.config.keyframe_interval,
            codec=session.codec,
            h264_encoder=self.h264,
            max_rate_kbps=self.config.max_rate_kbps,
        )
        streamer.send = conn.send_raw
        codec = Codec.CODEC_H264 if streamer.codec == Codec.CODEC_H264 else Codec.CODEC_RAW_ZSTD
        await conn.send(SessionResponse(session_id=session.id, accepted=True, codec=codec))
        session.streamer = streamer
        session.task = asyncio.create_task(self._stream(conn, streamer), name="stream")
        self.desktop.session_started(session.id, session.technician, session.scope_name)
        self._prepare_input(session)
        log.info("session started", session_id=session.id, scope=session.scope_name)

    async def _stream(self, conn: AgentClient, streamer: Streamer) -> None:
        """Stream; a capture that keeps failing (the display went away, the screen is
        locked by a secure desktop) ends the session with a reason instead of a frozen
        picture."""
        failures = 0
        while True:
            try:
                await streamer.run()
            except (ClientError, asyncio.CancelledError):
                raise
            except Exception as exc:
                failures += 1
                log.exception("streaming failed", session_id=streamer.session_id)
                if failures >= MAX_CAPTURE_FAILURES:
                    with contextlib.suppress(ClientError):
                        await conn.send(
                            SessionResponse(
                                session_id=streamer.session_id,
                                accepted=False,
                                reason=f"the screen cannot be captured: {exc}"[:200],
                            )
                        )
                    return
                await asyncio.sleep(1.0)

    async def _session_state(self, state: SessionState) -> None:
        session = self.session
        if state.state == SessionState.STATE_ENDED and self.config.code is not None:
            # A support-code agent has one session; once it ends (also one this agent no
            # longer holds: a denied consent forgets it) there is nothing left to serve.
            await self._end_session(state.reason or "ended")
            raise AgentExit("the support session is over", EXIT_OK)
        if session is None or session.id != state.session_id:
            return
        if state.state == SessionState.STATE_ENDED:
            await self._end_session(state.reason or "ended")
        elif state.controller != session.controller:
            # Whoever held control let go (or left): nothing they pressed stays pressed.
            session.controller = state.controller
            self._release_input()

    async def _pause_session(self) -> None:
        """The connection dropped: stop sending, let go of input, keep the session (the
        relay holds it for a grace period and offers it again when we are back)."""
        session = self.session
        if session is None:
            return
        if session.asking is not None:
            session.asking.cancel()
            self.desktop.cancel_consent(session.id)
            self.session = None
        await _cancel(session.task)
        session.task = None
        self._release_input()

    async def _end_session(self, reason: str) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        if session.asking is not None:
            session.asking.cancel()
            self.desktop.cancel_consent(session.id)
        await _cancel(session.task)
        self._allowed.discard(session.id)
        self._release_input()
        self.desktop.session_ended(session.id, reason)
        log.info("session ended", session_id=session.id, reason=reason)

    # -- input ----------------------------------------------------------------------------

    def _controls(self, session: ActiveSession) -> bool:
        return session.scope == Scope.SCOPE_CONTROL

    def injector(self) -> Injector:
        if self._injector is None:
            self._injector = self._open_injector()
        return self._injector

    def _prepare_input(self, session: ActiveSession) -> None:
        """Open the injector when a control session starts, so the first key press does
        not wait for a new X connection (and its keyboard map) to be set up. A failure
        here is not the session's: ``_input`` tries again, and reports, when input comes."""
        if not self._controls(session):
            return
        try:
            self.injector()
        except Exception as exc:  # the session goes on; the first input reports it again
            log.warning("input injection unavailable", error=str(exc))

    def _release_input(self) -> None:
        if self._injector is not None:
            with contextlib.suppress(Exception):
                self._injector.release_all()

    def _input(self, kind: str, envelope: Envelope) -> None:
        session = self.session
        if session is None or not session.allowed or not self._controls(session):
            return
        try:
            injector = self.injector()
            if kind == "key_event":
                event = envelope.key_event
                if event.text:
                    injector.text(event.text[:1024])
                    return
                key = keytable.lookup(event.scan_code, event.extended)
                if key is not None:
                    injector.key(key, event.down)
            elif kind == "special_key":
                injector.special(envelope.special_key.key)
            else:
                self._mouse(injector, session, envelope)
        except (InjectError, KeyError, ValueError) as exc:
            log.warning("input not injected", kind=kind, error=str(exc))

    def _mouse(self, injector: Injector, session: ActiveSession, envelope: Envelope) -> None:
        event = envelope.mouse_event
        streamer = session.streamer
        display = streamer.display if streamer is not None else None
        if display is None:  # no frame captured yet: the display the stream will show
            wanted = streamer.display_id if streamer is not None else 1
            display = next((d for d in self._displays if d.id == wanted), None)
        if display is None:
            return
        if event.display_id not in (0, display.id):
            return  # aimed at a display this session is not showing
        x = min(max(event.x, 0), display.width - 1) + display.x
        y = min(max(event.y, 0), display.height - 1) + display.y
        injector.move(x, y)
        if event.button:
            injector.button(event.button, event.down)
        if event.wheel_x or event.wheel_y:
            injector.wheel(event.wheel_x, event.wheel_y)

    # -- the person at the machine --------------------------------------------------------

    async def _local_events(self, conn: AgentClient) -> None:
        while True:
            event: LocalEvent = await self.desktop.events.get()
            session = self.session
            if session is None or not session.allowed:
                continue
            if event.kind == "end" and event.session_id == session.id:
                await conn.send(
                    SessionResponse(
                        session_id=session.id, accepted=False, reason="ended by the local user"
                    )
                )
                await self._end_session("ended by the local user")
                if self.config.code is not None:
                    # Closing ends _serve's read; a code agent then stops (one session only).
                    await conn.close()
                    return
            elif event.kind == "chat":
                await conn.send(ChatMessage(session_id=session.id, text=event.text[:4096]))
            elif event.kind == "clipboard":
                await conn.send(ClipboardText(text=event.text))


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def _claimed_version(manifest: bytes) -> str:
    """The version an offer claims, for the log and the audit only (maybe unsigned)."""
    try:
        version = json.loads(manifest).get("version", "")
    except (ValueError, AttributeError):
        return ""
    return version[:64] if isinstance(version, str) else ""


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    default = 443 if parts.scheme in ("https", "wss") else 80
    return f"{parts.hostname or url}:{parts.port or default}"


def _os_name() -> str:
    return f"{platform.system()} {platform.release()}".strip()


__all__ = ["EXIT_OK", "EXIT_REFUSED", "Agent", "AgentConfig"]
