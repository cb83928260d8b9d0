"""The WebSocket Origin check: no cross-site WebSocket hijacking.

A browser always sends ``Origin`` on a WebSocket upgrade and a page cannot forge it; a
native client (agent, reference client) sends none and is judged by its credential alone.

With a public URL configured, that URL is the server's one origin: what a proxy puts in
``Host`` does not matter (nginx's default ``Host $proxy_host`` is the upstream's address).
Without one, the server's origin is its own ``Host`` header (local installs), which the
trusted-host check (:mod:`guruconnect.server.hosts`) has already limited to known names.
"""

from __future__ import annotations

from starlette.datastructures import Headers


def origin_allowed(
    headers: Headers, scheme: str, allowed: list[str], public_url: str | None = None
) -> bool:
    origin = headers.get("origin")
    if origin is None:
        return True
    origin = origin.strip().lower()
    if public_url is not None:
        return origin == public_url or origin in allowed
    host = headers.get("host", "").strip().lower()
    own = {f"{scheme}://{host}"}
    # Behind a TLS-terminating proxy the browser's origin is https while we see http.
    if scheme in {"ws", "http"}:
        own |= {f"http://{host}", f"https://{host}"}
    else:
        own |= {f"https://{host}"}
    return origin in own or origin in allowed
