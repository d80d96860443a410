"""The web page: the question page and the document view (static files are mounted by the app)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import FileResponse

WEB = resources.files("qa") / "web"

router = APIRouter(include_in_schema=False)


@router.get("/")
def home() -> FileResponse:
    return FileResponse(str(WEB / "index.html"))


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    """For clients that ask for the icon at the conventional address (the pages link the SVG)."""
    return FileResponse(str(WEB / "favicon.svg"), media_type="image/svg+xml")


@router.get("/view/{doc_id}")
def view(doc_id: str) -> FileResponse:
    return FileResponse(str(WEB / "view.html"))
