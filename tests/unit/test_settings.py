"""`load_settings`: defaults, parsing, precedence, validation and what each setting means (the JWT
secret rules: test_settings_secret.py).

Every call passes an explicit `environ` and `env_file` (`no_env_file`: conftest.py), so neither the process
environment nor a `.env` in the working directory leaks into the result.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from todo_svc.settings import MIN_SECRET_BYTES, Settings, SettingsError, load_settings

STRONG_SECRET = "s" * MIN_SECRET_BYTES


def test_defaults(no_env_file: Path) -> None:
    settings = load_settings(environ={"JWT_SECRET_KEY": STRONG_SECRET}, env_file=no_env_file)

    assert settings.database_url == "sqlite+aiosqlite:///./todo.db"
    assert settings.environment == "development"
    assert settings.access_token_expire_minutes == 15
    assert settings.bcrypt_rounds == 12
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.jwt_secret_key == STRONG_SECRET


def test_environment_values_are_parsed_to_their_types(no_env_file: Path) -> None:
    settings = load_settings(
        environ={
            "JWT_SECRET_KEY": STRONG_SECRET,
            "ENVIRONMENT": "production",
            "DATABASE_URL": "postgresql://app@db:5432/todo",
            "ACCESS_TOKEN_EXPIRE_MINUTES": "30",
            "BCRYPT_ROUNDS": "10",
            "HOST": "0.0.0.0",  # noqa: S104
            "PORT": "9000",
            "WORKERS": "4",
        },
        env_file=no_env_file,
    )

    assert settings.environment == "production"
    assert settings.is_production
    assert settings.database_url == "postgresql://app@db:5432/todo"
    assert settings.access_token_expire_minutes == 30
    assert settings.bcrypt_rounds == 10
    assert settings.host == "0.0.0.0"  # noqa: S104
    assert settings.port == 9000
    assert settings.workers == 4
    for value in (settings.access_token_expire_minutes, settings.bcrypt_rounds, settings.port):
        assert type(value) is int


def test_env_file_is_read_and_the_environment_wins_over_it(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"PORT=9100\nHOST=10.0.0.1\nBCRYPT_ROUNDS=5\nJWT_SECRET_KEY={'f' * 40}\n", encoding="utf-8"
    )

    settings = load_settings(environ={"PORT": "9200", "JWT_SECRET_KEY": STRONG_SECRET}, env_file=env_file)

    assert settings.port == 9200  # environment wins
    assert settings.jwt_secret_key == STRONG_SECRET  # environment wins
    assert settings.host == "10.0.0.1"  # only in the file: taken from it
    assert settings.bcrypt_rounds == 5


def test_a_missing_env_file_is_not_an_error(no_env_file: Path) -> None:
    settings = load_settings(environ={"JWT_SECRET_KEY": STRONG_SECRET, "PORT": "8123"}, env_file=no_env_file)
    assert settings.port == 8123


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("ENVIRONMENT", "staging"),
        ("BCRYPT_ROUNDS", "2"),
        ("ACCESS_TOKEN_EXPIRE_MINUTES", "0"),
        ("DATABASE_POOL_SIZE", "-1"),
    ],
)
def test_invalid_values_raise_an_error_naming_the_variable(
    variable: str, value: str, no_env_file: Path
) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(environ={"JWT_SECRET_KEY": STRONG_SECRET, variable: value}, env_file=no_env_file)
    assert str(raised.value).startswith(f"{variable}:"), str(raised.value)


def test_an_invalid_value_in_the_env_file_names_the_variable(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=eighty\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"^PORT:"):
        load_settings(environ={"JWT_SECRET_KEY": STRONG_SECRET}, env_file=env_file)


@pytest.mark.parametrize(
    ("database_url", "expected"),
    [
        ("postgresql://app:pw@db:5432/todo", "postgresql+asyncpg://app:pw@db:5432/todo"),
        ("postgres://app@db/todo", "postgresql+asyncpg://app@db/todo"),
        ("sqlite:///./todo.db", "sqlite+aiosqlite:///./todo.db"),
        ("sqlite:////var/lib/todo.db", "sqlite+aiosqlite:////var/lib/todo.db"),
        ("postgresql+asyncpg://app@db/todo", "postgresql+asyncpg://app@db/todo"),
        ("sqlite+aiosqlite:///./todo.db", "sqlite+aiosqlite:///./todo.db"),
    ],
)
def test_async_database_url_uses_an_async_driver(database_url: str, expected: str, no_env_file: Path) -> None:
    settings = load_settings(
        environ={"DATABASE_URL": database_url, "JWT_SECRET_KEY": STRONG_SECRET}, env_file=no_env_file
    )
    assert settings.database_url == database_url  # kept as written
    assert settings.async_database_url == expected


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"ENVIRONMENT": "production", "JWT_SECRET_KEY": "s" * 32}, os.cpu_count() or 1),
        ({"ENVIRONMENT": "development"}, 1),
        ({"ENVIRONMENT": "production", "JWT_SECRET_KEY": "s" * 32, "WORKERS": "3"}, 3),
    ],
)
def test_serve_runs_one_worker_per_core_in_production_unless_told(
    environ: dict[str, str], expected: int, no_env_file: Path
) -> None:
    assert load_settings(environ=environ, env_file=no_env_file).worker_count == expected


def test_rate_limits_and_proxies_are_parsed(no_env_file: Path) -> None:
    environ = {
        "JWT_SECRET_KEY": STRONG_SECRET,
        "RATE_LIMIT_ENABLED": "false",
        "RATE_LIMIT_AUTH": "5/10seconds",
        "RATE_LIMIT_TASKS": "1000/hour",
        "TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7",
    }
    settings = load_settings(environ, env_file=no_env_file)
    assert settings.rate_limit_enabled is False
    assert {
        family: (limit.count, limit.period_seconds) for family, limit in settings.rate_limits.items()
    } == {
        "auth": (5, 10),
        "login": (10, 60),
        "tasks": (1000, 3600),
    }
    assert [str(network) for network in settings.trusted_proxy_networks] == ["10.0.0.0/8", "192.168.1.7/32"]


@pytest.mark.parametrize(
    ("variable", "value", "hint"),
    [
        ("RATE_LIMIT_AUTH", "10 per minute", "10/minute"),
        ("RATE_LIMIT_LOGIN", "0/minute", "10/minute"),
        ("RATE_LIMIT_TASKS", "300/fortnight", "300/minute"),
        ("TRUSTED_PROXIES", "10.0.0.0/8, gateway", "gateway"),
        ("LOG_LEVEL", "loud", "debug, info"),
        ("LOG_FORMAT", "xml", "json"),
        ("DATABASE_POOLER", "statement", "none, session or transaction"),
    ],
)
def test_bad_limits_proxies_and_log_settings_name_the_variable(
    variable: str, value: str, hint: str, no_env_file: Path
) -> None:
    with pytest.raises(SettingsError, match=variable) as raised:
        load_settings({"JWT_SECRET_KEY": STRONG_SECRET, variable: value}, env_file=no_env_file)
    assert hint in str(raised.value)


@pytest.mark.parametrize(("environment", "json_lines"), [("production", True), ("development", False)])
def test_logs_are_json_in_production_unless_told(
    environment: str, json_lines: bool, no_env_file: Path
) -> None:
    environ = {"JWT_SECRET_KEY": STRONG_SECRET, "ENVIRONMENT": environment}
    assert load_settings(environ, env_file=no_env_file).log_json is json_lines
    told = {**environ, "LOG_FORMAT": "console" if json_lines else "json"}
    assert load_settings(told, env_file=no_env_file).log_json is not json_lines


@pytest.mark.parametrize(
    ("environment", "given", "drain_seconds"),
    [("production", None, 5.0), ("development", None, 0.0), ("production", "0", 0.0), ("test", "2.5", 2.5)],
)
def test_the_drain_lasts_a_few_seconds_in_production_unless_told(
    environment: str, given: str | None, drain_seconds: float, no_env_file: Path
) -> None:
    environ = {"JWT_SECRET_KEY": STRONG_SECRET, "ENVIRONMENT": environment}
    if given is not None:
        environ["SHUTDOWN_DRAIN_SECONDS"] = given
    assert load_settings(environ, env_file=no_env_file).drain_seconds == drain_seconds


def test_a_negative_drain_names_the_variable(no_env_file: Path) -> None:
    with pytest.raises(SettingsError, match="SHUTDOWN_DRAIN_SECONDS"):
        load_settings({"JWT_SECRET_KEY": STRONG_SECRET, "SHUTDOWN_DRAIN_SECONDS": "-1"}, env_file=no_env_file)


def test_every_setting_is_documented_in_env_example_and_the_readme() -> None:
    root = Path(__file__).resolve().parents[2]
    example = (root / ".env.example").read_text()
    readme = (root / "README.md").read_text()
    for name in (field.upper() for field in Settings.__struct_fields__):
        assert re.search(rf"^{name}=", example, re.MULTILINE), f"{name} is missing from .env.example"
        assert f"`{name}`" in readme, f"{name} is missing from the README's configuration table"


def test_replicas_are_a_list_of_postgresql_urls_with_a_lag_limit(no_env_file: Path) -> None:
    environ = {
        "JWT_SECRET_KEY": STRONG_SECRET,
        "DATABASE_URL": "postgresql://app@primary/todo",
        "DATABASE_REPLICA_URLS": "postgresql://app@replica-1/todo, postgres://app@replica-2:6432/todo",
    }
    settings = load_settings(environ, env_file=no_env_file)
    assert settings.replica_urls == [
        "postgresql+asyncpg://app@replica-1/todo",
        "postgresql+asyncpg://app@replica-2:6432/todo",
    ]
    assert settings.replica_max_lag_seconds == 5.0
    assert (
        load_settings(
            {**environ, "REPLICA_MAX_LAG_SECONDS": "0.5"}, env_file=no_env_file
        ).replica_max_lag_seconds
        == 0.5
    )
    assert load_settings({"JWT_SECRET_KEY": STRONG_SECRET}, env_file=no_env_file).replica_urls == []


@pytest.mark.parametrize(
    ("extra", "hint"),
    [
        ({"DATABASE_URL": "sqlite:///./todo.db"}, "PostgreSQL"),
        ({"DATABASE_URL": "postgresql://app@primary/todo", "WORKERS": "2"}, "REDIS_URL"),
        (
            {"DATABASE_URL": "postgresql://app@primary/todo", "REPLICA_MAX_LAG_SECONDS": "-1"},
            "REPLICA_MAX_LAG",
        ),
    ],
)
def test_replicas_that_could_not_be_read_consistently_are_refused(
    extra: dict[str, str], hint: str, no_env_file: Path
) -> None:
    environ = {
        "JWT_SECRET_KEY": STRONG_SECRET,
        "DATABASE_REPLICA_URLS": "postgresql://app@replica/todo",
        **extra,
    }
    with pytest.raises(SettingsError, match=hint):
        load_settings(environ, env_file=no_env_file)
    if "WORKERS" in extra:  # with Redis, every worker sees every write's position
        load_settings({**environ, "REDIS_URL": "redis://cache:6379/0"}, env_file=no_env_file)
