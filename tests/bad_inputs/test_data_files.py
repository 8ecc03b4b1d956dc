"""Corrupt or hostile data files: each is refused with one clean CorruptDataError, before the
size its header declares is allocated."""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from hypothesis import given
from hypothesis import strategies as st
from refusals import fuzz, read_exactly_or_refused, refused

from deepal import resources
from deepal.data.registry import get_dataset
from deepal.data.sources.arrays import from_numpy_file, read_numpy_file
from deepal.data.sources.cifar10 import TRAIN_MEMBERS, read_cifar10_archive
from deepal.data.sources.images import from_image_folder
from deepal.data.sources.mnist import IMAGES_MAGIC, LABELS_MAGIC, read_idx, read_idx_pair
from deepal.data.sources.svhn import read_svhn_mat
from deepal.data.sources.tables import from_table
from deepal.errors import CorruptDataError, DatasetNotFoundError, DeepALError

from _fake_datasets import write_gzip

#: Peak resident memory allowed to the reading process (Python, numpy and torch alone take
#: about 250 MB); every hostile file below declares gigabytes.
PEAK_LIMIT_MB = 500

GIB = 1 << 30

# Hypothesis reuses tmp_path across examples: each example overwrites its file.
FUZZ = fuzz(60)


def idx_header(dims: tuple[int, ...]) -> bytes:
    return struct.pack(">I", 0x0800 | len(dims)) + struct.pack(f">{len(dims)}I", *dims)


def forge_gzip_length(path: Path, length: int) -> None:
    """Make gzip's trailer record ``length`` (mod 2**32), as a hostile file would."""
    raw = bytearray(path.read_bytes())
    raw[-4:] = struct.pack("<I", length % 2**32)
    path.write_bytes(bytes(raw))


