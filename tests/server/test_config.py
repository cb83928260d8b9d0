"""Settings come from the environment, once, with clear one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from guruconnect.server.config import (
    ConfigError,
    load_database_settings,
    load_settings,
)

GOOD = "k" * 32


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GURUCONNECT_") or name in {
            "JWT_SECRET",
            "JWT_SECRET_FILE",
            "DATABASE_URL",
        }:
            monkeypatch.delenv(name)


def test_secret_is_mandatory() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "JWT_SECRET is not set" in message
    assert "\n" not in message


@pytest.mark.parametrize("secret", ["", "x", "y" * 31])
def test_short_secret_is_refused(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv("JWT_SECRET", secret)
    with pytest.raises(ConfigError, match="at least 32 characters"):
        load_settings()


def test_secret_of_32_characters_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", GOOD)
    assert load_settings().secret == GOOD


def test_secret_never_shows_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", GOOD)
    assert GOOD not in repr(load_settings())


def test_secret_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(GOOD + "\n")
    monkeypatch.setenv("JWT_SECRET_FILE", str(path))
    assert load_settings().secret == GOOD
    path.write_text("short\n")
    with pytest.raises(ConfigError, match="too short"):
        load_settings()


def test_unreadable_secret_file_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JWT_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="cannot be read") as caught:
        load_settings()
    assert "\n" not in str(caught.value)


def test_defaults_are_the_embedded_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JWT_SECRET", GOOD)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    settings = load_settings()
    # The SQLite file lives in the home, by absolute path: the same from any directory.
    assert settings.home == tmp_path / "config" / "guruconnect"
    assert settings.database_url == f"sqlite+aiosqlite:///{settings.home}/guruconnect.db"
    assert settings.node_id == "default"
    assert settings.metrics_token is None
    assert (settings.host, settings.port) == ("127.0.0.1", 3002)
    assert settings.redis_url is None
    assert settings.trusted_proxies == []
    assert settings.login_rate_limit == "10/minute"


def test_environment_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", GOOD)
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://db/guru")
    monkeypatch.setenv("GURUCONNECT_PORT", "4000")
    monkeypatch.setenv("GURUCONNECT_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2")
    monkeypatch.setenv("GURUCONNECT_ACCESS_TOKEN_TTL_SECONDS", "900")
    settings = load_settings()
    assert settings.database_url == "postgresql+asyncpg://db/guru"
    assert settings.port == 4000
    assert settings.trusted_proxies == ["10.0.0.1", "10.0.0.2"]
    assert settings.access_token_ttl_seconds == 900
    # The CLI's --host/--port win for one run; None means "not given".
    overridden = load_settings(host="0.0.0.0", port=5000)  # noqa: S104
    assert (overridden.host, overridden.port) == ("0.0.0.0", 5000)  # noqa: S104
    assert load_settings(host=None, port=None).port == 4000


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("GURUCONNECT_PORT", "seventy", "port"),
        ("GURUCONNECT_PORT", "70000", "port"),
        ("GURUCONNECT_LOGIN_RATE_LIMIT", "lots", "login_rate_limit"),
        ("GURUCONNECT_ACCESS_TOKEN_TTL_SECONDS", "5", "access_token_ttl_seconds"),
        ("GURUCONNECT_DATABASE_SCHEMA", "x; DROP TABLE users", "database_schema"),
    ],
)
def test_bad_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv("JWT_SECRET", GOOD)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=fragment) as caught:
        load_settings()
    assert "\n" not in str(caught.value)


def test_admin_settings_need_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///x.db")
    assert load_database_settings().database_url == "sqlite+aiosqlite:///x.db"


@pytest.mark.parametrize(
    "value",
    [
        "support.example.com",
        "ftp://support.example.com",
        "https://support.example.com/guru",
        "https://support.example.com?x=1",
        "https://user:pw@support.example.com",
        "https://support.example.com:99999",
        "https://",
    ],
)
def test_bad_public_url_is_one_line(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("JWT_SECRET", GOOD)
    monkeypatch.setenv("GURUCONNECT_PUBLIC_URL", value)
    with pytest.raises(ConfigError, match=r"public_url: .* is not a public URL") as caught:
        load_settings()
    assert "\n" not in str(caught.value)


def test_public_url_is_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", GOOD)
    monkeypatch.setenv("GURUCONNECT_PUBLIC_URL", "HTTPS://Support.Example.com:8443/")
    monkeypatch.setenv("GURUCONNECT_ALLOWED_HOSTS", "Alt.Example.com, *.lan.example")
    settings = load_settings()
    assert settings.public_url == "https://support.example.com:8443"
    assert settings.allowed_hosts == ["alt.example.com", "*.lan.example"]


@pytest.mark.parametrize("value", ["evil.test/x", "a b", "*", "http://x"])
def test_bad_allowed_host_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("JWT_SECRET", GOOD)
    monkeypatch.setenv("GURUCONNECT_ALLOWED_HOSTS", value)
    with pytest.raises(ConfigError, match=r"allowed_hosts: .* is not a host name"):
        load_settings()


def test_tls_needs_both_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JWT_SECRET", GOOD)
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    monkeypatch.setenv("GURUCONNECT_TLS_CERT_FILE", str(cert))
    with pytest.raises(ConfigError, match="TLS needs both"):
        load_settings()
    monkeypatch.setenv("GURUCONNECT_TLS_KEY_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match=r"TLS file .*missing\.pem does not exist"):
        load_settings()


def test_the_home_setting_moves_the_default_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GURUCONNECT_HOME", "relative-home")
    settings = load_database_settings()
    assert settings.home == tmp_path / "relative-home"  # made absolute once, at load
    assert settings.database_url.endswith(f"{tmp_path}/relative-home/guruconnect.db")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://db/x")
    assert load_database_settings().database_url == "postgresql+asyncpg://db/x"


@pytest.mark.parametrize("node", ["", "-x", "a b", "x" * 65, "n/1"])
def test_a_node_id_is_a_short_plain_name(monkeypatch: pytest.MonkeyPatch, node: str) -> None:
    monkeypatch.setenv("GURUCONNECT_NODE_ID", node)
    with pytest.raises(ConfigError, match="node_id"):
        load_database_settings()
