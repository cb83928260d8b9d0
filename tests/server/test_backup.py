"""GURUCONNECT_HOME and backups, with the real CLI and real server processes.

The admin commands find the server's database from any directory; a backup taken while
the server runs a session restores into a fresh home where a new server logs in; restore
refuses a database a live server holds.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from guruconnect.client import ApiClient
from guruconnect.server import admin
from guruconnect.server.background import ServerProcess
from guruconnect.server.config import DatabaseSettings
from guruconnect.server.db.schema import sessions
from guruconnect.server.instance import EXIT_IN_USE
from guruconnect.server.runner import _warn_about_an_old_database
from tests.conftest import FAST_ARGON2, JWT_SECRET, Database, make_settings
from tests.relay.conftest import Relay
from tests.server.test_cli import PASSWORD, cli_env, one_line_error, run
from tests.timing import scaled


def _home_env(home: Path) -> dict[str, str]:
    return cli_env(GURUCONNECT_HOME=str(home), JWT_SECRET=JWT_SECRET)


def _dirs(tmp_path: Path, *names: str) -> list[Path]:
    made = [tmp_path / name for name in names]
    for path in made:
        path.mkdir()
    return made


def test_admin_commands_find_the_home_database_from_any_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    one, two = _dirs(tmp_path, "one", "two")
    env = _home_env(home)
    created = run(["admin", "create-user", "root", "--admin"], env, one, stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    listed = run(["admin", "list-users"], env, two)
    assert listed.returncode == 0, listed.stderr
    assert "root" in listed.stdout
    assert not list(one.iterdir())
    assert not list(two.iterdir())  # no stray database in the working directories
    assert (home / "guruconnect.db").is_file()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


@pytest.mark.timeout(scaled(300))
def test_backup_a_live_server_and_restore_into_a_fresh_home(tmp_path: Path) -> None:
    home, fresh = tmp_path / "home", tmp_path / "fresh"
    work, elsewhere = _dirs(tmp_path, "work", "elsewhere")
    env = _home_env(home)
    settings = DatabaseSettings(home=home, **FAST_ARGON2)
    asyncio.run(admin.create_user(settings, "root", PASSWORD, admin=True))
    live = ServerProcess(env, tmp_path / "live.log", cwd=work)
    backup = tmp_path / "backup.db"
    try:
        live.start(timeout=scaled(30))

        async def with_a_session() -> None:
            async with ApiClient(live.url) as api:
                await api.login("root", PASSWORD)
                relay = Relay(live, "", "")  # type: ignore[arg-type]
                agent, machine_id, _ = await relay.online_agent(api, policy="unattended")
                await relay.active_session(api, agent, machine_id)
                made = await asyncio.to_thread(
                    run, ["admin", "backup", str(backup)], env, elsewhere
                )
                assert made.returncode == 0, made.stderr
                with pytest.raises(admin.AdminError, match="exists already"):
                    await admin.backup(settings, backup)
                await agent.close()

        asyncio.run(with_a_session())
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600
        # A live server holds the database: restore refuses, exit 3, nothing written.
        refused = run(["admin", "restore", str(backup), "--replace"], env, elsewhere)
        assert "another GuruConnect server" in one_line_error(refused, EXIT_IN_USE)
    finally:
        live.stop()

    fresh_env = _home_env(fresh)
    restored = run(["admin", "restore", str(backup)], fresh_env, elsewhere)
    assert restored.returncode == 0, restored.stderr
    with pytest.raises(admin.AdminError, match="--replace"):
        asyncio.run(admin.restore(DatabaseSettings(home=fresh), backup))

    second = ServerProcess(fresh_env, tmp_path / "second.log", cwd=elsewhere)
    try:
        second.start(timeout=scaled(30))

        async def log_in() -> None:
            async with ApiClient(second.url) as api:
                await api.login("root", PASSWORD)

        asyncio.run(log_in())
        database = Database("sqlite", f"sqlite+aiosqlite:///{fresh / 'guruconnect.db'}")
        # The backup caught the session live; the new server reconciled it.
        [(state, reason)] = database.sql(select(sessions.c.state, sessions.c.end_reason))
        assert (state, reason) == ("ended", "server_restart")
    finally:
        second.stop()


def test_restore_refuses_what_is_no_guruconnect_backup(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(4096))
    env = _home_env(tmp_path / "home")
    assert "not a SQLite database" in one_line_error(
        run(["admin", "restore", str(junk)], env, tmp_path), 1
    )
    missing = run(["admin", "restore", str(tmp_path / "nothing.db")], env, tmp_path)
    assert "there is no backup" in one_line_error(missing, 1)
    assert not (tmp_path / "home" / "guruconnect.db").exists()


def test_postgres_backups_are_pg_dump(tmp_path: Path) -> None:
    env = cli_env(DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/none")
    line = one_line_error(run(["admin", "backup", str(tmp_path / "b")], env, tmp_path), 1)
    assert "pg_dump" in line


def test_an_old_database_in_the_working_directory_is_pointed_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "guruconnect.db").write_bytes(b"")
    in_home = make_settings(Database("sqlite", ""), database_url="", home=tmp_path / "home")
    _warn_about_an_old_database(in_home)
    assert "see README, 'Where data lives'" in caplog.text
    assert str(tmp_path / "guruconnect.db") in caplog.text
    caplog.clear()
    elsewhere = make_settings(Database("sqlite", "sqlite+aiosqlite:///x.db"))
    _warn_about_an_old_database(elsewhere)  # the operator chose a database: no warning
    assert "Where data lives" not in caplog.text
