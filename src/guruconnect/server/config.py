"""Server settings: the only module that reads the environment.

Names: ``JWT_SECRET`` (or ``JWT_SECRET_FILE``) and ``DATABASE_URL`` as the SPEC names them;
everything else is ``GURUCONNECT_<FIELD>``. Library code receives a :class:`Settings`
instance; it never looks at ``os.environ`` itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

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
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///guruconnect.db"


_S = TypeVar("_S", bound="DatabaseSettings")


class ConfigError(Exception):
    """The configuration is unusable; the message is one line an operator can act on."""


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class DatabaseSettings(BaseSettings):
    """What the admin CLI needs: the database, password hashing and logging. No secret."""

    model_config = SettingsConfigDict(
        env_prefix="GURUCONNECT_", extra="ignore", case_sensitive=False, frozen=True
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "GURUCONNECT_DATABASE_URL"),
    )
    #: PostgreSQL only: the schema to keep GuruConnect's tables in (``search_path``).
    database_schema: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")

    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)

    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


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

    @field_validator("login_rate_limit", "ws_connect_rate_limit", "support_code_rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate such as '10/minute'") from None
        return value

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
    def secret(self) -> str:
        assert self.jwt_secret is not None  # guaranteed by _require_secret
        return self.jwt_secret.get_secret_value()


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
