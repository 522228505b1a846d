"""The API's browsable docs (Swagger UI at ``/docs``, ReDoc at ``/redoc``), served with their own assets.

FastAPI's default pages load Swagger UI and ReDoc from a CDN (and ReDoc its fonts from Google), so on a
box without internet they are blank. The JavaScript, CSS and favicon ship in the ``fastapi-offline``
package; this module serves them from there under ``/docs/assets`` and renders both pages against those
local URLs only.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute

__all__ = ["ASSETS_URL", "DOCS_URL", "REDOC_URL", "install_api_docs"]

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"
_OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def _assets_dir() -> Path:
    """The folder of packaged Swagger UI and ReDoc files."""
    return Path(str(files("fastapi_offline") / "static"))


def _is_default_docs_route(route: BaseRoute, app: FastAPI) -> bool:
    defaults = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url} - {None}
    return getattr(route, "path", None) in defaults


def install_api_docs(app: FastAPI) -> None:
    """Replace FastAPI's CDN-backed doc pages with pages whose every asset this server serves.

    The default routes are dropped rather than switched off in the constructor, so the app keeps one
    place (this module) that decides how its docs are served.
    """
    app.router.routes[:] = [r for r in app.router.routes if not _is_default_docs_route(r, app)]
    app.docs_url = app.redoc_url = None
    openapi_url = app.openapi_url or "/openapi.json"
    title = app.title
    app.mount(ASSETS_URL, StaticFiles(directory=_assets_dir()), name="api-docs-assets")

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} API",
            oauth2_redirect_url=_OAUTH2_REDIRECT_URL,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        )

    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} API",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

    app.add_api_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_api_route(_OAUTH2_REDIRECT_URL, oauth2_redirect, include_in_schema=False)
    app.add_api_route(REDOC_URL, redoc, include_in_schema=False)
