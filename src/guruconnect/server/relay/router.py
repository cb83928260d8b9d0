"""The relay's two WebSocket routes.

Plain Starlette routes, not FastAPI's: the endpoints take the socket and nothing else, and
FastAPI's dependency machinery (an exit stack and solved dependencies per connection) is
kept alive for as long as the socket lives, which for an idle agent is most of its cost.
"""

from __future__ import annotations

from fastapi import APIRouter

from guruconnect.server.relay.agent_socket import agent_endpoint
from guruconnect.server.relay.viewer_socket import viewer_endpoint

router = APIRouter()
router.add_websocket_route("/ws/agent", agent_endpoint)
router.add_websocket_route("/ws/viewer", viewer_endpoint)
