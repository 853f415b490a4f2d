"""Sending webhook deliveries, per the Standard Webhooks specification.

A delivery is a JSON `POST` of `{type, timestamp, event_id, data}` with the headers
`webhook-id` (the delivery's message id: the same on every attempt, so receivers drop
duplicates), `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`:
`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` under each live secret,
space-separated (two during a rotation).

Each delivery is a job (`webhook.deliver`), so it runs on whichever executor the app uses,
and the job claim (`api.jobs.runner`) keeps two workers from sending it at once; a worker
killed mid-send leaves a stale heartbeat, and another takes the job over (at least once).
Deliveries to one webhook go out in event order while the receiver keeps up (see
`_behind_an_earlier_one`); receivers can also order a task's events by `data.version`.
One attempt per run: a failure schedules the next (`RunAgain`) with exponential backoff
and jitter, for about a day. A 2xx is delivered. A 410 disables the webhook at once;
WEBHOOK_DISABLE_AFTER_FAILURES failed attempts in a row disable it and email its owner.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from flask import current_app
from sqlalchemy import select, update

from api import clock
from api.extensions import db
from api.jobs import RunAgain, job_kind
from api.models import DeliveryStatus, Job, Webhook, WebhookDelivery
from api.services import notifications
from api.services.webhook_targets import RefusedTargetError, resolve
from api.services.webhooks import DELIVER_JOB, SECRET_PREFIX

log = logging.getLogger(__name__)

MAX_KEPT_BODY = 1024
# How soon a delivery that waits for an earlier one to the same webhook looks again.
_ORDER_WAIT_SECONDS = 0.5
_USER_AGENT = "TasksAPI-Webhooks/1"


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of a message, per Standard Webhooks."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def live_secrets(webhook: Webhook, now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one while its
    rotation overlap lasts."""
    found = [webhook.secret]
    expires = webhook.previous_secret_expires_at
    if webhook.previous_secret and expires is not None and expires > now:
        found.append(webhook.previous_secret)
    return found


@dataclass(frozen=True)
class Attempt:
    """What one attempt got: a status code and the start of the body, or an error."""

    status_code: int | None = None
    body: str | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every delivery (building one loads the CA bundle: ~0.1 s)."""
    return httpx.create_ssl_context()


def _pinned(url: str, address: str, port: int) -> str:
    """`url` with its host replaced by the checked address (the Host header and the TLS
    server name keep the name)."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path or "/", parts.query, ""))


def send(url: str, headers: dict[str, str], body: bytes) -> Attempt:
    """POST once, following no redirect: connect within WEBHOOK_CONNECT_TIMEOUT, and have
    the answer within WEBHOOK_TIMEOUT in all. Keeps at most 1 KiB of the body.

    httpx's timeouts bound each read and write, not the exchange (a receiver could drip a
    byte at a time), so the exchange runs on a thread of its own and is abandoned at the
    deadline; the abandoned thread ends at its next timeout.
    """
    config = current_app.config
    try:
        target = resolve(url)
    except RefusedTargetError as refused:
        return Attempt(error=f"Refused target: {refused}")
    total = config["WEBHOOK_TIMEOUT"]
    timeout = httpx.Timeout(total, connect=config["WEBHOOK_CONNECT_TIMEOUT"])
    request = {
        "url": _pinned(url, target.address, target.port),
        "content": body,
        "headers": {**headers, "Host": urlsplit(url).netloc, "User-Agent": _USER_AGENT},
        "extensions": {"sni_hostname": target.host} if url.startswith("https") else {},
    }
    outcome: list[Attempt] = []
    exchange = threading.Thread(
        target=lambda: outcome.append(_exchange(request, timeout)),
        name="webhook-exchange",
        daemon=True,
    )
    exchange.start()
    exchange.join(total)
    if not outcome:
        return Attempt(error=f"No complete answer within {total:g} s.")
    return outcome[0]


def _exchange(request: dict[str, Any], timeout: httpx.Timeout) -> Attempt:
    try:
        with (
            httpx.Client(
                timeout=timeout, follow_redirects=False, trust_env=False, verify=_tls()
            ) as client,
            client.stream("POST", **request) as response,
        ):
            kept = b""
            for chunk in response.iter_bytes():
                kept += chunk
                if len(kept) >= MAX_KEPT_BODY:
                    break
            text = kept[:MAX_KEPT_BODY].decode("utf-8", errors="replace")
            return Attempt(status_code=response.status_code, body=text)
    except httpx.ConnectTimeout:
        return Attempt(error=f"No connection within {timeout.connect:g} s.")
    except httpx.TimeoutException:  # the same words as the deadline's, whichever comes first
        return Attempt(error=f"No complete answer within {timeout.read:g} s.")
    except httpx.HTTPError as error:
        return Attempt(error=f"{type(error).__name__}: {error}"[:500])


