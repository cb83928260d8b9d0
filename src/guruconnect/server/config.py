"""Server settings: the only module that reads the environment.

Names: ``JWT_SECRET`` (or ``JWT_SECRET_FILE``) and ``DATABASE_URL`` as the SPEC names them;
everything else is ``GURUCONNECT_<FIELD>``. Library code receives a :class:`Settings`
instance; it never looks at ``os.environ`` itself.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from limits import parse
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_JWT_SECRET_LENGTH = 32
#: The SQLite file inside ``GURUCONNECT_HOME`` that ``DATABASE_URL`` defaults to.
DATABASE_FILE = "guruconnect.db"
#: Listen addresses that mean "every interface": never a name the server answers to.
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", "[::]", ""})  # noqa: S104


_S = TypeVar("_S", bound="DatabaseSettings")


class ConfigError(Exception):
    """The configuration is unusable; the message is one line an operator can act on."""


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def default_home() -> Path:
    """``$XDG_CONFIG_HOME/guruconnect``, else ``~/.config/guruconnect`` (the systemd unit
    sets ``GURUCONNECT_HOME=/var/lib/guruconnect``)."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "guruconnect"


class DatabaseSettings(BaseSettings):
    """What the admin CLI needs: the database, password hashing and logging. No secret."""

    model_config = SettingsConfigDict(
        env_prefix="GURUCONNECT_", extra="ignore", case_sensitive=False, frozen=True
    )

    # -- deployment: where data lives, which node this is ----------------------------------
    #: The install's home: the SQLite database, generated secrets, later recordings.
    home: Path = Field(default_factory=default_home)
    #: This server's identity in the database: the instance lock and the startup
    #: reconciliation are per node (one node per database today).
    node_id: str = Field(default="default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    #: Default: ``sqlite+aiosqlite:///$GURUCONNECT_HOME/guruconnect.db``.
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_URL", "GURUCONNECT_DATABASE_URL"),
    )
    #: PostgreSQL only: the schema to keep GuruConnect's tables in (``search_path``).
    database_schema: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")

    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)

    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _database_in_home(self) -> DatabaseSettings:
        object.__setattr__(self, "home", self.home.expanduser().absolute())
        if not self.database_url:
            url = f"sqlite+aiosqlite:///{self.home / DATABASE_FILE}"
            object.__setattr__(self, "database_url", url)
        return self


