"""The reference client: how to speak GuruConnect's protocol from Python.

Tests, benchmarks and the agent use it, so no caller hand-crafts frames::

    agent = await AgentClient.connect("ws://127.0.0.1:3002", key="cak_...")
    viewer = await ViewerClient.connect("ws://127.0.0.1:3002", session_id, ticket)

Errors::

    ClientError          anything that stops the client
    └── Refused          the relay closed the socket: ``code`` and ``reason`` say why
"""

from guruconnect.client.api import ApiClient
from guruconnect.client.connection import ClientError, Connection, Refused
from guruconnect.client.peers import AgentClient, ViewerClient

__all__ = ["AgentClient", "ApiClient", "ClientError", "Connection", "Refused", "ViewerClient"]
