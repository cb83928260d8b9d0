"""``guruconnect agent``: run the agent, or install it as a service."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

agent_app = typer.Typer(help="The agent on the managed machine.")

KEY_ENV = "GURUCONNECT_AGENT_KEY"


def _read_key(key: str | None, key_file: Path | None) -> str | None:
    from guruconnect.agent.preflight import read_key_file

    if key_file is not None:
        return read_key_file(key_file)
    return key or os.environ.get(KEY_ENV) or None


def _fail(message: str, code: int) -> typer.Exit:
    """One line on stderr and a documented exit code (docs/agent.md), no traceback."""
    typer.echo(f"guruconnect: {message}", err=True)
    return typer.Exit(code)


def _encoder_list(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if value.strip().lower() == "none":
        return ()
    return tuple(name.strip() for name in value.split(",") if name.strip())


@agent_app.callback(invoke_without_command=True)
def agent(
    ctx: typer.Context,
    server: Annotated[
        str | None, typer.Option(help="The relay, e.g. https://support.example.com")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(help=f"Agent key (cak_...). Prefer --key-file or ${KEY_ENV}: ps shows this."),
    ] = None,
    key_file: Annotated[
        Path | None, typer.Option(help="Read the agent key from this file.")
    ] = None,
    code: Annotated[str | None, typer.Option(help="One-time support code.")] = None,
    display: Annotated[str | None, typer.Option(help="X display (default $DISPLAY).")] = None,
    fps: Annotated[float, typer.Option(min=1, max=60, help="Most frames a second.")] = 30.0,
    keyframe_interval: Annotated[
        float, typer.Option(min=1, help="Seconds between full frames sent as a safety net.")
    ] = 10.0,
    unattended: Annotated[
        bool,
        typer.Option(help="Start sessions without asking, where the server's policy allows it."),
    ] = False,
    h264_encoders: Annotated[
        str | None,
        typer.Option(
            help="H.264 encoders to try, best first, comma-separated ('none': raw tiles only)."
        ),
    ] = None,
    max_rate_kbps: Annotated[
        int, typer.Option(min=200, help="Most kbit/s an H.264 stream may use.")
    ] = 8000,
    no_windows: Annotated[
        bool, typer.Option("--no-windows", help="Show no windows (consent is then denied).")
    ] = False,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING, ERROR.")] = "INFO",
    ca_file: Annotated[
        Path | None,
        typer.Option(
            envvar="GURUCONNECT_AGENT_CA_FILE",
            help="Trust the relay's certificate from this CA (PEM) instead of the system's.",
        ),
    ] = None,
    insecure_skip_tls_verify: Annotated[
        bool,
        typer.Option(
            "--insecure-skip-tls-verify",
            help="Do NOT check the relay's certificate (testing only; warns at every start).",
        ),
    ] = False,
    update_probation: Annotated[
        float,
        typer.Option(
            min=5,
            max=3600,
            help="Seconds a self-updated version has to come online before the previous "
            "file is put back.",
        ),
    ] = 120.0,
    tray: Annotated[
        bool, typer.Option("--tray", help="Show a tray icon (state, chat, end, exit).")
    ] = False,
) -> None:
    """Run the agent: connect to the relay and serve sessions until stopped."""
    if ctx.invoked_subcommand is not None:
        return
    from guruconnect.agent import build_info, preflight
    from guruconnect.agent.transport import AgentExit

    # Every check of the command line and the environment comes before anything connects.
    try:
        if server is None:
            server = build_info.load().server
        if server is None:
            raise AgentExit(
                "--server is required: give the server's URL, e.g. "
                "--server https://support.example.com",
                preflight.EXIT_USAGE,
            )
        server = preflight.check_server_url(server)
        agent_key = _read_key(key, key_file)
        if agent_key is None and code is None:
            raise AgentExit(
                f"no credentials: give --key-file FILE (or ${KEY_ENV}) for a managed "
                "machine, or --code CODE for a support session",
                preflight.EXIT_USAGE,
            )
        if agent_key is not None and code is not None:
            raise AgentExit(
                "give an agent key (--key-file, --key, $GURUCONNECT_AGENT_KEY) or a --code, "
                "not both",
                preflight.EXIT_USAGE,
            )
        if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise AgentExit(
                f"--log-level {log_level}: use DEBUG, INFO, WARNING or ERROR", preflight.EXIT_USAGE
            )
        display = preflight.check_display(display)
    except AgentExit as stop:
        raise _fail(stop.message, stop.exit_code) from None

    from guruconnect.agent.runner import Agent, AgentConfig
    from guruconnect.agent.tls import TlsSetupError, client_context
    from guruconnect.agent.trust import built_executable, release_keys, this_platform
    from guruconnect.agent.updater import Updater
    from guruconnect.server.log_setup import configure

    configure(log_level.upper(), "auto")
    try:
        tls = client_context(ca_file, insecure=insecure_skip_tls_verify)
    except TlsSetupError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ca-file") from None

    build = build_info.load()
    executable = built_executable()
    updater = None
    # Only a built file updates itself, and never a support-code agent (it runs once).
    if executable is not None and build.version is not None and code is None:
        system, arch = this_platform()
        updater = Updater(
            server=server,
            executable=executable,
            keys=release_keys(build.release_keys),
            current_version=build.version,
            platform=system,
            arch=arch,
            probation_seconds=update_probation,
            tls=tls,
        )
    config = AgentConfig(
        server=server,
        key=agent_key,
        code=code.strip().upper() if code else None,
        display=display,
        fps=fps,
        keyframe_interval=keyframe_interval,
        h264_encoders=_encoder_list(h264_encoders),
        max_rate_kbps=max_rate_kbps,
        unattended=unattended,
        desktop_ui=not no_windows,
        tls=tls,
        updater=updater,
        tray=tray,
    )
    runner = Agent(config)
    try:
        exit_code = asyncio.run(runner.run())
    except KeyboardInterrupt:
        exit_code = 0
    if exit_code != 0 and runner.stopped is not None:
        raise _fail(runner.stopped.message, exit_code)
    raise typer.Exit(exit_code)


@agent_app.command()
def install(
    server: Annotated[str, typer.Option(help="The relay URL.")],
    key_file: Annotated[
        Path, typer.Option(help="File holding the agent key (it is copied, then keep it safe).")
    ],
    user: Annotated[str, typer.Option(help="Run as this user (the desktop's owner).")],
    display: Annotated[str, typer.Option(help="The X display to serve.")] = ":0",
    xauthority: Annotated[str | None, typer.Option(help="That display's Xauthority.")] = None,
    unattended: Annotated[bool, typer.Option(help="Allow sessions without asking.")] = False,
    root: Annotated[
        Path, typer.Option(help="Install under this root (packaging, tests).", hidden=True)
    ] = Path("/"),
) -> None:
    """Install the agent as a systemd service (Linux). Windows: see docs/agent.md."""
    from guruconnect.agent.preflight import check_server_url
    from guruconnect.agent.service import Install, write
    from guruconnect.agent.transport import AgentExit

    try:
        server = check_server_url(server)
        key = _read_key(None, key_file)
    except AgentExit as stop:
        raise _fail(stop.message, stop.exit_code) from None
    if not key or not key.startswith("cak_"):
        raise _fail(f"--key-file {key_file} holds no agent key (cak_...)", 2)
    spec = Install(
        server=server,
        key=key,
        user=user,
        display=display,
        xauthority=xauthority,
        unattended=unattended,
        unit_dir=root / "etc/systemd/system",
        config_dir=root / "etc/guruconnect",
    )
    for path in write(spec, chown=os.geteuid() == 0):
        typer.echo(f"wrote {path}")
    typer.echo(
        "enable it with: systemctl daemon-reload && systemctl enable --now guruconnect-agent"
    )
