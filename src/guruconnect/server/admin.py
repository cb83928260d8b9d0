"""Administrative actions run outside the HTTP API: the CLI's backend.

The first admin of an install is created here and only here: no HTTP route creates an
admin out of nothing (a re-enterable web setup wizard is how ScreenConnect CVE-2024-1709
happened).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextlib import closing as contextlib_closing
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from guruconnect.releases import manifest as manifest_format
from guruconnect.server.auth import secrets_format
from guruconnect.server.auth.passwords import Passwords
from guruconnect.server.auth.permissions import TECHNICIAN_DEFAULTS, Role
from guruconnect.server.config import DatabaseSettings
from guruconnect.server.db import agent_keys, events, machines, releases, tenants, users
from guruconnect.server.db.engine import create_engine, migrate
from guruconnect.server.db.events import Event
from guruconnect.server.db.schema import users as users_table
from guruconnect.server.db.types import utcnow
from guruconnect.server.db.users import User
from guruconnect.server.instance import InstanceLock, lock_files, sqlite_path

MIN_PASSWORD_LENGTH = 12


class AdminError(Exception):
    """A refused admin action; the message is for the operator."""


@asynccontextmanager
async def _database(settings: DatabaseSettings) -> AsyncIterator[AsyncEngine]:
    path = sqlite_path(settings.database_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = create_engine(settings.database_url, schema=settings.database_schema)
    try:
        await migrate(engine, schema=settings.database_schema)
        yield engine
    finally:
        await engine.dispose()


async def _tenant_id(conn: AsyncConnection, name: str) -> tenants.Tenant:
    tenant = await tenants.by_name(conn, name)
    if tenant is None:
        raise AdminError(f"no tenant named {name!r} (create it with: admin create-tenant)")
    return tenant


async def create_tenant(settings: DatabaseSettings, name: str) -> tenants.Tenant:
    name = name.strip()
    if not name or len(name) > 100:
        raise AdminError("a tenant name has 1 to 100 characters")
    async with _database(settings) as engine, engine.begin() as conn:
        if await tenants.by_name(conn, name) is not None:
            raise AdminError(f"tenant {name!r} exists already")
        tenant = await tenants.create(conn, name)
        await events.append(
            conn, Event("tenant.created", tenant_id=tenant.id, actor="cli", detail={"name": name})
        )
        return tenant


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AdminError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise AdminError("the password is longer than 1024 characters")


async def create_user(
    settings: DatabaseSettings,
    username: str,
    password: str,
    *,
    admin: bool = False,
    tenant: str = tenants.DEFAULT_TENANT,
) -> User:
    check_password(password)
    normalised = users.normalise_username(username)
    if not users.valid_username(normalised):
        raise AdminError(
            "a username has 1 to 64 characters: letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    password_hash = Passwords.from_settings(settings).hash(password)
    async with _database(settings) as engine, engine.begin() as conn:
        target = await _tenant_id(conn, tenant)
        if await users.username_taken(conn, normalised):
            raise AdminError(f"username {normalised!r} is taken")
        user = await users.create(
            conn,
            tenant_id=target.id,
            username=normalised,
            password_hash=password_hash,
            role=Role.ADMIN if admin else Role.TECHNICIAN,
        )
        if not admin:
            await users.set_permissions(conn, user, [p.value for p in TECHNICIAN_DEFAULTS])
        await events.append(
            conn,
            Event(
                "user.created",
                tenant_id=target.id,
                user_id=user.id,
                actor="cli",
                detail={"role": user.role.value},
            ),
        )
        return user


async def list_users(settings: DatabaseSettings) -> list[tuple[User, str]]:
    async with _database(settings) as engine, engine.connect() as conn:
        return await users.list_all(conn)


async def bootstrap(
    settings: DatabaseSettings, *, username: str, password_file: Path
) -> str | None:
    """Create the install's first admin if there are no users at all.

    The generated password is written to ``password_file`` (mode 0600) and returned.
    Returns ``None`` and changes nothing when any user exists.
    """
    async with _database(settings) as engine:
        async with engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(users_table))).scalar()
        if count:
            return None
    password = secrets.token_urlsafe(18)
    # Saved before the user exists (a password that could not be saved is never in use),
    # but only moved into place once the user is created: a bootstrap that loses a race
    # leaves the winner's file alone.
    pending = password_file.with_name(f".{password_file.name}.{secrets.token_hex(4)}")
    await asyncio.to_thread(write_private_file, pending, password + "\n")
    try:
        await create_user(settings, username, password, admin=True)
    except BaseException:
        await asyncio.to_thread(pending.unlink, missing_ok=True)
        raise
    await asyncio.to_thread(pending.replace, password_file)
    return password


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (created 0600, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


async def issue_agent_key(
    settings: DatabaseSettings,
    *,
    tenant: str = tenants.DEFAULT_TENANT,
    machine: str | None = None,
) -> tuple[str, agent_keys.AgentKey]:
    """Issue a key (returned once, stored hashed). ``machine`` names an existing machine of
    the tenant to bind it to, or labels the machine its first connection creates."""
    new = secrets_format.new_agent_key()
    async with _database(settings) as engine, engine.begin() as conn:
        target = await _tenant_id(conn, tenant)
        machine_id = None
        if machine:
            found = [
                m for m in await machines.list_for_tenant(conn, target.id) if m.name == machine
            ]
            if len(found) > 1:
                raise AdminError(f"several machines are named {machine!r}; use the API")
            machine_id = found[0].id if found else None
        key = await agent_keys.create(
            conn,
            tenant_id=target.id,
            prefix=new.lookup,
            key_hash=new.key_hash,
            label=machine,
            machine_id=machine_id,
            created_by=None,
        )
        await events.append(
            conn,
            Event(
                "agent_key.issued",
                tenant_id=target.id,
                machine_id=machine_id,
                actor="cli",
                detail={"key_id": str(key.id), "prefix": key.prefix},
            ),
        )
    return new.key, key


# -- backups (SQLite; PostgreSQL has pg_dump) --------------------------------------------------

_NOT_SQLITE = (
    "backup and restore handle the SQLite database; for PostgreSQL use pg_dump and "
    "pg_restore (README, 'Backups')"
)


def _sqlite_file(settings: DatabaseSettings) -> Path:
    path = sqlite_path(settings.database_url)
    if path is None:
        raise AdminError(_NOT_SQLITE)
    return path


async def backup(settings: DatabaseSettings, target: Path) -> Path:
    """Copy the SQLite database to ``target`` with SQLite's online backup API: a consistent
    snapshot, safe while the server runs. ``target`` must not exist."""
    source = _sqlite_file(settings)
    await asyncio.to_thread(_backup, source, target)
    return source


def _backup(source: Path, target: Path) -> None:
    if not source.is_file():
        raise AdminError(f"there is no database at {source}")
    target = target.absolute()
    if target.exists():
        raise AdminError(f"{target} exists already; back up into a new file")
    if not target.parent.is_dir():
        raise AdminError(f"the directory {target.parent} does not exist")
    _copy_sqlite(source, target)


async def restore(settings: DatabaseSettings, backup_file: Path, *, replace: bool = False) -> Path:
    """Copy a backup into the configured SQLite database. Refuses while a server holds the
    database (:class:`~guruconnect.server.instance.InstanceInUse`), and refuses to replace an
    existing database unless ``replace``."""
    target = _sqlite_file(settings)
    await asyncio.to_thread(_restore, backup_file, target, replace)
    return target


def _restore(backup_file: Path, target: Path, replace: bool) -> None:
    if not backup_file.is_file():
        raise AdminError(f"there is no backup at {backup_file}")
    _check_backup(backup_file)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Every node's lock: no server may be using the database while it is replaced.
    locks: list[InstanceLock] = []
    try:
        for path in lock_files(target):
            locks.append(InstanceLock.for_lock_file(target, path))
        if target.exists() and target.stat().st_size and not replace:
            raise AdminError(
                f"a database exists at {target}; pass --replace to overwrite it (back it up first)"
            )
        _copy_sqlite(backup_file.absolute(), target, in_place=True)
    finally:
        for lock in locks:
            lock.release_file()


def _check_backup(path: Path) -> None:
    try:
        with contextlib_closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            ok = db.execute("PRAGMA quick_check").fetchone()
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        raise AdminError(f"{path} is not a SQLite database ({exc})") from None
    if not ok or ok[0] != "ok":
        raise AdminError(f"{path} is damaged (quick_check: {ok[0] if ok else 'no answer'})")
    if not {"alembic_version", "users", "sessions"} <= tables:
        raise AdminError(f"{path} is not a GuruConnect database")


def _copy_sqlite(source: Path, target: Path, *, in_place: bool = False) -> None:
    """``in_place``: write through a connection to ``target`` (a database some other
    connection may have open, the lock keeping servers away); else build a new file beside
    ``target`` and rename it into place, so a half-written backup never has its name."""
    destination = target if in_place else target.with_name(f".{target.name}.partial")
    if not in_place:
        destination.unlink(missing_ok=True)
        os.close(os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        with (
            contextlib_closing(sqlite3.connect(source, timeout=30)) as src,
            contextlib_closing(sqlite3.connect(destination, timeout=30)) as dst,
        ):
            src.backup(dst)  # one step: a consistent snapshot even while the server writes
            if not in_place:
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        if not in_place:
            os.replace(destination, target)
    except sqlite3.Error as exc:
        if not in_place:
            destination.unlink(missing_ok=True)
        raise AdminError(f"copying {source} to {target} failed: {exc}") from None


# -- releases ---------------------------------------------------------------------------


def release_keygen(directory: Path) -> tuple[Path, Path, str]:
    """Write a new release signing key pair into ``directory`` (kept off the server).

    Returns the private key file (0600), the public key file and the key's id. Refuses to
    overwrite either file: losing a signing key is worse than an error.
    """
    private_path = directory / "release-signing.key"
    public_path = directory / "release-signing.pub.pem"
    for path in (private_path, public_path):
        if path.exists():
            raise AdminError(f"{path} exists already; refusing to overwrite a key")
    key = manifest_format.new_private_key()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(manifest_format.private_pem(key))
    fd = os.open(public_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(manifest_format.public_pem(key.public_key()))
    return private_path, public_path, manifest_format.key_id(key.public_key())


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


async def publish_release(
    settings: DatabaseSettings,
    artifact: Path,
    *,
    version: str,
    platform: str,
    arch: str,
    channel: str = "stable",
    notes: str | None = None,
    key_file: Path,
    expires_days: int = 365,
) -> releases.Release:
    """Sign ``artifact``'s manifest with the offline key, copy it under the data directory's
    ``releases/`` and record it. Run where the key is (the operator's machine), against the
    server's database and data directory."""
    try:
        key = manifest_format.load_private_key(await asyncio.to_thread(key_file.read_bytes))
    except OSError as exc:
        raise AdminError(f"cannot read the signing key {key_file}: {exc.strerror}") from None
    except manifest_format.ManifestError as exc:
        raise AdminError(f"{key_file}: {exc}") from None
    if not 1 <= expires_days <= 3650:
        raise AdminError("--expires-days is 1 to 3650")
    try:
        sha256, size = await asyncio.to_thread(_sha256_file, artifact)
    except OSError as exc:
        raise AdminError(f"cannot read {artifact}: {exc.strerror}") from None
    suffix = ".exe" if platform == "windows" else ""
    manifest = manifest_format.Manifest(
        version=version,
        platform=platform,
        arch=arch,
        size=size,
        sha256=sha256,
        channel=channel,
        filename=f"guruconnect-agent-{version}-{platform}-{arch}{suffix}",
        expires_at=(utcnow() + timedelta(days=expires_days)).replace(microsecond=0),
    )
    try:
        manifest.validate()
    except manifest_format.ManifestError as exc:
        raise AdminError(str(exc)) from None
    document = manifest.encode()
    signature = manifest_format.sign(document, key)
    target_dir = settings.home / "releases"
    target = target_dir / manifest.filename
    async with _database(settings) as engine, engine.begin() as conn:
        if await releases.exists(conn, version=version, platform=platform, arch=arch):
            raise AdminError(f"release {version} for {platform}/{arch} exists already")
        await asyncio.to_thread(_install_artifact, artifact, target)
        release = await releases.create(
            conn,
            version=version,
            platform=platform,
            arch=arch,
            channel=channel,
            filename=manifest.filename,
            sha256=sha256,
            size_bytes=size,
            notes=notes,
            manifest=document.decode(),
            signature=signature,
            key_id=manifest_format.key_id(key.public_key()),
            expires_at=manifest.expires_at,
        )
        await events.append(
            conn,
            Event(
                "release.published",
                actor="cli",
                detail={
                    "version": version,
                    "platform": platform,
                    "arch": arch,
                    "channel": channel,
                    "sha256": sha256,
                    "key_id": release.key_id,
                },
            ),
        )
    return release


def _install_artifact(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, partial)
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    partial.replace(target)
