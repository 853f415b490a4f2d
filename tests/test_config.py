"""Settings: profiles, environment variables, refusing unsafe production secrets."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from api import create_app
from api.config import ConfigError
from api.extensions import db
from api.openapi import TasksAPI

GOOD_SECRET = secrets.token_urlsafe(32)
SECRET_KEYS = ("SECRET_KEY", "JWT_SECRET_KEY")
MISSING = object()

# Settings read from the environment that a developer's shell might have set.
_ENV_KEYS = ("APP_ENV", "DATABASE_URL", "MAX_CONTENT_LENGTH", "DEBUG", *SECRET_KEYS)
_ENV_KEYS += ("JWT_ACCESS_TOKEN_EXPIRES", "JWT_REFRESH_TOKEN_EXPIRES")
_ENV_KEYS += ("REDIS_URL", "REDIS_SOCKET_TIMEOUT", "MAIL_BACKEND", "MAIL_PORT", "MAIL_USE_TLS")
_ENV_KEYS += ("PASSWORD_RESET_TTL_SECONDS", "REFRESH_REUSE_GRACE_SECONDS")
_ENV_KEYS += ("METRICS_ENABLED", "METRICS_TOKEN")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in _ENV_KEYS:
        monkeypatch.delenv(key, raising=False)


def production(**overrides: Any) -> dict[str, Any]:
    """A production configuration that starts; `MISSING` removes a key."""
    config: dict[str, Any] = {
        "APP_ENV": "production",
        "SECRET_KEY": GOOD_SECRET,
        "JWT_SECRET_KEY": GOOD_SECRET + "-jwt",
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
        "MAIL_BACKEND": "smtp",
    }
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not MISSING}


def names(key: str, message: str) -> bool:
    """Whether `message` names `key` as a whole word (SECRET_KEY is not JWT_SECRET_KEY)."""
    return re.search(rf"(?<![A-Z_]){key}\b", message) is not None


@pytest.mark.parametrize("key", SECRET_KEYS)
@pytest.mark.parametrize(
    "value",
    [MISSING, "", None, "dev-secret-key-change-me", "change-me", "x" * 31, "é" * 15],
    ids=["missing", "empty", "none", "dev-default", "change-me", "31-bytes", "30-utf8-bytes"],
)
def test_production_refuses_an_unsafe_secret(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as error:
        create_app(production(**{key: value}))
    message = str(error.value)
    assert names(key, message)
    other = next(k for k in SECRET_KEYS if k != key)
    assert not names(other, message)


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_production_refuses_a_default_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    config = production(**{key: MISSING})
    monkeypatch.setenv(key, "dev-secret-key-change-me")
    with pytest.raises(ConfigError, match=key):
        create_app(config)


def test_production_refuses_debug() -> None:
    with pytest.raises(ConfigError, match="DEBUG"):
        create_app(production(DEBUG=True))


@pytest.mark.parametrize(
    "secret", [GOOD_SECRET, "x" * 32, "é" * 16], ids=["random", "32-bytes", "32-utf8-bytes"]
)
def test_production_starts_with_good_secrets(secret: str) -> None:
    app = create_app(production(SECRET_KEY=secret, JWT_SECRET_KEY=secret))
    assert app.config["ENV_NAME"] == "production"
    assert app.config["SECRET_KEY"] == secret
    assert app.debug is False
    assert app.testing is False
    assert app.test_client().get("/health/live").status_code == 200


def test_production_secrets_can_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("JWT_SECRET_KEY", GOOD_SECRET + "-jwt")
    app = create_app(production(SECRET_KEY=MISSING, JWT_SECRET_KEY=MISSING))
    assert app.config["JWT_SECRET_KEY"] == GOOD_SECRET + "-jwt"


def test_production_sends_hsts() -> None:
    # DESIGN.md, "Security headers": "... HSTS in production".
    response = create_app(production()).test_client().get("/health/live")
    assert response.status_code == 200
    assert "max-age=" in response.headers.get("Strict-Transport-Security", "")


@pytest.mark.parametrize("source", ["test_config", "environment"])
def test_unknown_profile_is_refused(monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    if source == "environment":
        monkeypatch.setenv("APP_ENV", "staging")
        config = None
    else:
        config = {"APP_ENV": "staging"}
    with pytest.raises(ConfigError, match="staging"):
        create_app(config)


def test_database_url_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'from-env.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    app = create_app({"APP_ENV": "testing"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == url
    with app.app_context():
        assert str(db.engine.url) == url
        db.engine.dispose()


def test_typed_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "200")
    monkeypatch.setenv("JWT_ACCESS_TOKEN_EXPIRES", "60")
    monkeypatch.setenv("JWT_REFRESH_TOKEN_EXPIRES", "3600")
    app = create_app({"APP_ENV": "testing"})

    assert app.config["MAX_CONTENT_LENGTH"] == 200
    assert app.config["JWT_ACCESS_TOKEN_EXPIRES"] == timedelta(seconds=60)
    assert app.config["JWT_REFRESH_TOKEN_EXPIRES"] == timedelta(hours=1)
    # and the limit is enforced, not just stored
    payload = {"username": "alice", "email": "alice@example.com", "password": "p" * 200}
    response = app.test_client().post("/api/v1/auth/register", json=payload)
    assert response.status_code == 413


def test_test_config_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "200")
    app = create_app({"APP_ENV": "testing", "MAX_CONTENT_LENGTH": 300})
    assert app.config["MAX_CONTENT_LENGTH"] == 300


def test_sqlite_default_lives_in_the_instance_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    instance = tmp_path / "instance"
    monkeypatch.setattr(TasksAPI, "auto_find_instance_path", lambda self: str(instance))
    app = create_app({"APP_ENV": "development"})

    assert app.instance_path == str(instance)
    assert instance.is_dir()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'tasks.db'}"
    with app.app_context():
        try:
            with db.engine.connect() as conn:
                assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
                assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        finally:
            db.engine.dispose()
    assert (instance / "tasks.db").is_file()


def test_identity_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://redis.internal:6380/2")
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT", "0.25")
    monkeypatch.setenv("REFRESH_REUSE_GRACE_SECONDS", "5")
    monkeypatch.setenv("PASSWORD_RESET_TTL_SECONDS", "600")
    monkeypatch.setenv("MAIL_BACKEND", "smtp")
    monkeypatch.setenv("MAIL_PORT", "587")
    monkeypatch.setenv("MAIL_USE_TLS", "true")
    app = create_app({"APP_ENV": "development"})

    assert app.config["REDIS_SOCKET_TIMEOUT"] == 0.25
    assert app.config["REFRESH_REUSE_GRACE_SECONDS"] == 5
    assert app.config["PASSWORD_RESET_TTL_SECONDS"] == 600
    assert app.config["MAIL_PORT"] == 587
    assert app.config["MAIL_USE_TLS"] is True
    # Handed on to the clients, which connect lazily (nothing listens there).
    kwargs = app.extensions["redis"].connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("redis.internal", 6380, 2)
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 0.25
    mailman = app.extensions["mailman"]
    assert (mailman.backend, mailman.port, mailman.use_tls) == ("smtp", 587, True)


@pytest.mark.parametrize(
    ("profile", "backend"), [("development", "console"), ("testing", "locmem")]
)
def test_email_goes_to_the_console_by_default(profile: str, backend: str) -> None:
    app = create_app({"APP_ENV": profile})
    assert app.extensions["mailman"].backend == backend
    assert app.extensions["redis"] is None  # no Redis unless REDIS_URL is set
