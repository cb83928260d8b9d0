"""The agent's checks of its own command line and environment, and what a failed first
connection means.

Each mistake a person can make ends the agent with one line saying what is wrong and what
to do, and an exit code from the table in docs/agent.md, before the agent connects:

====  =====================================================================================
code  meaning
====  =====================================================================================
0     a support session ended, or the agent was stopped
1     an unexpected internal error (a bug: please report it with the log)
2     the command line: a bad ``--server`` URL, no or two credentials, an unreadable key
3     the relay refused the key or code for good (``transport.EXIT_REFUSED``)
4     no X display, or the display cannot be opened
5     the server is not a GuruConnect server (wrong URL or port, another service there)
6     TLS failed (certificate not trusted, wrong host name, not a TLS port)
====  =====================================================================================
"""

from __future__ import annotations

import os
import ssl
import sys
from pathlib import Path
from urllib.parse import urlsplit

from websockets.exceptions import InvalidHandshake, InvalidStatus

from guruconnect.agent.transport import EXIT_REFUSED, AgentExit
from guruconnect.client import Refused

EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_DISPLAY = 4
EXIT_NOT_GURUCONNECT = 5
EXIT_TLS = 6

#: Every documented exit code, for the docs table and its test.
EXIT_CODES = {
    0: "a support session ended, or the agent was stopped",
    EXIT_INTERNAL: "an unexpected internal error",
    EXIT_USAGE: "command line: bad --server URL, missing or extra credentials, unreadable key",
    EXIT_REFUSED: "the relay refused the key or code for good",
    EXIT_DISPLAY: "no X display, or it cannot be opened",
    EXIT_NOT_GURUCONNECT: "the server is not a GuruConnect server",
    EXIT_TLS: "TLS failed",
}

SCHEMES = ("https", "http", "wss", "ws")


def check_server_url(url: str) -> str:
    """The URL as given, if it is one the agent can connect to; AgentExit otherwise."""
    text = url.strip()
    if not text:
        raise AgentExit(
            "--server is empty: give the server's URL, e.g. https://support.example.com", EXIT_USAGE
        )
    if "://" not in text:
        raise AgentExit(
            f"--server {text} has no scheme: use https://{text} "
            f"(or http://{text} for a server without TLS)",
            EXIT_USAGE,
        )
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise AgentExit(
            f"--server {text}: {scheme}:// is not supported; use https:// (or http://)",
            EXIT_USAGE,
        )
    try:
        host, _port = parts.hostname, parts.port
    except ValueError as exc:
        raise AgentExit(f"--server {text}: {exc}; use https://HOST[:PORT]", EXIT_USAGE) from None
    if not host:
        raise AgentExit(f"--server {text} names no host; use https://HOST[:PORT]", EXIT_USAGE)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise AgentExit(
            f"--server {text}: give only https://HOST[:PORT][/PATH], no user, query or fragment",
            EXIT_USAGE,
        )
    return text


def read_key_file(path: Path) -> str:
    """The key in ``path``; AgentExit naming the file and the reason otherwise."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise AgentExit(f"--key-file {path} does not exist: check the path", EXIT_USAGE) from None
    except PermissionError:
        raise AgentExit(
            f"--key-file {path} is not readable by this user: run the agent as the "
            "key's owner, or fix the file's permissions (it should be mode 0600)",
            EXIT_USAGE,
        ) from None
    except IsADirectoryError:
        raise AgentExit(
            f"--key-file {path} is a directory: give the key file", EXIT_USAGE
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise AgentExit(f"--key-file {path} cannot be read: {reason}", EXIT_USAGE) from None
    if not text:
        raise AgentExit(
            f"--key-file {path} is empty: put the agent key (cak_...) in it", EXIT_USAGE
        )
    return text


def needs_x_display() -> bool:
    return sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd"))


def check_display(name: str | None) -> str | None:
    """On X11 systems, the display the agent will serve, opened once to prove it works."""
    if not needs_x_display():
        return name
    display = name or os.environ.get("DISPLAY") or ""
    if not display:
        raise AgentExit(
            "no X display: DISPLAY is not set; pass --display :0 (the desktop to serve) "
            "or run the agent in the desktop's session",
            EXIT_DISPLAY,
        )
    try:
        from Xlib import display as xdisplay
        from Xlib import error as xerror

        handle = xdisplay.Display(display)
    except xerror.DisplayNameError:
        raise AgentExit(
            f"--display {display} is not an X display name (expected something like :0)",
            EXIT_DISPLAY,
        ) from None
    except Exception as exc:  # Xlib raises several kinds; none may become a traceback
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise AgentExit(
            f"cannot open X display {display} ({reason}): check that the desktop is running "
            "and that XAUTHORITY lets this user in",
            EXIT_DISPLAY,
        ) from None
    handle.close()
    return display


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _tls_reason(error: ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return error.verify_message or error.reason or "certificate verify failed"
    return error.reason or str(error)


def first_connect_error(server: str, exc: BaseException) -> AgentExit | None:
    """What a failed *first* connection means, if it can only be a mistake in the setup.

    A refused TCP connection, a timeout or a 5xx are left to the retry loop (a server that
    is down or restarting); a TLS failure, or an answer that shows the other end is not a
    GuruConnect relay, are not going to get better.
    """
    for error in _chain(exc):
        if isinstance(error, ssl.SSLError):
            return AgentExit(
                f"TLS error talking to {server}: {_tls_reason(error)}; check the URL "
                "(https:// on the TLS port) and that this machine trusts the server's "
                "certificate",
                EXIT_TLS,
            )
    for error in _chain(exc):
        if isinstance(error, InvalidStatus):
            status = error.response.status_code
            if 500 <= status < 600 or status in (401, 403, 408, 429):
                return None
            return AgentExit(
                f"{server} is not a GuruConnect server: it answered HTTP {status} "
                "on /ws/agent; check the URL and port",
                EXIT_NOT_GURUCONNECT,
            )
    if isinstance(exc, Refused) and exc.code is not None and exc.code < 600:
        if 500 <= exc.code < 600 or exc.code in (401, 403, 408, 429):
            return None
        return AgentExit(
            f"{server} is not a GuruConnect server: it answered HTTP {exc.code} "
            "on /ws/agent; check the URL and port",
            EXIT_NOT_GURUCONNECT,
        )
    if any(isinstance(error, (EOFError, ConnectionError)) for error in _chain(exc)):
        # Closed before any answer: a relay (or a proxy in front of it) going down or
        # restarting, not proof of another kind of server.
        return None
    for error in _chain(exc):
        if isinstance(error, InvalidHandshake):
            return AgentExit(
                f"{server} is not a GuruConnect server: it does not speak WebSocket "
                f"({' '.join(str(error).split()) or type(error).__name__}); check the URL and port",
                EXIT_NOT_GURUCONNECT,
            )
    return None
