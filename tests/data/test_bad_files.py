"""Corrupt or hostile data files: each is refused with one clean CorruptDataError, before the
size its header declares is allocated."""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepal.data.sources.mnist import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from deepal.errors import CorruptDataError

from _fake_datasets import write_gzip

#: Peak resident memory allowed to the reading process (Python, numpy and torch alone take
#: about 250 MB); every hostile file below declares gigabytes.
PEAK_LIMIT_MB = 500

GIB = 1 << 30

# Hypothesis reuses tmp_path across examples: each example overwrites its file.
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


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
readers = {"idx": lambda path: read_idx(path, IMAGES_MAGIC)}
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
    messages, peak_mb = refusals_and_peak_mb(files)
    assert len(messages) == len(files)
    for (_, path), message in zip(files, messages, strict=True):
        assert message is not None, f"{path} was read"
        assert str(path) in message and "\n" not in message
    assert peak_mb < PEAK_LIMIT_MB


def test_a_gigabyte_header_is_refused_before_reading(tmp_path):
    empty, _ = hostile_idx_files(tmp_path)
    with pytest.raises(CorruptDataError, match=r"declares shape \(65536, 256, 256\).*can hold"):
        read_idx(empty, IMAGES_MAGIC)


def test_a_forged_trailer_is_refused_at_the_end_of_the_real_data(tmp_path):
    _, forged = hostile_idx_files(tmp_path)
    with pytest.raises(CorruptDataError, match=str(forged)):
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
    try:
        labels = read_idx(path, LABELS_MAGIC)
    except CorruptDataError as error:
        assert str(path) in str(error) and "\n" not in str(error)
    else:
        assert labels.shape == dims and labels.tobytes() == body


@FUZZ
@given(prefix=st.sampled_from([b"", struct.pack(">I", IMAGES_MAGIC), idx_header((1, 2, 2))]),
       raw=st.binary(max_size=200), compress=st.booleans())
def test_random_bytes_are_read_exactly_or_refused_as_idx(tmp_path, prefix, raw, compress):
    path = tmp_path / "images-idx3-ubyte.gz"
    data = prefix + raw
    path.write_bytes(gzip.compress(data) if compress else data)
    try:
        images = read_idx(path, IMAGES_MAGIC)
    except CorruptDataError as error:
        assert str(path) in str(error) and "\n" not in str(error)
    else:  # only a well-formed IDX file of images can be read
        assert compress and images.tobytes() == data[16:] and images.size == len(data) - 16
