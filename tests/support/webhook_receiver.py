"""A real webhook receiver on a loopback port, verifying every delivery with the
`standardwebhooks` reference implementation (as an integrator's receiver would)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    message_id: str
    payload: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Receiver:
    """What the receiver saw, and how it answers: `statuses` are used up in order, then
    `default_status`; `hold` makes each request wait until it is set."""

    url: str
    secrets: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    # Every request's webhook-id, answered 2xx or not.
    attempts: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    hold: threading.Event | None = None
    # Called with each request before it is answered (what the sender holds meanwhile).
    on_request: Callable[[], None] | None = None
    requests: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    def verify(self, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        """The payload, if every configured secret verifies the signature."""
        payload: dict[str, Any] = {}
        for secret in self.secrets:
            payload = Verifier(secret).verify(body, headers)
        return payload

    def message_ids(self) -> list[str]:
        return [r.message_id for r in self.received]


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """Serve on 127.0.0.1 (a free port) for the block."""
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            receiver.attempts.append(headers.get("webhook-id", ""))
            receiver.requests.release()
            if receiver.hold is not None:
                receiver.hold.wait(timeout=30)
            if receiver.on_request is not None:
                receiver.on_request()
            try:
                payload = receiver.verify(body, headers)
            except WebhookVerificationError as error:
                receiver.rejected.append(str(error))
                self._answer(400, b"bad signature")
                return
            status = receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
            if 200 <= status < 300:
                receiver.received.append(Received(headers["webhook-id"], payload, headers))
            self._answer(status, json.dumps({"status": status, "pad": "x" * 2000}).encode())

        def _answer(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender is gone (a killed worker): nobody to answer

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_port}/hooks"
    # `shutdown` waits for the loop's next poll: at the default 0.5 s, every test using a
    # receiver paid half a second to stop it.
    thread = threading.Thread(
        target=server.serve_forever, args=(0.01,), name="webhook-receiver", daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        if receiver.hold is not None:
            receiver.hold.set()
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
