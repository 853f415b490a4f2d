"""The deploy kit matches the code: compose.yaml's variables are real settings and its
commands are what the Make targets run; the Dockerfile is hadolint clean, runs gunicorn as
a non-root user and probes liveness. (Images are built where a registry is reachable:
this machine cannot pull base images, so nothing here builds one.)"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.config import DECLARED
from tests.support.processes import REPO, VENV_BIN, gunicorn_servers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
    return loaded


def ours(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the app's image (not PostgreSQL's or Redis's)."""
    return {name: s for name, s in compose["services"].items() if "build" in s}


def make_commands(target: str) -> str:
    """What `make <target>` would run (printed, not run)."""
    result = subprocess.run(  # noqa: S603 - our own command line
        ["make", "--no-print-directory", "-n", target],  # noqa: S607 - make from PATH
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    # Paths to a virtualenv's scripts are the same commands as on the image's PATH.
    return re.sub(r"\S*/bin/(\w+)", r"\1", result.stdout)


def test_the_app_services_are_web_worker_and_a_one_shot_migration(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert set(ours(compose)) == {"migrate", "web", "worker"}
    assert {"postgres", "redis"} <= set(services)
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    for name in ("postgres", "redis", "web", "worker"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"


def test_compose_variables_are_declared_settings(compose: dict[str, Any]) -> None:
    text = (REPO / "compose.yaml").read_text()
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    set_directly = {
        name for service in ours(compose).values() for name in service.get("environment", {})
    }
    for name in interpolated | set_directly:
        assert name in DECLARED, f"compose.yaml uses {name}, which api/config.py does not declare"
        assert DECLARED[name].scope in {"app", "serving"}


@pytest.mark.parametrize(
    ("service", "target"), [("migrate", "migrate"), ("web", "serve"), ("worker", "worker")]
)
def test_compose_commands_are_what_the_make_targets_run(
    compose: dict[str, Any], service: str, target: str
) -> None:
    command = shlex.join(ours(compose)[service]["command"])
    # The worker's options (concurrency) are its own; the command itself is the target's.
    command = command.split(" --", 1)[0] if service == "worker" else command
    assert command in make_commands(target)


def test_the_image_runs_gunicorn_unprivileged_and_probes_liveness() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)$", dockerfile, flags=re.MULTILINE)
    assert stages == ["build", "runtime"]
    runtime = dockerfile.split("AS runtime", 1)[1]
    assert re.search(r"^USER 10001:10001$", runtime, flags=re.MULTILINE)
    assert "/health/live" in runtime.split("HEALTHCHECK", 1)[1].split("\n\n")[0]
    cmd = re.search(r"^CMD (\[.*\])$", runtime, flags=re.MULTILINE)
    assert cmd is not None
    assert shlex.join(yaml.safe_load(cmd.group(1))) in make_commands("serve")
    # Runtime dependencies only, pinned by the lock file: no dev extras in the image.
    assert "-c lock.txt -r runtime.txt" in dockerfile
    assert "[dev]" not in dockerfile


def test_the_dockerfile_is_hadolint_clean() -> None:
    result = subprocess.run(  # noqa: S603 - our own command line
        [str(VENV_BIN / "hadolint"), "Dockerfile"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_make_serve_installs_the_runtime_only() -> None:
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\n$(RUNTIME_STAMP): ", 1)[1].split("\n\n", 1)[0]
    assert "-c requirements/lock.txt -e .\n" in recipe  # pyproject's main dependencies
    assert "[dev]" not in recipe
    assert re.search(r"^serve: install-runtime ", makefile, flags=re.MULTILINE)
    assert re.search(r"^migrate: install-runtime ", makefile, flags=re.MULTILINE)
    assert "db upgrade" not in make_commands("serve")  # migrating is its own step


def test_gunicorn_empties_the_metrics_directory_at_start(tmp_path: Path) -> None:
    # Documented in the README (Deploying, Metrics): samples of a previous run's workers
    # would otherwise be added in forever.
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    stale = metrics / "counter_99999.db"
    stale.write_bytes(b"a dead worker's samples")
    settings = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'tasks.db'}",
        "METRICS_ENABLED": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    with gunicorn_servers(1, "wsgi", tmp_path, **settings) as [server]:
        assert server.request("GET", "/health/live").status == 200
        assert not stale.exists()
        assert metrics.is_dir()
