"""Webhook subscriptions: create, list, change, rotate, delete; and the fan-out of each
recorded event to the subscriptions that want it (in the event's own transaction).

Deliveries themselves (signing, sending, retries) live in `api.services.webhook_deliveries`.
"""

from __future__ import annotations

import base64
import logging
import secrets
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import select, update

from api import clock
from api.errors import ConflictError, InvalidFieldError, NotFoundError
from api.extensions import db
from api.jobs.queue import enqueue_with_transaction
from api.models import MAX_ID, DeliveryStatus, Event, User, Webhook, WebhookDelivery
from api.pagination import Page
from api.services import events
from api.services.paging import Listing, fetch_page
from api.services.webhook_targets import RefusedTargetError, check_url
from schemas.events import event_cursor

log = logging.getLogger(__name__)

DELIVER_JOB = "webhook.deliver"
PING = "webhook.ping"
SECRET_PREFIX = "whsec_"  # noqa: S105  # nosec B105 - the Standard Webhooks label
# After a rotation the old secret signs alongside the new one this long.
ROTATION_OVERLAP = timedelta(hours=24)


class IssuedWebhook(NamedTuple):
    """A webhook and its new secret, which exists only in this response."""

    webhook: Webhook
    secret: str


def new_secret() -> str:
    """`whsec_` and 32 random bytes in base64, as Standard Webhooks libraries expect."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _checked_url(url: str) -> str:
    try:
        check_url(url)
    except RefusedTargetError as refused:
        raise InvalidFieldError("url", str(refused)) from None
    return url


def create_webhook(user: User, data: dict[str, Any]) -> IssuedWebhook:
    now = clock.now()
    webhook = Webhook(
        owner_id=user.id,
        url=_checked_url(data["url"]),
        events=list(data["events"]),
        description=data.get("description"),
        secret=new_secret(),
        created_at=now,
        updated_at=now,
    )
    db.session.add(webhook)
    db.session.commit()
    log.info("user %s created webhook %s", user.id, webhook.id)
    return IssuedWebhook(webhook, webhook.secret)


def get_owned_webhook(user: User, webhook_id: int) -> Webhook:
    """The user's own webhook; anyone else's (admins' too) is a 404, like a missing one."""
    webhook = db.session.get(Webhook, webhook_id) if 0 < webhook_id <= MAX_ID else None
    if webhook is None or webhook.owner_id != user.id:
        raise NotFoundError(f"Webhook {webhook_id} does not exist.")
    return webhook


WEBHOOKS = Listing(
    "webhooks", Webhook, filters={"owner_id": lambda value: Webhook.owner_id == value("owner_id")}
)
DELIVERIES = Listing(
    "webhook_deliveries",
    WebhookDelivery,
    filters={"webhook_id": lambda value: WebhookDelivery.webhook_id == value("webhook_id")},
)


def list_webhooks(user: User, query: dict[str, Any]) -> Page:
    return fetch_page(WEBHOOKS, query, (("id", False),), {"owner_id": user.id})


def update_webhook(webhook: Webhook, changes: dict[str, Any]) -> Webhook:
    """Change the URL, events, description, or switch it on or off (switching it on
    forgets its failures)."""
    if "url" in changes:
        webhook.url = _checked_url(changes["url"])
    if "events" in changes:
        webhook.events = list(changes["events"])
    if "description" in changes:
        webhook.description = changes["description"]
    if "is_active" in changes:
        webhook.is_active = changes["is_active"]
        webhook.disabled_reason = None
        if webhook.is_active:
            webhook.consecutive_failures = 0
    webhook.updated_at = clock.now()
    db.session.commit()
    return webhook


def rotate_secret(webhook: Webhook) -> IssuedWebhook:
    """A new secret; the old one keeps signing too for ROTATION_OVERLAP."""
    now = clock.now()
    webhook.previous_secret = webhook.secret
    webhook.previous_secret_expires_at = now + ROTATION_OVERLAP
    webhook.secret = new_secret()
    webhook.updated_at = now
    db.session.commit()
    return IssuedWebhook(webhook, webhook.secret)


def delete_webhook(webhook: Webhook) -> None:
    db.session.delete(webhook)
    db.session.commit()


# --- deliveries ----------------------------------------------------------------------------


def _queue(
    webhook: Webhook, type_: str, data: dict[str, Any], event: Event | None
) -> WebhookDelivery:
    """A pending delivery of one message to one webhook, and the job that sends it, in the
    current transaction."""
    now = clock.now()
    payload = {
        "type": type_,
        "timestamp": (event.occurred_at if event else now).isoformat(),
        "event_id": event_cursor(event) if event else None,
        "data": data,
    }
    delivery = WebhookDelivery(
        webhook_id=webhook.id,
        event_id=event.id if event else None,
        message_id="msg_" + secrets.token_urlsafe(18),
        event_type=type_,
        payload=payload,
        status=DeliveryStatus.PENDING.value,
        created_at=now,
    )
    db.session.add(delivery)
    db.session.flush()
    enqueue_with_transaction(DELIVER_JOB, {"delivery_id": delivery.id})
    return delivery


@events.on_record
def fan_out(event: Event) -> None:
    """Queue a delivery of `event` to each of its owner's active webhooks that want it."""
    webhooks = db.session.scalars(
        select(Webhook)
        .where(Webhook.owner_id == event.owner_id, Webhook.is_active.is_(True))
        .order_by(Webhook.id)
    )
    for webhook in webhooks:
        if event.type in webhook.events:
            _queue(webhook, event.type, event.data, event)


def ping(webhook: Webhook) -> WebhookDelivery:
    """Queue a test message (`webhook.ping`), whichever events the webhook wants."""
    delivery = _queue(webhook, PING, {"webhook_id": webhook.id}, None)
    db.session.commit()
    return delivery


def list_deliveries(webhook: Webhook, query: dict[str, Any]) -> Page:
    """Newest first."""
    return fetch_page(DELIVERIES, query, (("id", True),), {"webhook_id": webhook.id})


def get_delivery(webhook: Webhook, delivery_id: int) -> WebhookDelivery:
    delivery = db.session.get(WebhookDelivery, delivery_id) if 0 < delivery_id <= MAX_ID else None
    if delivery is None or delivery.webhook_id != webhook.id:
        raise NotFoundError(f"Delivery {delivery_id} of webhook {webhook.id} does not exist.")
    return delivery


def redeliver(webhook: Webhook, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a finished delivery again (same `webhook-id`); 409 while it is still pending.
    A compare-and-set, so two requests at once queue it once."""
    if not webhook.is_active:
        raise ConflictError(f"Webhook {webhook.id} is disabled; enable it first (updateWebhook).")
    reopened = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery.id,
            WebhookDelivery.status != DeliveryStatus.PENDING.value,
        )
        .values(status=DeliveryStatus.PENDING.value, next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
    if reopened.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise ConflictError(
            f"Delivery {delivery.id} is still pending; wait for it to finish, then redeliver."
        )
    enqueue_with_transaction(DELIVER_JOB, {"delivery_id": delivery.id})
    db.session.commit()
    db.session.refresh(delivery)
    return delivery
