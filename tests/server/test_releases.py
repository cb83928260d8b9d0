"""Releases on the server: keygen and publish (real CLI subprocesses), downloads (Range,
ETag, types) attacked with traversal, update policies, and the install commands run for
real against the live server."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from guruconnect.releases import manifest as mf
from guruconnect.server import admin
from tests.conftest import Database, LiveServer
from tests.server.test_cli import cli_env, one_line_error, run

#: Serving files does not depend on the database; publish and policies run on both.
SQLITE_ONLY = pytest.mark.parametrize("database", ["sqlite"], indirect=True)
ARTIFACT = b"\x7fELF pretend agent " + bytes(range(256)) * 40


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public, _ = admin.release_keygen(tmp_path / "offline")
    return private, public


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "build" / "guruconnect-agent"
    path.parent.mkdir()
    path.write_bytes(ARTIFACT)
    return path


@pytest.fixture
def data_server(server_factory: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    return server_factory(home=tmp_path / "data")


def publish(live: LiveServer, artifact: Path, key: Path, version: str = "1.2.0") -> str:
    release = asyncio.run(
        admin.publish_release(
            live.settings,
            artifact,
            version=version,
            platform="linux",
            arch="x86_64",
            key_file=key,
        )
    )
    return release.filename


# -- keygen and publish, as the operator runs them --------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(
    tmp_path: Path,
) -> None:
    target = tmp_path / "offline"
    result = run(["admin", "release", "keygen", str(target)], cli_env(), tmp_path)
    assert result.returncode == 0, result.stderr
    private = target / "release-signing.key"
    public = target / "release-signing.pub.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = mf.load_private_key(private.read_bytes())
    assert [mf.key_id(k) for k in mf.load_public_keys(public.read_bytes())] == [
        mf.key_id(key.public_key())
    ]
    before = private.read_bytes()
    again = run(["admin", "release", "keygen", str(target)], cli_env(), tmp_path)
    assert "refusing to overwrite" in one_line_error(again, 1)
    assert private.read_bytes() == before


def test_publish_signs_stores_and_records(
    database: Database, tmp_path: Path, keys: tuple[Path, Path], artifact: Path
) -> None:
    private, public = keys
    data_dir = tmp_path / "data"
    env = cli_env(database, GURUCONNECT_HOME=str(data_dir))
    args = ["admin", "release", "publish", str(artifact), "--version", "1.2.0",
            "--key", str(private), "--notes", "first"]  # fmt: skip
    result = run(args, env, tmp_path)
    assert result.returncode == 0, result.stderr
    name = "guruconnect-agent-1.2.0-linux-x86_64"
    assert (data_dir / "releases" / name).read_bytes() == ARTIFACT
    rows = database.sql("SELECT manifest, signature, sha256, size_bytes, notes FROM releases")
    [(manifest, signature, sha256, size, notes)] = rows
    assert mf.verify(manifest.encode(), signature, mf.load_public_keys(public.read_bytes()))
    parsed = mf.parse(manifest.encode())
    assert (parsed.sha256, parsed.size) == (hashlib.sha256(ARTIFACT).hexdigest(), len(ARTIFACT))
    assert (sha256, size, notes) == (parsed.sha256, parsed.size, "first")
    # The same version again, a wrong key file, a bad platform: one line each.
    assert "exists already" in one_line_error(run(args, env, tmp_path), 1)
    bad_key = [*args[:7], str(public)]
    assert "private key" in one_line_error(run(bad_key, env, tmp_path), 1)
    other = [*args[:5], "1.3.0", "--key", str(private), "--platform", "beos"]
    assert "unknown platform" in one_line_error(run(other, env, tmp_path), 1)


# -- downloads --------------------------------------------------------------------------


@SQLITE_ONLY
def test_download_with_etag_range_and_type(
    data_server: LiveServer, keys: tuple[Path, Path], artifact: Path
) -> None:
    name = publish(data_server, artifact, keys[0])
    http = data_server.client()
    full = http.get(f"/downloads/{name}")
    assert full.status_code == 200
    assert full.content == ARTIFACT
    assert full.headers["content-type"] == "application/octet-stream"
    assert full.headers["x-content-type-options"] == "nosniff"
    etag = full.headers["etag"]
    part = http.get(f"/downloads/{name}", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == ARTIFACT[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(ARTIFACT)}"
    assert http.get(f"/downloads/{name}", headers={"If-None-Match": etag}).status_code == 304
    assert http.head(f"/downloads/{name}").headers["content-length"] == str(len(ARTIFACT))


def _raw_get(live: LiveServer, target: bytes) -> tuple[int, bytes]:
    """A request line sent byte for byte (HTTP clients normalise ``..`` away)."""
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


@SQLITE_ONLY
def test_the_join_page_serves_the_newest_published_release(
    data_server: LiveServer, keys: tuple[Path, Path], artifact: Path
) -> None:
    """Without GURUCONNECT_AGENT_DIST_DIR, a customer's join download is the newest stable
    release published for the platform, bound to the code by its name."""
    data_server.create_user("tech")
    code = data_server.client(token=data_server.login("tech")).post("/api/support-codes")
    assert code.status_code == 201, code.text
    join = code.json()["code"]
    http = data_server.client()
    assert http.get(f"/join/{join}/details").json()["downloads"] == []
    assert http.get(f"/join/{join}/download/linux-x86_64").status_code == 404
    publish(data_server, artifact, keys[0], version="1.2.0")
    newer = artifact.with_name("newer")
    newer.write_bytes(ARTIFACT + b"newer")
    publish(data_server, newer, keys[0], version="1.10.0")
    details = http.get(f"/join/{join}/details").json()
    assert [d["platform"] for d in details["downloads"]] == ["linux-x86_64"]
    download = http.get(f"/join/{join}/download/linux-x86_64")
    assert download.status_code == 200
    assert download.content == ARTIFACT + b"newer"
    port = data_server.url.rsplit(":", 1)[1]
    assert (
        f"guruconnect-join_{join}_http_127.0.0.1_{port}" in download.headers["content-disposition"]
    )


@SQLITE_ONLY
def test_downloads_serve_published_files_only(
    data_server: LiveServer, keys: tuple[Path, Path], artifact: Path, tmp_path: Path
) -> None:
    name = publish(data_server, artifact, keys[0])
    secret = b"SECRET-" + os.urandom(8).hex().encode()
    data_dir = tmp_path / "data"
    (data_dir / "secret.txt").write_bytes(secret)
    # A file dropped beside the releases, named like one, but never published.
    (data_dir / "releases" / "guruconnect-agent-9.9.9-linux-x86_64").write_bytes(secret)
    (data_dir / "releases" / "guruconnect-agent-link").symlink_to(data_dir / "secret.txt")
    targets = [
        b"/downloads/",
        b"/downloads",
        b"/downloads/guruconnect-agent-9.9.9-linux-x86_64",
        b"/downloads/guruconnect-agent-link",
        b"/downloads/../secret.txt",
        b"/downloads/..%2fsecret.txt",
        b"/downloads/%2e%2e/secret.txt",
        b"/downloads/%2e%2e%2fsecret.txt",
        b"/downloads/%2E%2E%2Fdata%2Fsecret.txt",
        b"/downloads/..%5csecret.txt",
        b"/downloads/..\\secret.txt",
        b"/downloads/" + str(data_dir / "secret.txt").encode(),
        b"/downloads/%2f" + str(data_dir / "secret.txt").encode().lstrip(b"/"),
        b"/downloads/" + name.encode() + b"%00",
        b"/downloads/" + name.encode() + b"%00.txt",
        b"/downloads/" + name.encode() + b"/../../secret.txt",
        b"/downloads/guruconnect-agent-..%2f..%2fsecret.txt",
        b"/downloads/guruconnect-agent-..",
        b"/downloads/%252e%252e%252fsecret.txt",
        b"/downloads//etc/passwd",
    ]
    for target in targets:
        status, body = _raw_get(data_server, target)
        assert status in (400, 404), (target, status)
        assert secret not in body, target
        assert b"root:" not in body, target
    assert _raw_get(data_server, b"/downloads/" + name.encode())[0] == 200
    # A published name whose file was swapped for a symlink serves nothing.
    published = data_dir / "releases" / name
    published.unlink()
    published.symlink_to(data_dir / "secret.txt")
    status, body = _raw_get(data_server, b"/downloads/" + name.encode())
    assert status == 404
    assert secret not in body


# -- policies and install commands --------------------------------------------------------


def test_update_policies_are_for_admins(data_server: LiveServer) -> None:
    data_server.create_user("boss", is_admin=True)
    data_server.create_user("tech")
    boss = data_server.client(token=data_server.login("boss"))
    tech = data_server.client(token=data_server.login("tech"))
    assert tech.put("/api/update-policies", json={"paused": True}).status_code == 403
    assert tech.get("/api/update-policies").status_code == 403
    both = {"machine_id": "3f0c6a52-8c1e-4b7e-9d35-1f2a7c9e0b44", "client_name": "acme"}
    assert boss.put("/api/update-policies", json=both).status_code == 422
    assert boss.put("/api/update-policies", json={"pinned_version": "../x"}).status_code == 422
    pinned = boss.put("/api/update-policies", json={"client_name": "acme", "pinned_version": "1.2"})
    assert pinned.status_code == 200, pinned.text
    # Setting the same scope again replaces its policy.
    assert boss.put("/api/update-policies", json={"client_name": "acme", "paused": True}).is_success
    [policy] = boss.get("/api/update-policies").json()
    assert (policy["client_name"], policy["paused"], policy["pinned_version"]) == (
        "acme", True, None,
    )  # fmt: skip
    assert boss.delete(f"/api/update-policies/{policy['id']}").status_code == 204
    assert boss.get("/api/update-policies").json() == []
    assert [e.detail["paused"] for e in data_server.events("update_policy.set")] == [False, True]


@SQLITE_ONLY
def test_the_linux_install_command_downloads_and_verifies_for_real(
    data_server: LiveServer, keys: tuple[Path, Path], artifact: Path, tmp_path: Path
) -> None:
    publish(data_server, artifact, keys[0])
    data_server.create_user("boss", is_admin=True)
    boss = data_server.client(token=data_server.login("boss"))
    commands = boss.get("/api/install-commands").json()
    linux, windows = commands["linux"], commands["windows"]
    assert data_server.url in linux
    assert commands["placeholder"] in linux
    assert windows is None  # no Windows release published
    # The download and SHA-256 check lines, run as the page shows them.
    fetch = "\n".join(linux.splitlines()[:3]) + "\nsha256sum guruconnect-agent\n"
    done = subprocess.run(
        ["/bin/bash", "-euo", "pipefail", "-c", fetch],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "guruconnect-agent: OK" in done.stdout
    assert hashlib.sha256(ARTIFACT).hexdigest() in done.stdout
    # A tampered file on the server fails the check the customer runs.
    (tmp_path / "data" / "releases" / commands["linux_release"]["filename"]).write_bytes(
        ARTIFACT[:-1] + b"X"
    )
    tampered = subprocess.run(
        ["/bin/bash", "-euo", "pipefail", "-c", fetch],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert tampered.returncode != 0
    assert "FAILED" in tampered.stdout + tampered.stderr
    assert json.dumps(commands)  # serialisable, nothing odd
