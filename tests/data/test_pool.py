"""Data: the labeled / unlabeled split, label bookkeeping and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepal import UNKNOWN, Data, TensorHandler
from deepal.errors import DeepALError, EmptyPoolError, LabelsUnavailableError, PoolExhaustedError


def make(n: int = 20, n_test: int = 5) -> Data:
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = np.arange(n) % 4
    return Data(x, y, x[:n_test], y[:n_test])


def test_initialize_labels_picks_distinct_random_examples():
    data = make()
    chosen = data.initialize_labels(7, random_state=3)
    assert len(set(chosen.tolist())) == 7
    assert data.labeled_idxs.sum() == 7
    assert data.labeled_idxs[chosen].all()
    again = make()
    assert (again.initialize_labels(7, random_state=3) == chosen).all()


def test_views_partition_the_pool_and_hide_unlabeled_labels():
    data = make()
    data.initialize_labels(5, random_state=0)
    lab_idxs, labeled = data.get_labeled_data()
    unl_idxs, unlabeled = data.get_unlabeled_data()
    assert sorted(lab_idxs.tolist() + unl_idxs.tolist()) == list(range(20))
    x, y, i = labeled[0]
    assert int(y) == lab_idxs[0] % 4
    item = unlabeled[0]
    assert len(item) == 2, "the unlabeled view must yield (x, index) only"
    assert torch.equal(item[0], torch.tensor([2.0 * unl_idxs[0], 2.0 * unl_idxs[0] + 1]))
    assert getattr(unlabeled, "Y", None) is None
    mask, everything = data.get_train_data()
    assert (mask == data.labeled_idxs).all() and len(everything[0]) == 2


def test_n_classes_comes_from_all_known_labels_not_the_labeled_ones():
    data = make()
    data.initialize_labels(1, random_state=0)
    assert data.n_classes == 4


def test_pool_without_labels_needs_n_classes_and_labels_on_update():
    x = np.zeros((6, 3), dtype=np.float32)
    with pytest.raises(DeepALError, match="n_classes"):
        Data(x, None)
    data = Data(x, None, n_classes=2)
    assert (data.Y_train == UNKNOWN).all()
    with pytest.raises(LabelsUnavailableError, match="pass their labels"):
        data.label([1])
    with pytest.raises(LabelsUnavailableError, match="RandomSampling"):
        data.initialize_labels(3)  # labels unknown: nothing to reveal
    data.label([1, 4], [1, 0])
    assert data.labeled_idxs.tolist() == [False, True, False, False, True, False]
    assert data.Y_train[[1, 4]].tolist() == [1, 0]


@pytest.mark.parametrize(
    "idxs, labels, message",
    [
        ([99], None, "out of range"),
        ([-1], None, "out of range"),
        ([2, 2], None, "more than once"),
        ([0.5], None, "integers"),
        (np.ones(20, dtype=bool), None, "boolean mask"),
        ([3], [7], "outside 0..3"),
        ([3, 4], [1], "2 indices but 1 labels"),
    ],
)
def test_label_rejects_bad_input_and_changes_nothing(idxs, labels, message):
    data = make()
    before_mask, before_y = data.labeled_idxs.copy(), data.Y_train.copy()
    with pytest.raises(DeepALError, match=message):
        data.label(idxs, labels)
    assert (data.labeled_idxs == before_mask).all() and (data.Y_train == before_y).all()


def test_initialize_more_than_the_pool_is_an_error():
    with pytest.raises(PoolExhaustedError, match="pool holds 20"):
        make().initialize_labels(21)


def test_label_twice_is_an_error():
    data = make()
    data.label([3])
    with pytest.raises(DeepALError, match="already labeled"):
        data.label([3])


def test_unlabel_returns_examples_to_the_pool():
    data = make()
    data.label([3, 5])
    data.unlabel([3])
    assert np.flatnonzero(data.labeled_idxs).tolist() == [5]


def test_cal_test_acc_and_its_errors():
    data = make()
    # Y_test is [0, 1, 2, 3, 0]: four of five right.
    assert data.cal_test_acc(torch.tensor([0, 1, 2, 0, 0])) == pytest.approx(0.8)
    with pytest.raises(DeepALError, match="3 predictions for 5"):
        data.cal_test_acc([0, 1, 2])
    no_test = Data(np.zeros((4, 2)), [0, 1, 0, 1])
    with pytest.raises(EmptyPoolError):
        no_test.cal_test_acc([])
    with pytest.raises(EmptyPoolError):
        no_test.get_test_data()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"Y_train": [0, 1, 2]}, "3 labels for 4 examples"),
        ({"Y_train": [0, 1, -5, 1]}, "negative label"),
        ({"Y_train": [0.5, 1, 0, 1]}, "integer class indices"),
        ({"Y_train": [0, 1, 0, 1], "n_classes": 1}, "n_classes must be an integer >= 2"),
        ({"Y_train": [0, 1, 0, 3], "n_classes": 2}, "does not fit"),
        ({"Y_train": [0, 1, 0, 1], "class_names": ["a", "b", "c"], "n_classes": 2}, "class_names"),
    ],
)
def test_constructor_errors(kwargs, message):
    with pytest.raises(DeepALError, match=message):
        Data(np.zeros((4, 2)), **kwargs)


def test_empty_pool_is_an_error():
    with pytest.raises(EmptyPoolError):
        Data(np.zeros((0, 2)), [])


def test_tensor_handler_normalises_uint8_images_per_channel():
    x = torch.tensor([[[[0, 255]], [[255, 0]]]], dtype=torch.uint8)  # (1, 2, 1, 2)
    handler = TensorHandler(x, [1], mean=[0.5, 0.0], std=[0.5, 1.0])
    batch_x, batch_y, idx = handler.get_batch(torch.tensor([0]))
    assert torch.allclose(batch_x, torch.tensor([[[[-1.0, 1.0]], [[1.0, 0.0]]]]))
    assert batch_y.tolist() == [1] and idx.tolist() == [0]
    low, high = handler.input_bounds()
    assert torch.allclose(low.flatten(), torch.tensor([-1.0, 0.0]))
    assert torch.allclose(high.flatten(), torch.tensor([1.0, 1.0]))
    assert torch.allclose(handler[0][0], batch_x[0])


def test_tensor_handler_accepts_lists_and_float_arrays():
    handler = TensorHandler([[1, 2], [3, 4]])
    x, idx = handler.get_batch(torch.tensor([1]))
    assert x.dtype == torch.float32 and x.tolist() == [[3.0, 4.0]] and idx.tolist() == [1]
    assert handler.input_bounds() is None
