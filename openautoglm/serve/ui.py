"""The web canvas: the bundle ``make ui`` builds (``ui/`` -> ``openautoglm/serve/ui_dist``) served at ``/ui``.

Public, like any static page: the page sends the user's bearer token on each ``/api/v1`` call it makes. Without
a bundle when the app is created, ``/ui`` answers 404 with a line saying how to build it. The bundle's files are
named by their content hash, so they are sent gzipped (to clients that accept it) and cacheable for a year; the
index page is never cached, so a new build is picked up at the next load.
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, PlainTextResponse, Response
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

#: Where ``vite build`` writes the bundle (inside the package, so a wheel carries it).
UI_DIST = Path(__file__).parent / "ui_dist"
MISSING = "the web canvas is not built: run `make ui` (needs npm)"
#: Cache header of the content-hashed bundle files.
IMMUTABLE = b"public, max-age=31536000, immutable"


class _Immutable:
    """Marks every response of ``app`` cacheable for a year (the API's own default is ``no-store``)."""

    def __init__(self, app: StaticFiles) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def marked(message: dict) -> None:  # type: ignore[type-arg]
            if message["type"] == "http.response.start" and message["status"] == 200:
                message = {**message, "headers": [*message.get("headers", []), (b"cache-control", IMMUTABLE)]}
            await send(message)

        await self.app(scope, receive, marked)  # type: ignore[arg-type]


def mount_ui(app: FastAPI, folder: Path | None = None) -> None:
    """``/ui`` and ``/ui/`` answer the index page, ``/ui/assets/...`` the bundle's files (from :data:`UI_DIST`
    unless ``folder`` is given)."""
    folder = folder or UI_DIST
    index = folder / "index.html"
    built = index.is_file() and (folder / "assets").is_dir()

    async def page() -> Response:
        if not built:
            return PlainTextResponse(MISSING, status_code=404)
        return FileResponse(index, media_type="text/html")

    # On the app itself (not an APIRouter): the gate middleware labels metrics by the app's own routes.
    for path in ("/ui", "/ui/"):
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)
    if built:
        assets = GZipMiddleware(_Immutable(StaticFiles(directory=folder / "assets")), minimum_size=1024)
        app.mount("/ui/assets", assets, name="ui-assets")
