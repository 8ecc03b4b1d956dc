"""The labelling server refuses every malformed request with a 4xx JSON answer, one line at
most in its log and no change to the project's database."""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from refusals import command_refuses, count_refusal, fuzz, refused

from deepal.errors import DeepALError
from deepal.labeling import Project
from deepal.labeling.requests import MAX_BODY
from deepal.labeling.server import LabelServer

N_ITEMS = 12
CLASSES = ["x", "y"]
EXAMPLES = fuzz(60)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("server")
    np.savez(root / "pool.npz", X=np.random.default_rng(0).normal(size=(N_ITEMS, 3)))
    return Project.init(root / "proj", root / "pool.npz", classes=CLASSES)


@pytest.fixture(scope="module")
def server(project: Project) -> Iterator[LabelServer]:
    server = LabelServer(project, port=0, read_timeout=0.5, request_deadline=2.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def snapshot(project: Project) -> list[str]:
    """The whole database as SQL, read by a connection of its own."""
    with sqlite3.connect(project.root / "deepal.sqlite") as db:
        return list(db.iterdump())


def post(server: LabelServer, path: str, body: bytes,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    try:
        conn.request("POST", path, body, {"X-Deepal-Token": server.token,
                                          "Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def assert_refused(server: LabelServer, path: str, body: bytes, before: list[str],
                   headers: dict[str, str] | None = None, kind: str = "malformed body") -> str:
    status, answer = post(server, path, body, headers)
    assert 400 <= status < 500, (status, answer, body[:80])
    assert set(answer) == {"error"} and isinstance(answer["error"], str)
    assert "\n" not in answer["error"] and "Traceback" not in answer["error"]
    assert snapshot(server.project) == before
    count_refusal(f"label server POST {path}", kind)
    return answer["error"]


# JSON values of every shape; a field drawn from ``wrong_item`` is never an item of the pool.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                               max_size=3), max_leaves=8)
wrong_item = st.one_of(
    st.integers().filter(lambda i: not 0 <= i < N_ITEMS), st.booleans(), st.none(),
    st.floats(), st.lists(json_values, max_size=3), st.dictionaries(st.text(), json_values,
                                                                   max_size=3),
    st.sampled_from(["--5", "²", " 3", "3 ", "1e3", "+3", "3.0", "0x3", "٣", "", "row 99"]))
wrong_label = st.one_of(
    st.integers().filter(lambda i: not 0 <= i < len(CLASSES)), st.booleans(), st.none(),
    st.floats(), st.lists(json_values, max_size=3), st.dictionaries(st.text(), json_values,
                                                                   max_size=3),
    st.text(max_size=10).filter(lambda t: t not in CLASSES))
wrong_annotator = st.one_of(
    st.integers(), st.booleans(), st.floats(), st.lists(json_values, min_size=1, max_size=3),
    st.dictionaries(st.text(), json_values, min_size=1, max_size=3),
    st.text(min_size=101, max_size=300).filter(lambda t: len(t.strip()) > 100),
    st.sampled_from(["a\nb", "\x00", "zoe\x1b[31m", "\ud800"]))
good_item = st.integers(0, N_ITEMS - 1) | st.sampled_from(["0", "row 3", "11"])
good_label = st.sampled_from([*CLASSES, 0, 1])


@st.composite
def bad_objects(draw: Any) -> dict[str, Any]:
    """A body object with at least one wrong field (or an unknown key)."""
    body = {"item": draw(good_item), "label": draw(good_label)}
    wrong = draw(st.sampled_from(["item", "label", "annotator", "extra", "missing"]))
    if wrong == "item":
        body["item"] = draw(wrong_item)
    elif wrong == "label":
        body["label"] = draw(wrong_label)
    elif wrong == "annotator":
        body["annotator"] = draw(wrong_annotator)
    elif wrong == "extra":
        body[draw(st.text(min_size=1).filter(lambda k: k not in body))] = draw(json_values)
    else:
        del body[draw(st.sampled_from(["item", "label"]))]
    return body


RAW_BAD = [b'{"item": 0, "label": "x"', b'{"item": NaN, "label": "x"}',
           b'{"item": 0, "label": Infinity}', b'{"item": 0, "item": 1, "label": "x"}',
           b'{"item": 0, "label": "x"}trailing', b"\xef\xbb\xbf", b" ",
           b'{"item": ' + b"7" * 5000 + b', "label": "x"}', b'{"item": 0, "label": "\xff"}']


def deep(depth: int) -> bytes:
    return b'{"item": ' + b"[" * depth + b"]" * depth + b', "label": "x"}'


bad_bodies = st.one_of(
    bad_objects().map(lambda b: json.dumps(b).encode()),
    json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
    st.binary(min_size=1, max_size=40).filter(lambda b: not _utf8(b)),
    st.integers(2, MAX_BODY // 2 - 40).map(deep),
    st.sampled_from(RAW_BAD))


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@EXAMPLES
@given(body=bad_bodies, path=st.sampled_from(["/api/labels", "/api/undo"]))
def test_malformed_bodies_get_a_4xx_json_answer_and_change_nothing(server, project, capfd,
                                                                    body, path):
    before = snapshot(project)
    assert_refused(server, path, body, before)
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("body", RAW_BAD)
def test_each_malformed_json_body_is_refused(server, project, capfd, body):
    assert_refused(server, "/api/labels", body, snapshot(project), kind="malformed JSON")
    assert capfd.readouterr().err == ""  # nothing in the server's log: a refusal, not a fault


@pytest.mark.parametrize("body, message", [
    ({"item": 0, "label": "x", "annotator": {"name": "zoe"}}, "annotator: input should be a "
     "valid string"),
    ({"item": 0, "label": "x", "annotator": "z" * 101}, "at most 100 printable characters"),
    ({"item": True, "label": "x"}, "item: must be an item id (an integer) or its file name"),
    ({"item": "²", "label": "x"}, "unknown item '²'"),
    ({"item": " 3", "label": "x"}, "unknown item ' 3'"),
    ({"item": 0, "label": 1.0}, "label: must be a class name or its index, got 1.0"),
    ({"item": 0, "label": "x", "round": 1}, "unknown key 'round'"),
])
def test_each_bad_field_is_named(server, project, body, message):
    error = assert_refused(server, "/api/labels", json.dumps(body).encode(), snapshot(project),
                           kind="bad field")
    assert message in error


def test_good_bodies_still_label_by_id_or_file_name(server, project):
    before = snapshot(project)
    assert post(server, "/api/labels", b'{"item": "row 3", "label": 1, "annotator": " zoe "}'
                )[0] == 200
    assert post(server, "/api/labels", b'{"item": 4, "label": "x"}')[0] == 200
    labels = project.store.current_labels()
    assert (labels[3].class_index, labels[3].annotator) == (1, "zoe")
    assert (labels[4].class_index, labels[4].annotator) == (0, "annotator")
    assert post(server, "/api/undo", b'{"item": 3, "annotator": "zoe"}')[0] == 200
    assert post(server, "/api/undo", b'{"item": 4, "annotator": "annotator"}')[0] == 200
    assert 3 not in project.store.current_labels() and snapshot(project) != before


@pytest.mark.parametrize("headers, body, status", [
    ({}, b"", 411),
    ({"Content-Length": "abc"}, b"", 411),
    ({"Content-Length": "-5"}, b"", 411),
    ({"Content-Length": str(MAX_BODY + 1)}, b"{}", 413),
])
def test_body_sizes_outside_the_limits(server, project, headers, body, status):
    before = snapshot(project)
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    conn.putrequest("POST", "/api/labels", skip_accept_encoding=True)
    conn.putheader("X-Deepal-Token", server.token)
    conn.putheader("Content-Type", "application/json")
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders(body)
    response = conn.getresponse()
    assert response.status == status and "error" in json.loads(response.read())
    conn.close()
    assert snapshot(project) == before
    count_refusal("label server POST /api/labels", "body size outside the limits")


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/jsonp", "",
])
def test_a_body_that_is_not_declared_json_is_refused(server, project, content_type):
    before = snapshot(project)
    status, answer = post(server, "/api/labels", b'{"item": 0, "label": "x"}',
                          {"Content-Type": content_type})
    assert status == 415 and "Content-Type application/json" in answer["error"]
    assert snapshot(project) == before
    count_refusal("label server POST /api/labels", "not declared JSON")
    assert post(server, "/api/labels", b'{"item": 0, "label": "x"}',
                {"Content-Type": "application/json; charset=utf-8"})[0] == 200


def raw_exchange(server: LabelServer, data: bytes) -> tuple[int, dict[str, Any]]:
    """Send ``data`` as it is and read the answer until the server closes the connection."""
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_body_shorter_than_its_length_is_dropped_after_the_read_timeout(server, project):
    before = snapshot(project)
    status, answer = raw_exchange(server, (
        f"POST /api/labels HTTP/1.1\r\nHost: x\r\nX-Deepal-Token: {server.token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n").encode() + b'{"item": 0,')
    assert status == 408 and "did not arrive" in answer["error"]
    assert snapshot(project) == before
    count_refusal("label server POST /api/labels", "body shorter than its length")
    # the server still answers others
    assert post(server, "/api/labels", b'{"item": 0, "label": "cow"}')[0] == 400


def drip(sock: socket.socket, data: bytes, pause: float) -> bool:
    """Send ``data`` a byte at a time, ``pause`` seconds apart (within the read timeout);
    whether the server closed the connection before the end."""
    for i in range(len(data)):
        try:
            sock.sendall(data[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return True
        time.sleep(pause)
    return False


def test_a_body_dripping_in_is_dropped_at_the_request_deadline(server, project):
    before = snapshot(project)
    head = (f"POST /api/labels HTTP/1.1\r\nHost: x\r\nX-Deepal-Token: {server.token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 60\r\n\r\n").encode()
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        sock.sendall(head)
        drip(sock, b'{"item": 0, "label": "x", "annotator": "' + b"z" * 17 + b'"}', 0.3)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    head_, _, body = answer.partition(b"\r\n\r\n")
    assert int(head_.split()[1]) == 408
    assert "did not arrive" in json.loads(body)["error"]
    assert snapshot(project) == before
    count_refusal("label server POST /api/labels", "body dripping in")


def test_headers_dripping_in_are_dropped_at_the_request_deadline(server, project):
    before = snapshot(project)
    head = b"GET /api/batch HTTP/1.1\r\nHost: x\r\n\r\n"  # 3 s at 0.1 s a byte
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        closed = drip(sock, head, 0.1)
        rest = sock.recv(4096)
    # Had the whole request been read, it would have been answered (403: no token); the
    # server stopped reading at the deadline and closed the connection unanswered.
    assert closed or rest == b""
    assert snapshot(project) == before
    count_refusal("label server", "headers dripping in")


@pytest.mark.parametrize("request_line, status", [
    (b"PUT /api/labels HTTP/1.1", 405),
    (b"GET /api/batch HTTP/1.1" + b"\r\nX: y" * 101, 431),
])
def test_http_servers_own_refusals_answer_json(server, project, request_line, status):
    before = snapshot(project)
    code, answer = raw_exchange(server, request_line + b"\r\nHost: x\r\n\r\n")
    assert code == status and isinstance(answer["error"], str)
    assert snapshot(project) == before
    count_refusal("label server", "bad method or headers")


def test_an_unexpected_failure_is_one_line_in_the_log(server, project, monkeypatch, capfd):
    def broken(*args: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(project.store, "current_labels", broken)
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    conn.request("GET", f"/api/batch?token={server.token}")
    response = conn.getresponse()
    assert response.status == 500 and "see its terminal" in json.loads(response.read())["error"]
    conn.close()
    monkeypatch.undo()
    err = capfd.readouterr().err
    assert "RuntimeError: disk on fire" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("port", ["-1", "65536", "99999999999"])
def test_ports_outside_0_to_65535_are_refused(project, port, capsys):
    line = command_refuses(["label", "-p", str(project.root), "--port", port], capsys,
                           "deepal label", "bad port", watched=[project.root])
    assert line.startswith("deepal: error: --port")


@pytest.mark.parametrize("annotator", [{"name": "zoe"}, ["zoe"], 7, "z" * 101, "a\tb"])
def test_project_label_checks_the_annotator_too(project, annotator):
    before = snapshot(project)
    with refused("Project.label", "bad annotator", DeepALError, match="annotator"):
        project.label(0, "x", annotator)
    assert snapshot(project) == before
