"""Fuzz the credential parsers and the unauthenticated edge of both sockets.

The parsers are pure functions (``secrets_format``, the Origin check): whatever text
arrives they answer, never raise, and never let one plane's credential pass for another's.
The sockets are fuzzed before authentication: an agent's first message and a viewer's
query string and bearer header, each on a fresh connection. Every one must end in a
refusal close code; a 1011 or a logged server error is a bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from guruconnect.client import Connection
from guruconnect.client.connection import ClientError
from guruconnect.client.peers import ws_base
from guruconnect.protocol.close_codes import CloseCode
from guruconnect.protocol.planes import Plane
from guruconnect.server.auth import secrets_format as fmt
from guruconnect.server.auth.secrets_format import CredentialKind
from guruconnect.server.relay.origin import origin_allowed
from tests.relay.conftest import Relay
from tests.security.conftest import ServerErrors
from tests.security.strategies import budget, envelope_of, hostile_text, mutate, plane_messages
from tests.security.test_fuzz_handlers import FUZZ_SETTINGS, NOT_OUR_RANDOM

# Text shaped like each plane's credential, and near misses of it.
_URLSAFE = st.text(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"),
    min_size=40,
    max_size=46,
)
near_credentials = st.one_of(
    hostile_text,
    st.builds(lambda p, r: p + r, st.sampled_from(["cak_", "cvt_", "CAK_", "cak", ""]), _URLSAFE),
    st.builds(
        lambda a, b, c: f"eyJ{a}.{b}.{c}",
        _URLSAFE,
        st.text(max_size=10),
        st.text(max_size=10),
    ),
    st.text(st.sampled_from(fmt.SUPPORT_CODE_ALPHABET + "-  abc01OIL\x00"), max_size=14),
)


@budget(1500)
@given(text=near_credentials)
def test_credential_parsers_never_raise_and_never_overlap(text: str) -> None:
    kind = fmt.classify(text)
    lookup = fmt.agent_key_lookup(text)
    code_digest = fmt.support_code_digest(text)
    assert (lookup is not None) == (kind is CredentialKind.AGENT_KEY)
    if lookup is not None:
        assert text.startswith(lookup)
        assert len(lookup) == fmt.AGENT_KEY_LOOKUP_LENGTH
    assert fmt.is_viewer_ticket(text) == (kind is CredentialKind.VIEWER_TICKET)
    if kind is CredentialKind.SUPPORT_CODE:
        assert code_digest is not None
    elif code_digest is not None:
        # A code-shaped string that is also another kind (never: lengths differ).
        raise AssertionError(f"{text!r} is {kind} and a support code")


@budget(1000)
@given(
    origin=st.none() | hostile_text | st.sampled_from(["null", "http://evil", "HTTP://H"]),
    host=hostile_text | st.just("h"),
    scheme=st.sampled_from(["ws", "wss", "http", "https"]),
)
def test_origin_check_never_raises(origin: str | None, host: str, scheme: str) -> None:
    raw = {"host": host.encode("utf-8", "replace").decode("latin-1")}
    if origin is not None:
        raw["origin"] = origin.encode("utf-8", "replace").decode("latin-1")
    allowed = origin_allowed(Headers(raw), scheme, [])
    if origin is not None and allowed:
        # Only the server's own host, in some scheme, passes.
        assert origin.strip().lower().split("://", 1)[-1] == host.strip().lower()


#: Closes a stranger may earn before it is authenticated.
PRE_AUTH = {
    CloseCode.UNAUTHORIZED,
    CloseCode.SESSION_NOT_FOUND,
    CloseCode.PROTOCOL_ERROR,
    CloseCode.NOT_ALLOWED,
    CloseCode.MESSAGE_TOO_BIG,
    CloseCode.RATE_LIMITED,
}


async def _closed_with(conn: Connection) -> int | None:
    code, _ = await conn.wait_closed(timeout=15)
    return code


@NOT_OUR_RANDOM
def test_agent_first_message(
    relay_factory: Callable[..., Relay], server_errors: ServerErrors
) -> None:
    relay = relay_factory(**FUZZ_SETTINGS)
    url = ws_base(relay.url) + "/ws/agent"
    first = st.one_of(
        envelope_of("agent_hello"), mutate(envelope_of("agent_hello")), plane_messages(Plane.AGENT)
    )

    with asyncio.Runner() as runner:

        async def one(data: bytes) -> None:
            conn = Connection(await Connection.open(url))
            try:
                with contextlib.suppress(ClientError):
                    await conn.send_raw(data)
                code = await _closed_with(conn)
            finally:
                await conn.close()
                conn.ws.transport.abort()
            assert code in PRE_AUTH, (code, conn.close_reason, data[:80])
            assert not server_errors.records, server_errors.lines()

        @budget(60)
        @given(data=first)
        def check(data: bytes) -> None:
            runner.run(one(data))

        check()


@NOT_OUR_RANDOM
def test_viewer_query_and_header(
    relay_factory: Callable[..., Relay], server_errors: ServerErrors
) -> None:
    relay = relay_factory(**FUZZ_SETTINGS)
    base = ws_base(relay.url) + "/ws/viewer"
    value = near_credentials | st.uuids().map(str)

    with asyncio.Runner() as runner:

        async def one(session_id: str | None, ticket: str | None, header: str | None) -> None:
            query = {k: v for k, v in (("session_id", session_id), ("ticket", ticket)) if v}
            url = base + ("?" + urllib.parse.urlencode(query) if query else "")
            headers = {}
            if header is not None:
                # Only what an HTTP client will put in a header: visible ASCII.
                visible = "".join(c for c in header if "!" <= c <= "~")
                headers["Authorization"] = f"Bearer {visible}".strip()
            conn = Connection(await Connection.open(url, headers=headers))
            try:
                code = await _closed_with(conn)
            finally:
                await conn.close()
                conn.ws.transport.abort()
            assert code in PRE_AUTH, (code, conn.close_reason, url)
            assert not server_errors.records, server_errors.lines()

        @budget(60)
        @given(session_id=st.none() | value, ticket=st.none() | value, header=st.none() | value)
        def check(session_id: str | None, ticket: str | None, header: str | None) -> None:
            runner.run(one(session_id, ticket, header))

        check()
