"""Settings: declared once, here, read from environment variables (and `.env`).

`SETTINGS` is the one declaration: each `Setting` has a name, a kind (how its text is
parsed), a default, per-profile overrides and a one-line meaning. The app's config, the
README's configuration table and `.env.example` all come from it (`make docs` writes the
last two; a test fails when they drift). Adding a setting is one line in `SETTINGS`
(`S` is `Setting`), then `make docs`:

    S("EVENT_RETENTION_DAYS", INT, 30, "Days an event stays replayable.", testing=1),

Kinds: TEXT, INT, FLOAT, BOOL, SECONDS (a timedelta), LIST (comma-separated), JSON.
Profile overrides are keywords (`development=`, `testing=`, `production=`); `choices=`
refuses other values at start-up. The app reads it from `current_app.config` by name,
already typed.

The extensions' own keys pass through by prefix (`PASSTHROUGH_PREFIXES`): any
`SQLALCHEMY_*`, `RATELIMIT_*`, `CACHE_*`, `JWT_*`, `MAIL_*` or `CELERY_*` variable reaches
the app's config even when it is not declared, its type read from its text (`true` is a
bool, `3` an int, `[...]`/`{...}` JSON, anything else a string).

`load_settings` reports every problem at once (`ConfigError`); the entry points
(`wsgi.py`, `gunicorn.conf.py`, the Celery worker) print them in one short message and exit.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

# Secrets that ship in docs and examples; production must never run with them.
DEV_SECRET = "dev-only-secret-key-change-me-in-production"  # noqa: S105  # nosec B105
DEFAULT_SECRETS = frozenset(
    {"", "dev", "change-me", "dev-secret-key-change-me", "secret", DEV_SECRET}
)
MIN_SECRET_BYTES = 32
PROFILES = ("development", "testing", "production")
# sysexits.h EX_CONFIG: what a start-up refused for its configuration exits with.
EXIT_CONFIG = 78
# Prefixes of the extensions' own keys: set from the environment even when undeclared.
PASSTHROUGH_PREFIXES = ("SQLALCHEMY_", "RATELIMIT_", "CACHE_", "JWT_", "MAIL_", "CELERY_")
# Celery broker schemes the jobs backend and its readiness check support.
BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps")


class ConfigError(RuntimeError):
    """The configuration cannot run (raised at start-up), with every problem found."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(self.report())

    def report(self) -> str:
        if len(self.problems) == 1:
            return f"configuration error: {self.problems[0]}"
        lines = [f"configuration errors ({len(self.problems)}):"]
        return "\n".join(lines + [f"  - {problem}" for problem in self.problems])


def exit_with(error: ConfigError) -> NoReturn:
    """Print the problems in one message (no traceback) and exit with EX_CONFIG."""
    print(error.report(), file=sys.stderr)
    raise SystemExit(EXIT_CONFIG)


# --- Kinds: how a setting's text becomes a value, and how a value is written back ------


@dataclass(frozen=True)
class Kind:
    name: str
    parse: Callable[[str], Any]
    show: Callable[[Any], str] = str


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")


def _parse_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _parse_json(text: str) -> Any:
    return json.loads(text)


TEXT = Kind("text", str)
INT = Kind("integer", int)
FLOAT = Kind("number", float)
BOOL = Kind("boolean", _parse_bool, lambda value: "true" if value else "false")
SECONDS = Kind(
    "seconds",
    lambda text: timedelta(seconds=int(text)),
    lambda value: str(int(value.total_seconds())),
)
LIST = Kind("comma-separated list", _parse_list, ",".join)
JSON = Kind("JSON", _parse_json, lambda value: json.dumps(value, separators=(", ", ": ")))

_UNSET: Any = object()


