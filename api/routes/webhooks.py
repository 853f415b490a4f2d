"""Your webhooks: subscriptions that push your events to a URL, and their deliveries."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from apiflask.schemas import EmptySchema
from flask import url_for

from api.http import no_store
from api.models import Scope
from api.pagination import ListHeaders, paginated
from api.routes.common import ViewResult, response_links
from api.security import current_user, requires
from api.services import webhooks
from schemas.common import LocationHeader, PageQuery
from schemas.webhooks import (
    DeliveryList,
    DeliveryOut,
    WebhookCreatedOut,
    WebhookIn,
    WebhookList,
    WebhookOut,
    WebhookPatchIn,
)

bp = APIBlueprint(
    "webhooks",
    __name__,
    tag={
        "name": "Webhooks",
        "description": "Your events, pushed to your URL as they happen: signed per Standard "
        "Webhooks, retried for about a day. The payloads are under `webhooks` in this document.",
    },
    url_prefix="/api/v1/webhooks",
)

_OPERATIONS_ON_A_WEBHOOK = response_links(
    "webhook",
    "webhook_id",
    "getWebhook",
    "updateWebhook",
    "deleteWebhook",
    "pingWebhook",
    "rotateWebhookSecret",
    "listWebhookDeliveries",
)
_DELIVERY_QUEUED = "The delivery, queued: follow it in `listWebhookDeliveries`."


def _owned(webhook_id: int) -> Any:
    return webhooks.get_owned_webhook(current_user(), webhook_id)


@bp.post("")
@requires(Scope.WEBHOOKS_WRITE)
@bp.input(WebhookIn, location="json")
@bp.output(
    WebhookCreatedOut,
    status_code=201,
    headers=LocationHeader,
    description="The new webhook, with its secret: the only time it is shown.",
    links=_OPERATIONS_ON_A_WEBHOOK,
)
@bp.doc(operation_id="createWebhook")
def create_webhook(json_data: dict[str, Any]) -> ViewResult:
    """Subscribe a URL to some of your events.

    Each event is POSTed to `url` as JSON, signed with `secret` (store it now: it is not
    shown again). Loopback, private, link-local and metadata addresses are refused (422).
    """
    issued = webhooks.create_webhook(current_user(), json_data)
    location = url_for(".get_webhook", webhook_id=issued.webhook.id)
    no_store()  # the secret is in this answer
    return issued, 201, {"Location": location}


@bp.get("")
@requires(Scope.WEBHOOKS_READ)
@bp.input(PageQuery, location="query")
@bp.output(WebhookList, headers=ListHeaders, description="One page of your webhooks.")
@bp.doc(operation_id="listWebhooks")
def list_webhooks(query_data: dict[str, Any]) -> ViewResult:
    """List your webhooks (never their secrets).

    Oldest first, with the events each receives and whether it is active (and if the server
    disabled it, why).
    """
    return paginated(webhooks.list_webhooks(current_user(), query_data))


@bp.get("/<int:webhook_id>")
@requires(Scope.WEBHOOKS_READ)
@bp.output(WebhookOut)
@bp.doc(operation_id="getWebhook")
def get_webhook(webhook_id: int) -> ViewResult:
    """Get one of your webhooks (never its secret).

    Another user's webhook is a 404, exactly like one that does not exist.
    """
    return _owned(webhook_id)


@bp.patch("/<int:webhook_id>")
@requires(Scope.WEBHOOKS_WRITE)
@bp.input(WebhookPatchIn, location="json")
@bp.output(WebhookOut)
@bp.doc(operation_id="updateWebhook")
def update_webhook(webhook_id: int, json_data: dict[str, Any]) -> ViewResult:
    """Change a webhook's URL, events or description, or switch it on or off.

    Send at least one field. `is_active: true` re-enables a webhook the server disabled and
    forgets its failures; redeliver what it missed with `redeliverWebhookDelivery`.
    """
    return webhooks.update_webhook(_owned(webhook_id), json_data)


@bp.delete("/<int:webhook_id>")
@requires(Scope.WEBHOOKS_WRITE)
@bp.output(EmptySchema, status_code=204, description="Deleted: nothing more is sent.")
@bp.doc(operation_id="deleteWebhook")
def delete_webhook(webhook_id: int) -> ViewResult:
    """Delete a webhook and its delivery history.

    Nothing more is sent to it, pending retries included; the answer is 204 with no body.
    """
    webhooks.delete_webhook(_owned(webhook_id))
    return "", 204


@bp.post("/<int:webhook_id>/secret")
@requires(Scope.WEBHOOKS_WRITE)
@bp.output(
    WebhookCreatedOut, description="The webhook with its new secret: the only time it is shown."
)
@bp.doc(operation_id="rotateWebhookSecret")
def rotate_webhook_secret(webhook_id: int) -> ViewResult:
    """Rotate a webhook's signing secret.

    For 24 hours deliveries carry two signatures, one per secret, so receivers can switch
    to the new secret without missing a delivery.
    """
    no_store()  # the new secret is in this answer
    return webhooks.rotate_secret(_owned(webhook_id)), 200  # a NamedTuple: not a bare return


@bp.post("/<int:webhook_id>/ping")
@requires(Scope.WEBHOOKS_WRITE)
@bp.output(DeliveryOut, status_code=202, description=_DELIVERY_QUEUED)
@bp.doc(operation_id="pingWebhook")
def ping_webhook(webhook_id: int) -> ViewResult:
    """Send a test delivery (`webhook.ping`) to a webhook.

    It is signed and retried like any event, whichever events the webhook receives; follow
    it in `listWebhookDeliveries`.
    """
    return webhooks.ping(_owned(webhook_id)), 202


@bp.get("/<int:webhook_id>/deliveries")
@requires(Scope.WEBHOOKS_READ)
@bp.input(PageQuery, location="query")
@bp.output(DeliveryList, headers=ListHeaders, description="One page of deliveries.")
@bp.doc(operation_id="listWebhookDeliveries")
def list_webhook_deliveries(webhook_id: int, query_data: dict[str, Any]) -> ViewResult:
    """List a webhook's deliveries, newest first.

    Each shows its status, attempts, the receiver's last answer and the next retry time.
    """
    return paginated(webhooks.list_deliveries(_owned(webhook_id), query_data))


@bp.post("/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver")
@requires(Scope.WEBHOOKS_WRITE)
@bp.output(DeliveryOut, status_code=202, description=_DELIVERY_QUEUED)
@bp.doc(
    operation_id="redeliverWebhookDelivery",
    responses={409: "The delivery is still pending, or the webhook is disabled."},
)
def redeliver_webhook_delivery(webhook_id: int, delivery_id: int) -> ViewResult:
    """Send a delivery again, with the same `webhook-id`.

    For one that was delivered or failed for good (a 409 while it is still pending, or
    while the webhook is disabled); it is then retried like a new one.
    """
    webhook = _owned(webhook_id)
    return webhooks.redeliver(webhook, webhooks.get_delivery(webhook, delivery_id)), 202
