"""The relay's two WebSocket routes."""

from __future__ import annotations

from fastapi import APIRouter

from guruconnect.server.relay.agent_socket import agent_endpoint
from guruconnect.server.relay.viewer_socket import viewer_endpoint

router = APIRouter()
router.add_api_websocket_route("/ws/agent", agent_endpoint)
router.add_api_websocket_route("/ws/viewer", viewer_endpoint)
