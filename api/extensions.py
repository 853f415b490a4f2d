"""Extension objects, created unbound and initialised in `create_app`."""

from __future__ import annotations

from flask_caching import Cache
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from api.models.base import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
jwt = JWTManager()
cache = Cache()


def _rate_limit_key() -> str:
    # Imported late: api.limits needs the models and `db` defined above.
    from api.limits import client_key

    return client_key()


def _default_limit() -> str:
    from api.limits import default_limit

    return default_limit()


# Application limits: one budget per client across every route (default limits would
# give each route its own budget).
limiter = Limiter(key_func=_rate_limit_key, application_limits=[_default_limit])
