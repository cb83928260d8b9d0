"""The one ``guruconnect`` command: server, admin, version."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from guruconnect.agent import entry
from guruconnect.agent.cli import agent_app
from guruconnect.version import build_info

if TYPE_CHECKING:
    from guruconnect.server.config import DatabaseSettings

_T = TypeVar("_T")

app = typer.Typer(
    name="guruconnect",
    help="GuruConnect: self-hosted remote support and remote control.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
admin_app = typer.Typer(help="Administration against the server's database.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
app.add_typer(agent_app, name="agent")
app.command("install-link-handler")(entry.install_link_handler)

err = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """One line on stderr, a non-zero exit, no traceback."""
    err.print(f"guruconnect: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _version_callback(value: bool) -> None:
    if value:
        from guruconnect.agent import build_info as agent_build

        # A built agent prints exactly the version it was built as (AGENT_VERSION).
        typer.echo(agent_build.load().version or build_info().full_version)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """GuruConnect: self-hosted remote support and remote control."""


@app.command("version-info")
def version_info() -> None:
    """Version, git revision, branch, dirty flag, build time and platform."""
    info = build_info()
    rows = {
        "version": info.full_version,
        "git hash": info.git_hash or "unknown",
        "branch": info.branch or "unknown",
        "dirty": "yes" if info.dirty else "no",
        "build time": info.build_time or "unknown",
        "platform": info.platform,
        "python": sys.version.split()[0],
    }
    for key, value in rows.items():
        typer.echo(f"{key + ':':<12} {value}")


@app.command()
def server(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 3002).")] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Serve HTTPS with this PEM certificate (chain).")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The certificate's PEM private key.")] = None,
) -> None:
    """Run the relay server (REST API, WebSockets, dashboard)."""
    _require_server_libraries()
    from guruconnect.server.config import ConfigError, load_settings
    from guruconnect.server.instance import EXIT_IN_USE
    from guruconnect.server.runner import InstanceInUse, StartupError, serve

    try:
        settings = load_settings(host=host, port=port, tls_cert_file=tls_cert, tls_key_file=tls_key)
    except ConfigError as exc:
        raise fail(f"configuration error: {exc}", 2) from None
    try:
        serve(settings)
    except InstanceInUse as exc:
        raise fail(str(exc), EXIT_IN_USE) from None
    except StartupError as exc:
        raise fail(str(exc), 1) from None


def _require_server_libraries() -> None:
    """The single-file agent leaves the server's libraries out: say so in one line."""
    try:
        import fastapi  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError:
        raise fail(
            "this is the agent build: the server and admin commands are not in it; "
            "run them from the guruconnect package on the server",
            2,
        ) from None


def _db_settings() -> DatabaseSettings:
    _require_server_libraries()
    from guruconnect.server.config import ConfigError, load_database_settings

    try:
        return load_database_settings()
    except ConfigError as exc:
        raise fail(f"configuration error: {exc}", 2) from None


def _read_password() -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.removesuffix("\n").removesuffix("\r")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _run_admin(coro: Coroutine[Any, Any, _T]) -> _T:
    from guruconnect.server.admin import AdminError
    from guruconnect.server.instance import EXIT_IN_USE, InstanceInUse

    try:
        return asyncio.run(coro)
    except AdminError as exc:
        raise fail(str(exc)) from None
    except InstanceInUse as exc:
        raise fail(str(exc), EXIT_IN_USE) from None
    except OSError as exc:
        raise fail(f"database unavailable: {exc}") from None


release_app = typer.Typer(
    help="Signed agent releases: the key stays on the operator's machine.", no_args_is_help=True
)
admin_app.add_typer(release_app, name="release")


@release_app.command("keygen")
def release_keygen(
    directory: Annotated[Path, typer.Argument(help="Where to write the key pair (offline).")],
) -> None:
    """Create the offline release signing key (0600) and its public key for agent builds."""
    from guruconnect.server import admin

    try:
        private, public, key_id = admin.release_keygen(directory)
    except admin.AdminError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write into {directory}: {exc.strerror}") from None
    typer.echo(f"private key {private} (keep it offline; never copy it to the server)")
    typer.echo(f"public key  {public} (build agents with AGENT_RELEASE_KEYS={public})")
    typer.echo(f"key id      {key_id}")


@release_app.command("publish")
def release_publish(
    artifact: Annotated[Path, typer.Argument(help="The built agent file.")],
    version: Annotated[str, typer.Option(help="The version the file was built as.")],
    key: Annotated[Path, typer.Option(help="The private signing key (from release keygen).")],
    platform: Annotated[str, typer.Option(help="linux or windows.")] = "linux",
    arch: Annotated[str, typer.Option(help="x86_64 or arm64.")] = "x86_64",
    channel: Annotated[str, typer.Option(help="stable or beta.")] = "stable",
    notes: Annotated[str | None, typer.Option(help="Release notes.")] = None,
    expires_days: Annotated[
        int, typer.Option(help="Days the signed manifest stays valid for agents.")
    ] = 365,
) -> None:
    """Sign a release here and store it in the server's data directory and database."""
    from guruconnect.server import admin

    release = _run_admin(
        admin.publish_release(
            _db_settings(),
            artifact,
            version=version,
            platform=platform,
            arch=arch,
            channel=channel,
            notes=notes,
            key_file=key,
            expires_days=expires_days,
        )
    )
    typer.echo(
        f"published {release.filename} ({release.size_bytes} bytes, sha256 {release.sha256}, "
        f"key {release.key_id}, expires {release.expires_at:%Y-%m-%d})"
    )


