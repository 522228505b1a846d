"""``/docs`` and ``/redoc`` work without internet: every asset they reference is served by the server."""

from __future__ import annotations

import re

import httpx

from .conftest import ServerProcess

ASSET_KINDS = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def _referenced_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_docs_pages_reference_only_assets_the_server_serves(server: ServerProcess) -> None:
    server.start()
    checked: set[str] = set()
    for page in ("/docs", "/redoc"):
        response = httpx.get(f"{server.url}{page}", timeout=10)
        assert response.status_code == 200 and "text/html" in response.headers["content-type"]
        assert "http://" not in response.text and "https://" not in response.text, response.text
        urls = _referenced_urls(response.text)
        assert urls, response.text
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            asset = httpx.get(f"{server.url}{url}", timeout=10)
            suffix = url[url.rfind(".") :]
            assert asset.status_code == 200, url
            assert ASSET_KINDS[suffix] in asset.headers["content-type"], (url, asset.headers)
            assert len(asset.content) > 1000, url
            checked.add(url)
    assert any(u.endswith("swagger-ui-bundle.js") for u in checked)
    assert any(u.endswith("swagger-ui.css") for u in checked)
    assert any(u.endswith("redoc.standalone.js") for u in checked)
    # The page's spec is there too, so Swagger UI has something to render.
    spec = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    assert "/api/v1/calls" in spec["paths"]
    assert "/docs" not in spec["paths"]
