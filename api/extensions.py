"""Extension objects, created unbound and initialised in `create_app`.

The rate limiter is not here: each app gets its own (`api.limits`)."""

from __future__ import annotations

from flask import Flask, current_app
from flask_caching import Cache
from flask_jwt_extended import JWTManager
from flask_mailman import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from api.models.base import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
jwt = JWTManager()
cache = Cache()


mail = Mail()


def init_redis(app: Flask) -> None:
    """A Redis client when `REDIS_URL` is set; it connects lazily, on first use."""
    url = app.config.get("REDIS_URL") or None
    client = None
    if url:
        timeout = app.config["REDIS_SOCKET_TIMEOUT"]
        client = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One immediate retry heals a pooled connection that Redis closed; redis-py's
            # default (retries with backoff) would hold requests for seconds when Redis is
            # down, while the database can answer at once.
            retry=Retry(NoBackoff(), 1),
            decode_responses=True,
        )
    app.extensions["redis"] = client


def redis_client() -> Redis | None:
    """The app's Redis client, or None when Redis is not configured."""
    client: Redis | None = current_app.extensions.get("redis")
    return client
