"""No credential reaches a log line, at any level, from the server or the agent side.

Every record logged during a login, an agent connecting with a key (in the header and in
its hello), a support-code redemption and a viewer session (ticket in the URL) is
captured at DEBUG (where websockets prints handshake headers) and rendered the way the
server renders it; none may contain the password, the JWT or its signature, the agent
key, the viewer ticket or the support code in any spelling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

import pytest

from guruconnect.client import AgentClient, ApiClient, ViewerClient
from guruconnect.protocol import ChatMessage
from tests.agent.conftest import AgentProcess, start_agent, xserver
from tests.conftest import PASSWORD
from tests.relay.conftest import Relay, events_of, eventually

__all__ = ["start_agent", "xserver"]


class Everything(logging.Handler):
    """Every record, rendered by the server's own formatter and also raw."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        root = logging.getLogger()
        self.setFormatter(root.handlers[0].formatter if root.handlers else None)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.lines.append(record.getMessage())


@pytest.fixture
def everything() -> Iterator[Everything]:
    handler = Everything()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    # Loggers that were quietened elsewhere speak up for this test.
    quiet = {name: logging.getLogger(name).level for name in ("websockets", "uvicorn", "httpx")}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield handler
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)
    root.setLevel(level)
    root.removeHandler(handler)


@pytest.mark.asyncio
async def test_no_credential_in_any_log_line(
    relay: Relay, admin_api: ApiClient, everything: Everything
) -> None:
    secrets: dict[str, str] = {"password": PASSWORD}
    api = await relay.api("tech")  # a login: the password goes in, a JWT comes out
    secrets["jwt"] = api.token
    secrets["jwt signature"] = api.token.rsplit(".", 1)[1]

    key = (await admin_api.issue_agent_key("hygiene"))["key"]
    secrets["agent key"] = key
    secrets["agent key secret part"] = key[16:]
    agent = await AgentClient.connect(relay.url, key=key)  # key in the header
    await agent.close()
    agent = await AgentClient.connect(relay.url, key=key, key_in_header=False)  # in the hello
    await agent.send_status()
    await admin_api.set_consent_policy(agent.auth.machine_id, "unattended")
    session = await admin_api.request_session(agent.auth.machine_id, "control")
    await agent.expect("keyframe_request")

    await admin_api._call(
        "PUT",
        f"/api/users/{relay.tech_id}/client-access",
        json={"machine_ids": [agent.auth.machine_id], "client_names": []},
    )
    ticket = await api.viewer_ticket(str(session["id"]), "control")
    secrets["viewer ticket"] = ticket
    viewer = await ViewerClient.connect(relay.url, str(session["id"]), ticket)
    await viewer.send(ChatMessage(text="hello"))
    await agent.expect("chat")
    await viewer.close()
    # A second, refused use of the same ticket is logged too (as a failure).
    with pytest.raises(Exception):  # noqa: B017, PT011 - refused either way
        await ViewerClient.connect(relay.url, str(session["id"]), ticket)

    code = (await api.create_support_code())["code"]
    plain = code.replace("-", "")
    secrets.update({"support code": code, "support code plain": plain})
    customer = await AgentClient.connect(relay.url, code=code, key_in_header=False)
    await customer.close()
    await eventually(lambda: events_of(relay.server, "support_code.redeemed"))
    # A wrong code, close to the real one, is logged as a failure.
    with pytest.raises(Exception):  # noqa: B017, PT011
        await AgentClient.connect(relay.url, code=plain[::-1], key_in_header=False)

    await agent.close()
    await api.aclose()

    lines = everything.lines
    assert len(lines) > 100  # DEBUG output was really captured
    assert any("websockets" in line for line in lines)
    # websockets previews a frame's bytes in hex: a credential spelled that way counts.
    hexed = {f"{what} (hex)": secret.encode().hex(" ")[:24] for what, secret in secrets.items()}
    for what, secret in {**secrets, **hexed}.items():
        for line in lines:
            assert secret not in line, f"{what} in a log line: {line[:300]}"
    # Prefixes and ids are what the logs carry instead.
    assert any(key[:16] in line for line in lines)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # logging, not storage
def test_real_agent_logs_no_credential(
    relay: Relay, start_agent: Callable[..., AgentProcess], everything: Everything
) -> None:
    """The agent process at DEBUG, with a key and with a support code: its own log (and
    the server's) carries neither."""

    async def issue() -> tuple[str, str]:
        api = await relay.api()
        try:
            key = (await api.issue_agent_key("real-agent"))["key"]
            code = (await api.create_support_code())["code"]
        finally:
            await api.aclose()
        return key, code

    key, code = asyncio.run(issue())
    with_key = start_agent(relay.url, key=key, extra=("--no-windows",))
    with_code = start_agent(relay.url, code=code, extra=("--no-windows",))

    async def both_connected() -> bool:
        rows = await events_of(relay.server, "agent.connected")
        return len(rows) >= 2

    asyncio.run(eventually(both_connected, timeout=30))
    asyncio.run(eventually(lambda: events_of(relay.server, "support_code.redeemed")))
    with_code.stop()
    with_key.stop()
    agent_log = with_key.log() + with_code.log()
    assert "connected" in agent_log  # the logs were really written
    assert "BINARY [" in agent_log  # at DEBUG, with websockets frame previews (summarised)
    secrets = {"key": key, "key secret": key[16:], "code": code, "plain": code.replace("-", "")}
    for what, secret in secrets.items():
        assert secret not in agent_log, f"{what} in the agent's log"
        for line in everything.lines:
            assert secret not in line, f"{what} in the server's log: {line[:300]}"
