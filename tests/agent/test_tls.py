"""The real agent process against a server terminating TLS with a test CA (trustme): it
verifies the relay's certificate by default, trusts a private CA given with --ca-file,
refuses a certificate from another CA or for another name with one line and exit code 4,
and skips verification only with --insecure-skip-tls-verify, saying so at every start."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from guruconnect.agent.tls import EXIT_UNTRUSTED_CERTIFICATE
from guruconnect.server import admin
from tests.agent.conftest import AgentProcess
from tests.conftest import LiveServer
from tests.timing import scaled, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server(
    sqlite_server: Callable[..., LiveServer], tmp_path: Path, ca: trustme.CA, *names: str
) -> LiveServer:
    leaf = ca.issue_cert(*names)
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    server = sqlite_server(tls_cert_file=cert, tls_key_file=key)
    server.create_user("root", is_admin=True)
    return server


def ca_file(ca: trustme.CA, path: Path) -> str:
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def wait_connected(agent: AgentProcess) -> None:
    try:
        wait_until(lambda: '"connected"' in agent.log(), 60, "the agent connected")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; its log: {agent.log()[-2000:]}") from None


def refused_with_one_line(agent: AgentProcess, needle: str) -> str:
    code = agent.wait(scaled(60))
    log = agent.log()
    assert code == EXIT_UNTRUSTED_CERTIFICATE, log[-2000:]
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if "not trusted" in line]
    assert len(lines) == 1, log[-2000:]
    assert needle in lines[0], lines[0]
    assert "reconnecting" not in log  # no retry storm against a server it cannot trust
    return lines[0]


def test_agent_trusts_the_private_ca_it_is_given(
    sqlite_server: Callable[..., LiveServer],
    start_agent: Callable[..., AgentProcess],
    tmp_path: Path,
    ca: trustme.CA,
) -> None:
    server = tls_server(sqlite_server, tmp_path, ca, "127.0.0.1")
    key = issue_key_direct(server)
    trusted = ca_file(ca, tmp_path / "ca.pem")
    agent = start_agent(server.url, key=key, extra=("--no-windows", "--ca-file", trusted))
    wait_connected(agent)
    assert "insecure" not in agent.log().lower()


def test_agent_refuses_a_certificate_of_another_ca(
    sqlite_server: Callable[..., LiveServer],
    start_agent: Callable[..., AgentProcess],
    tmp_path: Path,
    ca: trustme.CA,
) -> None:
    server = tls_server(sqlite_server, tmp_path, ca, "127.0.0.1")
    key = issue_key_direct(server)
    other = ca_file(trustme.CA(), tmp_path / "other-ca.pem")
    agent = start_agent(server.url, key=key, extra=("--no-windows", "--ca-file", other))
    refused_with_one_line(agent, "unable to get local issuer certificate")
    # The system store does not know the test CA either.
    agent = start_agent(server.url, key=key, extra=("--no-windows",))
    refused_with_one_line(agent, "unable to get local issuer certificate")


def test_agent_refuses_a_certificate_for_another_name(
    sqlite_server: Callable[..., LiveServer],
    start_agent: Callable[..., AgentProcess],
    tmp_path: Path,
    ca: trustme.CA,
) -> None:
    server = tls_server(sqlite_server, tmp_path, ca, "other.example")
    key = issue_key_direct(server)
    trusted = ca_file(ca, tmp_path / "ca.pem")
    agent = start_agent(server.url, key=key, extra=("--no-windows", "--ca-file", trusted))
    refused_with_one_line(agent, "IP address mismatch")


def test_skipping_verification_has_a_loud_name_and_warns(
    sqlite_server: Callable[..., LiveServer],
    start_agent: Callable[..., AgentProcess],
    tmp_path: Path,
    ca: trustme.CA,
) -> None:
    server = tls_server(sqlite_server, tmp_path, ca, "other.example")
    key = issue_key_direct(server)
    agent = start_agent(server.url, key=key, extra=("--no-windows", "--insecure-skip-tls-verify"))
    wait_connected(agent)
    assert "WARNING: --insecure-skip-tls-verify is set" in agent.log()


def issue_key_direct(server: LiveServer) -> str:
    """Seed a key through the admin code path (no HTTP client that would need the CA)."""
    key, _ = asyncio.run(admin.issue_agent_key(server.settings, tenant="default", machine=None))
    return key
