"""The docs UIs: `/docs` (Swagger UI, APIFlask's) and `/redoc`, from this server's files.

Both load their assets from the drf-spectacular-sidecar wheel, served under
`/docs/assets`: the pages never fetch anything from a CDN.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from apiflask import APIFlask
from apiflask.ui_templates import ui_templates
from flask import Blueprint, Response, render_template_string

ASSETS = "/docs/assets"

# Redoc's side menu always shows a logo from cdn.redoc.ly (no option turns it off): the
# browser may load nothing from elsewhere, so the page makes no outside request (the
# image just stays away). Redoc's own inline styles, start-up script and search worker
# need the rest.
REDOC_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:"
)


def _sidecar_static() -> Path:
    """Swagger UI and Redoc files from the drf-spectacular-sidecar wheel (not imported:
    it is a Django app; we only serve its files)."""
    spec = importlib.util.find_spec("drf_spectacular_sidecar")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover
        raise RuntimeError("drf-spectacular-sidecar is not installed; run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "static" / "drf_spectacular_sidecar"


def init_app(app: APIFlask) -> None:
    # A plain Flask blueprint: APIFlask leaves it out of the document.
    docs = Blueprint("docs", __name__, static_folder=str(_sidecar_static()), static_url_path=ASSETS)

    @docs.get("/redoc")
    def redoc() -> Response:
        page = render_template_string(ui_templates["redoc"], title=app.title, version=app.version)
        return Response(page, headers={"Content-Security-Policy": REDOC_CSP})

    app.register_blueprint(docs)
    app.config.update(
        SWAGGER_UI_CSS=f"{ASSETS}/swagger-ui-dist/swagger-ui.css",
        SWAGGER_UI_BUNDLE_JS=f"{ASSETS}/swagger-ui-dist/swagger-ui-bundle.js",
        SWAGGER_UI_STANDALONE_PRESET_JS=f"{ASSETS}/swagger-ui-dist/swagger-ui-standalone-preset.js",
        DOCS_FAVICON=f"{ASSETS}/swagger-ui-dist/favicon-32x32.png",
        REDOC_STANDALONE_JS=f"{ASSETS}/redoc/bundles/redoc.standalone.js",
        REDOC_USE_GOOGLE_FONT=False,
        SWAGGER_UI_CONFIG={
            "validatorUrl": None,  # the default sends the spec to an outside validator
            "persistAuthorization": True,
            "displayOperationId": True,
            "displayRequestDuration": True,
        },
    )
