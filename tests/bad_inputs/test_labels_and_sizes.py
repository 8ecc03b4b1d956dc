"""Bad labels, class counts, image sizes and CSV tables given to the public readers: one clear
DeepALError each, nothing truncated or guessed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from refusals import fuzz, read_exactly_or_refused, refused

from deepal.config.base import ConfigError
from deepal.data.registry import get_dataset
from deepal.data.sources.arrays import from_arrays
from deepal.data.sources.images import decode_images
from deepal.data.sources.labels import encode_labels
from deepal.data.sources.tables import from_table, read_csv
from deepal.errors import CorruptDataError, DeepALError

X = np.zeros((3, 2), dtype=np.float32)


@pytest.mark.parametrize("label", [1.7, float("inf"), -float("inf"), 1e300, 2**70,
                                   np.float32(0.5), torch.tensor(2.5).item()])
def test_a_number_that_is_no_class_index_is_refused(label):
    with refused("from_arrays", "label that is no class index",
                 DeepALError, match="is not a class index") as info:
        from_arrays(X, [0, label, 1])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("labels", [
    np.array([0, 1.7, 1]), np.array([0, 1.7, 1], dtype=np.float32), torch.tensor([0, 1.7, 1]),
])
def test_fractional_label_arrays_are_refused_not_named(labels):
    with refused("from_arrays", "fractional labels", DeepALError, match="1.7"):
        from_arrays(X, labels)


@pytest.mark.parametrize("labels", [
    [0, float("nan"), 1], np.array([0, np.nan, 1], dtype=np.float32),
    torch.tensor([0, float("nan"), 1]), [0, np.float64("nan"), 1],
])
def test_a_nan_label_means_not_labeled(labels):
    assert from_arrays(X, labels, n_classes=2).Y_train.tolist() == [0, -1, 1]


def test_whole_floats_and_unicode_digits_are_class_indices():
    assert from_arrays(X, [0.0, 2.0, 1.0]).Y_train.tolist() == [0, 2, 1]
    labels, names = encode_labels(["0", "\u0662", "1"], 3)  # an Arabic-Indic 2
    assert labels.tolist() == [0, 2, 1] and names is None
    labels, names = encode_labels(["a", "\u00b2", "a"], 3)  # a superscript 2 is a name
    assert names == ["a", "\u00b2"]


@pytest.mark.parametrize("n_classes", [2.5, 2.0, "3", True, 1, 0, -3, float("nan")])
def test_a_bad_class_count_is_refused(n_classes):
    with refused("from_arrays", "bad class count", ConfigError, match="n_classes") as info:
        from_arrays(X, [0, 1, 1], n_classes=n_classes)
    assert "\n" not in str(info.value)


def test_numpy_integers_are_class_counts():
    assert from_arrays(X, [0, 1, 1], n_classes=np.int64(4)).n_classes == 4


@fuzz(60)
@given(labels=st.lists(st.one_of(
    st.integers(-2, 2**70), st.floats(allow_nan=True, allow_infinity=True), st.none(),
    st.text(max_size=3)), min_size=3, max_size=3))
def test_random_labels_are_encoded_exactly_or_refused(labels):
    data = read_exactly_or_refused("from_arrays", "random labels",
                                   lambda: from_arrays(X, labels, n_classes=None), DeepALError)
    if data is None:
        return
    # Whatever was accepted maps one to one onto class indices; numbers are never truncated.
    for value, index in zip(labels, data.Y_train.tolist(), strict=True):
        if isinstance(value, float) and math.isnan(value) or value is None:
            assert index == -1
        elif isinstance(value, (int, float)) and data.class_names is None:
            assert index == value


@pytest.mark.parametrize("size, channels", [(2, 3), (8.5, 3), (5000, 3), (8, 2), (True, 3)])
def test_bad_image_sizes_are_refused(size, channels):
    with refused("decode_images", "bad image size", ConfigError):
        decode_images([Path("never-opened.png")], size, channels)


def test_images_too_large_for_memory_are_refused_before_allocation():
    paths = [Path("never-opened.png")] * 10**6
    with refused("decode_images", "images beyond memory",
                 DeepALError, match="1000000 images of 4096 x 4096 pixels need .* GiB"):
        decode_images(paths, 4096, 3)


@pytest.mark.parametrize("raw, match", [
    (b"a,b\n\xff\xfe,1\n", "cannot read CSV"),
    (b"a,b\n1,2,3\n", "line 2: 3 values for 2 columns"),
    (b"a,a\n1,2\n", "repeated column names"),
    (b'a,b\n"1,2\n', "cannot read CSV|values for 2 columns"),
    (b"", "is empty"),
])
def test_malformed_csv_tables_are_refused(tmp_path, raw, match):
    path = tmp_path / "table.csv"
    path.write_bytes(raw)
    before = sorted(tmp_path.iterdir())
    with refused("from_table", "malformed CSV", CorruptDataError, match=match) as info:
        from_table(path, label_column="b")
    assert "\n" not in str(info.value)
    assert sorted(tmp_path.iterdir()) == before and path.read_bytes() == raw


@fuzz(60)
@given(raw=st.binary(max_size=120))
def test_random_bytes_are_read_as_csv_or_refused(tmp_path, raw):
    path = tmp_path / "table.csv"
    path.write_bytes(raw)
    table = read_exactly_or_refused("read_csv", "random bytes", lambda: read_csv(path),
                                    naming=str(path))
    if table is not None:
        header, rows = table
        assert header and all(len(row) == len(header) for row in rows)


@pytest.mark.parametrize("n_pool", [2.5, 100.0, "100", True, 0, -1])
def test_a_bad_pool_size_is_refused_before_loading(n_pool):
    with refused("get_dataset", "bad pool size", ConfigError, match="n_pool") as info:
        get_dataset("digits", n_pool=n_pool)
    assert "\n" not in str(info.value)


def test_numpy_integers_are_pool_sizes():
    assert get_dataset("digits", n_pool=np.int64(10)).n_pool == 10
