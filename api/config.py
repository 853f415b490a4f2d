"""Settings, read from environment variables (and `.env`), in three profiles.

Every key here is listed in the README's configuration table. Extensions' own keys
(`JWT_*`, `SQLALCHEMY_*`, ...) pass through unchanged: any of them can be set from the
environment by name.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

# Secrets that ship in docs and examples; production must never run with them.
DEFAULT_SECRETS = frozenset({"", "dev", "change-me", "dev-secret-key-change-me", "secret"})
MIN_SECRET_BYTES = 32


class ConfigError(RuntimeError):
    """The configuration cannot run safely (raised at start-up)."""


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value is None else int(value)


def sqlite_url(instance_path: str) -> str:
    return f"sqlite:///{Path(instance_path) / 'tasks.db'}"


class Config:
    """Shared defaults (the development profile builds on these)."""

    ENV_NAME = "development"
    DEBUG = False
    TESTING = False

    # Development only: production refuses these (see check_secrets).
    SECRET_KEY = "dev-secret-key-change-me"  # noqa: S105
    JWT_SECRET_KEY = "dev-secret-key-change-me"  # noqa: S105
    JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=15)
    JWT_REFRESH_TOKEN_EXPIRES = timedelta(days=14)
    JWT_ALGORITHM = "HS256"
    JWT_TOKEN_LOCATION: ClassVar[list[str]] = ["headers"]
    JWT_ERROR_MESSAGE_KEY = "detail"

    # None: a SQLite file under the instance folder (filled in by create_app).
    SQLALCHEMY_DATABASE_URI: str | None = None
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict[str, Any]] = {"pool_pre_ping": True}

    # A refresh token rotated this recently is still accepted (two tabs refreshing).
    REFRESH_REUSE_GRACE_SECONDS = 10
    # Strict-Transport-Security max-age; 0 sends no header (production sets a year).
    HSTS_SECONDS = 0

    MAX_CONTENT_LENGTH = 1024 * 1024
    # Argon2id cost; tests lower it (hashing is deliberately slow).
    ARGON2_TIME_COST = 3
    ARGON2_MEMORY_COST = 64 * 1024
    ARGON2_PARALLELISM = 1

    # OpenAPI / docs (APIFlask keys)
    # Relative, so "Try it out" calls whichever host serves /docs. `x-internal: false`:
    # a public API (OWASP API9 asks every server to say who it is for).
    SERVERS: ClassVar[list[dict[str, Any]]] = [
        {
            "url": "/",
            "description": "The server hosting this document (local, staging or production).",
            "x-internal": False,
        }
    ]
    AUTO_OPERATION_ID = False
    AUTO_404_RESPONSE = True
    DOCS_UI = "swagger-ui"

    LOG_LEVEL = "INFO"


class DevelopmentConfig(Config):
    ENV_NAME = "development"


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key-" + "x" * 32
    JWT_SECRET_KEY = "testing-jwt-secret-key-" + "x" * 32
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 8
    # Reuse detection is immediate in tests; the grace window is tested on its own.
    REFRESH_REUSE_GRACE_SECONDS = 0
    SQLALCHEMY_DATABASE_URI = "sqlite://"


class ProductionConfig(Config):
    ENV_NAME = "production"
    HSTS_SECONDS = 365 * 24 * 3600
    SECRET_KEY = ""
    JWT_SECRET_KEY = ""


PROFILES: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}

# Environment variables read with a type; anything else that matches a key of the
# profile is read as a string.
_INT_KEYS = {
    "MAX_CONTENT_LENGTH",
    "ARGON2_TIME_COST",
    "ARGON2_MEMORY_COST",
    "ARGON2_PARALLELISM",
    "REFRESH_REUSE_GRACE_SECONDS",
    "HSTS_SECONDS",
}
_SECONDS_KEYS = {"JWT_ACCESS_TOKEN_EXPIRES", "JWT_REFRESH_TOKEN_EXPIRES"}
_JSON_KEYS = {"SQLALCHEMY_ENGINE_OPTIONS", "SERVERS"}


def load_settings(profile: str | None = None) -> dict[str, Any]:
    """Return the settings of `profile` (default `APP_ENV`), overridden by the environment."""
    name = profile or os.environ.get("APP_ENV", "development")
    if name not in PROFILES:
        raise ConfigError(f"APP_ENV must be one of {sorted(PROFILES)}, not {name!r}")
    base = PROFILES[name]
    settings = {key: getattr(base, key) for key in dir(base) if key.isupper()}

    for key in settings:
        raw = os.environ.get(key)
        if raw is None:
            continue
        if key in _INT_KEYS:
            settings[key] = int(raw)
        elif key in _SECONDS_KEYS:
            settings[key] = timedelta(seconds=int(raw))
        elif key in _JSON_KEYS:
            settings[key] = json.loads(raw)
        elif isinstance(settings[key], bool):
            settings[key] = env_bool(key, settings[key])
        else:
            settings[key] = raw
    if os.environ.get("DATABASE_URL"):
        settings["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    return settings


def check_secrets(settings: dict[str, Any]) -> None:
    """Refuse to run production with a missing, default or short secret."""
    if settings.get("ENV_NAME") != "production":
        return
    for key in ("SECRET_KEY", "JWT_SECRET_KEY"):
        value = str(settings.get(key) or "")
        if not value:
            raise ConfigError(f"{key} is missing: set it to a random value of 32+ bytes")
        if value in DEFAULT_SECRETS:
            raise ConfigError(f"{key} is a published default: set a random value of 32+ bytes")
        if len(value.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"{key} is shorter than {MIN_SECRET_BYTES} bytes")
    if settings.get("DEBUG"):
        raise ConfigError("DEBUG must be off in production")
