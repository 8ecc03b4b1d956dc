"""``deepal label``: a small web server for labelling the current batch in a browser.

Standard library only (:class:`http.server.ThreadingHTTPServer`). It listens on 127.0.0.1,
and every request must carry the access token printed with the URL (``?token=`` or the
``X-Deepal-Token`` header); others get 403. It reads items, previews and labels from the
project's database and the cached pool, never from a path named in a request, and writes
only labels, each in its own transaction before it answers, so a label the page shows as
saved is on disk.
"""

from __future__ import annotations

import hmac
import io
import json
import re
import secrets
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from deepal.errors import DeepALError
from deepal.labeling.background import NextBatch, NextBody
from deepal.labeling.labels import annotator_name
from deepal.labeling.page import ASSETS, page_file, render_page
from deepal.labeling.project import Project
from deepal.labeling.requests import (
    MAX_BODY,
    DeadlineReader,
    LabelBody,
    RequestError,
    UndoBody,
    check_port,
    parse_body,
)
from deepal.labeling.views import BatchView, ReviewBatch

#: Seconds a connection may stay silent while the server waits for its request or body.
READ_TIMEOUT = 10.0
#: Seconds one whole request (its line, headers and body) may take to arrive.
REQUEST_DEADLINE = 30.0
_IMAGE = re.compile(r"^/api/items/(\d{1,12})/image$")
_ROUND = re.compile(r"^\d{1,12}$")


