"""The WebSocket Origin check: no cross-site WebSocket hijacking.

A browser always sends ``Origin`` on a WebSocket upgrade and a page cannot forge it; a
native client (agent, reference client) sends none and is judged by its credential alone.
"""

from __future__ import annotations

from starlette.datastructures import Headers


def origin_allowed(headers: Headers, scheme: str, allowed: list[str]) -> bool:
    origin = headers.get("origin")
    if origin is None:
        return True
    origin = origin.strip().lower()
    host = headers.get("host", "").strip().lower()
    own = {f"{scheme}://{host}"}
    # Behind a TLS-terminating proxy the browser's origin is https while we see http.
    if scheme in {"ws", "http"}:
        own |= {f"http://{host}", f"https://{host}"}
    else:
        own |= {f"https://{host}"}
    return origin in own or origin in allowed
