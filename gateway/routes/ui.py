"""The run page (`/ui/`): static files the gateway serves itself, so it works offline.

The pages hold no data and need no key: every call they make for data sends the tenant's API
key, entered once and kept in the browser's session storage, to the authenticated routes. So
the pages' own answers carry a Content-Security-Policy that lets them load and call nothing
but this origin (no inline script, no CDN) and be framed by no other page.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from gateway.errors import NotFound

router = APIRouter(prefix="/ui", include_in_schema=False)

UI = Path(__file__).resolve().parent.parent / "ui"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # A redeployed gateway's page must not run last version's scripts against the new API.
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
#: Every file the pages may load, by its path under `gateway/ui/static/`: fixed when the
#: gateway starts, so no request path reaches another file.
ASSETS = {
    path.relative_to(UI / "static").as_posix(): path
    for path in sorted((UI / "static").rglob("*"))
    if path.suffix in MEDIA_TYPES
}


def _page(name: str) -> FileResponse:
    path = UI / name
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)


@router.get("")
async def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/")


@router.get("/")
async def runs_page() -> FileResponse:
    """The tenant's runs, newest first."""
    return _page("index.html")


@router.get("/runs/{workflow_id:path}")
async def run_page(workflow_id: str) -> FileResponse:
    """One run: its graph, live; the page reads the id from its own address."""
    return _page("run.html")


@router.get("/static/{name:path}")
async def asset(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None:
        raise NotFound(f"no file {name!r} in the run page")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)
