"""What the labelling server accepts: its port, and the JSON bodies of ``POST /api/labels``
and ``POST /api/undo``, checked by :mod:`deepal.config`'s models before anything is read
from or written to the project."""

from __future__ import annotations

import io
import socket
import time
from http import HTTPStatus
from typing import Annotated, Any

from pydantic import Field, PlainValidator

from deepal.config.base import Settings, validated
from deepal.errors import DeepALError
from deepal.labeling.safejson import JSONInputError, parse_json

#: Largest request body accepted (a label is a few dozen bytes).
MAX_BODY = 64 * 1024
#: A body is one object of scalars: anything nested deeper is refused before it is looked at.
MAX_DEPTH = 2
#: Longest item reference (a file path) accepted in a body.
MAX_REF = 4096


class RequestError(DeepALError):
    """A request the server refuses; ``status`` is the HTTP status of the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class DeadlineReader(io.RawIOBase):
    """A connection's bytes, read with two limits: each wait for more bytes lasts at most
    ``read_timeout`` seconds, and one whole request (line, headers and body) at most
    ``request_deadline`` seconds from :meth:`restart`. The second keeps a client that sends
    one byte at a time, just within the first limit, from holding a thread forever.

    Examples
    --------
    ``rfile = io.BufferedReader(DeadlineReader(connection, 10.0, 30.0))``
    """

    def __init__(self, connection: socket.socket, read_timeout: float,
                 request_deadline: float) -> None:
        super().__init__()
        self.connection = connection
        self.read_timeout = read_timeout
        self.request_deadline = request_deadline
        self.restart()

    def restart(self) -> None:
        """Start the clock of the next request."""
        self.deadline = time.monotonic() + self.request_deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the request did not arrive within {self.request_deadline:g} s")
        self.connection.settimeout(min(self.read_timeout, left))
        try:
            return self.connection.recv_into(buffer)
        except TimeoutError:
            raise TimeoutError(f"the client sent nothing for {self.connection.gettimeout():g} s "
                               "or the request took over "
                               f"{self.request_deadline:g} s") from None


class ServerOptions(Settings):
    """``deepal label``'s options."""

    port: Annotated[int, Field(ge=0, le=65535)]


def _integer_or_text(what: str) -> PlainValidator:
    """A field holding a JSON integer or a string of at most :data:`MAX_REF` characters;
    its meaning (a known item, a class) is checked against the project afterwards."""

    def check(value: Any) -> int | str:
        if isinstance(value, bool) or not isinstance(value, (int, str)) \
                or (isinstance(value, str) and len(value) > MAX_REF):
            raise ValueError(f"must be {what}")
        return value

    return PlainValidator(check)


class UndoBody(Settings):
    """``POST /api/undo``: the item (an id, or its file name) and who undoes their label."""

    item: Annotated[int | str, _integer_or_text("an item id (an integer) or its file name")]
    annotator: str | None = None


class LabelBody(UndoBody):
    """``POST /api/labels``: the item, its class (a name or an index) and the annotator."""

    label: Annotated[int | str, _integer_or_text("a class name or its index")]


def check_port(port: Any) -> int:
    """``port`` if it is a TCP port number (0 picks a free one), or a clear error.

    Examples
    --------
    >>> check_port(8765)
    8765
    """
    return validated(ServerOptions, {"port": port}, names={"port": "--port"}).port


def parse_body(data: bytes, model: type[UndoBody]) -> UndoBody:
    """The request body ``data`` checked as ``model``, or a :class:`RequestError` (400).

    Examples
    --------
    >>> parse_body(b'{"item": 3, "label": "cat"}', LabelBody).item
    3
    """
    try:
        payload = parse_json(data, MAX_DEPTH)
    except JSONInputError as error:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"the body is not accepted: {error}") \
            from None
    if not isinstance(payload, dict):
        raise RequestError(HTTPStatus.BAD_REQUEST, "expected a JSON object such as "
                           '{"item": 3, "label": "cat", "annotator": "zoe"}')
    try:
        return validated(model, payload)
    except DeepALError as error:
        raise RequestError(HTTPStatus.BAD_REQUEST, str(error)) from None
