"""The agent's side of its desktop windows: a child process running ``desktop_ui``.

Consent, the session indicator and chat all go through here. When the windows cannot be
shown (no display, Tk missing, the child died) nobody can be asked, and a consent request
is denied: an attended machine is never taken over because its dialog failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from guruconnect.self_exec import module_command

log = structlog.get_logger(__name__)

START_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class LocalEvent:
    """Something the person at the machine did: ended the session or wrote in the chat."""

    kind: str  # "end" | "chat" | "clipboard"
    session_id: str = ""
    text: str = ""


class Desktop:
    def __init__(self, display_name: str | None = None) -> None:
        self._display_name = display_name
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._consents: dict[str, asyncio.Future[tuple[bool, str]]] = {}
        self.events: asyncio.Queue[LocalEvent] = asyncio.Queue()
        #: Set when the person chose Exit in the tray menu.
        self.exit_requested = asyncio.Event()
        self.available = False

    async def start(self) -> bool:
        env: Mapping[str, str] = dict(os.environ)
        if self._display_name:
            env = {**env, "DISPLAY": self._display_name}
        if sys.platform.startswith("linux") and not env.get("DISPLAY"):
            log.warning("no DISPLAY: consent cannot be asked, attended sessions are denied")
            return False
        try:
            self._process = await asyncio.create_subprocess_exec(
                *module_command("guruconnect.agent.desktop_ui"),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
            )
            assert self._process.stdout is not None
            async with asyncio.timeout(START_TIMEOUT):
                first = json.loads(await self._process.stdout.readline() or b"{}")
        except (OSError, TimeoutError, ValueError) as exc:
            log.warning("desktop windows unavailable", error=str(exc))
            await self.close()
            return False
        if first.get("event") != "ready":
            log.warning("desktop windows unavailable", error=first.get("message", "no answer"))
            await self.close()
            return False
        self.available = True
        self._reader = asyncio.create_task(self._read(), name="desktop-ui")
        return True

    async def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        try:
            async for line in self._process.stdout:
                try:
                    event: dict[str, Any] = json.loads(line)
                except ValueError:
                    continue
                self._dispatch(event)
        finally:
            self.available = False
            for future in self._consents.values():
                if not future.done():
                    future.set_result((False, "the consent dialog could not be shown"))

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "consent":
            future = self._consents.pop(str(event.get("id")), None)
            if future is not None and not future.done():
                future.set_result((bool(event.get("granted")), str(event.get("reason", ""))))
        elif kind == "end":
            self.events.put_nowait(LocalEvent("end", session_id=str(event.get("id", ""))))
        elif kind in ("chat", "clipboard"):
            self.events.put_nowait(LocalEvent(kind, text=str(event.get("text", ""))))
        elif kind == "exit":
            log.info("exit chosen in the tray menu")
            self.exit_requested.set()
        elif kind == "tray_error":
            log.warning("no tray icon", error=str(event.get("message", "")))

    def _send(self, command: dict[str, Any]) -> bool:
        process = self._process
        if not self.available or process is None or process.stdin is None:
            return False
        try:
            process.stdin.write((json.dumps(command) + "\n").encode())
        except (OSError, RuntimeError):
            return False
        return True

    async def ask_consent(
        self, session_id: str, technician: str, scope: str, timeout: float
    ) -> tuple[bool, str]:
        """Ask the person at the machine; (granted, reason). Never waits past ``timeout``."""
        future: asyncio.Future[tuple[bool, str]] = asyncio.get_running_loop().create_future()
        self._consents[session_id] = future
        command = {
            "op": "consent",
            "id": session_id,
            "technician": technician,
            "scope": scope,
            "timeout": max(1, int(timeout)),
        }
        if not self._send(command):
            self._consents.pop(session_id, None)
            return False, "nobody can be asked at this machine (no desktop)"
        try:
            async with asyncio.timeout(timeout + 2):
                return await future
        except TimeoutError:
            return False, "no answer before the timeout"
        finally:
            self._consents.pop(session_id, None)

    def cancel_consent(self, session_id: str) -> None:
        future = self._consents.pop(session_id, None)
        if future is not None and not future.done():
            future.set_result((False, "the request ended"))
        self._send({"op": "consent_cancel", "id": session_id})

    def session_started(self, session_id: str, technician: str, scope: str) -> None:
        self._send({"op": "session", "id": session_id, "technician": technician, "scope": scope})

    def session_ended(self, session_id: str, reason: str) -> None:
        self._send({"op": "session_end", "id": session_id, "reason": reason})

    def start_tray(self, *, allow_exit: bool) -> None:
        """Show the tray icon (``tray_ui``); Exit is in its menu only if ``allow_exit``."""
        self._send({"op": "tray", "allow_exit": allow_exit})

    def status(self, *, connected: bool, server: str) -> None:
        self._send({"op": "status", "connected": connected, "server": server})

    def chat(self, sender: str, text: str) -> None:
        self._send({"op": "chat", "sender": sender, "text": text})

    def set_clipboard(self, text: str) -> None:
        self._send({"op": "clipboard", "text": text})

    async def close(self) -> None:
        self.available = False
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    process.stdin.close()
            try:
                async with asyncio.timeout(3):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
