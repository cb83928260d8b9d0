"""A thin REST client for the steps around a session: login, keys, codes, tickets."""

from __future__ import annotations

from typing import Any

import httpx


class ApiClient:
    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 15) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)
        if token:
            self.token = token

    @property
    def token(self) -> str:
        return self._http.headers["authorization"].removeprefix("Bearer ")

    @token.setter
    def token(self, value: str) -> None:
        self._http.headers["authorization"] = f"Bearer {value}"

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        response = await self._http.request(method, path, **kw)
        response.raise_for_status()
        return response.json() if response.content else None

    async def login(self, username: str, password: str) -> str:
        body = await self._call(
            "POST", "/api/auth/login", json={"username": username, "password": password}
        )
        self.token = body["access_token"]
        return self.token

    async def issue_agent_key(self, label: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", "/api/agent-keys", json={"label": label})
        return result

    async def create_support_code(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", "/api/support-codes")
        return result

    async def set_consent_policy(self, machine_id: str, policy: str) -> None:
        await self._call("PATCH", f"/api/machines/{machine_id}", json={"consent_policy": policy})

    async def request_session(self, machine_id: str, scope: str = "control") -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "POST", f"/api/machines/{machine_id}/sessions", json={"scope": scope}
        )
        return result

    async def viewer_ticket(self, session_id: str, scope: str = "control") -> str:
        body = await self._call(
            "POST", f"/api/sessions/{session_id}/viewer-token", json={"scope": scope}
        )
        ticket: str = body["ticket"]
        return ticket

    async def end_session(self, session_id: str) -> None:
        await self._call("DELETE", f"/api/sessions/{session_id}")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
