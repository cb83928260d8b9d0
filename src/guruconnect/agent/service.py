"""Installing the agent as a service.

Linux: a systemd unit plus the agent key in a file only the service user can read (the key
never appears on a command line, where ``ps`` would show it). Capturing an X11 screen needs
that display's ``DISPLAY`` and ``XAUTHORITY``, so the unit runs as the desktop user.

Windows (documented in docs/agent.md, not done by this module): the service runs as
LocalSystem so it may call SendSAS, and starts the agent in the console user's session.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from guruconnect.agent.transport import EXIT_REFUSED
from guruconnect.self_exec import frozen

UNIT_NAME = "guruconnect-agent.service"


@dataclass(frozen=True)
class Install:
    server: str
    key: str
    user: str
    display: str = ":0"
    xauthority: str | None = None
    unattended: bool = False
    unit_dir: Path = Path("/etc/systemd/system")
    config_dir: Path = Path("/etc/guruconnect")
    executable: str = sys.executable

    @property
    def key_file(self) -> Path:
        return self.config_dir / "agent.key"

    @property
    def unit_file(self) -> Path:
        return self.unit_dir / UNIT_NAME

    @property
    def built(self) -> bool:
        """The agent is a single built file (it updates itself in place)."""
        return frozen() and self.executable == sys.executable

    def command(self) -> list[str]:
        command = [
            self.executable,
            *(() if self.built else ("-m", "guruconnect")),
            "agent",
            "--server",
            self.server,
            "--key-file",
            str(self.key_file),
        ]
        if self.unattended:
            command.append("--unattended")
        return command

    def unit(self) -> str:
        environment = [f"DISPLAY={self.display}"]
        if self.xauthority:
            environment.append(f"XAUTHORITY={self.xauthority}")
        env_lines = "".join(f"Environment={shlex.quote(e)}\n" for e in environment)
        return (
            "[Unit]\n"
            "Description=GuruConnect agent (remote support)\n"
            "Wants=network-online.target\n"
            "After=network-online.target graphical.target\n"
            "\n"
            "[Service]\n"
            "Type=simple\n"
            f"User={self.user}\n"
            f"{env_lines}"
            f"ExecStart={shlex.join(self.command())}\n"
            "Restart=on-failure\n"
            "RestartSec=5\n"
            # A revoked key or a refused code: restarting cannot help.
            f"RestartPreventExitStatus={EXIT_REFUSED}\n"
            "NoNewPrivileges=yes\n"
            "PrivateTmp=yes\n"
            "ProtectSystem=strict\n"
            f"ReadOnlyPaths={self.config_dir}\n"
            # Self-update writes the new file beside the running one.
            + (f"ReadWritePaths={Path(self.executable).parent}\n" if self.built else "")
            + "\n"
            "[Install]\n"
            "WantedBy=graphical.target\n"
        )


def write(install: Install, *, chown: bool = True) -> list[Path]:
    """Write the key file (0600, owned by the service user) and the unit file (0644)."""
    install.config_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(install.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(install.key + "\n")
    os.chmod(install.key_file, 0o600)  # an existing file keeps its old mode otherwise
    if chown and sys.platform != "win32":
        import pwd

        entry = pwd.getpwnam(install.user)
        os.chown(install.key_file, entry.pw_uid, entry.pw_gid)
    install.unit_dir.mkdir(parents=True, exist_ok=True)
    install.unit_file.write_text(install.unit())
    os.chmod(install.unit_file, 0o644)
    return [install.key_file, install.unit_file]