@dataclass(frozen=True)
class Setting:
    """One environment variable: its kind, default, profile overrides and meaning.

    `key` is the config key it fills when that differs from its name (DATABASE_URL fills
    SQLALCHEMY_DATABASE_URI). `scope` is who reads it: `app` (the app's config), `serving`
    (gunicorn.conf.py, the Makefile, prometheus_client) or `tests`. `shown` replaces the
    default in the docs (for secrets and computed defaults).
    """

    name: str
    kind: Kind
    default: Any
    meaning: str
    development: Any = _UNSET
    testing: Any = _UNSET
    production: Any = _UNSET
    choices: tuple[str, ...] = ()
    key: str = ""
    scope: str = "app"
    shown: str = ""

    @property
    def config_key(self) -> str:
        return self.key or self.name

    def value_for(self, profile: str) -> Any:
        override = getattr(self, profile, _UNSET)
        return self.default if override is _UNSET else override

    def overrides(self) -> dict[str, Any]:
        return {
            profile: getattr(self, profile)
            for profile in PROFILES
            if getattr(self, profile) is not _UNSET
        }

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


S = Setting
_LIMIT = "a Flask-Limiter limit string"

# One line per setting (the formatter leaves them so: a setting reads as one row).
# fmt: off
SETTINGS: tuple[Setting, ...] = (
    # Profile and secrets
    S("APP_ENV", TEXT, "development", "Profile; production refuses unsafe secrets and DEBUG.", choices=PROFILES),
    S("SECRET_KEY", TEXT, DEV_SECRET, "Flask secret; required in production (32+ random bytes, the same on every host).", testing="testing-secret-key-" + "x" * 32, production="", shown="dev-only value"),
    S("JWT_SECRET_KEY", TEXT, DEV_SECRET, "Key that signs JWTs; required in production (32+ random bytes).", testing="testing-jwt-secret-key-" + "x" * 32, production="", shown="dev-only value"),
    S("DEBUG", BOOL, False, "Flask debug mode (never in production)."),
    # Database
    S("DATABASE_URL", TEXT, None, "SQLAlchemy URL, e.g. `postgresql+psycopg://user:pass@host:5432/tasks`; unset: SQLite file `instance/tasks.db` (WAL, foreign keys on).", testing="sqlite://", key="SQLALCHEMY_DATABASE_URI"),
    S("SQLALCHEMY_ENGINE_OPTIONS", JSON, {"pool_pre_ping": True}, "JSON object passed to `create_engine`."),
    # Tokens and accounts
    S("JWT_ACCESS_TOKEN_EXPIRES", SECONDS, timedelta(minutes=15), "Access token lifetime, seconds."),
    S("JWT_REFRESH_TOKEN_EXPIRES", SECONDS, timedelta(days=14), "Refresh token lifetime, seconds."),
    S("JWT_ALGORITHM", TEXT, "HS256", "Algorithm that signs JWTs (Flask-JWT-Extended)."),
    S("JWT_TOKEN_LOCATION", LIST, ["headers"], "Where Flask-JWT-Extended looks for tokens."),
    S("JWT_DECODE_LEEWAY", INT, 0, "Seconds of clock skew allowed when checking a token's expiry."),
    S("REFRESH_REUSE_GRACE_SECONDS", INT, 10, "A rotated refresh token used again within this many seconds is accepted (two tabs refreshing); later, it revokes its family.", testing=0),
    S("PASSWORD_RESET_TTL_SECONDS", INT, 15 * 60, "Lifetime of an emailed password reset token."),
    S("PASSWORD_MIN_SCORE", INT, 2, "Passwords zxcvbn scores below this (0..4) are refused; 2 is the most any 8 characters reach."),
    S("ARGON2_TIME_COST", INT, 3, "Argon2id iterations (tests lower it).", testing=1),
    S("ARGON2_MEMORY_COST", INT, 64 * 1024, "Argon2id memory, KiB.", testing=8),
    S("ARGON2_PARALLELISM", INT, 1, "Argon2id lanes."),
    # Redis
    S("REDIS_URL", TEXT, None, "Redis shared by every worker, e.g. `redis://host:6379/0`: rate-limit counters, response cache, token blocklist, default Celery broker."),
    S("REDIS_SOCKET_TIMEOUT", FLOAT, 0.5, "Seconds to wait for Redis before the database answers instead."),
    S("REVOCATION_KEY_PREFIX", TEXT, "tasks-api-revocations:", "Prefix of the token blocklist's Redis keys."),
    S("REVOCATION_SYNC_SECONDS", INT, 60, "How often Redis's copy of the blocklist is caught up from the database."),
    # Email
    S("MAIL_BACKEND", TEXT, "console", "Flask-Mailman backend: `console` (prints, password-reset tokens included), `smtp`, `file`, `locmem`, `dummy`; production must set it.", testing="locmem", production=""),
    S("MAIL_SERVER", TEXT, "localhost", "SMTP server."),
    S("MAIL_PORT", INT, 25, "SMTP port."),
    S("MAIL_USERNAME", TEXT, None, "SMTP user name."),
    S("MAIL_PASSWORD", TEXT, None, "SMTP password."),
    S("MAIL_USE_TLS", BOOL, False, "SMTP with STARTTLS."),
    S("MAIL_USE_SSL", BOOL, False, "SMTP over TLS (SMTPS)."),
    S("MAIL_TIMEOUT", INT, 10, "Seconds before an SMTP call gives up (the email job then retries)."),
    S("MAIL_DEFAULT_SENDER", TEXT, "Tasks API <no-reply@localhost>", "From address."),
    # Background jobs
    S("JOBS_BACKEND", TEXT, "thread", "Job executor: `thread` (in each web process), `celery` (`flask worker` processes) or `inline` (after the response, tests).", testing="inline", choices=("thread", "celery", "inline")),
    S("JOBS_THREADS", INT, 4, "Thread executor: pool size per process."),
    S("JOBS_POLL_SECONDS", FLOAT, 2.0, "Thread executor: how often each process polls for queued jobs and orphans."),
    S("JOBS_STALL_SECONDS", FLOAT, 120.0, "Readiness and metrics call jobs `degraded` when a queued job waited, or no worker sent a heartbeat, this long."),
    S("JOB_HEARTBEAT_SECONDS", FLOAT, 5.0, "How often a running job, and each worker, writes a heartbeat."),
    S("JOB_STALE_SECONDS", FLOAT, 60.0, "A running job silent this long is an orphan and runs again."),
    S("JOB_MAX_ATTEMPTS", INT, 3, "Attempts before a transiently failing job fails."),
    S("JOB_RETRY_BACKOFF_SECONDS", FLOAT, 2.0, "First retry delay, doubled each time.", testing=0.0),
    S("JOB_RESULT_TTL", INT, 24 * 3600, "Seconds a finished job and its result are kept (then 410, then purged)."),
    S("JOBS_IMPORTS", LIST, [], "Modules imported at start-up that register more job kinds (`@job_kind`)."),
    S("CELERY_BROKER_URL", TEXT, None, "Celery broker, `redis://...` or `amqp://...`; unset: `REDIS_URL`."),
    S("CELERY_QUEUE", TEXT, "tasks-api-jobs", "Queue the jobs go to."),
    S("CELERY_VISIBILITY_TIMEOUT", INT, 3600, "Redis broker: seconds before an unacknowledged message (its worker died) is delivered again."),
    S("CELERY_KEY_PREFIX", TEXT, "", "Redis broker: prefix of every broker key (several deployments on one Redis)."),
    # Attachments
    S("ATTACHMENTS_STORAGE", TEXT, "local", "Where attachment bytes live: `local` (a directory) or `s3` (any S3-compatible store).", choices=("local", "s3")),
    S("ATTACHMENTS_DIR", TEXT, None, "`local`: the directory; unset: `instance/attachments/`."),
    S("S3_BUCKET", TEXT, "", "`s3`: the bucket (credentials: the standard `AWS_*` variables)."),
    S("S3_ENDPOINT_URL", TEXT, None, "`s3`: endpoint of a non-AWS store (MinIO, Ceph); unset: AWS."),
    S("S3_REGION", TEXT, "us-east-1", "`s3`: region."),
    S("ATTACHMENTS_REDIRECT", BOOL, False, "`s3`: downloads answer 307 to a short-lived presigned URL, so bytes bypass the app."),
    S("ATTACHMENTS_REDIRECT_SECONDS", INT, 60, "Lifetime of a presigned download URL."),
    S("MAX_ATTACHMENT_BYTES", INT, 10 * 1024 * 1024, "Largest attachment, bytes (413 above)."),
    S("ATTACHMENT_QUOTA_BYTES", INT, 100 * 1024 * 1024, "All of a user's attachments together, bytes (409 above)."),
    S("MAX_ATTACHMENTS_PER_TASK", INT, 20, "Attachments per task (409 above)."),
    S("ATTACHMENT_SWEEP_SECONDS", INT, 3600, "How often the `attachments.sweep` job removes orphaned objects and unfinished uploads."),
    S("ATTACHMENT_ORPHAN_GRACE_SECONDS", INT, 3600, "Age before an unreferenced object or unfinished upload is swept."),
    # Events and webhooks
    S("EVENT_RETENTION_DAYS", INT, 30, "Days an event stays replayable in `listEvents` (an older cursor is a 410); the `events.purge` job deletes older ones."),
    S("EVENT_PURGE_INTERVAL_SECONDS", INT, 3600, "How often the `events.purge` job runs."),
    S("WEBHOOK_ALLOW_PRIVATE_TARGETS", BOOL, False, "Deliver to loopback, private, link-local and metadata addresses (development and tests only: it opens the door to SSRF)."),
    S("WEBHOOK_MAX_ATTEMPTS", INT, 18, "Delivery attempts in all; attempt n waits `WEBHOOK_RETRY_BASE_SECONDS * 2**(n-1)` (capped, with jitter): about a day."),
    S("WEBHOOK_RETRY_BASE_SECONDS", FLOAT, 5.0, "First delivery retry delay, doubled each time."),
    S("WEBHOOK_RETRY_MAX_SECONDS", FLOAT, 4 * 3600.0, "Longest delay between two delivery attempts."),
    S("WEBHOOK_DISABLE_AFTER_FAILURES", INT, 20, "Failed deliveries in a row that disable a webhook (its owner is emailed)."),
    S("WEBHOOK_CONNECT_TIMEOUT", FLOAT, 3.0, "Seconds to connect to a webhook receiver."),
    S("WEBHOOK_TIMEOUT", FLOAT, 10.0, "Seconds one delivery may take in all."),
    # Rate limits (Flask-Limiter's own RATELIMIT_* keys)
    S("RATELIMIT_ENABLED", BOOL, True, "`false` switches every limit off (load tests, fuzzing)."),
    S("RATELIMIT_STORAGE_URI", TEXT, "memory://", "Limit counters' storage; with `REDIS_URL` set and this unset, Redis.", shown="`memory://` (or `REDIS_URL`)"),
    S("RATELIMIT_STORAGE_OPTIONS", JSON, {}, "JSON options for the limit storage."),
    S("RATELIMIT_STRATEGY", TEXT, "moving-window", "Flask-Limiter strategy."),
    S("RATELIMIT_HEADERS_ENABLED", BOOL, True, "Send `X-RateLimit-*` headers."),
    S("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", BOOL, True, "Storage down: limit per process instead of failing."),
    S("RATELIMIT_KEY_PREFIX", TEXT, "tasks-api", "Prefix of the limit counters' keys."),
    S("RATE_LIMIT_ANONYMOUS", TEXT, "60 per minute", f"Every request without a valid credential, per client IP ({_LIMIT})."),
    S("RATE_LIMIT_FREE", TEXT, "120 per minute", "Every request of a `free` user."),
    S("RATE_LIMIT_PRO", TEXT, "1200 per minute", "Every request of a `pro` user."),
    S("RATE_LIMIT_LOGIN", TEXT, "10 per minute", "Failed logins per client IP."),
    S("RATE_LIMIT_LOGIN_ACCOUNT", TEXT, "5 per minute; 10 per 15 minutes; 20 per hour", "Failed password checks per login name: a ladder of windows, so delays grow (never a hard lock)."),
    S("RATE_LIMIT_REGISTER", TEXT, "10 per hour", "Registrations per client IP."),
    S("RATE_LIMIT_PASSWORD_RESET", TEXT, "10 per hour", "Password-reset requests and confirmations per client IP."),
    S("RATE_LIMIT_REPORTS", TEXT, "5 per minute", "`createReport` per user."),
    S("RATE_LIMIT_ENUMERATION", TEXT, "100 per hour", "404s on id routes per client before every id route answers 429."),
    S("TRUSTED_PROXY_HOPS", INT, 0, "Proxies in front of the app whose `X-Forwarded-*` headers are trusted."),
    # HTTP
    S("MAX_CONTENT_LENGTH", INT, 1024 * 1024, "Largest accepted request body, bytes (413 above)."),
    S("REQUIRE_IF_MATCH", BOOL, False, "Refuse `PUT`/`PATCH`/`DELETE` without `If-Match` (428)."),
    S("IDEMPOTENCY_TTL_SECONDS", INT, 24 * 3600, "How long idempotency keys are remembered."),
    S("CACHE_TYPE", TEXT, "SimpleCache", "Flask-Caching backend; `NullCache` switches the response cache off.", shown="`SimpleCache` (or `RedisCache` with `REDIS_URL`)"),
    S("CACHE_DEFAULT_TIMEOUT", INT, 60, "Seconds a cached response lives."),
    S("CACHE_KEY_PREFIX", TEXT, "tasks-api:", "Prefix of the response cache's keys."),
    S("CACHE_REDIS_URL", TEXT, None, "Redis of the response cache; unset: `REDIS_URL`."),
    S("CORS_ORIGINS", LIST, [], "Origins allowed cross-origin; empty: none."),
    S("HSTS_SECONDS", INT, 0, "`Strict-Transport-Security` max-age; 0 sends none.", production=365 * 24 * 3600),
    S("SERVERS", JSON, [{"url": "/", "description": "The server hosting this document (local, staging or production).", "x-internal": False}], "JSON list for the document's `servers`; relative by default, so \"Try it out\" calls the host serving `/docs`.", shown='`[{"url": "/", ...}]`'),
    # Logs and metrics
    S("LOG_LEVEL", TEXT, "INFO", "Python logging level."),
    S("LOG_FORMAT", TEXT, "json", "`json` (one object per line) or `text` (for people).", development="text", testing="text", choices=("json", "text")),
    S("OUTAGE_REMINDER_SECONDS", FLOAT, 60.0, "A dependency that stays down is logged once, then reminded at most this often."),
    S("METRICS_ENABLED", BOOL, False, "Serve Prometheus metrics at `/metrics`."),
    S("METRICS_TOKEN", TEXT, "", "Bearer token `/metrics` requires (empty: none)."),
    # Serving: read by gunicorn.conf.py, the Makefile and prometheus_client
    S("HOST", TEXT, "127.0.0.1", "Where `make run` / `make serve` listen.", scope="serving"),
    S("PORT", INT, 5000, "Port of `make run` / `make serve`.", scope="serving"),
    S("WEB_CONCURRENCY", INT, 2, "gunicorn worker processes.", scope="serving"),
    S("GUNICORN_THREADS", INT, 4, "Threads per gunicorn worker.", scope="serving"),
    S("GUNICORN_BIND", TEXT, None, "gunicorn's listen address; unset: `$HOST:$PORT`.", scope="serving"),
    S("GUNICORN_TIMEOUT", INT, 30, "Seconds before a silent worker is killed and replaced.", scope="serving"),
    S("GUNICORN_GRACEFUL_TIMEOUT", INT, 30, "SIGTERM lets in-flight requests finish this long, then exits 0.", scope="serving"),
    S("GUNICORN_MAX_REQUESTS", INT, 0, "Recycle a worker after this many requests (jittered; 0: never).", scope="serving"),
    S("GUNICORN_LIMIT_REQUEST_LINE", INT, 8190, "Longest request line gunicorn accepts (longer: its HTML 414); 0 is unbounded, only behind a proxy that bounds it.", scope="serving"),
    S("GUNICORN_LOG_LEVEL", TEXT, "info", "gunicorn's own log level.", scope="serving"),
    S("PROMETHEUS_MULTIPROC_DIR", TEXT, None, "Directory where each gunicorn worker writes its metrics; gunicorn empties it at start.", scope="serving"),
    # Tests and tooling
    S("TEST_DATABASE_URL", TEXT, None, "Tests: also run every API test on this PostgreSQL server (each run creates and drops its own database).", scope="tests"),
    S("TEST_REDIS_URL", TEXT, None, "Tests: also run the Redis tier on this server (keys under a per-run prefix, deleted after).", scope="tests"),
    S("TEST_CELERY_BROKER_URL", TEXT, None, "Tests: the Redis the Celery tier's workers use; unset: database 12 of `TEST_REDIS_URL`.", scope="tests"),
    S("TEST_AMQP_URL", TEXT, "amqp://guest:guest@127.0.0.1:5672//", "Tests: the RabbitMQ of the `rabbitmq` tier (skipped when it does not answer).", scope="tests"),
    S("REQUIRE_TEST_TIERS", LIST, [], "Tests: tiers (`postgresql`, `redis`, `celery`, `rabbitmq`, `node`, `chromium`, `s3`) that must run; a missing one fails instead of skipping.", scope="tests"),
    S("TEST_ARTIFACTS", TEXT, "test-artifacts/", "Tests: where the browser test saves its screenshots of `/docs`.", scope="tests"),
    S("CONTRACT_MAX_EXAMPLES", INT, 50, "`make contract`: schemathesis examples per operation.", scope="tests"),
)
# fmt: on
DECLARED = {setting.name: setting for setting in SETTINGS}

