"""`load_settings` and the JWT secret: production refuses a missing or short one (measured in bytes),
development generates one and warns, and a short explicit one is refused everywhere.

Every call passes an explicit `environ` and `env_file` (the `no_env_file` fixture), so neither the
process environment nor a `.env` in the working directory leaks into the result.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from todo_svc.settings import MIN_SECRET_BYTES, Settings, SettingsError, load_settings


@pytest.fixture
def process_env_without_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """`JWT_SECRET_KEY` absent from os.environ, restored (or removed again) after the test."""
    monkeypatch.setenv("JWT_SECRET_KEY", "placeholder")  # records the original state for undo
    monkeypatch.delenv("JWT_SECRET_KEY")


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({"ENVIRONMENT": "production"}, id="no-secret"),
        pytest.param({"ENVIRONMENT": "production", "JWT_SECRET_KEY": ""}, id="empty-secret"),
        pytest.param(
            {"ENVIRONMENT": "production", "JWT_SECRET_KEY": "x" * (MIN_SECRET_BYTES - 1)}, id="31-bytes"
        ),
    ],
)
def test_production_refuses_a_missing_or_short_secret(environ: dict[str, str], no_env_file: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(environ=environ, env_file=no_env_file)
    message = str(raised.value)
    assert "JWT_SECRET_KEY" in message
    assert "production" in message
    assert str(MIN_SECRET_BYTES) in message


def test_production_accepts_a_32_byte_secret(no_env_file: Path) -> None:
    secret = "k" * MIN_SECRET_BYTES
    settings = load_settings(
        environ={"ENVIRONMENT": "production", "JWT_SECRET_KEY": secret}, env_file=no_env_file
    )
    assert settings.jwt_secret_key == secret


def test_secret_length_is_measured_in_bytes(no_env_file: Path) -> None:
    # "é" * 16 is 16 characters but 32 bytes in UTF-8: long enough.
    accepted = load_settings(
        environ={"ENVIRONMENT": "production", "JWT_SECRET_KEY": "é" * 16}, env_file=no_env_file
    )
    assert accepted.jwt_secret_key == "é" * 16
    # 31 ASCII characters are 31 bytes: too short.
    with pytest.raises(SettingsError, match="JWT_SECRET_KEY"):
        load_settings(environ={"ENVIRONMENT": "production", "JWT_SECRET_KEY": "x" * 31}, env_file=no_env_file)


@pytest.mark.usefixtures("process_env_without_secret")
def test_development_without_secret_generates_one_and_warns(
    caplog: pytest.LogCaptureFixture, no_env_file: Path
) -> None:
    environ: dict[str, str] = {"ENVIRONMENT": "development"}
    with caplog.at_level(logging.WARNING, logger="todo_svc.settings"):
        first = load_settings(environ=environ, env_file=no_env_file)
        second = load_settings(environ=environ, env_file=no_env_file)

    assert len(first.jwt_secret_key.encode()) >= MIN_SECRET_BYTES
    assert first.jwt_secret_key != second.jwt_secret_key  # random, not a built-in constant
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "JWT_SECRET_KEY" in r.message]
    assert warnings, caplog.text
    assert first.jwt_secret_key not in caplog.text  # the key itself is never logged
    # A given mapping is read, never written: neither it nor the process environment changes.
    assert environ == {"ENVIRONMENT": "development"}
    assert "JWT_SECRET_KEY" not in os.environ


@pytest.mark.usefixtures("process_env_without_secret")
def test_generated_secret_is_exported_when_reading_the_process_environment(
    monkeypatch: pytest.MonkeyPatch, no_env_file: Path
) -> None:
    # Workers started from this process must sign with the same key.
    for name in Settings.__struct_fields__:  # nothing else of the real environment leaks in
        if name != "jwt_secret_key":
            monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("ENVIRONMENT", "development")

    settings = load_settings(env_file=no_env_file)

    assert os.environ["JWT_SECRET_KEY"] == settings.jwt_secret_key
    assert load_settings(env_file=no_env_file).jwt_secret_key == settings.jwt_secret_key


@pytest.mark.parametrize("environment", ["development", "test"])
def test_a_short_explicit_secret_is_refused_outside_production(environment: str, no_env_file: Path) -> None:
    with pytest.raises(SettingsError, match="JWT_SECRET_KEY") as raised:
        load_settings(environ={"ENVIRONMENT": environment, "JWT_SECRET_KEY": "short"}, env_file=no_env_file)
    assert str(MIN_SECRET_BYTES) in str(raised.value)
