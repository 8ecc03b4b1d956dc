"""Data refuses bad inputs where the pool is made: counts, NaN or infinite features,
labels that are not whole numbers, a number of classes that is not an integer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from refusals import fuzz, refused

from deepal import UNKNOWN, Data
from deepal.config import ConfigError
from deepal.data import pool
from deepal.errors import DeepALError, PoolExhaustedError

N = 12


def make() -> Data:
    x = np.arange(N * 3, dtype=np.float32).reshape(N, 3)
    return Data(x, np.arange(N) % 3, x[:4], np.arange(4) % 3)


def one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert message and "\n" not in message and "Traceback" not in message
    return message


def global_state() -> tuple:
    return tuple(np.asarray(part).tolist() for part in np.random.get_state(legacy=True))


# -- counts ---------------------------------------------------------------------------------

bad_counts = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=N + 1, max_value=10**12),
    st.floats().filter(lambda f: not f.is_integer()),
    st.sampled_from([float("nan"), float("inf"), 3.0, True, False, "3", None, np.float64(2)]),
)


@fuzz(50)
@given(num=bad_counts)
def test_initialize_labels_refuses_a_bad_count_and_changes_nothing(num):
    data = make()
    np.random.seed(0)
    before = global_state()
    with refused("Data.initialize_labels", "bad count", DeepALError) as error:
        data.initialize_labels(num)
    message = one_line(error)
    assert "num" in message or "pool holds" in message
    assert not data.labeled_idxs.any()
    assert global_state() == before  # a refused call draws nothing


def test_a_count_above_the_pool_is_pool_exhausted_and_numpy_integers_are_counts():
    with refused("Data.initialize_labels", "bad count",
                 PoolExhaustedError, match=f"the pool holds {N}"):
        make().initialize_labels(N + 1)
    with refused("Data.initialize_labels", "bad count",
                 ConfigError, match="num must be an integer >= 0, got 1.5"):
        make().initialize_labels(1.5)
    assert len(make().initialize_labels(np.int64(N), random_state=0)) == N
    assert len(make().initialize_labels(0, random_state=0)) == 0


# -- features -------------------------------------------------------------------------------

@fuzz(30)
@given(
    rows=st.sets(st.integers(0, N - 1), min_size=1, max_size=N),
    value=st.sampled_from([float("nan"), float("inf"), -float("inf")]),
    as_tensor=st.booleans(),
    dtype=st.sampled_from(["float16", "float32", "float64"]),
)
def test_nan_or_infinite_features_are_refused_naming_the_rows(rows, value, as_tensor, dtype):
    x = np.zeros((N, 2, 2), dtype=dtype)
    for row in rows:
        x[row, row % 2, 1] = value
    train = torch.from_numpy(x) if as_tensor else x
    with refused("Data", "NaN or infinite features", DeepALError) as error:
        Data(train, np.arange(N) % 2)
    assert one_line(error) == (
        f"X_train holds NaN or infinite values in {len(rows)} rows (first: row {min(rows)}): "
        "remove or impute them before making the pool"
    )


def test_the_test_set_is_checked_too_and_integer_inputs_are_not():
    x = np.ones((N, 3), dtype=np.float32)
    bad = x.copy()
    bad[2, 0] = np.nan
    with refused("Data", "NaN or infinite features",
                 DeepALError, match=r"X_test holds NaN .* 1 rows \(first: row 2\)"):
        Data(x, np.arange(N) % 2, bad, np.arange(N) % 2)
    pixels = np.full((N, 4, 4), 255, dtype=np.uint8)
    assert Data(pixels, np.arange(N) % 2).n_pool == N
    assert Data([f"text {i}" for i in range(N)], np.arange(N) % 2).n_pool == N


def test_large_pools_are_checked_a_chunk_at_a_time(monkeypatch, tmp_path):
    monkeypatch.setattr(pool, "_FINITE_CHUNK", 7)  # 2 rows of 3 values per chunk
    x = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32,
                                  shape=(N, 3))
    x[:] = 1.0
    Data(x, np.arange(N) % 2)
    x[9, 2] = np.inf
    x[11, 0] = np.nan
    with refused("Data", "NaN or infinite features",
                 DeepALError, match=r"in 2 rows \(first: row 9\)"):
        Data(x, np.arange(N) % 2)


# -- labels and classes ---------------------------------------------------------------------

bad_labels = st.sampled_from([1.7, 0.5, -0.2, float("nan"), float("inf"), -float("inf")])


@fuzz(30)
@given(value=bad_labels, position=st.integers(0, N - 1), where=st.sampled_from(["train", "test"]),
       as_tensor=st.booleans())
def test_labels_that_are_not_whole_numbers_are_refused(value, position, where, as_tensor):
    labels = (np.arange(N) % 2).astype(np.float64)
    labels[position] = value
    y = torch.from_numpy(labels) if as_tensor else labels
    x = np.zeros((N, 2))
    with refused("Data", "fractional or NaN label", DeepALError) as error:
        Data(x, y, n_classes=2) if where == "train" else Data(x, np.arange(N) % 2, x, y)
    message = one_line(error)
    assert f"position {position}" in message and "not whole numbers" in message


@fuzz(20)
@given(value=bad_labels)
def test_labels_given_when_labelling_are_checked_before_anything_changes(value):
    data = Data(np.zeros((N, 2)), None, n_classes=3)
    with refused("Data.label", "fractional or NaN label", DeepALError) as error:
        data.label([0, 1], [1, value])
    assert "not whole numbers" in one_line(error)
    assert not data.labeled_idxs.any() and (data.Y_train == UNKNOWN).all()


def test_whole_float_labels_and_unknown_labels_still_work():
    data = Data(np.zeros((4, 2)), [0.0, 1.0, -1.0, -1.0], n_classes=3)
    assert data.Y_train.tolist() == [0, 1, UNKNOWN, UNKNOWN]
    data.label([2], [2.0])
    assert data.Y_train[2] == 2 and data.n_labeled == 1
    with refused("Data", "text labels without names", DeepALError, match="dtype <U1"):
        Data(np.zeros((2, 2)), np.array(["a", "b"]))


@pytest.mark.parametrize("n_classes", [2.5, 2.0, "3", True, math.nan, 1, -3, np.float32(3)])
def test_n_classes_must_be_an_integer_of_at_least_two(n_classes):
    with refused("Data", "bad class count", ConfigError) as error:
        Data(np.zeros((4, 2)), [0, 1, 0, 1], n_classes=n_classes)
    assert one_line(error) == f"n_classes must be an integer >= 2, got {n_classes!r}"
