"""A local HTTP server for the pages (127.0.0.1 only) that answers range requests, so the
browser can seek in a video; input videos outside the folder are served under ``/_media/``.

It answers only requests addressed to a local name (``Host: 127.0.0.1:PORT``, ``localhost:PORT``,
``[::1]:PORT``): a page of another site that rebinds its own name to 127.0.0.1 (DNS rebinding)
gets 403, not the files. Only files that resolve (links followed) inside the folder are served,
and the ``/_media/`` files the viewer mapped."""

from __future__ import annotations

import http.server
import logging
import os
import re
import urllib.parse
import webbrowser
from functools import partial
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
#: The names a request may address the server by (with the bound port).
LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")


def host_allowed(host: str | None, port: int) -> bool:
    """Whether a ``Host`` header names this server: a local name with the bound port (no port
    only when the port is 80, as browsers then send none)."""
    if not host:
        return False
    host = host.strip().lower()
    name, sep, p = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not sep:
        name, p = host, "80"
    return name in LOCAL_NAMES and p == str(port)


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """``SimpleHTTPRequestHandler`` with ``Range: bytes=a-b`` (206) and a media map."""

    media: dict[str, Path] = {}

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("%s - %s", self.address_string(), format % args)

    def translate_path(self, path: str) -> str:
        rel = urllib.parse.unquote(urllib.parse.urlsplit(path).path).lstrip("/")
        if rel in self.media:
            return str(self.media[rel])
        return super().translate_path(path)

    def _refused(self) -> str | None:
        """Why this request is not answered (403), or None."""
        port = self.server.server_address[1]
        host = self.headers.get("Host")
        if not host_allowed(host, port):
            return (f"beenet view answers only http://127.0.0.1:{port}/ and http://localhost:{port}/; "
                    f"this request names the host {host!r} (another site's name pointed here?)")
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        if rel not in self.media:
            root = os.path.realpath(self.directory)
            real = os.path.realpath(self.translate_path(self.path))
            if real != root and not real.startswith(root + os.sep):
                return f"/{rel} resolves outside the served folder; refused"
        return None

    def send_head(self):  # type: ignore[override]
        why = self._refused()
        if why is not None:
            body = (why + "\n").encode("utf-8")
            self.send_response(403)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return None
        path = self.translate_path(self.path)
        rng = self.headers.get("Range")
        if rng is None or not os.path.isfile(path):
            return super().send_head()
        m = _RANGE.match(rng.strip())
        size = os.path.getsize(path)
        if not m or (not m.group(1) and not m.group(2)):
            return super().send_head()
        if m.group(1):
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
        else:
            start, end = max(0, size - int(m.group(2))), size - 1
        if start >= size or start > end:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return None
        f = open(path, "rb")  # noqa: SIM115 (closed by copyfile's caller)
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def end_headers(self) -> None:
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def copyfile(self, source, outputfile) -> None:  # type: ignore[override]
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        try:
            while remaining > 0:
                buf = source.read(min(64 * 1024, remaining))
                if not buf:
                    break
                outputfile.write(buf)
                remaining -= len(buf)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self._remaining = None


def make_server(folder: str | Path, port: int = 0, media: dict[str, Path] | None = None,
                handler: type[RangeHandler] = RangeHandler, **attrs: Any) -> http.server.ThreadingHTTPServer:
    """A server for ``folder`` on 127.0.0.1 (``port`` 0: any free port; see ``server_address``);
    ``handler`` (a :class:`RangeHandler`) gets ``media`` and ``attrs`` as class attributes."""
    cls = type("Handler", (handler,), {"media": dict(media or {}), **attrs})
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), partial(cls, directory=str(folder)))


def run_until_interrupted(srv: http.server.ThreadingHTTPServer, page: str, message: str,
                          open_page: bool = True) -> None:
    """Print ``message`` (``{url}`` filled in with ``page``'s address), open the page in the
    default browser when ``open_page``, and serve until Ctrl-C."""
    host, real_port = srv.server_address[:2]
    url = f"http://{host}:{real_port}/{page}"
    print(message.format(url=url), flush=True)
    if open_page:
        webbrowser.open(url)
    try:
        srv.serve_forever()
    finally:
        srv.server_close()


def serve(folder: str | Path, port: int = 0, media: dict[str, Path] | None = None,
          open_page: str | None = "index.html") -> None:
    """Serve ``folder`` until Ctrl-C, opening ``open_page`` in the default browser."""
    run_until_interrupted(make_server(folder, port, media), open_page or "",
                          f"serving {folder} at {{url}} (Ctrl-C to stop)", open_page=bool(open_page))