class Settings(DatabaseSettings):
    """Everything the server needs; refuses to exist without a usable JWT secret."""

    jwt_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("JWT_SECRET", "GURUCONNECT_JWT_SECRET")
    )
    jwt_secret_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("JWT_SECRET_FILE", "GURUCONNECT_JWT_SECRET_FILE"),
    )

    host: str = "127.0.0.1"
    port: int = Field(default=3002, ge=0, le=65535)
    #: Peers whose X-Forwarded-For / X-Real-IP headers are believed. Empty: nobody's.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    access_token_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    #: Failed logins allowed per source address and per username, in the `limits` notation.
    login_rate_limit: str = "10/minute"
    #: ``redis://...`` turns on Redis for rate limits (and later the relay backplane).
    redis_url: str | None = None
    #: Prefix of every Redis key GuruConnect writes, so several installs can share one Redis.
    redis_prefix: str = "guruconnect"
    #: How often expired rows of the token blacklist are deleted.
    token_prune_interval_seconds: int = Field(default=600, ge=1)

    # -- deployment: public URL, host names, TLS ---------------------------------------------
    #: What the server is to its users (``https://support.example.com``): the WebSocket
    #: Origin check, install commands and cookies' ``Secure`` flag derive from it. Unset:
    #: the local behaviour (the request's own Host is the server's origin).
    public_url: str | None = None
    #: Host names accepted besides the public URL's (comma list); ``*.example.com`` works.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Terminate TLS in the server (PEM files; both or neither; reloaded on SIGHUP).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    # -- relay ----------------------------------------------------------------------------
    #: Origins allowed to open WebSockets besides the server's own (``scheme://host[:port]``).
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    agent_max_message_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    viewer_max_message_bytes: int = Field(default=64 * 1024, ge=1024)
    #: The relay sends a heartbeat this often; a peer silent for two periods is dropped.
    heartbeat_interval_seconds: float = Field(default=15.0, gt=0)
    #: How long a connection may take to send its request headers (slowloris guard).
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    #: How long a connecting agent or viewer may take to present its credential.
    auth_timeout_seconds: float = Field(default=10.0, gt=0)
    consent_timeout_seconds: float = Field(default=30.0, gt=0)
    #: How long a session waits for its agent to come back before it ends.
    agent_reconnect_grace_seconds: float = Field(default=30.0, ge=0)
    viewer_ticket_ttl_seconds: int = Field(default=60, ge=1, le=60)
    support_code_ttl_seconds: int = Field(default=600, ge=60, le=24 * 3600)
    #: Input events a viewer may send per second (token bucket); the excess is dropped.
    input_events_per_second: int = Field(default=200, ge=1)
    chat_max_chars: int = Field(default=4096, ge=1)
    #: Chat messages an agent may send a second (token bucket, bursts of twice that); the
    #: excess is dropped and audited (``limit.chat_throttled``) at most every 10 s.
    agent_chat_per_second: float = Field(default=5.0, gt=0)
    #: What an agent may declare: displays (count, pixels a side) and cursor shapes (pixels
    #: a side); more closes the agent with 4400.
    agent_max_displays: int = Field(default=16, ge=1)
    display_max_side: int = Field(default=8192, ge=64)
    cursor_max_side: int = Field(default=256, ge=16)
    clipboard_max_chars: int = Field(default=32768, ge=1)
    #: Video queued per viewer before frames are dropped for that viewer: at most this many
    #: frames (16 is about half a second at 30 fps) and this many bytes.
    viewer_video_queue: int = Field(default=16, ge=1)
    viewer_video_queue_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    #: WebSocket connection attempts per source address, per plane.
    ws_connect_rate_limit: str = "60/minute"
    #: Failed support-code redemptions per source address.
    support_code_rate_limit: str = "10/minute"
    #: Directory with the built agents the join page serves, bound to a code:
    #: ``guruconnect-linux-x86_64``, ``guruconnect-windows-x86_64.exe`` (``make agent-dist``).
    agent_dist_dir: Path | None = None

    # -- operations -------------------------------------------------------------------------
    #: Bearer token that opens ``/metrics``; without it ``/metrics`` does not exist (404).
    metrics_token: SecretStr | None = None

    # -- abuse bounds (issue 15) --------------------------------------------------------------
    #: Failed logins for one username from all addresses together before every address
    #: trying that username is slowed by exponential backoff (a slow-down, not a lockout).
    login_user_rate_limit: str = "50/hour"
    #: The longest wait the backoff imposes between two guesses from one address.
    login_backoff_max_seconds: int = Field(default=900, ge=1)
    #: Memory that password checks (Argon2) may use at once; with the memory cost it gives
    #: how many run at once. A login that finds them all busy gets 503 and Retry-After.
    password_check_memory_mib: int = Field(default=256, ge=1)
    #: Largest HTTP request body accepted (413 above it, refused before it is read).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    #: Largest request line plus headers of a plain HTTP request (431 above it).
    max_header_bytes: int = Field(default=64 * 1024, ge=4096)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        text = value.strip().rstrip("/")
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if (
            parts.scheme not in {"http", "https"}
            or not parts.hostname
            or port == -1
            or parts.path
            or parts.query
            or parts.fragment
            or parts.username
            or parts.password
        ):
            raise ValueError(
                f"{value!r} is not a public URL such as https://support.example.com "
                "(scheme and host, optional port, no path)"
            )
        return f"{parts.scheme}://{parts.netloc.lower()}"

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _hosts_csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not re.fullmatch(r"(\*\.)?[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]", host):
                raise ValueError(f"{host!r} is not a host name such as support.example.com")
        return [host.lower() for host in value]

    @field_validator("trusted_proxies", "allowed_origins", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"{origin!r} is not an origin such as https://support.example")
        return [origin.lower() for origin in value]

    @field_validator(
        "login_rate_limit",
        "login_user_rate_limit",
        "ws_connect_rate_limit",
        "support_code_rate_limit",
    )
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate such as '10/minute'") from None
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(
                "TLS needs both GURUCONNECT_TLS_CERT_FILE and GURUCONNECT_TLS_KEY_FILE"
            )
        for path in (self.tls_cert_file, self.tls_key_file):
            if path is not None and not path.is_file():
                raise ValueError(f"TLS file {path} does not exist")
        return self

    @model_validator(mode="after")
    def _require_secret(self) -> Settings:
        if self.jwt_secret is None and self.jwt_secret_file is not None:
            try:
                text = self.jwt_secret_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(
                    f"JWT_SECRET_FILE {self.jwt_secret_file} cannot be read ({exc.strerror})"
                ) from None
            object.__setattr__(self, "jwt_secret", SecretStr(text))
        if self.jwt_secret is None:
            raise ValueError(
                "JWT_SECRET is not set: set JWT_SECRET (or JWT_SECRET_FILE) to a random string "
                f"of at least {MIN_JWT_SECRET_LENGTH} characters"
            )
        length = len(self.jwt_secret.get_secret_value())
        if length < MIN_JWT_SECRET_LENGTH:
            raise ValueError(
                f"JWT_SECRET is too short ({length} characters): it must be at least "
                f"{MIN_JWT_SECRET_LENGTH} characters"
            )
        return self

    @property
    def trusted_hosts(self) -> list[str]:
        """Host names (without port) the server answers to; see :mod:`server.hosts`."""
        hosts = list(self.allowed_hosts)
        if self.public_url is not None:
            name = urlsplit(self.public_url).hostname
            assert name is not None  # validated
            hosts.append(_bracketed(name))
        else:
            hosts += ["localhost", "127.0.0.1", "[::1]"]
            if self.host not in WILDCARD_ADDRESSES:
                hosts.append(_bracketed(self.host.lower()))
        # An address literal is never a DNS-rebinding vector (such a page's Host is its own
        # name), so loopback addresses and the listen address always pass: a local proxy's
        # default Host (nginx's $proxy_host) and local health checks keep working.
        hosts += ["127.0.0.1", "[::1]"]
        if _is_address(self.host) and self.host not in WILDCARD_ADDRESSES:
            hosts.append(_bracketed(self.host.lower()))
        return sorted(set(hosts))

    @property
    def secret(self) -> str:
        assert self.jwt_secret is not None  # guaranteed by _require_secret
        return self.jwt_secret.get_secret_value()


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _bracketed(host: str) -> str:
    """IPv6 literals as they appear in a Host header: ``[::1]``."""
    bare = host.strip("[]")
    return f"[{bare}]" if ":" in bare else bare


def _one_line(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "__root__")
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _load(cls: type[_S], overrides: dict[str, Any]) -> _S:
    clean = {key: value for key, value in overrides.items() if value is not None}
    try:
        return cls(**clean)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


def load_settings(**overrides: Any) -> Settings:
    """Read the server's settings from the environment, with explicit overrides (the CLI's).

    Raises :class:`ConfigError` with a one-line message instead of pydantic's report.
    """
    return _load(Settings, overrides)


def load_database_settings(**overrides: Any) -> DatabaseSettings:
    """The subset the admin CLI needs; works without a JWT secret."""
    return _load(DatabaseSettings, overrides)
