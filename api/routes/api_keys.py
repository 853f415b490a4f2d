"""Your API keys. Managed with a login token only: a key cannot mint or delete keys."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from apiflask.schemas import EmptySchema
from flask import url_for

from api.http import no_store
from api.pagination import ListHeaders, paginated
from api.routes.common import ViewResult, response_links
from api.security import current_user, requires
from api.services import api_keys
from schemas.api_keys import ApiKeyCreatedOut, ApiKeyIn, ApiKeyList, ApiKeyOut
from schemas.common import LocationHeader, PageQuery

bp = APIBlueprint(
    "api_keys",
    __name__,
    tag={
        "name": "API keys",
        "description": "Long-lived keys with narrow scopes, for scripts and integrations.",
    },
    url_prefix="/api/v1/api-keys",
)


@bp.post("")
@requires(sessions_only=True)
@bp.input(ApiKeyIn, location="json")
@bp.output(
    ApiKeyCreatedOut,
    status_code=201,
    headers=LocationHeader,
    description="The new key, with its secret: the only time it is shown.",
    links=response_links("key", "key_id", "getApiKey", "deleteApiKey"),
)
@bp.doc(operation_id="createApiKey", responses={403: "Your role cannot grant a scope asked for."})
def create_api_key(json_data: dict[str, Any]) -> ViewResult:
    """Create an API key.

    The key acts as you, with only the scopes it lists (at most those of your role).
    Store `secret` now: only its `prefix` is shown again.
    """
    issued = api_keys.create_key(current_user(), json_data)
    no_store()  # the secret is in this answer
    return issued, 201, {"Location": url_for(".get_api_key", key_id=issued.key.id)}


@bp.get("")
@requires(sessions_only=True)
@bp.input(PageQuery, location="query")
@bp.output(ApiKeyList, headers=ListHeaders, description="One page of your keys.")
@bp.doc(operation_id="listApiKeys")
def list_api_keys(query_data: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """List your API keys (never their secrets).

    Oldest first, with each key's scopes, expiry and last use; only a login token may list.
    """
    return paginated(api_keys.list_keys(current_user(), query_data))


@bp.get("/<int:key_id>")
@requires(sessions_only=True)
@bp.output(ApiKeyOut)
@bp.doc(operation_id="getApiKey")
def get_api_key(key_id: int) -> ViewResult:
    """Get one of your API keys (never its secret).

    Another user's key is a 404, exactly like a key that does not exist.
    """
    return api_keys.get_own_key(current_user(), key_id)


@bp.delete("/<int:key_id>")
@requires(sessions_only=True)
@bp.output(EmptySchema, status_code=204, description="Deleted: the key stops working at once.")
@bp.doc(operation_id="deleteApiKey")
def delete_api_key(key_id: int) -> tuple[str, int]:
    """Delete (revoke) one of your API keys.

    Requests with the key are refused (401) from now on; the answer is 204 with no body.
    """
    api_keys.delete_key(api_keys.get_own_key(current_user(), key_id))
    return "", 204
