"""The data set readers: exact decoding of the original formats, validation, the registry."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from deepal.data.handlers import TensorHandler
from deepal.data.registry import DATASETS, get_dataset, resolve_data_dir
from deepal.data.sources.cifar10 import restricted_loads
from deepal.data.sources.mnist import FASHION_CLASSES, read_idx_pair
from deepal.errors import CorruptDataError, DatasetNotFoundError, DeepALError, UnknownNameError

from _fake_datasets import (
    cifar_batch_bytes,
    idx_bytes,
    write_cifar10,
    write_cifar_tarball,
    write_gzip,
    write_mnist,
    write_svhn,
)

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def check_splits(data, expected) -> None:
    """``data`` holds exactly the arrays ``expected`` = (X_train, Y_train, X_test, Y_test)."""
    X_train, Y_train, X_test, Y_test = expected
    assert isinstance(data.X_train, torch.Tensor) and data.X_train.dtype == torch.uint8
    assert isinstance(data.X_test, torch.Tensor) and data.X_test.dtype == torch.uint8
    assert data.X_train.is_contiguous() and data.X_test.is_contiguous()
    np.testing.assert_array_equal(data.X_train.numpy(), X_train)
    np.testing.assert_array_equal(data.X_test.numpy(), X_test)
    assert data.Y_train.dtype == np.int64 and data.Y_test.dtype == np.int64
    np.testing.assert_array_equal(data.Y_train, Y_train)
    np.testing.assert_array_equal(data.Y_test, Y_test)
    assert data.n_classes == 10 and len(data.class_names) == 10


def flip_byte(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def truncate(path: Path, keep: float = 0.5) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])


# -- MNIST and Fashion-MNIST ---------------------------------------------------------------


@pytest.mark.parametrize("name, folder", [("MNIST", "mnist"), ("FashionMNIST", "fashion-mnist")])
def test_idx_loaders_decode_exact_pixels_and_labels(tmp_path, name, folder):
    expected = write_mnist(tmp_path / folder, n_train=20, n_test=8)
    data = get_dataset(name, tmp_path, download=False)
    check_splits(data, expected)
    assert data.X_train.shape == (20, 1, 28, 28) and data.X_test.shape == (8, 1, 28, 28)
    assert data.handler.keywords == {"mean": (0.1307,), "std": (0.3081,)}
    names = FASHION_CLASSES if name == "FashionMNIST" else [str(d) for d in range(10)]
    assert data.class_names == names
    # The handler scales to [0, 1] and normalises with DeepAL's statistics.
    x, y, _ = data.get_test_data()[3]
    expected_x = (torch.from_numpy(expected[2][3]).float() / 255 - 0.1307) / 0.3081
    torch.testing.assert_close(x, expected_x)
    assert int(y) == expected[3][3]


def mnist_error(folder: Path) -> CorruptDataError:
    with pytest.raises(CorruptDataError) as info:
        get_dataset("MNIST", folder.parent, download=False)
    return info.value


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "not gzip", "crc"])
def test_idx_damaged_gzip_is_reported_with_the_file_and_the_fix(tmp_path, damage):
    folder = tmp_path / "mnist"
    write_mnist(folder)
    path = folder / "train-images-idx3-ubyte.gz"
    if damage == "truncated":
        truncate(path)
    elif damage == "flipped byte":
        flip_byte(path, path.stat().st_size // 2)
    elif damage == "not gzip":
        path.write_bytes(b"<html>404 Not Found</html>" * 10)
    else:  # the CRC stored in the trailer, which gzip checks only at the very end
        flip_byte(path, path.stat().st_size - 6)
    message = str(mnist_error(folder))
    assert str(path) in message and "delete it" in message


@pytest.mark.parametrize(
    "problem, make, match",
    [
        ("wrong magic", lambda x, y: (idx_bytes(y), idx_bytes(y)), "magic number"),
        ("count too large", lambda x, y: (idx_bytes(x)[:4] + (21).to_bytes(4, "big")
                                          + idx_bytes(x)[8:], idx_bytes(y)), "declares"),
        ("extra bytes", lambda x, y: (idx_bytes(x) + b"\0", idx_bytes(y)), "declares"),
        ("short data", lambda x, y: (idx_bytes(x)[:-1], idx_bytes(y)), "declares"),
        ("count mismatch", lambda x, y: (idx_bytes(x), idx_bytes(y[:-1])), "19 labels"),
        ("label out of range", lambda x, y: (idx_bytes(x), idx_bytes(y + 1)), "outside 0..9"),
        ("not 28x28", lambda x, y: (idx_bytes(x[:, :27]), idx_bytes(y)), "expected \\(28, 28\\)"),
    ],
)
def test_idx_contents_are_validated(tmp_path, problem, make, match):
    folder = tmp_path / "mnist"
    write_mnist(folder, n_train=20)
    x = np.arange(20 * 28 * 28, dtype=np.int64).astype(np.uint8).reshape(20, 28, 28)
    y = (np.arange(20) % 10).astype(np.uint8)
    y[0] = 9  # so y + 1 holds a 10
    images, labels = make(x, y)
    write_gzip(folder / "train-images-idx3-ubyte.gz", images)
    write_gzip(folder / "train-labels-idx1-ubyte.gz", labels)
    with pytest.raises(CorruptDataError, match=match):
        read_idx_pair(folder / "train-images-idx3-ubyte.gz", folder / "train-labels-idx1-ubyte.gz")


def test_idx_damaged_header_cannot_request_huge_memory(tmp_path):
    folder = tmp_path / "mnist"
    write_mnist(folder)
    x = np.zeros((2, 28, 28), dtype=np.uint8)
    raw = idx_bytes(x)
    write_gzip(folder / "t10k-images-idx3-ubyte.gz", raw[:4] + b"\xff\xff\xff\xff" + raw[8:])
    assert "declares" in str(mnist_error(folder))


# -- SVHN ----------------------------------------------------------------------------------


def test_svhn_decodes_exact_pixels_and_maps_label_10_to_0(tmp_path):
    expected = write_svhn(tmp_path / "svhn", n_train=12, n_test=6)
    data = get_dataset("svhn", tmp_path, download=False)
    check_splits(data, expected)
    assert data.X_train.shape == (12, 3, 32, 32) and data.X_test.shape == (6, 3, 32, 32)
    assert data.Y_train[0] == 0 and data.Y_train[1] == 9
    assert data.handler.keywords == {"mean": (0.4377, 0.4438, 0.4728),
                                     "std": (0.1980, 0.2010, 0.1970)}
    assert data.class_names == [str(d) for d in range(10)]


def svhn_error(folder: Path) -> str:
    with pytest.raises(CorruptDataError) as info:
        get_dataset("SVHN", folder.parent, download=False)
    return str(info.value)


@pytest.mark.parametrize("damage", ["truncated", "header", "zeros", "html"])
def test_svhn_damaged_file_is_reported(tmp_path, damage):
    folder = tmp_path / "svhn"
    write_svhn(folder)
    path = folder / "test_32x32.mat"
    raw = path.read_bytes()
    if damage == "truncated":
        truncate(path)
    elif damage == "header":  # the first variable's tag, just after the 128-byte header
        path.write_bytes(raw[:128] + b"\xff" * 16 + raw[144:])
    elif damage == "zeros":
        path.write_bytes(bytes(len(raw)))
    else:
        path.write_bytes(b"<html>Not Found</html>")
    message = svhn_error(folder)
    assert str(path) in message and "delete it" in message


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[0], [1]], np.uint8)},
         "not an integer in 1..10"),
        ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[11], [1]], np.uint8)},
         "not an integer in 1..10"),
        ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[1.5], [1]])},
         "not an integer in 1..10"),
        ({"X": np.zeros((32, 32, 3, 2), np.float64), "y": np.array([[1], [1]], np.uint8)},
         "expected uint8"),
        ({"X": np.zeros((28, 28, 3, 2), np.uint8), "y": np.array([[1], [1]], np.uint8)},
         "expected uint8"),
        ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[1], [1], [1]], np.uint8)},
         "expected 2 labels"),
        ({"X": np.zeros((32, 32, 3, 2), np.uint8)}, "lacks"),
    ],
)
def test_svhn_contents_are_validated(tmp_path, arrays, match):
    import scipy.io

    folder = tmp_path / "svhn"
    write_svhn(folder)
    scipy.io.savemat(folder / "train_32x32.mat", arrays)
    with pytest.raises(CorruptDataError, match=match):
        get_dataset("SVHN", tmp_path, download=False)


# -- CIFAR-10 ------------------------------------------------------------------------------


def test_cifar10_decodes_exact_pixels_channels_and_labels(tmp_path):
    expected = write_cifar10(tmp_path / "cifar-10", n_per_batch=4, n_test=5)
    data = get_dataset("CIFAR10", tmp_path, download=False)
    check_splits(data, expected)
    assert data.X_train.shape == (20, 3, 32, 32) and data.X_test.shape == (5, 3, 32, 32)
    assert data.class_names[0] == "airplane" and data.class_names[9] == "truck"
    assert data.handler.keywords == {"mean": (0.4914, 0.4822, 0.4465),
                                     "std": (0.2470, 0.2435, 0.2616)}


def test_cifar10_row_layout_is_red_green_blue_planes(tmp_path):
    # One image built by hand: row = 1024 R, 1024 G, 1024 B; each plane 32x32 row-major.
    row = np.concatenate([np.full(1024, 10), np.full(1024, 20), np.arange(1024) % 256])
    image = row.astype(np.uint8).reshape(3, 32, 32)
    batch = cifar_batch_bytes(image[None], np.array([7]))
    members = {f"cifar-10-batches-py/data_batch_{i}": batch for i in range(1, 6)}
    members["cifar-10-batches-py/test_batch"] = batch
    (tmp_path / "cifar-10").mkdir()
    write_cifar_tarball(tmp_path / "cifar-10" / "cifar-10-python.tar.gz", members)
    data = get_dataset("CIFAR10", tmp_path, download=False)
    x = data.X_test[0]
    assert (x[0] == 10).all() and (x[1] == 20).all()
    assert x[2, 0, 5] == 5 and x[2, 1, 0] == 32 and x[2, 31, 31] == 1023 % 256
    assert data.Y_test.tolist() == [7] and data.n_pool == 5


def cifar_error(tmp_path: Path) -> str:
    with pytest.raises(CorruptDataError) as info:
        get_dataset("CIFAR10", tmp_path, download=False)
    return str(info.value)


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "crc", "not gzip"])
def test_cifar10_damaged_archive_is_reported(tmp_path, damage):
    write_cifar10(tmp_path / "cifar-10")
    path = tmp_path / "cifar-10" / "cifar-10-python.tar.gz"
    if damage == "truncated":
        truncate(path, 0.8)
    elif damage == "flipped byte":
        flip_byte(path, path.stat().st_size // 2)
    elif damage == "crc":
        flip_byte(path, path.stat().st_size - 6)
    else:
        path.write_bytes(b"\0" * 1000)
    message = cifar_error(tmp_path)
    assert str(path) in message and "delete it" in message


GOOD_BATCH = cifar_batch_bytes(np.zeros((1, 3, 32, 32), np.uint8), np.array([1]))


def _members(batch: bytes, *, skip: str | None = None) -> dict[str, bytes]:
    """Six good batches, but ``data_batch_3`` replaced by ``batch`` and ``skip`` left out."""
    members = {f"cifar-10-batches-py/data_batch_{i}": GOOD_BATCH for i in range(1, 6)}
    members["cifar-10-batches-py/test_batch"] = GOOD_BATCH
    members["cifar-10-batches-py/data_batch_3"] = batch
    if skip:
        del members[skip]
    return members


@pytest.mark.parametrize(
    "batch, skip, match",
    [
        (GOOD_BATCH, "cifar-10-batches-py/test_batch", "lacks cifar-10-batches-py/test_batch"),
        (b"\x80\x02}q\x00", None, "unreadable pickle"),
        (pickle.dumps([1, 2], protocol=2), None, "not a dict"),
        (pickle.dumps({b"data": np.zeros((1, 3072), np.int16), b"labels": [1]}, protocol=2),
         None, "expected uint8"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, protocol=2),
         None, "not a list of 2 ints"),
        (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, protocol=2),
         None, "outside 0..9"),
    ],
)
def test_cifar10_batches_are_validated(tmp_path, batch, skip, match):
    (tmp_path / "cifar-10").mkdir()
    write_cifar_tarball(tmp_path / "cifar-10" / "cifar-10-python.tar.gz",
                        _members(batch, skip=skip))
    assert match in cifar_error(tmp_path)


class _Evil:
    """Unpickling this runs ``os.system(command)`` with a plain unpickler."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_restricted_unpickler_refuses_code_execution(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Evil(f"touch {marker}"), protocol=2)
    with pytest.raises(CorruptDataError, match="system"):
        restricted_loads(payload)
    for module, name in (("builtins", "eval"), ("subprocess", "Popen"), ("numpy", "load")):
        with pytest.raises(CorruptDataError, match=f"{module}.{name}"):
            restricted_loads(f"c{module}\n{name}\n.".encode())
    # Only latin-1 is allowed through _codecs.encode.
    with pytest.raises(CorruptDataError):
        restricted_loads(b"c_codecs\nencode\n(Vabc\nVrot13\ntR.")
    # Inside the archive too: refused, and the command never ran.
    batch = pickle.dumps({b"data": _Evil(f"touch {marker}"), b"labels": [1]}, protocol=2)
    (tmp_path / "cifar-10").mkdir()
    write_cifar_tarball(tmp_path / "cifar-10" / "cifar-10-python.tar.gz", _members(batch))
    assert "refusing" in cifar_error(tmp_path)
    assert not marker.exists()


