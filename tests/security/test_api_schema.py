"""The REST API against its own OpenAPI document, with schemathesis, on a live server.

As an admin and as a technician, every operation gets generated requests (valid ones and,
in the negative pass, invalid ones): no 5xx, and every response matches the schema. The
routes that end the caller's own login (logout, revoke-user) and the endless console
event stream are left out of the generated run; their own tests cover them.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import schemathesis
from hypothesis import given
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.conftest import LiveServer
from tests.security.conftest import ServerErrors
from tests.security.strategies import budget

#: Examples per operation, mode and role in CI; ``make schema-long`` raises it.
EXAMPLES = int(os.environ.get("GURUCONNECT_SCHEMA_EXAMPLES", "0")) or 6
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
#: Would end the run's own login midway (or, requiring MFA of the tenant, hold it to the
#: enrolment routes).
SKIP = {
    ("POST", "/api/auth/logout"),
    ("POST", "/api/auth/revoke-user/{user_id}"),
    ("PUT", "/api/auth/policy"),
    # An endless event stream (tests/web/test_console_stream.py attacks it).
    ("GET", "/api/console/events"),
}


def _seed(server: LiveServer) -> dict[str, str]:
    """An admin and a technician with tokens; a second tenant with data to stay out of."""
    server.create_user("root", is_admin=True)
    server.create_user("tech")
    server.create_tenant("other")
    server.create_user("other-admin", is_admin=True, tenant="other")
    return {"admin": server.login("root"), "tech": server.login("tech")}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_matches_its_schema(
    server_factory: Callable[..., LiveServer],
    server_errors: ServerErrors,
    mode: GenerationMode,
) -> None:
    server = server_factory(login_rate_limit="100000/minute")
    tokens = _seed(server)
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20  # the whole API, not an empty document
    tested = 0
    for operation in operations:
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        for role, token in tokens.items():
            try:
                _run(operation, mode, server.url, {"Authorization": f"Bearer {token}"})
            except Exception as exc:
                exc.add_note(f"{operation.method.upper()} {operation.path} as {role}")
                raise
            tested += 1
    assert tested >= 2 * (len(operations) - len(SKIP))
    assert not server_errors.records, server_errors.lines()


def _run(
    operation: schemathesis.APIOperation, mode: GenerationMode, url: str, headers: dict[str, str]
) -> None:
    @budget(EXAMPLES)
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)

    try:
        check()
    except Unsatisfiable:
        # Negative mode: an operation that takes no input has no invalid input to send.
        assert mode is GenerationMode.NEGATIVE
        assert not operation.body
        assert not list(operation.iter_parameters())
