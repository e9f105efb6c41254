"""Typed settings, read once from the environment and an optional `.env` file.

Every field maps to the upper-cased environment variable of the same name
(`database_url` ← `DATABASE_URL`); the names are an operator contract.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from dotenv import dotenv_values

from todo_svc.core.forwarded import Network, parse_networks
from todo_svc.core.ratelimit import LIMIT_PATTERN, Limit

logger = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
LimitText = Annotated[str, msgspec.Meta(pattern=LIMIT_PATTERN)]
LogLevel = Annotated[str, msgspec.Meta(pattern=r"(?i)^(debug|info|warning|error|critical)$")]


class SettingsError(Exception):
    """The configuration cannot be used; the message says which variable and why."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    environment: Literal["development", "production", "test"] = "development"
    database_url: str = "sqlite+aiosqlite:///./todo.db"
    database_pool_size: PositiveInt = 5
    database_pooler: Literal["none", "session", "transaction"] = "none"
    database_replica_urls: str = ""
    replica_max_lag_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 5.0
    jwt_secret_key: str = ""
    access_token_expire_minutes: PositiveInt = 15
    refresh_token_expire_days: PositiveInt = 14
    task_tombstone_retention_days: PositiveInt = 30
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: Annotated[int, msgspec.Meta(ge=0, le=300)] = 10
    bcrypt_rounds: Annotated[int, msgspec.Meta(ge=4, le=31)] = 12
    password_hash_workers: PositiveInt = 2
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    workers: PositiveInt | None = None
    shutdown_drain_seconds: Annotated[float, msgspec.Meta(ge=0, le=300)] | None = None
    shutdown_timeout_seconds: PositiveInt = 20
    max_request_body_bytes: PositiveInt = 1024 * 1024
    redis_url: str | None = None
    redis_key_prefix: str = "todo-svc"
    rate_limit_enabled: bool = True
    rate_limit_auth: LimitText = "10/minute"
    rate_limit_login: LimitText = "10/minute"
    rate_limit_tasks: LimitText = "300/minute"
    trusted_proxies: str = ""
    registration_enabled: bool = True
    docs_enabled: bool = True
    log_level: LogLevel = "INFO"
    prometheus_multiproc_dir: str | None = None
    log_format: Literal["json", "console"] | None = None
    cors_allow_origins: str = ""
    cors_allow_methods: str = "GET,POST,PUT,PATCH,DELETE"
    cors_allow_headers: str = "Authorization,Content-Type,If-Match,If-None-Match,Idempotency-Key,X-Request-ID"

    def __post_init__(self) -> None:
        try:
            self.trusted_proxy_networks  # noqa: B018 - parsed here to fail at start-up, not per request
        except ValueError as exc:
            raise ValueError(f"TRUSTED_PROXIES: {exc}") from None
        if self.replica_urls and not self.async_database_url.startswith("postgresql"):
            raise ValueError("DATABASE_REPLICA_URLS: replicas need a PostgreSQL DATABASE_URL")
        if self.replica_urls and self.worker_count > 1 and not self.redis_url:
            # Each worker would remember only its own writes: another worker could answer a
            # user's read from a replica that has not replayed that user's write yet.
            raise ValueError("DATABASE_REPLICA_URLS: with more than one worker, set REDIS_URL too")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @staticmethod
    def _listed(value: str) -> list[str]:
        return [item.strip() for item in value.split(",") if item.strip()]

    @property
    def cors_origins(self) -> list[str]:
        """Origins allowed to call the API from a browser; none (CORS off) by default."""
        return self._listed(self.cors_allow_origins)

    @property
    def cors_methods(self) -> list[str]:
        return self._listed(self.cors_allow_methods)

    @property
    def cors_headers(self) -> list[str]:
        return self._listed(self.cors_allow_headers)

    @property
    def transaction_pooled(self) -> bool:
        """A pooler lends server connections per transaction: no prepared statement may outlive one."""
        return self.database_pooler == "transaction"

    @property
    def replica_urls(self) -> list[str]:
        """The read replicas' URLs, with an async driver; none by default (every read on the primary)."""
        return [_with_async_driver(url) for url in self._listed(self.database_replica_urls)]

    @property
    def tombstone_retention(self) -> timedelta:
        """How long the changes feed remembers a deleted task: older `since` tokens get 410."""
        return timedelta(days=self.task_tombstone_retention_days)

    @property
    def log_json(self) -> bool:
        """`LOG_FORMAT`, else JSON lines in production and readable lines elsewhere."""
        return self.log_format == "json" if self.log_format else self.is_production

    @property
    def rate_limits(self) -> dict[str, Limit]:
        """The limit of each route family (`auth` per client, `login` per email, `tasks` per user)."""
        return {
            "auth": Limit.parse(self.rate_limit_auth),
            "login": Limit.parse(self.rate_limit_login),
            "tasks": Limit.parse(self.rate_limit_tasks),
        }

    @property
    def trusted_proxy_networks(self) -> list[Network]:
        """Peers whose `X-Forwarded-For` is believed (addresses or CIDR ranges)."""
        return parse_networks(self.trusted_proxies)

    @property
    def worker_count(self) -> int:
        """`WORKERS`, else one per core in production and one elsewhere."""
        if self.workers is not None:
            return self.workers
        return (os.cpu_count() or 1) if self.is_production else 1

    @property
    def drain_seconds(self) -> float:
        """`SHUTDOWN_DRAIN_SECONDS`, else 5 s in production (time for a gateway to notice) and 0 elsewhere."""
        if self.shutdown_drain_seconds is not None:
            return self.shutdown_drain_seconds
        return 5.0 if self.is_production else 0.0

    @property
    def async_database_url(self) -> str:
        """The URL with an async driver, so `postgresql://…` and `sqlite:///…` work as written."""
        return _with_async_driver(self.database_url)


