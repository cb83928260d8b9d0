"""The update decisions, with literal inputs: every refusal rule, and what each one costs
an attacker who controls the server (the database, the files, the relay)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from guruconnect.releases import manifest as mf
from guruconnect.releases.decision import (
    Ignore,
    Install,
    Reason,
    Refuse,
    judge_artifact,
    judge_offer,
    version_key,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KEY = mf.new_private_key()
OTHER_KEY = mf.new_private_key()
SHA = "ab" * 32


def manifest(**changes: object) -> mf.Manifest:
    base = mf.Manifest(
        version="1.2.0",
        platform="linux",
        arch="x86_64",
        size=1000,
        sha256=SHA,
        channel="stable",
        filename="guruconnect-agent-1.2.0-linux-x86_64",
        expires_at=NOW + timedelta(days=30),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def judge(data: bytes, signature: str, *, keys: list[object] | None = None, current: str = "1.1.0"):  # type: ignore[no-untyped-def]
    return judge_offer(
        data,
        signature,
        keys=[KEY.public_key()] if keys is None else keys,  # type: ignore[arg-type]
        current_version=current,
        platform="linux",
        arch="x86_64",
        now=NOW,
    )


def signed(m: mf.Manifest, key: object = KEY) -> tuple[bytes, str]:
    data = m.encode()
    return data, mf.sign(data, key)  # type: ignore[arg-type]


def test_a_signed_newer_release_for_this_platform_is_installed() -> None:
    decision = judge(*signed(manifest()))
    assert isinstance(decision, Install)
    assert decision.manifest == manifest()


def test_the_same_version_is_ignored_not_refused() -> None:
    assert isinstance(judge(*signed(manifest()), current="1.2.0"), Ignore)


def test_a_full_agent_version_compares_as_its_release_part() -> None:
    assert isinstance(judge(*signed(manifest()), current="1.2.0-48076e1-dirty"), Ignore)
    assert version_key("1.2.0-48076e1") == version_key("1.2.0")
    assert version_key("garbage!") < version_key("0.0.1")


@pytest.mark.parametrize(
    ("changes", "current", "reason"),
    [
        ({"version": "1.0.0"}, "1.1.0", Reason.OLDER_VERSION),
        ({"version": "1.10.0"}, "1.9.0", None),  # numeric, not string order
        ({"expires_at": NOW}, "1.1.0", Reason.EXPIRED),
        ({"expires_at": NOW - timedelta(seconds=1)}, "1.1.0", Reason.EXPIRED),
        ({"platform": "windows"}, "1.1.0", Reason.WRONG_PLATFORM),
        ({"arch": "arm64"}, "1.1.0", Reason.WRONG_PLATFORM),
    ],
)
def test_refusals_of_signed_manifests(
    changes: dict[str, object], current: str, reason: Reason | None
) -> None:
    decision = judge(*signed(manifest(**changes)), current=current)
    if reason is None:
        assert isinstance(decision, Install)
    else:
        assert isinstance(decision, Refuse)
        assert decision.reason is reason
        assert decision.line.startswith(f"update refused: {reason.value}: ")


def test_a_server_that_edits_the_signed_manifest_is_refused() -> None:
    """The server holds the manifest and could rewrite any field: say, an older version's
    hash under a newer number, or a later expiry. Every edit breaks the signature."""
    data, signature = signed(manifest())
    for field, value in [
        ("version", "9.9.9"),
        ("sha256", "cd" * 32),
        ("expires_at", "2099-01-01T00:00:00Z"),
        ("platform", "windows"),
    ]:
        document = json.loads(data)
        document[field] = value
        forged = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        decision = judge(forged, signature)
        assert isinstance(decision, Refuse)
        assert decision.reason is Reason.BAD_SIGNATURE
    # A whitespace change alone: the signature covers the exact bytes.
    assert judge(data + b" ", signature) == Refuse(
        Reason.BAD_SIGNATURE, "no trusted release key signed this manifest"
    )


def test_a_manifest_signed_by_another_key_is_refused() -> None:
    """A server that makes its own key pair can sign anything, but not as the operator."""
    decision = judge(*signed(manifest(), OTHER_KEY))
    assert isinstance(decision, Refuse)
    assert decision.reason is Reason.BAD_SIGNATURE


@pytest.mark.parametrize("signature", ["", "not base64!", "AAAA", "A" * 88])
def test_garbage_signatures_are_refused(signature: str) -> None:
    data, _ = signed(manifest())
    decision = judge(data, signature)
    assert isinstance(decision, Refuse)
    assert decision.reason is Reason.BAD_SIGNATURE


def test_several_trusted_keys_allow_rotation() -> None:
    keys = [OTHER_KEY.public_key(), KEY.public_key()]
    assert isinstance(judge(*signed(manifest()), keys=keys), Install)  # type: ignore[arg-type]
    assert isinstance(judge(*signed(manifest(), OTHER_KEY), keys=keys), Install)  # type: ignore[arg-type]


def test_an_agent_without_keys_trusts_nothing() -> None:
    decision = judge(*signed(manifest()), keys=[])
    assert isinstance(decision, Refuse)
    assert decision.reason is Reason.NO_TRUSTED_KEYS


def test_a_signed_but_malformed_manifest_is_refused() -> None:
    for document in [
        b"[]",
        b'{"type": "something-else"}',
        json.dumps({**json.loads(manifest().encode()), "size": "10"}).encode(),
        json.dumps({**json.loads(manifest().encode()), "filename": "../../etc/x"}).encode(),
        json.dumps({**json.loads(manifest().encode()), "expires_at": "tomorrow"}).encode(),
    ]:
        decision = judge(document, mf.sign(document, KEY))
        assert isinstance(decision, Refuse), document
        assert decision.reason is Reason.MALFORMED


def test_the_downloaded_file_must_match_size_and_hash() -> None:
    m = manifest()
    assert judge_artifact(m, size=1000, sha256=SHA) is None
    short = judge_artifact(m, size=999, sha256=SHA)
    assert short is not None
    assert short.reason is Reason.SIZE_MISMATCH
    tampered = judge_artifact(m, size=1000, sha256="cd" * 32)
    assert tampered is not None
    assert tampered.reason is Reason.HASH_MISMATCH


def test_public_keys_load_from_one_file_with_several_blocks() -> None:
    pem = mf.public_pem(KEY.public_key()) + b"\n" + mf.public_pem(OTHER_KEY.public_key())
    keys = mf.load_public_keys(pem)
    assert [mf.key_id(k) for k in keys] == [
        mf.key_id(KEY.public_key()),
        mf.key_id(OTHER_KEY.public_key()),
    ]
    assert mf.load_public_keys(b"") == []
    with pytest.raises(mf.ManifestError):
        mf.load_private_key(pem)
