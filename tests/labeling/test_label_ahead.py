"""Labelling without waiting, in a real headless Chromium: a scripted annotator labels an
MNIST-derived image project at one label per second and 10 labels per batch while the server
trains and picks the next batch in a worker process; the next batch is on the page when the
current one is finished, and the labels given meanwhile are used by the round after. A
review batch of doubtful labels is checked in the same page."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_label_page import CHROMIUM_ARGS, open_page, request, shown_item, wait_labeled

from deepal.labeling import Project
from deepal.labeling.background import NextBatch, QuerySettings
from deepal.labeling.server import LabelServer

pytest.importorskip("PIL", reason='image folders need Pillow: pip install "deepal[images]"')

MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"
DIGITS = [str(d) for d in range(10)]
BATCH, AHEAD, BATCHES = 10, 5, 3


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    # The browser of the page tests, started here for this module alone.
    from test_label_page import CHROMIUM

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def mnist_folder(folder: Path, n: int) -> list[int]:
    """The first ``n`` MNIST test digits as PNG files of a flat folder; their digits."""
    from PIL import Image

    from deepal.data.sources.mnist import IMAGES_MAGIC, LABELS_MAGIC, read_idx

    if not (MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the MNIST files are not in {MNIST}")
    images = read_idx(MNIST / "t10k-images-idx3-ubyte.gz", IMAGES_MAGIC, item_shape=(28, 28))
    labels = read_idx(MNIST / "t10k-labels-idx1-ubyte.gz", LABELS_MAGIC)
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(images[i]).save(folder / f"digit_{i:04d}.png")
    return [int(y) for y in labels[:n]]


@pytest.fixture
def digits(tmp_path: Path) -> Iterator[tuple[Project, list[int], LabelServer]]:
    truth = mnist_folder(tmp_path / "digits", 150)
    project = Project.init(tmp_path / "proj", tmp_path / "digits", classes=DIGITS,
                           image_size=14, channels=1, n_epoch=3)
    project.query(BATCH)  # the first batch, made before the page opens
    worker = NextBatch(project.root, QuerySettings(n=BATCH, ahead=AHEAD, threads=1))
    for _ in range(600):  # the worker imports torch once, before the annotator starts
        if worker.state()["state"] != "starting":
            break
        time.sleep(0.1)
    server = LabelServer(project, port=0, next_batch=worker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield project, truth, server
    server.shutdown()
    server.server_close()
    worker.close()


def test_the_annotator_never_waits_for_a_batch_after_the_first(chromium, digits):
    from playwright.sync_api import expect

    project, truth, server = digits
    page = open_page(chromium, server.url, "ann")
    # Digit classes are labelled by their own digit.
    assert page.locator("button.class kbd").all_inner_texts() == DIGITS
    for batch in range(1, BATCHES + 1):
        assert page.get_attribute("body", "data-round") == str(batch)
        for n in range(1, BATCH + 1):
            page.keyboard.press(str(truth[shown_item(page)]))  # the digit's own key
            if n < BATCH:
                wait_labeled(page, n)
                page.wait_for_timeout(1000)  # one label per second
        # The last label of the batch: the page goes on to the next batch.
        expect(page.locator("body")).to_have_attribute("data-round", str(batch + 1))
    waits = page.get_attribute("body", "data-waited")
    # One entry per batch after the first, in milliseconds: no waiting at all.
    assert waits == ",".join(["0"] * BATCHES)
    # Rounds 2 to 4 trained models: the page shows how much the last two agree.
    assert page.inner_text("#stop-status").startswith("Agreement of the last two models: kappa")

    rounds = project.store.rounds()
    assert len(rounds) == BATCHES + 1
    picked = [i for r in rounds for i in r.item_ids]
    assert len(picked) == len(set(picked)) == BATCH * (BATCHES + 1)  # no item twice
    # Each round after the first started when AHEAD items of the batch were left and trained
    # on every label given until then, those given while the previous round was made too.
    assert [r.n_labeled for r in rounds] == [0] + [BATCH * k - AHEAD for k in range(1, 4)]
    assert all(r.strategy == "EntropySampling" for r in rounds[1:])
    labels = project.store.current_labels()
    assert {i: DIGITS[lab.class_index] for i, lab in labels.items()} == {
        i: str(truth[i]) for r in rounds[:BATCHES] for i in r.item_ids}
    page.close()


def test_the_next_batch_on_request_and_bad_requests(digits):
    project, _, server = digits
    base, token = server.url.split("/?")[0], server.token
    status, body = request(f"{base}/api/next", {"n": 3}, token)
    assert status == 400 and "n" in body["error"]
    status, body = request(f"{base}/api/batch?round=x", None, token)
    assert status == 400 and "round" in body["error"]
    status, body = request(f"{base}/api/batch?round=99", None, token)
    assert status == 404
    status, body = request(f"{base}/api/next", {}, token)
    assert status == 200 and body["started"] is True
    status, again = request(f"{base}/api/next", {}, token)
    assert status == 200 and again["started"] is False  # one query at a time
    for _ in range(600):
        status, state = request(f"{base}/api/next", None, token)
        if state["state"] in ("ready", "failed"):
            break
        time.sleep(0.1)
    assert state["state"] == "ready" and state["latest_round"] == 2
    first, second = project.store.rounds()
    assert not set(first.item_ids) & set(second.item_ids)  # the open items were left out
    status, old = request(f"{base}/api/batch?round=1", None, token)
    assert status == 200 and old["round"] == 1 and old["next"]["latest_round"] == 2


def test_without_a_worker_the_page_asks_for_deepal_query(tmp_path, capsys):
    truth = mnist_folder(tmp_path / "digits", 20)
    assert len(truth) == 20
    project = Project.init(tmp_path / "proj", tmp_path / "digits", classes=DIGITS,
                           image_size=8, channels=1)
    server = LabelServer(project, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = server.url.split("/?")[0]
        status, body = request(f"{base}/api/next", {}, server.token)
        assert status == 409 and "deepal query" in body["error"]
        status, body = request(f"{base}/api/next", None, server.token)
        assert status == 200 and body["state"] == "off" and body["latest_round"] is None
    finally:
        server.shutdown()
        server.server_close()
    from deepal.cli import main

    for option, value in (("--ahead", "-1"), ("-n", "0"), ("--threads", "0")):
        assert main(["label", "-p", str(project.root), "--port", "0", option, value]) == 2
        assert option in capsys.readouterr().err


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_killed_server_leaves_no_worker_behind(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    mnist_folder(tmp_path / "digits", 20)
    project = Project.init(tmp_path / "proj", tmp_path / "digits", classes=DIGITS,
                           image_size=8, channels=1)
    project.query(5)
    process = subprocess.Popen(
        [sys.executable, "-m", "deepal", "label", "-p", str(project.root), "--port", "0"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert "open http://127.0.0.1:" in process.stdout.readline()  # type: ignore[union-attr]
        workers: set[int] = set()
        for _ in range(300):
            workers = _children(process.pid)
            if workers:
                break
            time.sleep(0.1)
        assert workers, "the server started no worker process"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        for _ in range(300):
            if not any(_alive(pid) for pid in workers):
                break
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)
    finally:
        if process.poll() is None:
            process.kill()


def test_a_review_batch_is_checked_in_the_page(chromium, tmp_path, capsys):
    from playwright.sync_api import expect

    from deepal.cli import main
    from deepal.labeling.doubt import read_review_batch
    from deepal.labeling.views import ReviewBatch

    truth = mnist_folder(tmp_path / "digits", 60)
    project = Project.init(tmp_path / "proj", tmp_path / "digits", classes=DIGITS,
                           image_size=8, channels=1, n_epoch=5)
    wrong = {3: (truth[3] + 1) % 10, 7: (truth[7] + 5) % 10}
    project.store.add_labels([(i, wrong.get(i, t), "ann") for i, t in enumerate(truth)], "web")
    assert main(["review", "-p", str(project.root), "--folds", "2", "--batch", "4"]) == 0
    assert "Kept the 4 most doubtful as a review batch" in capsys.readouterr().out
    stamp, items, suggested = read_review_batch(project.root, project.n_items, DIGITS)
    assert len(items) == 4 and set(suggested) == set(items)
    server = LabelServer(project, port=0, review=ReviewBatch(stamp, items, suggested))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page = open_page(chromium, server.url, "zoe")
        assert page.inner_text("#round") == "\u00b7 review"
        assert page.inner_text("#progress") == "0 / 4 labeled"   # labeled before: unchecked
        first = shown_item(page)
        assert page.inner_text("#current-label") == (
            f"labeled {DIGITS[wrong.get(first, truth[first])]} by ann; the model suggests "
            f"{suggested[first]}")
        assert page.locator("button.class.suggested").get_attribute("data-label") \
            == suggested[first]
        page.keyboard.press(str(truth[first]))                  # corrected (or confirmed)
        wait_labeled(page, 1)
        labels = project.store.current_labels()
        assert (labels[first].class_index, labels[first].annotator) == (truth[first], "zoe")
        for n in range(2, 5):
            page.keyboard.press(str(truth[shown_item(page)]))
            wait_labeled(page, n)
        expect(page.locator("#done-note")).to_have_text(
            "Every label of the review batch is checked.")
        page.close()
    finally:
        server.shutdown()
        server.server_close()
    (project.root / "review.json").write_text('{"created_at": "x", "items": [{"item": 999, '
                                              '"suggested": "3"}]}')
    assert main(["label", "-p", str(project.root), "--review", "--port", "0"]) == 2
    assert "not a review batch deepal wrote" in capsys.readouterr().err
