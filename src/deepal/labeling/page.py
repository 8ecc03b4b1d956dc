"""The labelling page: ``static/page.html`` with ``static/page.css`` and ``static/page.js``
inlined, so the browser loads one document and nothing else (no CDN, no file outside the
project); the files ship inside the package as package data."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

#: Where the page's files live inside the package.
STATIC = "static"
#: The markers of ``page.html`` that the style and the script replace.
STYLE_MARK, SCRIPT_MARK = "{{style}}", "{{script}}"


def page_file(name: str) -> str:
    """The text of one of the page's files (``page.html``, ``page.css``, ``page.js``)."""
    return (files("deepal.labeling") / STATIC / name).read_text(encoding="utf-8")


@cache
def render_page() -> str:
    """The labelling page, its style and script inline (the token is read by the script from
    the page's own URL).

    Examples
    --------
    >>> render_page().startswith("<!doctype html>")
    True
    """
    html = page_file("page.html")
    return html.replace(STYLE_MARK, page_file("page.css"), 1).replace(
        SCRIPT_MARK, page_file("page.js"), 1)
