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
    SECRET_KEY = "dev-secret-key-change-me"  # noqa: S105  # nosec B105
    JWT_SECRET_KEY = "dev-secret-key-change-me"  # noqa: S105  # nosec B105
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

    # Redis (optional), shared by every worker. When set, revocations are written to it as
    # well as to the database and checked there (one round trip per request), and
    # rate-limit counters and the response cache live there too (unless
    # RATELIMIT_STORAGE_URI / CACHE_TYPE say otherwise).
    REDIS_URL: str | None = None
    # Seconds; an unresponsive Redis costs at most this before the database answers instead.
    REDIS_SOCKET_TIMEOUT = 0.5
    # Every blocklist key in Redis starts with it. Not under the response cache's prefix:
    # clearing the cache must not wipe the blocklist (harmless, but a burst of SQL).
    REVOCATION_KEY_PREFIX = "tasks-api-revocations:"
    # How often Redis's copy of the blocklist is caught up from the database, which heals
    # revocations whose Redis write failed while Redis was unreachable.
    REVOCATION_SYNC_SECONDS = 60

    # Password reset tokens are single use and live this long.
    PASSWORD_RESET_TTL_SECONDS = 15 * 60

    # Email (Flask-Mailman). `console` prints messages to standard output; set
    # MAIL_BACKEND=smtp and MAIL_SERVER... to deliver them.
    MAIL_BACKEND = "console"
    MAIL_SERVER = "localhost"
    MAIL_PORT = 25
    MAIL_USERNAME: str | None = None
    MAIL_PASSWORD: str | None = None
    MAIL_USE_TLS = False
    MAIL_USE_SSL = False
    MAIL_TIMEOUT = 10
    MAIL_DEFAULT_SENDER = "Tasks API <no-reply@localhost>"

    # Background jobs (reports, emails). `thread`: an in-process pool that also polls the
    # jobs table (no services needed); `celery`: separate `flask worker` processes on a
    # Redis broker; `inline` (the testing profile): each job runs in the process that
    # enqueued it, once the response is sent.
    JOBS_BACKEND = "thread"
    JOBS_THREADS = 4
    JOBS_POLL_SECONDS = 2.0
    # A running job writes a heartbeat this often; one silent for JOB_STALE_SECONDS is an
    # orphan (its process died) and runs again.
    JOB_HEARTBEAT_SECONDS = 5.0
    JOB_STALE_SECONDS = 60.0
    # Transient failures (SMTP, network) are retried with exponential backoff, then the
    # job fails for good.
    JOB_MAX_ATTEMPTS = 3
    JOB_RETRY_BACKOFF_SECONDS = 2.0
    # Finished jobs and their results are kept this long, then answer 410 (and are purged).
    JOB_RESULT_TTL = 24 * 3600
    # Comma-separated modules imported at start-up that register extra job kinds.
    JOBS_IMPORTS = ""
    # Celery (JOBS_BACKEND=celery). None: REDIS_URL.
    CELERY_BROKER_URL: str | None = None
    CELERY_QUEUE = "tasks-api-jobs"
    # An unacknowledged message (its worker died) is delivered again after this long.
    CELERY_VISIBILITY_TIMEOUT = 3600
    # Prefix of every broker key, so several deployments (or test runs) share one Redis.
    CELERY_KEY_PREFIX = ""

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
    LOG_FORMAT = "json"  # one JSON object per line; "text" for people

    # Prometheus metrics at /metrics (off by default; METRICS_TOKEN guards it when set)
    METRICS_ENABLED = False
    # Empty: no token configured.
    METRICS_TOKEN = ""  # nosec B105

    # Rate limits (Flask-Limiter's own RATELIMIT_* keys pass through).
    RATELIMIT_ENABLED = True
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_STRATEGY = "moving-window"
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True  # Redis down: limit per process, never 500
    RATELIMIT_KEY_PREFIX = "tasks-api"
    RATELIMIT_STORAGE_OPTIONS: ClassVar[dict[str, Any]] = {}
    RATE_LIMIT_ANONYMOUS = "60 per minute"  # per client IP
    RATE_LIMIT_FREE = "120 per minute"  # per user, by tier
    RATE_LIMIT_PRO = "1200 per minute"
    RATE_LIMIT_LOGIN = "10 per minute"  # failed logins per IP
    RATE_LIMIT_LOGIN_ACCOUNT = "5 per 15 minutes"  # failed logins per account
    RATE_LIMIT_REGISTER = "10 per hour"  # per IP
    # per IP; a limit, not a password (the linters see "PASSWORD" in the name)
    RATE_LIMIT_PASSWORD_RESET = "10 per hour"  # noqa: S105  # nosec B105
    RATE_LIMIT_REPORTS = "5 per minute"  # report jobs per user
    RATE_LIMIT_ENUMERATION = "100 per hour"  # 404s on id routes per client
    # Reverse proxies in front of the app whose X-Forwarded-* headers are trusted.
    TRUSTED_PROXY_HOPS = 0

    # Conditional requests and retries
    REQUIRE_IF_MATCH = False  # True: PUT/PATCH/DELETE without If-Match → 428
    IDEMPOTENCY_TTL_SECONDS = 24 * 3600

    # Response cache (Flask-Caching's own CACHE_* keys pass through)
    CACHE_TYPE = "SimpleCache"
    CACHE_DEFAULT_TIMEOUT = 60
    CACHE_KEY_PREFIX = "tasks-api:"

    # CORS: comma-separated allowed origins; empty: no cross-origin access
    CORS_ORIGINS = ""

    # Attachments. `local`: files under ATTACHMENTS_DIR (None: instance/attachments/);
    # `s3`: any S3-compatible store (credentials from the standard AWS_* variables).
    ATTACHMENTS_STORAGE = "local"
    ATTACHMENTS_DIR: str | None = None
    S3_BUCKET = ""
    S3_ENDPOINT_URL: str | None = None  # None: AWS itself; set for MinIO, Ceph, moto...
    S3_REGION = "us-east-1"
    # s3 only: downloads answer 307 to a presigned URL valid this long (bytes skip gunicorn).
    ATTACHMENTS_REDIRECT = False
    ATTACHMENTS_REDIRECT_SECONDS = 60
    MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
    ATTACHMENT_QUOTA_BYTES = 100 * 1024 * 1024  # per user, all their tasks
    MAX_ATTACHMENTS_PER_TASK = 20
    # The periodic sweep deletes stored objects no row references (and unfinished
    # uploads) once they are this old; younger ones may belong to an upload in flight.
    ATTACHMENT_ORPHAN_GRACE_SECONDS = 3600
    ATTACHMENT_SWEEP_SECONDS = 3600