def backoff(attempt: int) -> float:
    """Seconds before the attempt after `attempt`: doubling from WEBHOOK_RETRY_BASE_SECONDS,
    capped at WEBHOOK_RETRY_MAX_SECONDS, with ±25 % jitter so that the deliveries of an
    endpoint that came back do not all arrive at once."""
    config = current_app.config
    delay = min(
        config["WEBHOOK_RETRY_BASE_SECONDS"] * 2 ** (attempt - 1),
        config["WEBHOOK_RETRY_MAX_SECONDS"],
    )
    return float(delay * random.uniform(0.75, 1.25))  # noqa: S311  # nosec B311 - not a secret


def _behind_an_earlier_one(delivery: WebhookDelivery) -> bool:
    """Whether an earlier delivery to the same webhook has not been attempted yet (it is
    queued or being sent). Waiting for it keeps a webhook's deliveries in event order
    while the receiver keeps up; a delivery in backoff (attempted, failed) holds up no
    other, so one bad event cannot stall the stream for a day."""
    earlier = db.session.scalar(
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.webhook_id == delivery.webhook_id,
            WebhookDelivery.id < delivery.id,
            WebhookDelivery.status == DeliveryStatus.PENDING.value,
            WebhookDelivery.attempts == 0,
        )
        .limit(1)
    )
    return earlier is not None


@job_kind(DELIVER_JOB)
def deliver_webhook(job: Job) -> None:
    deliver(job.params["delivery_id"])


def deliver(delivery_id: int) -> None:
    """Make one attempt at a pending delivery (the `webhook.deliver` job's body)."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status != DeliveryStatus.PENDING.value:
        return  # delivered, given up, or its webhook was deleted
    webhook = db.session.get(Webhook, delivery.webhook_id)
    if webhook is None:
        return
    if _behind_an_earlier_one(delivery):
        db.session.rollback()
        raise RunAgain(_ORDER_WAIT_SECONDS, f"delivery {delivery_id} waits for an earlier one")
    if not webhook.is_active:
        delivery.status = DeliveryStatus.FAILED.value
        delivery.last_error = "The webhook is disabled."
        delivery.next_attempt_at = None
        db.session.commit()
        return
    now = clock.now()
    timestamp = int(now.timestamp())
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    message_id = delivery.message_id
    signatures = [signature(s, message_id, timestamp, body) for s in live_secrets(webhook, now)]
    headers = {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }
    url = webhook.url
    db.session.commit()  # no transaction stays open while the receiver takes its time
    attempt = send(url, headers, body)
    _record(delivery_id, webhook.id, attempt)


def _record(delivery_id: int, webhook_id: int, attempt: Attempt) -> None:
    """Write an attempt's outcome; schedule the next one (RunAgain) or give up."""
    config = current_app.config
    now = clock.now()
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status_code = attempt.status_code
    delivery.last_response_body = attempt.body
    delivery.last_error = attempt.error
    delivery.next_attempt_at = None
    if attempt.delivered:
        delivery.status = DeliveryStatus.DELIVERED.value
        delivery.delivered_at = now
        db.session.execute(
            update(Webhook).where(Webhook.id == webhook_id).values(consecutive_failures=0)
        )
        db.session.commit()
        return
    failures = db.session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id)
        .values(consecutive_failures=Webhook.consecutive_failures + 1)
        .returning(Webhook.consecutive_failures)
    ).scalar_one_or_none()
    if failures is None:  # the webhook was deleted meanwhile (its deliveries with it)
        db.session.rollback()
        return
    if delivery.last_error is None:
        delivery.last_error = f"The receiver answered {attempt.status_code}."
    disable_for = None
    if attempt.status_code == 410:
        disable_for = "The receiver answered 410 Gone."
    elif failures >= config["WEBHOOK_DISABLE_AFTER_FAILURES"]:
        disable_for = f"{failures} failed deliveries in a row."
    if disable_for is not None or delivery.attempts >= config["WEBHOOK_MAX_ATTEMPTS"]:
        delivery.status = DeliveryStatus.FAILED.value
        disabled = disable_for is not None and _disable(webhook_id, disable_for)
        db.session.commit()
        if disabled:
            notifications.webhook_disabled(webhook_id)
        return
    delay = backoff(delivery.attempts)
    delivery.next_attempt_at = clock.now() + timedelta(seconds=delay)
    reason = delivery.last_error
    db.session.commit()
    raise RunAgain(delay, f"delivery {delivery_id} attempt failed: {reason}")


def _disable(webhook_id: int, reason: str) -> bool:
    """Switch the webhook off; True if this call did (so its owner is emailed once)."""
    result = db.session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id, Webhook.is_active.is_(True))
        .values(is_active=False, disabled_reason=reason, updated_at=clock.now())
    )
    disabled: bool = result.rowcount == 1  # type: ignore[attr-defined]
    if disabled:
        log.warning("webhook %s disabled: %s", webhook_id, reason)
    return disabled
