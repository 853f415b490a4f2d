"""The settings declaration (api/config.py): typed parsing, the extensions' keys passing
through by prefix, every problem reported at once by every entry point, and the README
table and .env.example generated from it (a drift fails here)."""

from __future__ import annotations

import re
import subprocess
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask_jwt_extended import create_access_token, decode_token

from api import create_app
from api.config import (
    DECLARED,
    EXIT_CONFIG,
    FIXED,
    SETTINGS,
    ConfigError,
    env_example,
    load_settings,
    main,
    markdown_table,
    replace_table,
)
from api.extensions import db
from tests.support.apps import dispose, isolated_process_state
from tests.support.processes import REPO, VENV_BIN, child_environment, free_port


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A developer's shell must not change what these tests read.
    for name in DECLARED:
        monkeypatch.delenv(name, raising=False)
    with isolated_process_state():
        yield


# --- Generated documents ---------------------------------------------------------------


def test_the_readme_table_is_generated_from_the_declaration() -> None:
    readme = (REPO / "README.md").read_text()
    assert replace_table(readme) == readme, "README.md's settings table is stale: `make docs`"
    table = markdown_table()
    for setting in SETTINGS:
        assert table.count(f"| `{setting.name}` |") == 1
    # No hand-written settings table beside the generated one (they drifted apart).
    assert readme.count("| Variable | Default | Meaning |") == table.count(
        "| Variable | Default | Meaning |"
    )


def test_env_example_is_generated_from_the_declaration() -> None:
    assert (REPO / ".env.example").read_text() == env_example(), "stale: run `make docs`"
    listed = re.findall(r"^# ([A-Z][A-Z0-9_]+)=", env_example(), flags=re.MULTILINE)
    assert listed == [s.name for s in SETTINGS if s.scope != "tests"]


def test_make_docs_rewrites_only_the_table_and_docs_check_fails_until_then(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (REPO / "README.md").read_text()
    stale = readme.replace("| `JOBS_STALL_SECONDS` |", "| `JOBS_STALLED` |")
    (tmp_path / "README.md").write_text(stale)
    monkeypatch.chdir(tmp_path)

    assert main(["--check"]) == 1  # what `make docs-check` (in `make check`) runs
    assert capsys.readouterr().err == (
        "README.md is stale: run `make docs`\n.env.example is stale: run `make docs`\n"
    )
    assert main([]) == 0  # `make docs`
    assert (tmp_path / "README.md").read_text() == readme
    assert (tmp_path / ".env.example").read_text() == env_example()
    assert main(["--check"]) == 0


def _keys_read_by(path: Path) -> set[str]:
    text = path.read_text()
    found = set(re.findall(r"config\[\"([A-Z][A-Z0-9_]+)\"\]", text))
    found |= set(re.findall(r"config\.get\(\"([A-Z][A-Z0-9_]+)\"", text))
    found |= set(re.findall(r"serving_setting\(\"([A-Z][A-Z0-9_]+)\"\)", text))
    found |= set(re.findall(r"_setting\(['\"]([A-Z][A-Z0-9_]+)['\"]\)", text))
    return found


def test_every_setting_the_code_reads_is_declared() -> None:
    # Keys the app sets for itself (derived, or Flask's and the extensions' own).
    derived = {"APP_ENV", "ENV_NAME", "TESTING", "SQLALCHEMY_DATABASE_URI", "CACHE_OPTIONS"}
    derived |= {"VALIDATION_ERROR_STATUS_CODE"}  # APIFlask's, set in api/openapi.py
    sources = [*REPO.joinpath("api").rglob("*.py"), REPO / "gunicorn.conf.py"]
    read = set().union(*(_keys_read_by(path) for path in sources))
    undeclared = read - set(DECLARED) - set(FIXED) - derived
    assert not undeclared, f"read by the code, not declared in api/config.py: {undeclared}"


# --- Parsing by type -------------------------------------------------------------------


def test_settings_parse_by_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("SERVERS", '[{"url": "https://api.example"}]')
    monkeypatch.setenv("JOBS_IMPORTS", "tests.support.job_kinds")
    monkeypatch.setenv("REQUIRE_IF_MATCH", "yes")
    monkeypatch.setenv("JOBS_STALL_SECONDS", "30.5")
    monkeypatch.setenv("JWT_ACCESS_TOKEN_EXPIRES", "60")
    settings = load_settings(profile="development")
    assert settings["CORS_ORIGINS"] == ["https://a.example", "https://b.example"]
    assert settings["SERVERS"] == [{"url": "https://api.example"}]
    assert settings["JOBS_IMPORTS"] == ["tests.support.job_kinds"]
    assert settings["REQUIRE_IF_MATCH"] is True
    assert settings["JOBS_STALL_SECONDS"] == 30.5
    assert settings["JWT_ACCESS_TOKEN_EXPIRES"] == timedelta(seconds=60)


def test_extension_keys_pass_through_by_prefix_with_their_types(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SQLALCHEMY_ECHO", "true")
    monkeypatch.setenv("JWT_TOKEN_LOCATION", "headers")
    monkeypatch.setenv("REDIS_URL", "redis://redis.internal:6379/0")
    monkeypatch.setenv("CACHE_REDIS_URL", "redis://cache.internal:6380/3")
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "memory://")
    monkeypatch.setenv("CELERY_WORKER_CONCURRENCY", "3")
    monkeypatch.setenv("MAIL_USE_LOCALTIME", "false")
    app = create_app(
        {
            "APP_ENV": "testing",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 't.db'}",
            "JOBS_BACKEND": "celery",
        }
    )
    try:
        assert app.config["SQLALCHEMY_ECHO"] is True
        with app.app_context():
            assert db.engine.echo is True  # reaches Flask-SQLAlchemy, not just the config
        # A list, as Flask-JWT-Extended needs (the string "headers" was iterated by letter).
        assert app.config["JWT_TOKEN_LOCATION"] == ["headers"]
        # The cache's own Redis, not REDIS_URL's.
        assert app.config["CACHE_TYPE"] == "RedisCache"
        assert app.config["CACHE_REDIS_URL"] == "redis://cache.internal:6380/3"
        assert app.config["MAIL_USE_LOCALTIME"] is False
        assert app.extensions["celery"].conf.worker_concurrency == 3
    finally:
        app.extensions["celery"].close()
        dispose(app)