class DevelopmentConfig(Config):
    ENV_NAME = "development"
    LOG_FORMAT = "text"


class TestingConfig(Config):
    ENV_NAME = "testing"
    LOG_FORMAT = "text"
    TESTING = True
    SECRET_KEY = "testing-secret-key-" + "x" * 32
    JWT_SECRET_KEY = "testing-jwt-secret-key-" + "x" * 32
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 8
    # Reuse detection is immediate in tests; the grace window is tested on its own.
    REFRESH_REUSE_GRACE_SECONDS = 0
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    MAIL_BACKEND = "locmem"  # messages land in `app.extensions["mailman"].outbox`
    # No background threads in tests: a job runs when the response is closed (the thread
    # and celery executors have tests of their own).
    JOBS_BACKEND = "inline"
    JOB_RETRY_BACKOFF_SECONDS = 0.0


class ProductionConfig(Config):
    ENV_NAME = "production"
    HSTS_SECONDS = 365 * 24 * 3600
    # Empty: production must get them from the environment (check_secrets refuses "").
    SECRET_KEY = ""  # nosec B105
    JWT_SECRET_KEY = ""  # nosec B105


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
    "TRUSTED_PROXY_HOPS",
    "IDEMPOTENCY_TTL_SECONDS",
    "CACHE_DEFAULT_TIMEOUT",
    "REVOCATION_SYNC_SECONDS",
    "PASSWORD_RESET_TTL_SECONDS",
    "MAIL_PORT",
    "MAIL_TIMEOUT",
    "JOBS_THREADS",
    "JOB_MAX_ATTEMPTS",
    "JOB_RESULT_TTL",
    "CELERY_VISIBILITY_TIMEOUT",
    "ATTACHMENTS_REDIRECT_SECONDS",
    "MAX_ATTACHMENT_BYTES",
    "ATTACHMENT_QUOTA_BYTES",
    "MAX_ATTACHMENTS_PER_TASK",
    "ATTACHMENT_ORPHAN_GRACE_SECONDS",
    "ATTACHMENT_SWEEP_SECONDS",
}
_FLOAT_KEYS = {
    "REDIS_SOCKET_TIMEOUT",
    "JOBS_POLL_SECONDS",
    "JOB_HEARTBEAT_SECONDS",
    "JOB_STALE_SECONDS",
    "JOB_RETRY_BACKOFF_SECONDS",
}
_SECONDS_KEYS = {"JWT_ACCESS_TOKEN_EXPIRES", "JWT_REFRESH_TOKEN_EXPIRES"}
_JSON_KEYS = {"SQLALCHEMY_ENGINE_OPTIONS", "SERVERS", "RATELIMIT_STORAGE_OPTIONS"}


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
        elif key in _FLOAT_KEYS:
            settings[key] = float(raw)
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


def use_redis(settings: dict[str, Any], explicit: set[str]) -> None:
    """With REDIS_URL, keep limits and cache in Redis, unless the keys in `explicit`
    (set in the environment or by the caller) say otherwise."""
    url = settings.get("REDIS_URL")
    if not url:
        return
    if "RATELIMIT_STORAGE_URI" not in explicit:
        settings["RATELIMIT_STORAGE_URI"] = url
        # Fail over to the in-memory fallback fast when Redis does not answer.
        settings["RATELIMIT_STORAGE_OPTIONS"] = {
            "socket_connect_timeout": 0.25,
            "socket_timeout": 0.25,
            **settings["RATELIMIT_STORAGE_OPTIONS"],
        }
    if "CACHE_TYPE" not in explicit:
        settings["CACHE_TYPE"] = "RedisCache"
        settings["CACHE_REDIS_URL"] = url
        settings.setdefault(
            "CACHE_OPTIONS", {"socket_connect_timeout": 0.25, "socket_timeout": 0.25}
        )


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
