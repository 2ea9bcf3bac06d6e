"""The labelling page's server: ``beenet view``'s local server plus three routes for the rows.

* ``GET /api/rows``: ``{"rows": [...]}``, the labels file's full-form rows of the page's videos;
* ``POST /api/save`` ``{"row": {...}, "replaces": KEY | null}``: a row saved (the file rewritten
  atomically), answered with the rows;
* ``POST /api/delete`` ``{"key": KEY}``: a row removed, answered with the rows.

A row that cannot be saved (a value out of range, a video not on the page, a person the tracker
did not produce, a span outside the video) gets 400 and ``{"error": "..."}``, the file untouched;
a labels file that became malformed meanwhile gets 409 naming its line. As ``beenet view``, it
answers only requests addressed to 127.0.0.1 / localhost; a POST must come from a page of this
server (its ``Origin``, when sent) and carry JSON (a form of another site cannot send that without
asking first, which this server does not answer).
"""

from __future__ import annotations

import http.server
import json
import urllib.parse
from pathlib import Path
from typing import Any

from beenet.errors import BoLDFormatError
from beenet.labelling.store import LabelStore, RowRefused
from beenet.view.server import RangeHandler, host_allowed, make_server, run_until_interrupted

#: The most a request body may hold (one row is well under 2 KiB).
MAX_BODY = 64 * 1024


class LabelHandler(RangeHandler):
    """:class:`~beenet.view.server.RangeHandler` with the rows' routes."""

    store: LabelStore

    def _reply(self, status: int, obj: Any) -> None:
        body = (json.dumps(obj) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    def _local(self) -> str | None:
        """Why this request is refused (not addressed to this server, or sent by another site)."""
        port = self.server.server_address[1]
        host = self.headers.get("Host")
        if not host_allowed(host, port):
            return f"beenet label answers only http://127.0.0.1:{port}/; this request names the host {host!r}"
        origin = self.headers.get("Origin")
        if self.command == "POST" and origin is not None:
            name = urllib.parse.urlsplit(origin).netloc
            if not host_allowed(name, port):
                return f"a POST from another site ({origin}) is refused"
        return None

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self._route() != "/api/rows":
            return super().do_GET()
        why = self._local()
        if why is not None:
            return self._reply(403, {"error": why})
        try:
            return self._reply(200, {"rows": self.store.rows(), "labels": str(self.store.path)})
        except BoLDFormatError as exc:
            return self._reply(409, {"error": str(exc)})

    def _drain(self) -> bytes | None:
        """The request body, read before any answer (a reply over an unread body can reach the
        browser as a reset connection, not as the reason); None when its length is not allowed."""
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        if n <= 0 or n > MAX_BODY:
            self.close_connection = True
            return None
        return self.rfile.read(n)

    def _body(self, raw: bytes | None) -> Any:
        if raw is None:
            raise RowRefused(f"a request body must hold 1 to {MAX_BODY} bytes (Content-Length)")
        if "json" not in (self.headers.get("Content-Type") or ""):
            raise RowRefused("send the row as JSON (Content-Type: application/json)")
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise RowRefused(f"the request body is not JSON: {exc}") from None

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        route = self._route()
        raw = self._drain()
        why = self._local()
        if why is not None:
            return self._reply(403, {"error": why})
        if route not in ("/api/save", "/api/delete"):
            return self._reply(404, {"error": f"no such route: POST {route}"})
        try:
            body = self._body(raw)
            if not isinstance(body, dict):
                raise RowRefused("the request body must be a JSON object")
            if route == "/api/save":
                if "row" not in body:
                    raise RowRefused("the request has no 'row'")
                self.store.save(body["row"], body.get("replaces"))
            elif not self.store.delete(body.get("key")):
                raise RowRefused(f"no row has the key {body.get('key')!r}")
            return self._reply(200, {"rows": self.store.rows()})
        except RowRefused as exc:
            return self._reply(400, {"error": str(exc)})
        except BoLDFormatError as exc:
            return self._reply(409, {"error": str(exc)})


def make_label_server(folder: str | Path, store: LabelStore, port: int = 0,
                      media: dict[str, Path] | None = None) -> http.server.ThreadingHTTPServer:
    """A server of the page folder and the rows on 127.0.0.1 (``port`` 0: any free port)."""
    return make_server(folder, port, media, handler=LabelHandler, store=store)


def serve_labels(folder: str | Path, store: LabelStore, port: int = 0, media: dict[str, Path] | None = None,
                 open_page: bool = True) -> None:
    """Serve the page until Ctrl-C, opening it in the default browser."""
    run_until_interrupted(make_label_server(folder, store, port, media), "index.html",
                          f"serving the labelling page at {{url}}; labels go to {store.path} (Ctrl-C to stop)",
                          open_page=open_page)
