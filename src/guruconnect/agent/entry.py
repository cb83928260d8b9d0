"""Entry points that bypass the option parser: the join file started with no arguments,
and ``open-link`` (whose one argument is a link from a web page and must never be read as
options). ``guruconnect.cli.main`` calls ``special`` before anything else."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from guruconnect.agent import join, links
from guruconnect.agent.join_target import BadTarget


def special(argv: Sequence[str]) -> int | None:
    """The exit code if ``argv`` is one of these entries, else None (the normal CLI)."""
    if len(argv) == 1:
        path = join.own_file()
        if path.name.startswith("guruconnect-join_"):
            return join.main(path)
        return None
    if len(argv) >= 2 and argv[1] == "open-link":
        return links.open_link(argv[2:])
    return None


def install_link_handler(
    server: Annotated[
        str | None,
        typer.Option(help="The server this agent is for: its links connect without asking."),
    ] = None,
    executable: Annotated[
        Path | None, typer.Option(help="The agent file links start (default: this one).")
    ] = None,
) -> None:
    """Register ``guruconnect://`` links (Linux: a .desktop file and xdg-mime)."""
    try:
        written = links.install_link_handler(server, executable)
    except BadTarget as exc:
        print(f"guruconnect: --server: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"guruconnect: cannot register the link handler: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f"guruconnect:// links now open with {links.DESKTOP_FILE}")
