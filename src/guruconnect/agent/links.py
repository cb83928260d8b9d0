"""``guruconnect://`` links: ``guruconnect open-link URL`` and registering it as the
handler (``guruconnect install-link-handler``).

Any web page can open a link, so its text is hostile input: it is parsed by
``join_target.parse_link`` (one action, two keys, strict values), never given to a shell
and never turned into command-line options (``open-link`` takes exactly one argument and
hands it to no option parser). A link naming a server other than the one this agent was
installed for (``trusted-server`` files) connects only after the person at the machine
confirms that server in a dialog; closing it, Escape, or no answer is a refusal.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from guruconnect.agent.join import (
    EXIT_BAD_TARGET,
    EXIT_DECLINED,
    check_display,
    own_file,
    run_agent,
)
from guruconnect.agent.join_target import BadTarget, JoinTarget, Server, parse_link, parse_server

CONFIRM_TITLE = "GuruConnect: confirm server"
CONFIRM_TIMEOUT_SECONDS = 60
DESKTOP_FILE = "guruconnect-link.desktop"
MIME_TYPE = "x-scheme-handler/guruconnect"
SYSTEM_TRUST = Path("/etc/guruconnect/trusted-server")


def user_config_dir() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "guruconnect"


def user_trust_file() -> Path:
    return user_config_dir() / "trusted-server"


def trusted_servers(files: Sequence[Path] | None = None) -> set[Server]:
    """The servers this agent was built or installed for: the build's default server and
    one URL per ``trusted-server`` file. A file that cannot be read or parsed trusts
    nothing."""
    from guruconnect.agent import build_info

    found: set[Server] = set()
    built = build_info.load().server
    if built:
        with contextlib.suppress(BadTarget):
            found.add(parse_server(built))
    for path in files if files is not None else (SYSTEM_TRUST, user_trust_file()):
        try:
            found.add(parse_server(path.read_text(encoding="ascii").strip()))
        except (OSError, UnicodeError, BadTarget):
            continue
    return found


def confirm_server(server: Server, trusted: set[Server]) -> bool:
    """Ask the person at the machine whether to connect to ``server``; False unless they
    press Connect. Without a display nobody can be asked, which is a refusal."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        return False
    try:
        import tkinter as tk

        root = tk.Tk()
    except Exception:
        return False
    answer = {"connect": False}
    remaining = [CONFIRM_TIMEOUT_SECONDS]

    def done(connect: bool) -> None:
        answer["connect"] = connect
        root.destroy()

    root.title(CONFIRM_TITLE)
    root.attributes("-topmost", True)
    root.resizable(False, False)
    root.protocol("WM_DELETE_WINDOW", lambda: done(False))
    frame = tk.Frame(root, padx=18, pady=14)
    frame.pack(fill="both", expand=True)
    known = ", ".join(sorted(s.url for s in trusted)) or "none"
    tk.Label(
        frame,
        text=f"A link asks to connect this computer to\n{server.url}",
        font=("DejaVu Sans", 12, "bold"),
        justify="left",
    ).pack(anchor="w")
    tk.Label(
        frame,
        text=(
            f"This is not the server this agent was installed for ({known}). "
            "Connect only if your technician gave you this address."
        ),
        wraplength=420,
        justify="left",
    ).pack(anchor="w", pady=(4, 10))
    countdown = tk.Label(frame, text="")
    countdown.pack(anchor="w")
    buttons = tk.Frame(frame, pady=10)
    buttons.pack(fill="x")
    tk.Button(buttons, text="Connect", underline=0, width=10, command=lambda: done(True)).pack(
        side="left"
    )
    cancel = tk.Button(buttons, text="Cancel", width=10, command=lambda: done(False))
    cancel.pack(side="right")
    root.bind("<Alt-c>", lambda _e: done(True))
    root.bind("<Escape>", lambda _e: done(False))
    cancel.focus_set()

    def tick() -> None:
        if remaining[0] <= 0:
            done(False)
            return
        countdown.configure(text=f"Cancelled automatically in {remaining[0]} s")
        remaining[0] -= 1
        root.after(1000, tick)

    tick()
    root.mainloop()
    return answer["connect"]


def _refuse(message: str, code: int) -> int:
    print(f"guruconnect: {message}", file=sys.stderr)
    return code


def open_link(args: Sequence[str], *, trust_files: Sequence[Path] | None = None) -> int:
    """``guruconnect open-link URL``: the exit code."""
    if len(args) != 1:
        return _refuse("refused link: open-link takes exactly one guruconnect:// link", 2)
    try:
        target: JoinTarget = parse_link(args[0])
    except BadTarget as exc:
        return _refuse(f"refused link: {exc}", EXIT_BAD_TARGET)
    trusted = trusted_servers(trust_files)
    if target.server not in trusted and not confirm_server(target.server, trusted):
        return _refuse(f"not connecting to {target.server.url}: not confirmed", EXIT_DECLINED)
    display = check_display()
    if isinstance(display, int):
        return display
    return run_agent(target, display)


def desktop_entry(executable: Path) -> str:
    # The Exec key quotes the path (it may hold spaces); %u is the link, one argument.
    quoted = '"' + str(executable).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=GuruConnect link\n"
        "Comment=Opens guruconnect:// support links\n"
        f"Exec={quoted} open-link %u\n"
        f"MimeType={MIME_TYPE};\n"
        "NoDisplay=true\n"
        "Terminal=false\n"
    )


def install_link_handler(server: str | None, executable: Path | None = None) -> list[Path]:
    """Write the .desktop file, make it the ``guruconnect://`` handler (xdg-mime), and
    record ``server`` as the one this agent trusts. The paths written."""
    trusted = parse_server(server) if server is not None else None  # refuse before writing
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share")
    apps = data_home / "applications"
    apps.mkdir(parents=True, exist_ok=True)
    entry = apps / DESKTOP_FILE
    entry.write_text(desktop_entry((executable or own_file()).resolve()))
    written = [entry]
    if trusted is not None:
        trust = user_trust_file()
        trust.parent.mkdir(parents=True, exist_ok=True)
        trust.write_text(trusted.url + "\n")
        written.append(trust)
    xdg_mime = shutil.which("xdg-mime")
    if xdg_mime is None:
        raise OSError("xdg-mime not found (Debian: xdg-utils)")
    # Fixed arguments only: nothing from a link or the user reaches this command line.
    subprocess.run([xdg_mime, "default", DESKTOP_FILE, MIME_TYPE], check=True, timeout=30)  # noqa: S603
    return written
