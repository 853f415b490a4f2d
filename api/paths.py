"""Which paths are the API: the rule, once.

The API lives under `API_PREFIX`; probes (/health), the docs and the spec live outside it.
Rate limits, ETags and their parts of the spec cover the API only.
"""

from __future__ import annotations

API_PREFIX = "/api/"


def is_api_path(path: str) -> bool:
    """Whether `path` (a request's, or a path of the spec) is part of the API."""
    return path.startswith(API_PREFIX)
