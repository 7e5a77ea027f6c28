"""The web canvas: the bundle ``make ui`` builds (``ui/`` -> ``openautoglm/serve/ui_dist``) served at ``/ui``.

Public, like any static page: the page sends the user's bearer token on each ``/api/v1`` call it makes. Without
a bundle when the app is created, ``/ui`` answers 404 with a line saying how to build it.
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, PlainTextResponse, Response
from starlette.staticfiles import StaticFiles

#: Where ``vite build`` writes the bundle (inside the package, so a wheel carries it).
UI_DIST = Path(__file__).parent / "ui_dist"
MISSING = "the web canvas is not built: run `make ui` (needs npm)"


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
        app.mount("/ui/assets", StaticFiles(directory=folder / "assets"), name="ui-assets")