def hostile_idx_files(folder: Path) -> list[Path]:
    """IDX files declaring gigabytes: an empty body whose gzip trailer agrees with the header
    mod 2**32, and a random body of 2 MB (so the compression ratio is plausible) with a forged
    trailer."""
    empty = folder / "empty-idx3-ubyte.gz"
    write_gzip(empty, idx_header((65536, 256, 256)))  # 4 GiB, and 16 + 4 GiB = 16 mod 2**32
    forged = folder / "forged-idx3-ubyte.gz"
    body = np.random.default_rng(0).integers(0, 256, 2 << 20, dtype=np.uint8).tobytes()
    dims = (2 * GIB // 784, 28, 28)
    write_gzip(forged, idx_header(dims) + body)
    forge_gzip_length(forged, 16 + 784 * dims[0])
    return [empty, forged]


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def hostile_numpy_files(folder: Path) -> list[Path]:
    """A ``.npy`` file and a ``.npz`` member declaring 32 GiB over 64 bytes of data, and a
    ``.npz`` whose directory declares a member of 32 GiB."""
    npy = folder / "huge.npy"
    npy.write_bytes(npy_header((65536, 65536)) + bytes(64))
    npz = folder / "huge.npz"
    with zipfile.ZipFile(npz, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("X.npy", npy_header((65536, 65536)) + bytes(64))
    forged = folder / "forged.npz"
    np.savez_compressed(forged, X=np.zeros(8))
    raw = bytearray(forged.read_bytes())
    # The uncompressed size, in the local header (offset 22) and the central directory.
    central = raw.rindex(b"PK\x01\x02")
    for offset in (22, central + 24):
        raw[offset:offset + 4] = struct.pack("<I", 2**32 - 1)
    forged.write_bytes(bytes(raw))
    return [npy, npz, forged]


def hostile_cifar_file(folder: Path) -> Path:
    """A CIFAR-10 tarball whose first batch's tar header declares 8 GiB."""
    info = tarfile.TarInfo(TRAIN_MEMBERS[0])
    info.size = 8 * GIB
    path = folder / "cifar-10-python.tar.gz"
    write_gzip(path, info.tobuf(format=tarfile.GNU_FORMAT) + bytes(4096))
    return path


def _patch(raw: bytearray, find: bytes, offset: int, value: bytes) -> None:
    at = raw.index(find)
    raw[at + offset:at + offset + len(value)] = value


def hostile_svhn_files(folder: Path) -> list[Path]:
    """SVHN ``.mat`` files declaring 2**31 - 1 images, or a 4 GiB pixel element (plain and
    compressed)."""
    arrays = {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.ones((2, 1), np.uint8)}
    paths = [folder / f"svhn{i}.mat" for i in range(3)]
    for path, compressed in zip(paths, (False, False, True), strict=True):
        scipy.io.savemat(path, arrays, do_compression=compressed)
    for path, (find, offset, value) in zip(paths, [
        (struct.pack("<4i", 32, 32, 3, 2), 12, struct.pack("<i", 2**31 - 1)),  # dimensions
        (struct.pack("<2i", 2, 32 * 32 * 3 * 2), 4, struct.pack("<I", 2**32 - 8)),  # X's bytes
        (struct.pack("<i", 15), 4, struct.pack("<I", 2**32 - 8)),  # a compressed element
    ], strict=True):
        raw = bytearray(path.read_bytes())
        _patch(raw, find, offset, value)
        path.write_bytes(bytes(raw))
    return paths


# The reader runs in a grandchild, so that RUSAGE_CHILDREN of its parent is its peak alone
# (the test process's own children, e.g. earlier command-line tests, do not count).
_PARENT = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-c", sys.argv[1], *sys.argv[2:]])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
sys.exit(done.returncode)
"""

_READER = """
import json, sys
from deepal.data.sources.mnist import IMAGES_MAGIC, read_idx
from deepal.errors import CorruptDataError
from deepal.data.sources.arrays import read_numpy_file
from pathlib import Path
from deepal.data.sources.cifar10 import read_cifar10_archive
from deepal.data.sources.svhn import read_svhn_mat
readers = {"idx": lambda path: read_idx(path, IMAGES_MAGIC),
           "numpy": lambda path: read_numpy_file(Path(path)),
           "cifar": read_cifar10_archive, "svhn": read_svhn_mat}
for kind, path in zip(sys.argv[1::2], sys.argv[2::2], strict=True):
    try:
        readers[kind](path)
    except CorruptDataError as error:
        print(json.dumps(str(error)))
    else:
        print(json.dumps(None))
"""


def refusals_and_peak_mb(files: list[tuple[str, Path]]) -> tuple[list[str | None], int]:
    """Read each ``(kind, path)`` in a fresh process; its CorruptDataError messages (``None``
    where it read the file) and its peak resident memory in MB."""
    args = [str(part) for kind, path in files for part in (kind, path)]
    done = subprocess.run([sys.executable, "-c", _PARENT, _READER, *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    *messages, peak = done.stdout.splitlines()
    return [json.loads(line) for line in messages], int(peak)


def test_headers_declaring_gigabytes_are_refused_within_bounded_memory(tmp_path):
    files = [("idx", path) for path in hostile_idx_files(tmp_path)]
    files += [("numpy", path) for path in hostile_numpy_files(tmp_path)]
    files += [("cifar", hostile_cifar_file(tmp_path))]
    files += [("svhn", path) for path in hostile_svhn_files(tmp_path)]
    messages, peak_mb = refusals_and_peak_mb(files)
    assert len(messages) == len(files)
    for (_, path), message in zip(files, messages, strict=True):
        assert message is not None, f"{path} was read"
        assert str(path) in message and "\n" not in message
    assert peak_mb < PEAK_LIMIT_MB


def test_a_gigabyte_header_is_refused_before_reading(tmp_path):
    empty, _ = hostile_idx_files(tmp_path)
    with refused("read_idx", "header declaring gigabytes", CorruptDataError,
                 match=r"declares shape \(65536, 256, 256\).*can hold"):
        read_idx(empty, IMAGES_MAGIC)


def test_a_cifar_batch_declaring_gigabytes_is_refused_before_reading(tmp_path):
    path = hostile_cifar_file(tmp_path)
    with refused("read_cifar10_archive", "header declaring gigabytes", CorruptDataError,
                 match="data_batch_1 declares 8589934592 bytes"):
        read_cifar10_archive(path)


def test_a_forged_trailer_is_refused_at_the_end_of_the_real_data(tmp_path):
    _, forged = hostile_idx_files(tmp_path)
    with refused("read_idx", "forged gzip trailer", CorruptDataError, match=str(forged)):
        read_idx(forged, IMAGES_MAGIC)


@FUZZ
@given(dims=st.tuples(st.integers(0, 2**32 - 1)),
       body=st.binary(max_size=64),
       forge=st.booleans())
def test_random_label_headers_and_bodies_are_read_exactly_or_refused(tmp_path, dims, body, forge):
    path = tmp_path / "labels-idx1-ubyte.gz"
    write_gzip(path, idx_header(dims) + body)
    if forge:
        forge_gzip_length(path, 8 + dims[0])
    labels = read_exactly_or_refused("read_idx", "random header and body",
                                     lambda: read_idx(path, LABELS_MAGIC), naming=str(path))
    if labels is not None:
        assert labels.shape == dims and labels.tobytes() == body


@FUZZ
@given(prefix=st.sampled_from([b"", struct.pack(">I", IMAGES_MAGIC), idx_header((1, 2, 2))]),
       raw=st.binary(max_size=200), compress=st.booleans())
def test_random_bytes_are_read_exactly_or_refused_as_idx(tmp_path, prefix, raw, compress):
    path = tmp_path / "images-idx3-ubyte.gz"
    data = prefix + raw
    path.write_bytes(gzip.compress(data) if compress else data)
    images = read_exactly_or_refused("read_idx", "random bytes",
                                     lambda: read_idx(path, IMAGES_MAGIC), naming=str(path))
    if images is not None:  # only a well-formed IDX file of images can be read
        assert compress and images.tobytes() == data[16:] and images.size == len(data) - 16


def test_numpy_headers_declaring_gigabytes_are_refused(tmp_path):
    npy, npz, forged = hostile_numpy_files(tmp_path)
    for path in (npy, npz):
        with refused("from_numpy_file", "header declaring gigabytes", CorruptDataError,
                     match=r"declares shape \(65536, 65536\) of float64"):
            from_numpy_file(path, n_classes=2)
    with refused("from_numpy_file", "header declaring gigabytes", CorruptDataError,
                 match="member X.npy declares 4294967295 bytes"):
        from_numpy_file(forged, n_classes=2)


def object_array_npz(path: Path) -> None:
    """An archive whose ``X`` holds Python objects (a pickle inside)."""
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("X.npy", "w") as member:
            np.save(member, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


@pytest.mark.parametrize("make, match", [
    (lambda p: p.write_bytes(b"PK\x03\x04 not really a zip"), "cannot read"),
    (lambda p: p.write_bytes(b"just text"), "cannot read"),
    (lambda p: p.write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'  "), "damaged .npy header"),
    (lambda p: p.write_bytes(npy_header((3,)) + bytes(25)), r"\(24 bytes\) but 25 bytes"),
    (lambda p: p.write_bytes(npy_header((3,), "|O") + bytes(24)), "Python objects"),
    (object_array_npz, "Python objects"),
])
def test_malformed_numpy_files_are_refused(tmp_path, make, match):
    path = tmp_path / "pool.npz"
    make(path)
    before = sorted(tmp_path.iterdir())
    with refused("from_numpy_file", "malformed file", CorruptDataError, match=match) as info:
        from_numpy_file(path, n_classes=2)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert sorted(tmp_path.iterdir()) == before


@FUZZ
@given(shape=st.lists(st.integers(0, 2**20), max_size=3).map(tuple),
       descr=st.sampled_from(["<f8", "|u1", "<i4", "|O", "<U3"]),
       body=st.binary(max_size=64), zipped=st.booleans())
def test_random_numpy_headers_are_read_exactly_or_refused(tmp_path, shape, descr, body, zipped):
    path = tmp_path / "pool.npz"
    raw = npy_header(shape, descr) + body
    if zipped:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("X.npy", raw)
    else:
        path.write_bytes(raw)
    arrays = read_exactly_or_refused("read_numpy_file", "random header and body",
                                     lambda: read_numpy_file(path), naming=str(path))
    if arrays is not None:
        assert descr != "|O" and arrays["X"].shape == shape
        assert arrays["X"].tobytes() == body


@FUZZ
@given(raw=st.binary(max_size=300))
def test_random_bytes_are_refused_as_numpy_files(tmp_path, raw):
    path = tmp_path / "pool.npy"
    path.write_bytes(raw)
    with refused("read_numpy_file", "random bytes", CorruptDataError, match="pool.npy"):
        read_numpy_file(path)


@pytest.mark.parametrize("read", [
    lambda p: from_numpy_file(p, n_classes=2),
    lambda p: from_table(p, label_column="y"),
])
def test_a_folder_named_as_a_data_file_is_refused(tmp_path, read):
    folder = tmp_path / "pool.csv"
    folder.mkdir()
    with refused("data file readers", "folder for a file", DeepALError,
                 match="is a folder or special file, not a file") as info:
        read(folder)
    assert not isinstance(info.value, DatasetNotFoundError)
    assert str(folder) in str(info.value)


def test_a_folder_where_an_idx_file_belongs_is_refused_not_downloaded_onto(tmp_path):
    folder = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    folder.mkdir(parents=True)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with refused("get_dataset", "folder for a file", DeepALError,
                 match="MNIST data file .*train-images-idx3-ubyte.gz.* is a "
                       "folder") as info:
        get_dataset("MNIST", tmp_path, download=True)
    assert "\n" not in str(info.value)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_images_of_another_size_are_refused_from_the_header(tmp_path):
    images, labels = tmp_path / "images-idx3-ubyte.gz", tmp_path / "labels-idx1-ubyte.gz"
    write_gzip(images, idx_header((1000, 64, 64)) + bytes(10))  # the data is never read
    write_gzip(labels, idx_header((1000,)) + bytes(1000))
    with refused("read_idx_pair", "wrong image size", CorruptDataError,
                 match=r"examples are \(64, 64\), expected \(28, 28\)"):
        read_idx_pair(images, labels)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_named_as_a_table_is_refused_not_read(tmp_path):
    pipe = tmp_path / "table.csv"
    os.mkfifo(pipe)  # reading it would wait forever for a writer
    with refused("from_table", "named pipe for a file", DeepALError,
                 match="is a folder or special file"):
        from_table(pipe, label_column="y")


def test_a_file_named_as_an_image_folder_is_refused(tmp_path):
    path = tmp_path / "photos"
    path.write_bytes(b"not a folder")
    with refused("from_image_folder", "file for a folder", DeepALError,
                 match="is a file, not a folder") as info:
        from_image_folder(path, class_names=["a", "b"])
    assert not isinstance(info.value, DatasetNotFoundError)


@FUZZ
@given(raw=st.binary(max_size=400), compress=st.booleans())
def test_random_bytes_are_refused_as_cifar_archives(tmp_path, raw, compress):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    with refused("read_cifar10_archive", "random bytes", CorruptDataError,
                 match="cifar-10-python.tar.gz"):
        read_cifar10_archive(path)


@fuzz(40)
@given(data=st.data())
def test_damaged_svhn_files_are_read_exactly_or_refused(tmp_path, data):
    path = tmp_path / "train_32x32.mat"
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 3, 2), np.uint8),
                            "y": np.ones((2, 1), np.uint8)})
    raw = bytearray(path.read_bytes())
    # Overwrite a few bytes past the 128-byte text header: tags, sizes, dimensions, data.
    at = data.draw(st.integers(128, len(raw) - 1))
    patch = data.draw(st.binary(min_size=1, max_size=8))
    raw[at:at + len(patch)] = patch
    path.write_bytes(bytes(raw[:data.draw(st.integers(129, len(raw)))]))
    read = read_exactly_or_refused("read_svhn_mat", "damaged file",
                                   lambda: read_svhn_mat(path), naming=str(path))
    if read is not None:
        X, Y = read
        assert X.shape[1:] == (3, 32, 32) and len(X) == len(Y) and Y.max() <= 9


def small_parquet() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], "y": ["x", "y", "x"]}), buffer)
    return buffer.getvalue()


PARQUET = small_parquet()
_FOOTER = len(PARQUET) - 8 - int.from_bytes(PARQUET[-8:-4], "little")


@fuzz(80)
@given(patches=st.lists(st.tuples(st.integers(_FOOTER, len(PARQUET) - 9),
                                  st.binary(min_size=1, max_size=3)), min_size=1, max_size=3),
       cut=st.integers(0, 12))
def test_damaged_parquet_footers_are_read_or_refused_in_one_line(tmp_path, patches, cut):
    raw = bytearray(PARQUET)
    for at, patch in patches:  # the footer: the schema, row groups, sizes and offsets
        raw[at:at + len(patch)] = patch
    path = tmp_path / "pool.parquet"
    path.write_bytes(bytes(raw[:len(PARQUET) - cut]))
    table = read_exactly_or_refused("from_table (Parquet)", "damaged footer",
                                    lambda: from_table(path, label_column="y"),
                                    error=DeepALError, naming=str(path))
    if table is not None:  # a patch the footer survives: still 3 rows or fewer, never more
        assert table.n_pool <= 3


def test_an_idx_file_holding_more_than_the_machines_memory_is_refused_before_reading(
        tmp_path, monkeypatch):
    # An honest file: its header matches its data, which compresses 1000-fold (zeros), so
    # only the machine's memory can refuse it; here a machine of 1 MB.
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_gzip(path, idx_header((2000, 28, 28)) + bytes(2000 * 28 * 28))
    monkeypatch.setattr(resources, "physical_memory", lambda: 1 << 20)
    with refused("read_idx", "more than the machine's memory", match="more than this machine"):
        read_idx(path, IMAGES_MAGIC)
    monkeypatch.undo()
    assert read_idx(path, IMAGES_MAGIC).shape == (2000, 28, 28)
