"""WSGI module for the graceful-shutdown test: the app plus a deliberately slow route.

`GET /slow` creates the file named by `SLOW_MARKER` (so the test knows the request is
in flight), sleeps `SLOW_SECONDS`, then answers 200. Run as
`gunicorn -c gunicorn.conf.py tests.support.slow_app:app`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from api import create_app

app = create_app()


def slow() -> dict[str, str]:
    Path(os.environ["SLOW_MARKER"]).touch()
    time.sleep(float(os.environ.get("SLOW_SECONDS", "2")))
    return {"status": "finished"}


app.add_url_rule("/slow", "slow", slow)