class LabelServer(ThreadingHTTPServer):
    """The labelling server of a :class:`Project`.

    Parameters
    ----------
    project:
        The project whose latest batch is served.
    port:
        TCP port on 127.0.0.1; 0 picks a free one.
    token:
        The access token; a random one by default.
    read_timeout:
        Seconds a client may stay silent mid-request before it gets 408 and is dropped, so a
        body shorter than its ``Content-Length`` never holds a thread.
    request_deadline:
        Seconds one whole request may take to arrive, however steadily its bytes trickle in.
    next_batch:
        The worker that makes the next batch while the annotator labels
        (:class:`~deepal.labeling.background.NextBatch`); ``None``: batches come from
        ``deepal query`` alone.
    review:
        Serve this review batch (``deepal review --batch N``) instead of the rounds.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, project: Project, port: int = 8765, token: str | None = None,
                 host: str = "127.0.0.1", read_timeout: float = READ_TIMEOUT,
                 request_deadline: float = REQUEST_DEADLINE,
                 next_batch: NextBatch | None = None, review: ReviewBatch | None = None
                 ) -> None:
        port = check_port(port)
        self.project = project
        self.view = BatchView(project, next_batch, review)
        self.read_timeout = read_timeout
        self.request_deadline = request_deadline
        self.token = token or secrets.token_urlsafe(18)
        self._lock = threading.Lock()
        try:
            super().__init__((host, port), _Handler)
        except OSError as error:
            raise DeepALError(f"cannot listen on {host}:{port} ({error.strerror}): "
                              "choose another --port") from error

    def handle_error(self, request: Any, client_address: Any) -> None:
        # One line, not socketserver's traceback: the terminal shows the URL, and an error
        # of one request (a client gone mid-answer) does not stop the others.
        self.log_failure(client_address, sys.exc_info()[1])

    def log_failure(self, client_address: Any, error: BaseException | None) -> None:
        """One line in the terminal for a request the server failed on."""
        print(f"deepal label: a request from {client_address[0]} failed: "
              f"{type(error).__name__}: {error}", file=sys.stderr, flush=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}/?token={self.token}"

class _Handler(BaseHTTPRequestHandler):
    server: LabelServer
    server_version = "deepal-label"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # the terminal shows the URL, not a line per request

    def setup(self) -> None:
        super().setup()
        self._reader = DeadlineReader(self.connection, self.server.read_timeout,
                                      self.server.request_deadline)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        self._reader.restart()  # each request of a kept-alive connection has its own clock
        super().handle_one_request()

    # -- plumbing --------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self._answering = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        # The page loads nothing from elsewhere (no CDN, no external image, no other host)
        # and runs no inline script or style.
        self.send_header("Content-Security-Policy", "default-src 'none'; img-src 'self'; "
                         "style-src 'self'; script-src 'self'; "
                         "connect-src 'self'; base-uri 'none'; form-action 'none'")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message if len(message) <= 500 else message[:497] + "..."})

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        # http.server's own refusals (a malformed request line or header, a method this
        # server has no handler for) answer JSON like the others.
        self.close_connection = True
        if code == HTTPStatus.NOT_IMPLEMENTED:
            code, message = HTTPStatus.METHOD_NOT_ALLOWED, f"no method {self.command}: use GET " \
                "or POST"
        self._error(code, message or HTTPStatus(code).phrase)

    def _authorised(self, query: dict[str, list[str]]) -> bool:
        given = self.headers.get("X-Deepal-Token") or (query.get("token") or [""])[0]
        if hmac.compare_digest(given.encode(), self.server.token.encode()):
            return True
        self._error(HTTPStatus.FORBIDDEN, "missing or wrong access token: open the URL that "
                    "`deepal label` printed")
        return False

    @property
    def timeout(self) -> float:  # type: ignore[override]  # read by StreamRequestHandler.setup
        return self.server.read_timeout

    def _body(self, model: type[Any]) -> Any:
        """The request's body checked as ``model``, or a :class:`RequestError`."""
        if self.headers.get_content_type() != "application/json":
            # Also keeps a plain HTML form of another site from posting here unasked.
            raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                               "expected a body of Content-Type application/json")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length <= 0:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED,
                               "expected a JSON body with its Content-Length")
        if length > MAX_BODY:
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"the body is over {MAX_BODY // 1024} KiB")
        try:
            data = self.rfile.read(length)
        except TimeoutError as error:
            raise RequestError(HTTPStatus.REQUEST_TIMEOUT,
                               f"the body did not arrive: {error}") from None
        if len(data) < length:
            raise RequestError(HTTPStatus.BAD_REQUEST, "the body is shorter than its "
                               "Content-Length")
        return parse_body(data, model)

    # -- routes ----------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._guarded(self._get)

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self._guarded(self._post)

    def _guarded(self, route: Callable[[], None]) -> None:
        """Run ``route``; a failure of the server itself (not of the request) is one line in
        the terminal and, if nothing was sent yet, a JSON answer 500."""
        self._answering = False
        try:
            route()
        except RequestError as error:
            self.close_connection = True  # the rest of a refused body is not read
            self._error(error.status, str(error))
        except Exception as error:  # noqa: BLE001 - any fault: one line, no traceback
            self.server.log_failure(self.client_address, error)
            self.close_connection = True
            if not self._answering:
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR,
                            "the server failed on this request: see its terminal")

    def _get(self) -> None:
        parts = urlsplit(self.path)
        if parts.path in ASSETS:  # the package's own style and script: no project data
            name, content_type = ASSETS[parts.path]
            self._send(HTTPStatus.OK, page_file(name).encode(), content_type)
            return
        if not self._authorised(parse_qs(parts.query)):
            return
        if parts.path == "/":
            self._send(HTTPStatus.OK, render_page().encode(), "text/html; charset=utf-8")
        elif parts.path == "/api/batch":
            self._json(HTTPStatus.OK, self.server.view.batch(_round(parse_qs(parts.query))))
        elif parts.path == "/api/next":
            self._json(HTTPStatus.OK, self.server.view.next_state())
        elif match := _IMAGE.match(parts.path):
            found = self.server.project.store.item(int(match.group(1)))
            if found is None or found[2] is None:
                self._error(HTTPStatus.NOT_FOUND, f"item {match.group(1)} has no image")
            else:
                self._send(HTTPStatus.OK, found[2], found[3] or "image/png")
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such page: {parts.path}")

    def _post(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if not self._authorised(query):
            return
        if parts.path == "/api/next":
            self._post_next()
            return
        if parts.path not in ("/api/labels", "/api/undo"):
            self._error(HTTPStatus.NOT_FOUND, f"no such page: {parts.path}")
            return
        # The progress answered is that of the page's round (``?round=``), which may be
        # older than the latest once the next batch was made in the background.
        _, shown = self.server.view.round_items(_round(query))
        try:
            item_id = self._change(parts.path)
        except RequestError:
            raise
        except DeepALError as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error))
            return
        if parts.path == "/api/labels":
            self.server.view.start_next()
        self._json(HTTPStatus.OK, {"ok": True, "item": item_id, **self.server.view.progress(shown),
                                   "next": self.server.view.next_state()})

    def _post_next(self) -> None:
        """``POST /api/next``: make the next batch now, in the background."""
        self._body(NextBody)
        if self.server.view.next_batch is None:
            raise RequestError(HTTPStatus.CONFLICT, "this server does not make batches: run "
                               "`deepal query` in a terminal, or start `deepal label` "
                               "without --no-background")
        started = self.server.view.start_next(force=True)
        self._json(HTTPStatus.OK, {"ok": True, "started": started,
                                   "next": self.server.view.next_state()})

    def _change(self, path: str) -> int:
        """Record (``/api/labels``) or undo (``/api/undo``) the body's label; its item id."""
        body = self._body(LabelBody if path == "/api/labels" else UndoBody)
        annotator = annotator_name(body.annotator, "annotator")
        project = self.server.project
        refs = project.store.item_ids_by_ref() if isinstance(body.item, str) else None
        item_id = project.item_id(body.item, refs)
        if isinstance(body, LabelBody):
            project.label(item_id, body.label, annotator)
        elif not project.store.retract(item_id, annotator):
            raise RequestError(HTTPStatus.CONFLICT,
                               f"{annotator} has no label on item {item_id} to undo")
        return item_id


def _round(query: dict[str, list[str]]) -> int | None:
    """The ``round`` of a request's query string (the round the page shows), if any."""
    values = query.get("round")
    if not values:
        return None
    given = values[0]
    if not _ROUND.match(given):
        raise RequestError(HTTPStatus.BAD_REQUEST, f"round={given[:20]!r}: expected a round "
                           "number")
    return int(given)


def serve(project: Project, port: int = 8765, token: str | None = None,
          ready: Any = None, next_batch: NextBatch | None = None,
          review: ReviewBatch | None = None) -> None:
    """Serve until interrupted; print the URL (with its token) first. With ``next_batch``
    the next batch is made in the background while the annotator labels; with ``review``
    the review batch is served instead of the rounds."""
    server = LabelServer(project, port=port, token=token, next_batch=next_batch,
                         review=review)
    _, items = server.view.round_items(None)
    what = "of the review batch" if review else "of the latest batch"
    print(f"Labelling {len(items)} items {what}: open {server.url}", flush=True)
    if not items:
        print("(no batch yet: run `deepal query -n 50` first)", flush=True)
    if ready is not None:
        ready(server)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        # Ctrl+C is the normal way to stop: every label was committed as it was given.
        print("Stopped. Every label given is saved in the project.", flush=True)
    finally:
        server.server_close()
