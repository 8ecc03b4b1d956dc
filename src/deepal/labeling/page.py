"""The labelling page: ``static/page.html``, its style ``static/page.css`` and its script
``static/page.js``, package data files that the server sends as they are. The page loads
nothing else (no CDN, no file outside the package), so its content security policy allows
scripts and styles from the server alone, none inline."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

#: Where the page's files live inside the package.
STATIC = "static"
#: The page's style and script by URL path, with their content types: the files the server
#: sends without the access token, since they hold no data of the project.
ASSETS = {"/static/page.css": ("page.css", "text/css; charset=utf-8"),
          "/static/page.js": ("page.js", "text/javascript; charset=utf-8")}


@cache
def page_file(name: str) -> str:
    """The text of one of the page's files (``page.html``, ``page.css``, ``page.js``).

    Examples
    --------
    >>> page_file("page.html").startswith("<!doctype html>")
    True
    """
    return (files("deepal.labeling") / STATIC / name).read_text(encoding="utf-8")


def render_page() -> str:
    """The labelling page's HTML (the script reads the access token from the page's own
    URL)."""
    return page_file("page.html")
