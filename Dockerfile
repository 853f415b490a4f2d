# Tasks API: gunicorn serving the app as a non-root user, runtime dependencies only.
# Build where a registry is reachable: `docker build -t tasks-api .` (or `docker compose
# up --build`, see compose.yaml). Settings are environment variables (README,
# Configuration); migrations are a separate step: `flask --app wsgi db upgrade`.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml requirements/lock.txt ./
# pyproject's main dependencies (no dev extras), each pinned by the lock file.
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > runtime.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install -c lock.txt -r runtime.txt

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/tasks-api-metrics
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin tasks
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY api api
COPY schemas schemas
COPY migrations migrations
COPY wsgi.py gunicorn.conf.py ./
# By number: a runtime that cannot resolve names still runs it unprivileged.
USER 10001:10001
EXPOSE 8000
# Liveness only (it touches no dependency); orchestrators probe /health/ready themselves.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '8000'), timeout=2)"]
# gunicorn by default; compose runs the worker and the migration from the same image.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