# Config keys that are not settings: the same in every deployment.
FIXED: dict[str, Any] = {
    "JWT_ERROR_MESSAGE_KEY": "detail",
    # APIFlask: every operation names its operationId; 404s documented on id routes.
    "AUTO_OPERATION_ID": False,
    "AUTO_404_RESPONSE": True,
}


# --- Reading the environment -----------------------------------------------------------


def _guess(text: str) -> Any:
    """The value of an undeclared pass-through variable, its type read from its text."""
    lowered = text.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    if text.lstrip()[:1] in {"[", "{"}:
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def _parse(setting: Setting, text: str, problems: list[str]) -> Any:
    try:
        value = setting.kind.parse(text)
    except ValueError as error:
        reason = str(error).splitlines()[0] if setting.kind in (BOOL, JSON) else ""
        problems.append(
            f"{setting.name}={text!r} is not a valid {setting.kind.name}"
            + (f" ({reason})" if reason else "")
        )
        return setting.default
    if setting.choices and value not in setting.choices:
        problems.append(f"{setting.name} must be one of {', '.join(setting.choices)}, not {text!r}")
    return value


def read_dotenv() -> None:
    """Read `.env` in the working directory (the environment wins)."""
    from dotenv import load_dotenv

    load_dotenv(override=False)


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The app's config: the profile's defaults, the environment, then `overrides`.

    `overrides` (create_app's test_config) win over the environment; text given for a
    declared setting of another kind is parsed as the environment's would be. Raises one
    ConfigError listing every problem.
    """
    env = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    given = set(overrides)
    problems: list[str] = []
    name = profile or overrides.get("APP_ENV") or env.get("APP_ENV") or "development"
    if name not in PROFILES:
        problems.append(f"APP_ENV must be one of {', '.join(PROFILES)}, not {name!r}")
        name = "development"

    settings: dict[str, Any] = dict(FIXED)
    for setting in SETTINGS:
        if setting.scope != "app" or setting.name == "APP_ENV":  # APP_ENV: read above
            continue
        value = setting.value_for(name)
        if setting.name in overrides:
            value = overrides.pop(setting.name)
            if isinstance(value, str) and setting.kind is not TEXT:
                value = _parse(setting, value, problems)
        elif env.get(setting.name) is not None:
            value = _parse(setting, env[setting.name], problems)
        settings[setting.config_key] = value
    settings["APP_ENV"] = settings["ENV_NAME"] = name
    settings["TESTING"] = name == "testing"
    for key, text in env.items():
        if key.startswith(PASSTHROUGH_PREFIXES) and key not in DECLARED and key not in overrides:
            settings[key] = _guess(text)
    settings.update(overrides)

    explicit = {key for key in settings if key in env} | given
    use_redis(settings, explicit)
    problems += check_secrets(settings) + check_jobs(settings)
    if problems:
        raise ConfigError(problems)
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
        settings.setdefault(
            "CACHE_OPTIONS", {"socket_connect_timeout": 0.25, "socket_timeout": 0.25}
        )
    if not settings.get("CACHE_REDIS_URL"):
        settings["CACHE_REDIS_URL"] = url


def check_secrets(settings: Mapping[str, Any]) -> list[str]:
    """Production's problems with its secrets and DEBUG (none elsewhere)."""
    if settings.get("ENV_NAME") != "production":
        return []
    problems = []
    for key in ("SECRET_KEY", "JWT_SECRET_KEY"):
        value = str(settings.get(key) or "")
        if not value:
            problems.append(f"{key} is missing: set it to a random value of 32+ bytes")
        elif value in DEFAULT_SECRETS:
            problems.append(f"{key} is a published default: set a random value of 32+ bytes")
        elif len(value.encode()) < MIN_SECRET_BYTES:
            problems.append(f"{key} is shorter than {MIN_SECRET_BYTES} bytes")
    if settings.get("DEBUG"):
        problems.append("DEBUG must be off in production")
    if not settings.get("MAIL_BACKEND"):
        problems.append(
            "MAIL_BACKEND is not set: choose one for production (smtp; console only if "
            "printing every email, password-reset tokens included, to the log is what you want)"
        )
    if settings.get("METRICS_ENABLED") and not settings.get("METRICS_TOKEN"):
        problems.append(
            "METRICS_ENABLED needs METRICS_TOKEN in production: without it /metrics is public"
        )
    return problems


def broker_url(settings: Mapping[str, Any]) -> str | None:
    """Celery's broker: CELERY_BROKER_URL, else REDIS_URL."""
    url = settings.get("CELERY_BROKER_URL") or settings.get("REDIS_URL")
    return str(url) if url else None


def check_jobs(settings: Mapping[str, Any]) -> list[str]:
    """The jobs backend's problems: a broker it cannot use."""
    url = broker_url(settings)
    problems = []
    if settings.get("JOBS_BACKEND") == "celery" and not url:
        problems.append("JOBS_BACKEND=celery needs CELERY_BROKER_URL or REDIS_URL")
    if settings.get("CELERY_BROKER_URL"):
        scheme = urlsplit(str(settings["CELERY_BROKER_URL"])).scheme
        if scheme not in BROKER_SCHEMES:
            problems.append(
                f"CELERY_BROKER_URL has scheme {scheme or '(none)'!r}; "
                f"supported: {', '.join(BROKER_SCHEMES)}"
            )
    return problems


def serving_setting(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """A `serving` setting's value from the environment (gunicorn.conf.py's reader)."""
    setting = DECLARED[name]
    text = (os.environ if environ is None else environ).get(name)
    if text is None:
        return setting.default
    problems: list[str] = []
    value = _parse(setting, text, problems)
    if problems:
        raise ConfigError(problems)
    return value


def sqlite_url(instance_path: str) -> str:
    return f"sqlite:///{Path(instance_path) / 'tasks.db'}"


# --- Generated documents: the README's table and .env.example -------------------------

TABLE_START = "<!-- settings-table: generated by `make docs` from api/config.py -->"
TABLE_END = "<!-- /settings-table -->"
_SCOPE_TITLES = {
    "app": "The app",
    "serving": "Serving (gunicorn.conf.py, `make serve`, the image)",
    "tests": "Tests and tooling",
}


def _shown(setting: Setting, value: Any) -> str:
    if value is None:
        return "unset"
    text = setting.kind.show(value)
    return f"`{text}`" if text else "empty"


def _overrides(setting: Setting) -> list[str]:
    """`profile: value` for each profile override (secrets: production's only)."""
    return [
        f"{profile}: {_shown(setting, value)}"
        for profile, value in setting.overrides().items()
        if not (setting.shown and profile != "production")
    ]


def _default_cell(setting: Setting) -> str:
    cell = setting.shown or _shown(setting, setting.default)
    others = _overrides(setting)
    return f"{cell} ({'; '.join(others)})" if others else cell


def markdown_table() -> str:
    """The README's configuration tables, one per scope, between their markers."""
    lines = [TABLE_START]
    for scope, title in _SCOPE_TITLES.items():
        lines += ["", f"**{title}**", "", "| Variable | Default | Meaning |", "|---|---|---|"]
        for setting in SETTINGS:
            if setting.scope == scope:
                meaning = setting.meaning.replace("|", "\\|")
                lines.append(f"| `{setting.name}` | {_default_cell(setting)} | {meaning} |")
    lines += ["", TABLE_END]
    return "\n".join(lines)


def env_example() -> str:
    """`.env.example`: every app and serving setting, commented out at its default."""
    lines = [
        "# Tasks API settings: copy to .env and uncomment what you change.",
        "# Generated by `make docs` from api/config.py; do not edit by hand.",
    ]
    for setting in SETTINGS:
        if setting.scope == "tests":
            continue
        overrides = "; ".join(_overrides(setting)).replace("`", "")
        lines += ["", f"# {setting.meaning}" + (f" ({overrides})" if overrides else "")]
        default = setting.default
        text = "" if default is None else setting.kind.show(default)
        if setting.name in {"SECRET_KEY", "JWT_SECRET_KEY"}:
            text = ""  # never suggest the development value
        lines.append(f"# {setting.name}={text}")
    return "\n".join(lines) + "\n"


def replace_table(readme: str) -> str:
    """`readme` with its generated table replaced by the current one."""
    start, end = readme.index(TABLE_START), readme.index(TABLE_END) + len(TABLE_END)
    return readme[:start] + markdown_table() + readme[end:]


def write_docs(root: Path) -> list[Path]:
    """Regenerate README.md's table and .env.example under `root`; return what changed."""
    changed = []
    renderers: list[tuple[Path, Callable[[str], str]]] = [
        (root / "README.md", replace_table),
        (root / ".env.example", lambda old: env_example()),
    ]
    for path, render in renderers:
        old = _read(path)
        new = render(old)
        if new != old:
            path.write_text(new)
            changed.append(path)
    return changed


def main(argv: list[str]) -> int:
    """`make docs` (write) and `make docs-check` (`--check`: exit 1 when stale)."""
    root = Path.cwd()
    if "--check" in argv:
        stale = [
            name
            for name, current, wanted in (
                ("README.md", (root / "README.md").read_text(), None),
                (".env.example", _read(root / ".env.example"), env_example()),
            )
            if current != (wanted if wanted is not None else replace_table(current))
        ]
        for name in stale:
            print(f"{name} is stale: run `make docs`", file=sys.stderr)
        return 1 if stale else 0
    for written in write_docs(root):
        print(f"wrote {written}")
    return 0


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""
