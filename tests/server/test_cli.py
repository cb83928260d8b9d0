"""The ``guruconnect`` command, run as a real subprocess against real databases."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from argon2 import PasswordHasher

from tests.conftest import JWT_SECRET, STARTUP_TIMEOUT, Database, LiveServer

GURUCONNECT = str(Path(sys.executable).parent / "guruconnect")
REPO = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT = 60.0
PASSWORD = "a long enough password"
#: Names the CLI reads; any of them left in the test runner's environment would leak in.
_SCRUB = ("JWT_SECRET", "JWT_SECRET_FILE", "DATABASE_URL")


def cli_env(database: Database | None = None, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _SCRUB
        and (not key.startswith("GURUCONNECT_") or key == "GURUCONNECT_HOME")  # the run's own
    }
    env.update(
        GURUCONNECT_ARGON2_TIME_COST="1",
        GURUCONNECT_ARGON2_MEMORY_COST_KIB="1024",
        GURUCONNECT_ARGON2_PARALLELISM="1",
        GURUCONNECT_LOG_FORMAT="json",
    )
    if database is not None:
        env["DATABASE_URL"] = database.url
        if database.schema:
            env["GURUCONNECT_DATABASE_SCHEMA"] = database.schema
    env.update(extra)
    return env


def run(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GURUCONNECT, *args],
        env=env,
        cwd=cwd,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The contract for a refused command: one line on stderr, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("guruconnect: ")
    return lines[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def as_str(value: Any) -> str:
    return str(value).replace("-", "")


# -- version ---------------------------------------------------------------------------------


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def test_version_is_version_dash_git_hash(tmp_path: Path) -> None:
    result = run(["--version"], cli_env(), tmp_path)
    assert result.returncode == 0, result.stderr
    version = result.stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+-[0-9a-f]{7}(-dirty)?", version), version
    assert result.stdout.count("\n") == 1
    # The hash is the checkout's own, not a stale recorded one.
    assert version.split("-")[1] == git("rev-parse", "--short=7", "HEAD")


def test_version_info_names_every_build_fact(tmp_path: Path) -> None:
    result = run(["version-info"], cli_env(), tmp_path)
    assert result.returncode == 0, result.stderr
    facts = dict(line.split(":", 1) for line in result.stdout.splitlines())
    facts = {key: value.strip() for key, value in facts.items()}
    assert {"version", "git hash", "branch", "dirty", "build time", "platform"} <= set(facts)
    assert facts["git hash"] == git("rev-parse", "--short=7", "HEAD")
    assert facts["version"].startswith(f"{metadata.version('guruconnect')}-{facts['git hash']}")
    assert facts["branch"] == git("rev-parse", "--abbrev-ref", "HEAD")
    assert facts["dirty"] in {"yes", "no"}
    assert facts["version"].endswith("-dirty") == (facts["dirty"] == "yes")
    assert facts["platform"].startswith(("Linux", "Darwin", "Windows"))
    assert facts["build time"]


# -- admin -----------------------------------------------------------------------------------


def test_create_tenant_once_then_refuse_the_duplicate(database: Database, tmp_path: Path) -> None:
    env = cli_env(database)
    result = run(["admin", "create-tenant", "acme"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("created tenant acme (")
    rows = database.sql("SELECT id FROM tenants WHERE name = 'acme'")
    assert len(rows) == 1
    assert as_str(rows[0][0]) in result.stdout.replace("-", "")

    line = one_line_error(run(["admin", "create-tenant", "acme"], env, tmp_path), 1)
    assert "acme" in line
    assert "exists" in line
    assert len(database.sql("SELECT id FROM tenants WHERE name = 'acme'")) == 1


def test_create_user_reads_the_password_from_stdin(database: Database, tmp_path: Path) -> None:
    env = cli_env(database)
    assert run(["admin", "create-tenant", "acme"], env, tmp_path).returncode == 0

    result = run(
        ["admin", "create-user", "Bob", "--tenant", "acme"], env, tmp_path, PASSWORD + "\n"
    )
    assert result.returncode == 0, result.stderr
    assert "technician bob" in result.stdout
    result = run(["admin", "create-user", "carol", "--admin"], env, tmp_path, PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert "admin carol" in result.stdout

    rows = database.sql(
        "SELECT u.username, u.role, t.name, u.password_hash FROM users u"
        " JOIN tenants t ON t.id = u.tenant_id ORDER BY u.username"
    )
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("bob", "technician", "acme"),
        ("carol", "admin", "default"),
    ]
    for row in rows:
        assert row.password_hash.startswith("$argon2id$")
        # The whole line minus its newline is the password, nothing more, nothing less.
        assert PasswordHasher().verify(row.password_hash, PASSWORD)

    line = one_line_error(
        run(["admin", "create-user", "dave", "--tenant", "nope"], env, tmp_path, PASSWORD), 1
    )
    assert "nope" in line
    line = one_line_error(run(["admin", "create-user", "erin"], env, tmp_path, "short\n"), 1)
    assert "12 characters" in line
    line = one_line_error(run(["admin", "create-user", "BOB"], env, tmp_path, PASSWORD), 1)
    assert "taken" in line
    # The API's username rule holds on the command line too.
    for bad in ["bad name", "x/; y", "_under", "a" * 65]:
        line = one_line_error(run(["admin", "create-user", bad], env, tmp_path, PASSWORD), 1)
        assert "username" in line
    names = [r[0] for r in database.sql("SELECT username FROM users ORDER BY username")]
    assert names == ["bob", "carol"]


def test_list_users_shows_tenant_and_role(database: Database, tmp_path: Path) -> None:
    env = cli_env(database)
    assert run(["admin", "create-tenant", "acme"], env, tmp_path).returncode == 0
    for args in (["bob", "--tenant", "acme"], ["carol", "--admin"]):
        assert run(["admin", "create-user", *args], env, tmp_path, PASSWORD).returncode == 0

    result = run(["admin", "list-users"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│|┃]", line) if c.strip()]
        if len(cells) == 6 and cells[0] != "tenant":
            rows[cells[1]] = cells
    assert set(rows) == {"bob", "carol"}
    assert rows["bob"][0] == "acme"
    assert rows["bob"][2] == "technician"
    assert rows["carol"][0] == "default"
    assert rows["carol"][2] == "admin"
    assert rows["carol"][4] == "never"
    ids = {as_str(r[0]) for r in database.sql("SELECT id FROM users")}
    assert {as_str(cells[5]) for cells in rows.values()} == ids


def test_bootstrap_creates_the_first_admin_only_once(
    database: Database, tmp_path: Path, server_factory: Callable[..., LiveServer]
) -> None:
    env = cli_env(database)
    secret_file = tmp_path / "secrets" / "admin-password"

    result = run(["admin", "bootstrap", "--password-file", str(secret_file)], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(secret_file) in result.stdout
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    password = secret_file.read_text(encoding="utf-8").strip()
    assert len(password) >= 16
    assert password not in result.stdout + result.stderr
    rows = database.sql("SELECT username, role FROM users")
    assert [tuple(r) for r in rows] == [("admin", "admin")]

    # Nothing changes the second time: same single user, same file, same password.
    again = run(["admin", "bootstrap", "--password-file", str(secret_file)], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "nothing to bootstrap" in again.stdout
    assert secret_file.read_text(encoding="utf-8").strip() == password
    assert len(database.sql("SELECT id FROM users")) == 1

    server = server_factory()
    token = server.login("admin", password)
    me = server.client(token=token).get("/api/auth/me").json()
    assert me["role"] == "admin"


def test_bootstrap_is_a_no_op_when_any_user_exists(database: Database, tmp_path: Path) -> None:
    env = cli_env(database)
    assert run(["admin", "create-user", "carol"], env, tmp_path, PASSWORD).returncode == 0
    secret_file = tmp_path / "admin-password"
    result = run(["admin", "bootstrap", "--password-file", str(secret_file)], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "nothing to bootstrap" in result.stdout
    assert not secret_file.exists()
    assert [r[0] for r in database.sql("SELECT username FROM users")] == ["carol"]


# -- server ----------------------------------------------------------------------------------


def test_server_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    result = run(["server", "--port", str(free_port())], cli_env(), tmp_path)
    line = one_line_error(result, 2)
    assert "JWT_SECRET" in line
    assert not (tmp_path / "guruconnect.db").exists()  # refused before touching a database


@pytest.mark.parametrize("secret", ["0123456789", "x" * 31])
def test_server_refuses_a_short_secret(tmp_path: Path, secret: str) -> None:
    result = run(["server", "--port", str(free_port())], cli_env(JWT_SECRET=secret), tmp_path)
    line = one_line_error(result, 2)
    assert "JWT_SECRET" in line
    assert f"({len(secret)} characters)" in line
    assert "at least 32" in line
    assert secret not in line


def test_server_refuses_an_unreadable_secret_file(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-secret"
    result = run(["server"], cli_env(JWT_SECRET_FILE=str(missing)), tmp_path)
    line = one_line_error(result, 2)
    assert "JWT_SECRET_FILE" in line
    assert str(missing) in line


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(url: str, username: str) -> str:
    response = httpx.post(
        f"{url}/api/auth/login", json={"username": username, "password": PASSWORD}, timeout=10
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


class ServerProcess:
    """``guruconnect server`` in a subprocess, its output in files (no pipe to fill up)."""

    def __init__(self, env: dict[str, str], cwd: Path, name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = cwd / f"{name}.out"
        self.stderr_path = cwd / f"{name}.err"
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            self.process = subprocess.Popen(
                [GURUCONNECT, "server", "--port", str(self.port)],
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    def wait_healthy(self) -> httpx.Response:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert self.process.poll() is None, f"server exited: {self.stderr()}"
            try:
                return httpx.get(f"{self.url}/health", timeout=2)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"no /health in time: {self.stderr()}") from None
                time.sleep(0.05)

    def stop(self, sig: signal.Signals) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(STARTUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STARTUP_TIMEOUT)
            raise AssertionError(f"the server ignored {sig.name}: {self.stderr()}") from None

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


def test_server_serves_stops_and_restarts_on_the_same_database(
    database: Database, tmp_path: Path
) -> None:
    env = cli_env(database, JWT_SECRET=JWT_SECRET)
    assert run(["admin", "create-user", "carol"], env, tmp_path, PASSWORD).returncode == 0
    token = ""
    for attempt, sig in enumerate((signal.SIGINT, signal.SIGTERM)):
        server = ServerProcess(env, tmp_path, f"run{attempt}")
        try:
            response = server.wait_healthy()
            assert response.status_code == 200
            assert response.json() == {"status": "ok"}
            assert response.headers["x-frame-options"] == "DENY"
            if not token:
                token = login(server.url, "carol")
            # The same database and secret: a token from the first run is good in the second.
            me = httpx.get(f"{server.url}/api/auth/me", headers=bearer(token), timeout=5)
            assert me.status_code == 200, me.text
            assert me.json()["username"] == "carol"
        finally:
            code = server.stop(sig)
        # A graceful stop: the lifespan ran to its end, whatever the signal.
        log = server.stderr()
        assert "Application shutdown complete" in log, log
        assert "Traceback" not in log
        # uvicorn re-raises the signal after shutting down, as the exit status says.
        assert code in {0, 128 + sig, -sig}, (code, log)
        assert JWT_SECRET not in log

    # The second start migrated an up-to-date database: nothing was created twice.
    assert len(database.sql("SELECT id FROM tenants WHERE name = 'default'")) == 1
    assert len(database.sql("SELECT id FROM tenants")) == 1
    assert len(database.sql("SELECT version_num FROM alembic_version")) == 1


def test_server_reads_the_secret_from_a_file(database: Database, tmp_path: Path) -> None:
    secret_file = tmp_path / "jwt-secret"
    secret_file.write_text(JWT_SECRET + "\n", encoding="utf-8")
    env = cli_env(database, JWT_SECRET_FILE=str(secret_file))
    assert run(["admin", "create-user", "carol"], env, tmp_path, PASSWORD).returncode == 0
    server = ServerProcess(env, tmp_path, "file-secret")
    try:
        assert server.wait_healthy().json() == {"status": "ok"}
        token = login(server.url, "carol")
    finally:
        server.stop(signal.SIGTERM)
    # Signed with the file's secret (stripped of its newline), not some other key.
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience="dashboard")
    assert claims["sub"]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, JWT_SECRET + "\n", algorithms=["HS256"], audience="dashboard")


def test_server_refuses_a_short_secret_in_a_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "jwt-secret"
    secret_file.write_text("too-short\n", encoding="utf-8")
    result = run(["server"], cli_env(JWT_SECRET_FILE=str(secret_file)), tmp_path)
    line = one_line_error(result, 2)
    assert "(9 characters)" in line  # the trailing newline is not part of the secret
