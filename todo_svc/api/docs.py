"""The docs pages (Swagger UI at /docs, ReDoc at /docs/redoc) from files shipped in the package.

Litestar's own render plugins load scripts, styles and fonts from public CDNs and start the UI
with an inline script: offline the pages stay blank, and a strict CSP blanks them too. These pages
are a few tags naming files under /docs/assets/ (todo_svc/docs_assets/static: the vendored
Swagger UI and ReDoc at pinned versions, see VERSIONS there, and a small init script per page), so
the docs CSP can allow `'self'` alone. Asset URLs carry their content's hash, so browsers may keep
them for a year.
"""

from __future__ import annotations

import hashlib
import html
from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router

STATIC = Path(__file__).resolve().parent.parent / "docs_assets" / "static"
ASSETS_PATH = "/assets"  # under the docs router: /docs/assets, also written into ReDoc's bundle (refresh.py)
ASSETS_CACHE = CacheControlHeader(max_age=365 * 24 * 3600, public=True, immutable=True)
ICON = "favicon.svg"


class AssetsPage(OpenAPIRenderPlugin):
    """A docs page whose every script and stylesheet is a file of STATIC, served by the docs
    router under /assets (the first page given the router adds that route)."""

    stylesheets: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()
    root_id = ""

    def __init__(self, *, path: str) -> None:
        super().__init__(path=path, favicon="", style="")
        self._assets = ASSETS_PATH
        self._versions = {
            name: hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]
            for name in (ICON, *self.stylesheets, *self.scripts)
        }

    def receive_router(self, router: Router) -> None:
        self._assets = f"{router.path.rstrip('/')}{ASSETS_PATH}"
        if not any(route.path.startswith(f"{self._assets}/") for route in router.routes):
            router.register(
                create_static_files_router(
                    ASSETS_PATH, directories=[STATIC], name="docs-assets", cache_control=ASSETS_CACHE
                )
            )

    def asset_url(self, name: str) -> str:
        return html.escape(f"{self._assets}/{name}?v={self._versions[name]}")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema["info"]["title"]))
        openapi_url = html.escape(self.get_openapi_json_route(request))
        head = [
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{title}</title>",
            f'<link rel="icon" type="image/svg+xml" href="{self.asset_url(ICON)}">',
            *(f'<link rel="stylesheet" href="{self.asset_url(name)}">' for name in self.stylesheets),
        ]
        body = [
            f'<div id="{self.root_id}" data-openapi-url="{openapi_url}"></div>',
            *(f'<script src="{self.asset_url(name)}"></script>' for name in self.scripts),
        ]
        return "\n".join(
            [
                '<!DOCTYPE html>\n<html lang="en">\n<head>',
                *head,
                "</head>\n<body>",
                *body,
                "</body>\n</html>\n",
            ]
        ).encode()


class SwaggerPage(AssetsPage):
    """Swagger UI: try the operations with a bearer token."""

    stylesheets = ("swagger-ui/swagger-ui.css",)
    scripts = ("swagger-ui/swagger-ui-bundle.js", "swagger-init.js")
    root_id = "swagger-ui"


class RedocPage(AssetsPage):
    """ReDoc: the document to read."""

    stylesheets = ("redoc.css",)
    scripts = ("redoc/redoc.standalone.js", "redoc-init.js")
    root_id = "redoc"
