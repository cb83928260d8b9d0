"""Installing the agent as a service: one definition, rendered for systemd or Windows.

A :class:`ServiceDefinition` says what runs (the command line of this same installation,
from ``self_exec.cli_command``: the built file or the venv's interpreter), as whom, with
which environment, and which exit codes a restart cannot fix. ``systemd_unit`` renders it
for Linux; ``windows_sc_commands`` renders the ``sc.exe`` calls that register it with the
Windows Service Control Manager (the installer, packaging/windows/guruconnect.iss, runs the
same calls). The Windows rendering is unit-tested here but has never run on Windows.

Linux: the key lives in a file only the service user can read; it never appears on a
command line, where ``ps`` would show it. Capturing an X11 screen needs that display's
``DISPLAY`` and ``XAUTHORITY``, so the unit runs as the desktop user.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

from guruconnect.agent.transport import EXIT_REFUSED
from guruconnect.self_exec import cli_command

UNIT_NAME = "guruconnect-agent.service"
WINDOWS_SERVICE_NAME = "GuruConnectAgent"
DISPLAY_NAME = "GuruConnect agent"
DESCRIPTION = "GuruConnect agent (remote support)"


@dataclass(frozen=True)
class ServiceDefinition:
    """What a service manager needs to run the agent, independent of the manager."""

    name: str
    display_name: str
    description: str
    command: tuple[str, ...]
    #: The account it runs as (None: the manager's default, LocalSystem on Windows).
    user: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    #: Exit codes after which restarting cannot help (a revoked key).
    no_restart_exit_codes: tuple[int, ...] = (EXIT_REFUSED,)
    restart_seconds: int = 5
    #: Paths the service only reads (systemd makes the rest of the system read-only).
    read_only_paths: tuple[str, ...] = ()


def agent_command(
    server: str, key_file: str, *, unattended: bool, base: Sequence[str] | None = None
) -> tuple[str, ...]:
    """``guruconnect agent --server S --key-file F [--unattended]`` for this installation."""
    command = [*(base if base is not None else cli_command()), "agent"]
    command += ["--server", server, "--key-file", key_file]
    if unattended:
        command.append("--unattended")
    return tuple(command)


def systemd_unit(service: ServiceDefinition) -> str:
    env_lines = "".join(
        f"Environment={shlex.quote(f'{k}={v}')}\n" for k, v in service.environment.items()
    )
    user = f"User={service.user}\n" if service.user else ""
    read_only = "".join(f"ReadOnlyPaths={p}\n" for p in service.read_only_paths)
    no_restart = " ".join(str(code) for code in service.no_restart_exit_codes)
    return (
        "[Unit]\n"
        f"Description={service.description}\n"
        "Wants=network-online.target\n"
        "After=network-online.target graphical.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"{user}"
        f"{env_lines}"
        f"ExecStart={shlex.join(service.command)}\n"
        "Restart=on-failure\n"
        f"RestartSec={service.restart_seconds}\n"
        # A revoked key or a refused code: restarting cannot help.
        f"RestartPreventExitStatus={no_restart}\n"
        "NoNewPrivileges=yes\n"
        "PrivateTmp=yes\n"
        "ProtectSystem=strict\n"
        f"{read_only}"
        "\n"
        "[Install]\n"
        "WantedBy=graphical.target\n"
    )


def windows_quote(argument: str) -> str:
    """One argument as ``CommandLineToArgvW`` / the MSVC runtime parse it back.

    Backslashes are literal except before a double quote; an argument with a space, a tab
    or a quote is wrapped in quotes, with inner quotes and the backslashes before them
    escaped. (``subprocess.list2cmdline`` implements the same rules; this is the single
    argument, spelled out so the tests can pin it.)
    """
    if argument and not any(c in argument for c in ' \t\n\v"'):
        return argument
    out = ['"']
    backslashes = 0
    for char in argument:
        if char == "\\":
            backslashes += 1
        elif char == '"':
            out.append("\\" * (2 * backslashes + 1) + '"')
            backslashes = 0
        else:
            out.append("\\" * backslashes + char)
            backslashes = 0
    out.append("\\" * (2 * backslashes) + '"')
    return "".join(out)


def windows_program(path: str) -> str:
    """A program path, always in quotes: ``{app}`` becomes ``C:\\Program Files\\…`` only at
    install time, and an unquoted path with a space is the classic unquoted-service-path
    hole (``C:\\Program.exe``). A Windows path cannot contain a quote."""
    if '"' in path:
        raise ValueError(f"not a Windows path: {path!r}")
    return f'"{path}"'


def windows_command_line(argv: Sequence[str]) -> str:
    return " ".join([windows_program(argv[0]), *(windows_quote(a) for a in argv[1:])])


def windows_sc_commands(service: ServiceDefinition) -> list[list[str]]:
    """The ``sc.exe`` calls that register the service with the SCM, as argv lists.

    ``sc.exe`` wants ``option= value`` as two arguments, the ``=`` glued to the option.
    ``binPath`` is the whole command line of the service, as one argument. A failure
    restarts it after ``restart_seconds`` (three times, the counter reset after a day).
    The SCM has no "do not restart after exit code N" (systemd's RestartPreventExitStatus):
    a revoked key (exit 3) is retried three times a day. Never run on Windows.
    """
    if service.environment:
        raise ValueError("a Windows service gets no environment from sc.exe")
    delay_ms = service.restart_seconds * 1000
    create = ["sc.exe", "create", service.name]
    create += ["binPath=", windows_command_line(service.command)]
    create += ["start=", "auto", "DisplayName=", service.display_name]
    create += ["obj=", service.user or "LocalSystem"]
    return [
        create,
        ["sc.exe", "description", service.name, service.description],
        [
            "sc.exe",
            "failure",
            service.name,
            *("reset=", "86400"),
            *("actions=", f"restart/{delay_ms}/restart/{delay_ms}/restart/{delay_ms}"),
        ],
    ]


#: The ``guruconnect://`` URL handler, per user (HKCU needs no administrator).
URL_SCHEME = "guruconnect"


@dataclass(frozen=True)
class RegistryValue:
    key: str  # under HKEY_CURRENT_USER
    name: str  # "" is the key's default value
    data: str


def url_handler_registry(executable: str | PureWindowsPath) -> list[RegistryValue]:
    """The values that make Windows open ``guruconnect://…`` links with ``open-link``.

    The link is handed over as ``"%1"``, one quoted argument, after ``open-link``: nothing
    in it can become an option or a second argument (the link code parses it strictly).
    """
    exe = str(executable)
    base = rf"Software\Classes\{URL_SCHEME}"
    return [
        RegistryValue(base, "", "URL:GuruConnect"),
        RegistryValue(base, "URL Protocol", ""),
        RegistryValue(rf"{base}\DefaultIcon", "", f"{windows_program(exe)},0"),
        RegistryValue(rf"{base}\shell\open\command", "", f'{windows_program(exe)} open-link "%1"'),
    ]


# -- Linux install (``guruconnect agent install``) -----------------------------------------


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
    #: The command that starts ``guruconnect`` (default: this installation's).
    base_command: tuple[str, ...] | None = None

    @property
    def key_file(self) -> Path:
        return self.config_dir / "agent.key"

    @property
    def unit_file(self) -> Path:
        return self.unit_dir / UNIT_NAME

    def command(self) -> list[str]:
        return list(
            agent_command(
                self.server, str(self.key_file), unattended=self.unattended, base=self.base_command
            )
        )

    def definition(self) -> ServiceDefinition:
        environment = {"DISPLAY": self.display}
        if self.xauthority:
            environment["XAUTHORITY"] = self.xauthority
        return ServiceDefinition(
            name=UNIT_NAME.removesuffix(".service"),
            display_name=DISPLAY_NAME,
            description=DESCRIPTION,
            command=tuple(self.command()),
            user=self.user,
            environment=environment,
            read_only_paths=(str(self.config_dir),),
        )

    def unit(self) -> str:
        return systemd_unit(self.definition())


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


# -- Windows ---------------------------------------------------------------------------------

WINDOWS_APP_DIR = PureWindowsPath(r"C:\Program Files\GuruConnect")
WINDOWS_EXE = WINDOWS_APP_DIR / "guruconnect.exe"
WINDOWS_KEY_FILE = PureWindowsPath(r"C:\ProgramData\GuruConnect\agent.key")


def windows_definition(
    server: str,
    *,
    unattended: bool = False,
    executable: PureWindowsPath = WINDOWS_EXE,
    key_file: PureWindowsPath = WINDOWS_KEY_FILE,
) -> ServiceDefinition:
    """The agent service the Windows installer registers (LocalSystem, automatic start)."""
    command = agent_command(server, str(key_file), unattended=unattended, base=(str(executable),))
    return ServiceDefinition(
        name=WINDOWS_SERVICE_NAME,
        display_name=DISPLAY_NAME,
        description=DESCRIPTION,
        command=command,
    )