@admin_app.command("create-tenant")
def create_tenant(name: Annotated[str, typer.Argument(help="The tenant's name.")]) -> None:
    """Create a tenant (an isolated set of users and machines)."""
    from guruconnect.server import admin

    tenant = _run_admin(admin.create_tenant(_db_settings(), name))
    typer.echo(f"created tenant {tenant.name} ({tenant.id})")


@admin_app.command("create-user")
def create_user(
    username: Annotated[str, typer.Argument(help="Login name (stored lower-case).")],
    is_admin: Annotated[bool, typer.Option("--admin", help="Give the admin role.")] = False,
    tenant: Annotated[str, typer.Option(help="Tenant name.")] = "default",
) -> None:
    """Create a user. The password comes from stdin, or is prompted for twice on a terminal."""
    from guruconnect.server import admin

    password = _read_password()
    user = _run_admin(
        admin.create_user(_db_settings(), username, password, admin=is_admin, tenant=tenant)
    )
    typer.echo(f"created {user.role.value} {user.username} ({user.id}) in tenant {tenant}")


@admin_app.command("list-users")
def list_users() -> None:
    """List every user of every tenant."""
    from guruconnect.server import admin

    rows = _run_admin(admin.list_users(_db_settings()))
    table = Table("tenant", "username", "role", "disabled", "last login", "id")
    for user, tenant_name in rows:
        table.add_row(
            tenant_name,
            user.username,
            user.role.value,
            "yes" if user.disabled else "no",
            user.last_login_at.isoformat(timespec="seconds") if user.last_login_at else "never",
            str(user.id),
        )
    Console(width=200).print(table)


@admin_app.command("issue-agent-key")
def issue_agent_key(
    tenant: Annotated[str, typer.Option(help="Tenant name.")] = "default",
    machine: Annotated[
        str | None,
        typer.Option(help="Bind to this existing machine, or name the one it will create."),
    ] = None,
) -> None:
    """Issue a per-agent key. It is printed once, alone on stdout; the server keeps a hash."""
    from guruconnect.server import admin

    key, row = _run_admin(admin.issue_agent_key(_db_settings(), tenant=tenant, machine=machine))
    err.print(f"issued agent key {row.prefix}... ({row.id}) in tenant {tenant}", highlight=False)
    typer.echo(key)


@admin_app.command("bootstrap")
def bootstrap(
    password_file: Annotated[
        Path, typer.Option(help="Where to write the generated password (mode 0600).")
    ],
    username: Annotated[str, typer.Option(help="The first admin's name.")] = "admin",
) -> None:
    """Create the first admin with a generated password, only if there are no users yet."""
    from guruconnect.server import admin

    password = _run_admin(
        admin.bootstrap(_db_settings(), username=username, password_file=password_file)
    )
    if password is None:
        typer.echo("users exist already; nothing to bootstrap")
    else:
        typer.echo(f"created admin {username!r}; its password is in {password_file}")


@admin_app.command("backup")
def backup(
    file: Annotated[Path, typer.Argument(help="The backup file to write (must not exist).")],
) -> None:
    """Back up the SQLite database (safe while the server runs). PostgreSQL: pg_dump."""
    from guruconnect.server import admin

    source = _run_admin(admin.backup(_db_settings(), file))
    typer.echo(f"backed up {source} to {file.absolute()}")


@admin_app.command("restore")
def restore(
    file: Annotated[Path, typer.Argument(help="A file written by 'admin backup'.")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite an existing database.")
    ] = False,
) -> None:
    """Restore the SQLite database from a backup; refused while a server uses it (exit 3)."""
    from guruconnect.server import admin

    target = _run_admin(admin.restore(_db_settings(), file, replace=replace))
    typer.echo(f"restored {file} into {target}")


def main() -> None:
    from guruconnect.self_exec import run_module_from_argv

    if run_module_from_argv(sys.argv):
        return
    code = entry.special(sys.argv)  # the join file, open-link: no option parsing
    if code is not None:
        sys.exit(code)
    try:
        result = app(standalone_mode=False)
    except typer.Abort:
        err.print("guruconnect: aborted", markup=False, highlight=False)
        sys.exit(1)
    except typer.TyperException as exc:  # click's usage errors, as vendored by typer
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())
            sys.exit(2)
        # One line, not a boxed panel: what is wrong, and where the help is.
        where = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        message = " ".join(str(exc.format_message()).split())
        err.print(f"guruconnect: {message}{where}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(int(getattr(exc, "exit_code", 2)))
    sys.exit(result if isinstance(result, int) else 0)
