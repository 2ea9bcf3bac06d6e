"""The HTML shell shared by every page: inlined CSS, inlined script, embedded JSON data."""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any


def static(name: str) -> str:
    """A file shipped in ``beenet/view/static`` (package data)."""
    return resources.files("beenet.view").joinpath("static", name).read_text(encoding="utf-8")


def embed_json(obj: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>``, no HTML comment openers)."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(title: str, script: str, data: Any, body: str = "") -> str:
    """One page: ``body`` markup, the shared stylesheet, ``data`` as ``window.BEENET``, ``script``."""
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)}</title>"
        f"<style>{static('view.css')}</style></head>\n<body>{body}\n"
        f"<script>window.BEENET={embed_json(data)};</script>\n"
        f"<script>{static('common.js')}\n{static(script)}</script>\n</body></html>\n"
    )
