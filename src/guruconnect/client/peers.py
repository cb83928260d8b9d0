"""The two kinds of client: an agent and a viewer."""

from __future__ import annotations

from ssl import SSLContext

from guruconnect.client.connection import DEFAULT_MAX_SIZE, Connection, Refused
from guruconnect.protocol import (
    AgentHello,
    AgentStatus,
    AuthResult,
    Codec,
    ConsentResponse,
    SessionState,
    ViewerHello,
)


def ws_base(url: str) -> str:
    """``http://host:port`` or ``ws://host:port`` -> ``ws://host:port`` (likewise https)."""
    url = url.rstrip("/")
    if url.startswith("http://"):
        return "ws://" + url.removeprefix("http://")
    if url.startswith("https://"):
        return "wss://" + url.removeprefix("https://")
    return url


class AgentClient(Connection):
    auth: AuthResult

    @classmethod
    async def connect(
        cls,
        server: str,
        *,
        key: str | None = None,
        code: str | None = None,
        key_in_header: bool = True,
        hostname: str = "test-host",
        os: str = "Linux",
        agent_version: str = "0.1.0",
        origin: str | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        ssl: SSLContext | None = None,
    ) -> AgentClient:
        """Connect and authenticate; raises :class:`Refused` when the relay says no."""
        headers = {"Authorization": f"Bearer {key}"} if key and key_in_header else {}
        ws = await cls.open(
            ws_base(server) + "/ws/agent",
            headers=headers,
            origin=origin,
            max_size=max_size,
            ssl=ssl,
        )
        client = cls(ws)
        if not headers:
            hello = AgentHello(hostname=hostname, os=os, agent_version=agent_version)
            if code is not None:
                hello.support_code = code
            elif key is not None:
                hello.agent_key = key
            await client.send(hello)
        try:
            client.auth = await client.expect("auth_result")
        except Refused:
            raise
        except TimeoutError:
            await client.close()
            raise
        return client

    async def send_status(
        self, *, encoders: list[Codec] | None = None, hostname: str = "test-host", **kw: object
    ) -> None:
        status = AgentStatus(
            hostname=hostname,
            encoders=encoders or [Codec.CODEC_RAW_ZSTD],
            **kw,  # type: ignore[arg-type]
        )
        await self.send(status)

    async def answer_consent(self, session_id: str, granted: bool, reason: str = "") -> None:
        await self.send(ConsentResponse(session_id=session_id, granted=granted, reason=reason))


class ViewerClient(Connection):
    state: SessionState

    @classmethod
    async def connect(
        cls,
        server: str,
        session_id: str,
        ticket: str,
        *,
        ticket_in_header: bool = False,
        origin: str | None = None,
        codecs: list[Codec] | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        ssl: SSLContext | None = None,
    ) -> ViewerClient:
        """Open the viewer socket; returns after the first SessionState arrives."""
        url = f"{ws_base(server)}/ws/viewer?session_id={session_id}"
        headers = {}
        if ticket_in_header:
            headers["Authorization"] = f"Bearer {ticket}"
        else:
            url += f"&ticket={ticket}"
        ws = await cls.open(url, headers=headers, origin=origin, max_size=max_size, ssl=ssl)
        client = cls(ws)
        await client.send(ViewerHello(codecs=codecs or [Codec.CODEC_RAW_ZSTD]))
        client.state = await client.expect("session_state")
        return client
