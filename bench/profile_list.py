"""Where a list request's time goes: `python -m bench.profile_list [requests]`.

Seeds a SQLite database as `make bench` does (BENCH_DATABASE=postgresql for the local
PostgreSQL), then serves `GET /api/v1/tasks?per_page=20` in process (Flask's test client,
no HTTP server) from the app in the production profile and from the raw Flask baseline,
prints the CPU time per request of each (process time: other load on the machine does
not inflate it, as it inflates wall-clock figures), and the app's pyinstrument profile.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from bench.run import LIST, PASSWORD, app_env, fresh_database, seed

REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 else 500


def per_request_us(client: Any, headers: dict[str, str], count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        response = client.get(LIST, headers=headers)
        assert response.status_code == 200, response.data[:300]
    return (time.process_time() - started) / count * 1e6


def main() -> None:
    from pyinstrument import Profiler

    backend = os.environ.get("BENCH_DATABASE", "sqlite")
    with fresh_database(backend) as url:
        seed(url)
        os.environ.update(app_env(url, RATE_LIMIT_FREE="100000000 per minute"))
        os.environ["CACHE_TYPE"] = "NullCache"
        from api import create_app
        from bench.baselines.raw_flask import app as raw

        app = create_app(profile="production")
        client = app.test_client()
        pair = client.post("/api/v1/auth/login", json={"login": "user2", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {pair.get_json()['access_token']}"}
        raw_client = raw.test_client()
        for target in (client, raw_client):
            per_request_us(target, headers, 50)  # warm up
        app_us, raw_us = [], []
        for _ in range(3):  # interleaved, as in make bench
            app_us.append(per_request_us(client, headers, REQUESTS))
            raw_us.append(per_request_us(raw_client, headers, REQUESTS))
        app_best, raw_best = min(app_us), min(raw_us)
        print(
            f"{backend}: CPU per request: app {app_best:.0f} us, raw Flask {raw_best:.0f} us "
            f"(best of 3 x {REQUESTS}); raw / app = {raw_best / app_best:.2f}"
        )
        profiler = Profiler(interval=0.0002)
        with profiler:
            per_request_us(client, headers, REQUESTS)
        print(
            profiler.output_text(
                unicode=False, color=False, show_all=os.environ.get("PROFILE_ALL") == "1"
            )
        )


if __name__ == "__main__":
    main()