def test_cache_redis_url_defaults_to_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://redis.internal:6379/0")
    assert load_settings(profile="development")["CACHE_REDIS_URL"] == (
        "redis://redis.internal:6379/0"
    )


# --- Every problem at once -------------------------------------------------------------

BAD = {
    "APP_ENV": "production",
    "SECRET_KEY": "short",
    "MAX_CONTENT_LENGTH": "lots",
    "LOG_FORMAT": "xml",
    "JOBS_BACKEND": "celery",
    "CELERY_BROKER_URL": "kafka://broker:9092",
}
EXPECTED = [
    "MAX_CONTENT_LENGTH='lots' is not a valid integer",
    "LOG_FORMAT must be one of json, text, not 'xml'",
    "SECRET_KEY is shorter than 32 bytes",
    "JWT_SECRET_KEY is missing: set it to a random value of 32+ bytes",
    "MAIL_BACKEND is not set: choose one for production (smtp; console only if printing every "
    "email, password-reset tokens included, to the log is what you want)",
    "CELERY_BROKER_URL has scheme 'kafka'; supported: redis, rediss, amqp, amqps",
]


def test_every_problem_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in BAD.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        create_app()
    assert raised.value.problems == EXPECTED


@pytest.mark.parametrize("entry_point", ["flask", "wsgi", "gunicorn"])
def test_entry_points_print_the_problems_and_exit(entry_point: str) -> None:
    commands = {
        "flask": [str(VENV_BIN / "flask"), "--app", "wsgi", "routes"],
        "wsgi": [str(VENV_BIN / "python"), "-c", "import wsgi"],
        "gunicorn": [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
    }
    env = child_environment(**BAD, PORT=str(free_port()))
    result = subprocess.run(  # noqa: S603 - our own command line
        commands[entry_point], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == EXIT_CONFIG
    assert result.stderr == f"configuration errors ({len(EXPECTED)}):\n" + "".join(
        f"  - {problem}\n" for problem in EXPECTED
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_an_unsupported_broker_scheme_is_one_line() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"CELERY_BROKER_URL": "sqs://queue"}, profile="development")
    assert str(raised.value) == (
        "configuration error: CELERY_BROKER_URL has scheme 'sqs'; "
        "supported: redis, rediss, amqp, amqps"
    )


def test_the_development_defaults_raise_no_warnings(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PyJWT's InsecureKeyLengthWarning among them
        app = create_app(
            {"APP_ENV": "development", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/t.db"}
        )
        try:
            with app.app_context():
                token = create_access_token(identity="1")
                assert decode_token(token)["sub"] == "1"
        finally:
            dispose(app)
    assert len(app.config["JWT_SECRET_KEY"].encode()) >= 32
