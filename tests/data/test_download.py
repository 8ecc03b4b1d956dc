"""Downloads, against a local HTTP server the tests start: checked, atomic, clear on failure.

The tests redirect downloads by replacing entries of ``deepal.data.sources.download.SOURCES``
(the one table of file names, URLs and MD5s) with ``monkeypatch.setitem``, or through the
``DEEPAL_MIRROR`` environment variable.
"""

from __future__ import annotations

import dataclasses
import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from deepal.data.registry import get_dataset
from deepal.data.sources import download as dl
from deepal.errors import CorruptDataError, DatasetNotFoundError

from _fake_datasets import write_cifar10, write_mnist, write_svhn


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, records the paths asked for, and keeps quiet."""

    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path.startswith("/short/"):
            # Promise more bytes than are sent, then hang up.
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        handler = type("Handler", (_Handler,), {"requests": self.requests})
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(handler, directory=str(root))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "served"
    root.mkdir()
    srv = Server(root)
    yield srv
    srv.close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redirect(monkeypatch, key: str, base_url: str, folder: Path | None = None,
             md5: str | None = None) -> None:
    """Point ``SOURCES[key]`` at ``base_url``, with the MD5s of the files in ``folder`` (or
    ``md5`` for all of them)."""
    files = tuple(
        dataclasses.replace(
            f, url=f"{base_url}/{f.name}",
            md5=md5 if md5 is not None else dl.md5sum(folder / f.name),  # type: ignore[operator]
        )
        for f in dl.SOURCES[key]
    )
    monkeypatch.setitem(dl.SOURCES, key, files)


WRITERS = {"mnist": write_mnist, "fashion-mnist": write_mnist, "svhn": write_svhn,
           "cifar-10": write_cifar10}


@pytest.mark.parametrize(
    "name, key",
    [("MNIST", "mnist"), ("FashionMNIST", "fashion-mnist"), ("SVHN", "svhn"),
     ("CIFAR10", "cifar-10")],
)
def test_missing_files_are_downloaded_checked_and_loaded(tmp_path, server, monkeypatch,
                                                          name, key):
    expected = WRITERS[key](server.root / key)
    redirect(monkeypatch, key, f"{server.url}/{key}", server.root / key)
    data_dir = tmp_path / "data"  # does not exist yet: created on the way
    data = get_dataset(name, data_dir)
    np.testing.assert_array_equal(data.X_train.numpy(), expected[0])
    np.testing.assert_array_equal(data.Y_test, expected[3])
    names = sorted(f.name for f in dl.SOURCES[key])
    assert sorted(p.name for p in (data_dir / key).iterdir()) == names  # no temp files left
    for file in names:
        assert (data_dir / key / file).read_bytes() == (server.root / key / file).read_bytes()
    assert sorted(server.requests) == sorted(f"/{key}/{file}" for file in names)
    # Present files are not fetched again.
    get_dataset(name, data_dir)
    assert len(server.requests) == len(names)


def test_only_the_missing_files_are_fetched(tmp_path, server, monkeypatch):
    write_mnist(server.root / "mnist")
    redirect(monkeypatch, "mnist", f"{server.url}/mnist", server.root / "mnist")
    local = tmp_path / "data" / "mnist"
    local.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        shutil.copy(server.root / "mnist" / name, local / name)
    get_dataset("MNIST", tmp_path / "data")
    assert sorted(server.requests) == ["/mnist/t10k-labels-idx1-ubyte.gz",
                                       "/mnist/train-labels-idx1-ubyte.gz"]


def test_wrong_checksum_is_an_error_and_leaves_nothing_behind(tmp_path, server, monkeypatch):
    write_mnist(server.root / "mnist")
    redirect(monkeypatch, "mnist", f"{server.url}/mnist", md5="0" * 32)
    with pytest.raises(CorruptDataError, match="MD5") as info:
        get_dataset("MNIST", tmp_path / "data")
    assert "train-images-idx3-ubyte.gz" in str(info.value)
    assert not (tmp_path / "data").exists()  # no file, and no folder made for it


def test_server_down_names_the_files_folder_and_urls(tmp_path, monkeypatch):
    base = f"http://127.0.0.1:{free_port()}/svhn"
    redirect(monkeypatch, "svhn", base, md5="0" * 32)
    with pytest.raises(DatasetNotFoundError) as info:
        get_dataset("SVHN", tmp_path / "data")
    message = str(info.value)
    folder = tmp_path / "data" / "svhn"
    assert str(folder) in message
    for name in ("train_32x32.mat", "test_32x32.mat"):
        assert name in message and f"{base}/{name}" in message
    assert not (tmp_path / "data").exists()


def test_http_error_and_cut_connection_are_reported(tmp_path, server):
    with pytest.raises(DatasetNotFoundError, match="HTTP error 404"):
        dl.download(f"{server.url}/nothing-here.gz", tmp_path / "x.gz", None, timeout=5)
    with pytest.raises(DatasetNotFoundError, match="could not download"):
        dl.download(f"{server.url}/short/x.gz", tmp_path / "x.gz", None, timeout=5)
    assert list(tmp_path.glob("*x.gz*")) == []


def test_a_failed_download_removes_only_the_folders_it_made(tmp_path, server):
    kept = tmp_path / "data"
    (kept / "other").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="HTTP error 404"):
        dl.download(f"{server.url}/nothing-here.gz", kept / "a" / "b" / "x.gz", None, timeout=5)
    assert sorted(p.name for p in kept.iterdir()) == ["other"]
    (kept / "a").mkdir()
    (kept / "a" / "note.txt").write_text("the user's")
    with pytest.raises(DatasetNotFoundError, match="HTTP error 404"):
        dl.download(f"{server.url}/nothing-here.gz", kept / "a" / "b" / "x.gz", None, timeout=5)
    assert sorted(p.name for p in (kept / "a").iterdir()) == ["note.txt"]


def test_a_silent_server_times_out(tmp_path):
    with socket.socket() as listener:
        # Accepts connections (the kernel's backlog) but never answers.
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/file.gz"
        with pytest.raises(DatasetNotFoundError, match="timed out"):
            dl.download(url, tmp_path / "file.gz", None, timeout=0.5)
    assert list(tmp_path.iterdir()) == []


def test_download_function_checks_md5(tmp_path, server):
    (server.root / "f.bin").write_bytes(b"hello")
    md5 = "5d41402abc4b2a76b9719d911017c592"  # MD5 of b"hello"
    dest = dl.download(f"{server.url}/f.bin", tmp_path / "sub" / "f.bin", md5.upper(), timeout=5)
    assert dest.read_bytes() == b"hello" and dl.md5sum(dest) == md5
    with pytest.raises(CorruptDataError, match=md5):
        dl.download(f"{server.url}/f.bin", tmp_path / "g.bin", "1" * 32, timeout=5)
    assert not (tmp_path / "g.bin").exists()


def test_mirror_environment_variable_replaces_the_urls(tmp_path, server, monkeypatch):
    expected = write_cifar10(server.root / "cifar-10")
    # Keep the table's URLs (the real ones); only the MD5 is changed, to the fake file's.
    md5 = dl.md5sum(server.root / "cifar-10" / "cifar-10-python.tar.gz")
    files = tuple(dataclasses.replace(f, md5=md5) for f in dl.SOURCES["cifar-10"])
    monkeypatch.setitem(dl.SOURCES, "cifar-10", files)
    monkeypatch.setenv(dl.MIRROR_ENV, server.url + "/")
    data = get_dataset("CIFAR10", tmp_path)
    np.testing.assert_array_equal(data.X_test.numpy(), expected[2])
    assert server.requests == ["/cifar-10/cifar-10-python.tar.gz"]


def test_download_false_never_touches_the_network(tmp_path, server, monkeypatch):
    write_mnist(server.root / "mnist")
    redirect(monkeypatch, "mnist", f"{server.url}/mnist", server.root / "mnist")
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        get_dataset("MNIST", tmp_path, download=False)
    assert server.requests == []


def test_the_table_has_the_published_urls_and_md5s():
    mnist = {f.name: f for f in dl.SOURCES["mnist"]}
    assert mnist["train-images-idx3-ubyte.gz"].md5 == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert mnist["t10k-labels-idx1-ubyte.gz"].url == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz"
    )
    fashion = {f.name: f for f in dl.SOURCES["fashion-mnist"]}
    assert fashion["train-images-idx3-ubyte.gz"].url.startswith(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    )
    (cifar,) = dl.SOURCES["cifar-10"]
    assert cifar.url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert cifar.md5 == "c58f30108f718f92721af3b95e74349a"
    svhn = {f.name: f for f in dl.SOURCES["svhn"]}
    assert svhn["test_32x32.mat"].url == "http://ufldl.stanford.edu/housenumbers/test_32x32.mat"
    assert svhn["train_32x32.mat"].md5 == "e26dedcc434d2e4c54c9b2d4a06d8373"


@pytest.mark.parametrize("folder", ["mnist", "fashion-mnist"])
def test_the_shared_files_match_the_table(folder):
    # The table's MD5s are the ones the real files have (cheap: about 40 MB to hash).
    shared = Path(__file__).resolve().parents[3] / "shared" / "data" / folder
    if not shared.is_dir():
        pytest.skip(f"{shared} is missing")
    for f in dl.SOURCES[folder]:
        assert dl.md5sum(shared / f.name) == f.md5, f.name


def test_a_file_url_mirror_is_copied_and_checked(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    expected = write_mnist(mirror / "mnist")
    redirect(monkeypatch, "mnist", "https://unused.invalid/mnist", mirror / "mnist")
    monkeypatch.setenv(dl.MIRROR_ENV, mirror.as_uri())
    data = get_dataset("MNIST", tmp_path / "data")
    np.testing.assert_array_equal(data.Y_train, expected[1])
    (mirror / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="t10k-labels-idx1-ubyte.gz"):
        get_dataset("MNIST", tmp_path / "other")
    # The three files fetched are kept; of the fourth, nothing (no partial or temporary file).
    assert sorted(p.name for p in (tmp_path / "other" / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
    ]
