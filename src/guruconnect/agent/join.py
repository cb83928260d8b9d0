"""The one-time support agent: the file the join page serves, named after its code.

Started with no arguments, it reads the support code and the server from its own file name
(``join_target``), asks the person at the machine for consent like any agent, shows the
session bar, and when the session is over (ended by either side, denied, or the code
refused) it stops and deletes its own file: nothing is installed and nothing stays behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from guruconnect.agent.join_target import BadTarget, JoinTarget, parse_join_file_name


def _log() -> Any:
    # structlog is imported only when the agent runs: the CLI starts faster without it.
    import structlog

    return structlog.get_logger(__name__)


#: Exit codes of the join file and ``open-link`` (docs/agent.md): the agent's own 0 and 3,
#: plus 2 for a file name or link that is not accepted and 7 when the person declined.
EXIT_BAD_TARGET = 2
EXIT_DECLINED = 7


def own_file() -> Path:
    """The file this process runs from: the frozen executable, or the launching script."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable)
    return Path(sys.argv[0])


def bound_target(path: Path) -> JoinTarget | None:
    """The code and server bound into ``path``'s name; None if it is not a join file.

    ``BadTarget`` for a name that claims to be a join file and is malformed."""
    return parse_join_file_name(path.name)


def check_display() -> str | int | None:
    """The display to serve, or the exit code after saying (one line) why there is none."""
    from guruconnect.agent import preflight
    from guruconnect.agent.transport import AgentExit

    try:
        return preflight.check_display(None)
    except AgentExit as stop:
        print(f"guruconnect: {stop.message}", file=sys.stderr)
        return stop.exit_code


def run_agent(target: JoinTarget, display: str | None, *, log_level: str = "INFO") -> int:
    """Serve the one support session of ``target``; the agent's exit code. A failure is
    one line on stderr, as for ``guruconnect agent`` (docs/agent.md, exit codes)."""
    from guruconnect.agent.runner import Agent, AgentConfig
    from guruconnect.server.log_setup import configure

    configure(log_level, "auto")
    config = AgentConfig(server=target.server.url, code=target.code, display=display)
    _log().info("joining", server=target.server.url)
    runner = Agent(config)
    try:
        exit_code = asyncio.run(runner.run())
    except KeyboardInterrupt:
        return 0
    if exit_code != 0 and runner.stopped is not None:
        print(f"guruconnect: {runner.stopped.message}", file=sys.stderr)
    return exit_code


def remove_self(path: Path) -> None:
    """Delete ``path``. Linux unlinks a running file; Windows cannot, so there the file is
    marked to be deleted at the next restart (MoveFileEx; never run here, see docs)."""
    try:
        path.unlink()
        _log().info("removed", path=str(path))
        return
    except FileNotFoundError:
        return
    except OSError as exc:
        if os.name != "nt":
            _log().warning("cannot remove this file", path=str(path), error=str(exc))
            return
    import ctypes

    delay_until_reboot = 0x4
    with contextlib.suppress(Exception):
        ctypes.windll.kernel32.MoveFileExW(str(path), None, delay_until_reboot)  # type: ignore[attr-defined]


def main(path: Path) -> int:
    """Run as the join file at ``path``: parse its name, serve, remove it."""
    try:
        target = bound_target(path)
    except BadTarget as exc:
        print(f"guruconnect: this file's name is not valid: {exc}", file=sys.stderr)
        return EXIT_BAD_TARGET
    assert target is not None
    display = check_display()
    if isinstance(display, int):
        return display  # kept: it can be run again from the desktop, the code is unused
    try:
        return run_agent(target, display)
    finally:
        remove_self(path)