def _with_async_driver(url: str) -> str:
    for plain, async_driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return async_driver + url.removeprefix(plain)
    return url


def _field_names() -> tuple[str, ...]:
    return Settings.__struct_fields__


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
    """Read settings: the process environment wins over the `.env` file.

    A production start without a strong `JWT_SECRET_KEY` fails here. Elsewhere a
    missing secret is generated once and exported, so that every worker started
    from this process signs with the same key.
    """
    environ = os.environ if environ is None else environ
    file_values = dotenv_values(env_file) if env_file and Path(env_file).is_file() else {}
    raw: dict[str, str] = {}
    for name in _field_names():
        value = environ.get(name.upper()) or file_values.get(name.upper())  # empty means unset
        if value:
            raw[name] = value
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_explain(exc)) from None

    if len(settings.jwt_secret_key.encode()) >= MIN_SECRET_BYTES:
        return settings
    if settings.is_production:
        raise SettingsError(
            f"JWT_SECRET_KEY must be set to at least {MIN_SECRET_BYTES} bytes in production "
            '(generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))")'
        )
    if settings.jwt_secret_key:
        raise SettingsError(
            f"JWT_SECRET_KEY is shorter than {MIN_SECRET_BYTES} bytes; set a longer one or unset it"
        )
    logger.warning("JWT_SECRET_KEY is not set: using a random key, so tokens stop working on restart")
    generated = secrets.token_urlsafe(48)
    if environ is os.environ:
        os.environ["JWT_SECRET_KEY"] = generated
    return msgspec.structs.replace(settings, jwt_secret_key=generated)


VALUE_HINTS = {  # what a value must look like, for the fields msgspec checks by pattern or choice
    "RATE_LIMIT_AUTH": "expected a limit such as 10/minute or 5/10seconds",
    "RATE_LIMIT_LOGIN": "expected a limit such as 10/minute or 5/10seconds",
    "RATE_LIMIT_TASKS": "expected a limit such as 300/minute",
    "LOG_LEVEL": "expected one of debug, info, warning, error, critical",
    "LOG_FORMAT": "expected json or console",
    "ENVIRONMENT": "expected development, production or test",
    "DATABASE_POOLER": "expected none, session or transaction (PgBouncer's pool_mode)",
}


def _explain(exc: msgspec.ValidationError) -> str:
    """Turn `Expected int, got str - at $.port` into a message that names the variable."""
    message, _, path = str(exc).partition(" - at `$.")
    variable = path.rstrip("`").upper()
    hint = VALUE_HINTS.get(variable)
    if hint and "matching regex" in message:  # msgspec would quote the pattern itself
        message = hint
    elif hint and message.startswith("Invalid enum value"):
        message = f"{message}: {hint}"
    return f"{variable}: {message}" if variable else message
