from __future__ import annotations

import pytest

from guruconnect.server.auth.passwords import Passwords


@pytest.fixture
def passwords() -> Passwords:
    return Passwords(time_cost=1, memory_cost_kib=1024, parallelism=1)


def test_hash_is_argon2id_with_the_configured_parameters(passwords: Passwords) -> None:
    encoded = passwords.hash("hunter2hunter2")
    assert encoded.startswith("$argon2id$")
    assert "m=1024,t=1,p=1" in encoded
    assert passwords.hash("hunter2hunter2") != encoded  # salted


def test_verify_accepts_the_password_and_nothing_else(passwords: Passwords) -> None:
    encoded = passwords.hash("hunter2hunter2")
    assert passwords.verify(encoded, "hunter2hunter2")
    assert not passwords.verify(encoded, "hunter2hunter3")
    assert not passwords.verify(encoded, "")
    assert not passwords.verify("not a hash", "hunter2hunter2")


def test_rehash_is_needed_only_when_parameters_change(passwords: Passwords) -> None:
    encoded = passwords.hash("hunter2hunter2")
    assert not passwords.needs_rehash(encoded)
    stronger = Passwords(time_cost=2, memory_cost_kib=2048, parallelism=1)
    assert stronger.needs_rehash(encoded)
    assert stronger.verify(encoded, "hunter2hunter2")  # old hashes still verify
    assert stronger.needs_rehash("garbage")