def test_restricted_unpickler_reads_python2_era_numpy_names():
    array = np.arange(3072, dtype=np.int64).astype(np.uint8).reshape(1, 3072)
    payload = pickle.dumps({b"data": array, b"labels": [3]}, protocol=2)
    # Files written with numpy 1.x (like the real CIFAR-10) name numpy.core.multiarray.
    old = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    for data in (payload, old):
        batch = restricted_loads(data)
        np.testing.assert_array_equal(batch[b"data"], array)
        assert batch[b"labels"] == [3]


# -- digits, the registry, n_pool, data_dir ------------------------------------------------


def test_digits_is_embedded_scaled_and_split_the_same_way_every_time(tmp_path):
    data = get_dataset("digits", tmp_path / "nowhere", download=False)
    assert data.X_train.dtype == torch.float32 and data.X_train.shape == (1347, 64)
    assert data.X_test.shape == (450, 64)
    assert 0 <= float(data.X_train.min()) and float(data.X_train.max()) == 1.0
    assert data.handler is TensorHandler and data.class_names == [str(d) for d in range(10)]
    # Stratified: every class has about a quarter of its images in the test set.
    counts = np.bincount(data.Y_test, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 46
    again = get_dataset("DIGITS")
    assert torch.equal(again.X_train, data.X_train)
    np.testing.assert_array_equal(again.Y_test, data.Y_test)


def test_unknown_name_lists_the_known_ones():
    assert DATASETS == ("MNIST", "FashionMNIST", "SVHN", "CIFAR10", "digits")
    with pytest.raises(UnknownNameError, match="ImageNet") as info:
        get_dataset("ImageNet")
    for name in DATASETS:
        assert name in str(info.value)


def test_n_pool_keeps_the_first_examples():
    full = get_dataset("digits")
    cut = get_dataset("digits", n_pool=100)
    assert cut.n_pool == 100 and cut.n_test == full.n_test
    assert torch.equal(cut.X_train, full.X_train[:100])
    np.testing.assert_array_equal(cut.Y_train, full.Y_train[:100])
    assert get_dataset("digits", n_pool=full.n_pool).n_pool == full.n_pool
    with pytest.raises(DeepALError, match="exceeds the 1347 training examples"):
        get_dataset("digits", n_pool=1348)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(DeepALError, match="n_pool"):
            get_dataset("digits", n_pool=bad)


def test_n_pool_on_image_data(tmp_path):
    expected = write_mnist(tmp_path / "mnist", n_train=20)
    data = get_dataset("MNIST", tmp_path, n_pool=7, download=False)
    np.testing.assert_array_equal(data.X_train.numpy(), expected[0][:7])
    np.testing.assert_array_equal(data.Y_train, expected[1][:7])
    with pytest.raises(DeepALError, match="n_pool=21"):
        get_dataset("MNIST", tmp_path, n_pool=21, download=False)


def test_data_dir_argument_then_environment_then_dot_data(tmp_path, monkeypatch):
    from_arg = write_mnist(tmp_path / "arg" / "mnist", seed=1)
    from_env = write_mnist(tmp_path / "env" / "mnist", seed=2)
    from_cwd = write_mnist(tmp_path / "cwd" / "data" / "mnist", seed=3)
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.delenv("DEEPAL_DATA", raising=False)
    assert resolve_data_dir() == Path("data")
    check_splits(get_dataset("MNIST", download=False), from_cwd)
    monkeypatch.setenv("DEEPAL_DATA", "")  # empty counts as unset
    assert resolve_data_dir() == Path("data")
    monkeypatch.setenv("DEEPAL_DATA", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    check_splits(get_dataset("MNIST", download=False), from_env)
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    check_splits(get_dataset("MNIST", str(tmp_path / "arg"), download=False), from_arg)


def test_missing_files_without_download_name_the_files_and_folder(tmp_path):
    folder = tmp_path / "mnist"
    write_mnist(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        get_dataset("MNIST", tmp_path, download=False)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in message and str(folder) in message
    assert "train-images" not in message  # only the missing one
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz" in message


# -- the real files ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name, folder", [("MNIST", "mnist"), ("FashionMNIST", "fashion-mnist")])
def test_real_mnist_files(name, folder):
    if not (SHARED_DATA / folder).is_dir():
        pytest.skip(f"{SHARED_DATA / folder} is missing")
    data = get_dataset(name, SHARED_DATA, download=False)
    assert data.X_train.shape == (60000, 1, 28, 28) and data.X_test.shape == (10000, 1, 28, 28)
    assert data.X_train.dtype == torch.uint8 and data.X_test.dtype == torch.uint8
    train_counts = np.bincount(data.Y_train, minlength=10)
    test_counts = np.bincount(data.Y_test, minlength=10)
    assert train_counts.sum() == 60000 and test_counts.sum() == 10000
    assert len(train_counts) == 10 and len(test_counts) == 10
    if name == "MNIST":
        assert data.Y_train[:6].tolist() == [5, 0, 4, 1, 9, 2]
        assert train_counts.min() == 5421 and train_counts.max() == 6742
        assert test_counts.min() == 892 and test_counts.max() == 1135
    else:
        assert (train_counts == 6000).all() and (test_counts == 1000).all()
    assert int(data.X_train.max()) == 255 and int(data.X_train.min()) == 0
    with gzip.open(SHARED_DATA / folder / "t10k-images-idx3-ubyte.gz") as f:
        raw = f.read()
    assert data.X_test[-1].flatten().tolist() == list(raw[-784:])
