"""A moto S3 server in a process of its own, for the `s3` test tier.

`python -m tests.support.s3_server PORT` serves S3 on 127.0.0.1:PORT. SIGUSR1 stops
its HTTP server (connections are refused: the store is down) and SIGUSR2 starts it again
on the same port; the buckets and objects it holds survive, so a test can check that an
outage lost nothing. SIGTERM ends it.
"""

from __future__ import annotations

import queue
import signal
import sys
from typing import Any

from moto.server import ThreadedMotoServer


def main() -> None:
    port = int(sys.argv[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    actions: queue.Queue[str] = queue.Queue()

    def on(action: str) -> Any:
        return lambda *_: actions.put(action)

    signal.signal(signal.SIGUSR1, on("stop"))
    signal.signal(signal.SIGUSR2, on("start"))
    signal.signal(signal.SIGTERM, on("exit"))
    running = True
    while True:
        try:
            action = actions.get(timeout=1)
        except queue.Empty:
            continue
        if action == "stop" and running:
            server.stop()
            running = False
        elif action == "start" and not running:
            server.start()
            running = True
        elif action == "exit":
            if running:
                server.stop()
            return


if __name__ == "__main__":
    main()
