"""The server terminating TLS itself: a real ``guruconnect server`` process, a test CA
(trustme), real handshakes reading the certificate the server presents, and SIGHUP."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
from pathlib import Path

import httpx
import trustme

from tests.conftest import JWT_SECRET
from tests.server.test_cli import GURUCONNECT, cli_env, free_port, one_line_error, run
from tests.timing import scaled, wait_until


def write_pair(leaf: trustme.LeafCert, cert: Path, key: Path) -> bytes:
    """Write the certificate chain and key; returns the leaf certificate (DER)."""
    leaf.private_key_pem.write_to_path(str(key))
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


def served_certificate(port: int, context: ssl.SSLContext) -> bytes | None:
    """One full handshake (no session reuse): the leaf the server presents, or None."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=scaled(5)) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            return tls.getpeercert(binary_form=True)
    except OSError:
        return None


def test_sighup_reloads_the_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    first = write_pair(ca.issue_cert("localhost", "127.0.0.1"), cert, key)
    client = ssl.create_default_context()
    ca.configure_trust(client)

    port = free_port()
    env = cli_env(JWT_SECRET=JWT_SECRET)
    stderr_path = tmp_path / "server.err"
    args = ["server", "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)]
    with stderr_path.open("w") as err:
        process = subprocess.Popen(
            [GURUCONNECT, *args],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
        )

    def log() -> str:
        return stderr_path.read_text(errors="replace")

    try:
        served = wait_until(lambda: served_certificate(port, client), 20, "a TLS handshake")
        assert served == first
        response = httpx.get(f"https://localhost:{port}/health", verify=client, timeout=10)
        assert response.status_code == 200
        # Plain HTTP on the TLS port gets no answer from the application.
        with socket.create_connection(("127.0.0.1", port), timeout=scaled(5)) as plain:
            plain.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert b'"ok"' not in plain.recv(4096)

        # A renewed certificate: the files change, SIGHUP, new handshakes see it.
        second = write_pair(ca.issue_cert("localhost", "127.0.0.1"), cert, key)
        assert second != first
        process.send_signal(signal.SIGHUP)
        wait_until(
            lambda: served_certificate(port, client) == second, 10, "the new certificate served"
        )
        assert served_certificate(port, client) == second
        assert "TLS certificate reloaded" in log()

        # A broken pair (key of another certificate) is refused; the last good one stays.
        ca.issue_cert("localhost").private_key_pem.write_to_path(str(key))
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: "TLS certificate not reloaded" in log(), 10, "the refusal logged")
        assert served_certificate(port, client) == second
        assert process.poll() is None, log()
    finally:
        process.terminate()
        process.wait(scaled(15))
    assert "Traceback" not in log()


def test_unusable_certificate_is_a_one_line_error(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    write_pair(ca.issue_cert("localhost"), cert, key)
    ca.issue_cert("localhost").private_key_pem.write_to_path(str(key))  # does not match
    env = cli_env(JWT_SECRET=JWT_SECRET)
    args = ["server", "--port", str(free_port()), "--tls-cert", str(cert), "--tls-key", str(key)]
    line = one_line_error(run(args, env, tmp_path), 1)
    assert "TLS certificate or key unusable" in line
    assert not (tmp_path / "guruconnect.db").exists()  # refused before touching the database
