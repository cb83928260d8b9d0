from __future__ import annotations

from tests.conftest import LiveServer


def test_health_answers_ok_without_auth(server: LiveServer) -> None:
    response = server.client().get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
