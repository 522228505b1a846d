"""Headers every answer carries, and the content security policy of the HTML pages.

The web UI's pages run only the project's own scripts from ``/static`` (page data travels in
``<script type="application/json">`` blocks, which are never executed), so their policy allows scripts
from this origin only: markup that slipped into a transcript could not run even if escaping failed.
Styles may be inline (the span waterfall positions its bars with ``style``; wavesurfer and htmx inject
theirs). The API docs (``/docs``, ``/redoc``) start Swagger UI and ReDoc with an inline script, so only
those two pages allow inline scripts. ``Referrer-Policy: no-referrer`` keeps the sign-in link's
``?key=`` out of any other site's logs; framing is refused everywhere (clickjacking).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["PAGE_POLICY", "SecurityHeadersMiddleware"]

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_DOCS_POLICY = PAGE_POLICY.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
_DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeadersMiddleware:
    """Adds the common headers to every answer and a content security policy to every HTML one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        policy = (_DOCS_POLICY if path.startswith(_DOCS_PATHS) else PAGE_POLICY).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in _COMMON if h[0] not in present)
                content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    headers.append((b"content-security-policy", policy))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
