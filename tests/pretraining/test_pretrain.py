"""Self-supervised pool features: one row per pool example, from the inputs only, computed
once and then read from the cache, computed again when the settings or inputs change or a
cache file is damaged, and deterministic under the settings' seed."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import deepal
from deepal.data import Data, image_handler
from deepal.pretraining import pretrain, pretrain_features
from deepal.pretraining.cache import ENCODER, FEATURES, RECORD

FAST = {"epochs": 1, "batch_size": 64, "max_examples": 128}


@pytest.fixture(scope="module")
def digits() -> Data:
    return deepal.get_dataset("digits")


def _images(n: int = 96, seed: int = 0) -> Data:
    """A small pool of 28x28 grey images stored as uint8, as MNIST is."""
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 1, 28, 28)) > 0.85).astype(np.uint8) * 255
    return Data(torch.from_numpy(x), rng.integers(0, 10, n), handler=image_handler((0.13,),
                                                                                    (0.31,)),
                n_classes=10)


def _count_trainings(monkeypatch) -> list[int]:
    """Counts the calls of the contrastive training loop."""
    calls: list[int] = []
    where = pretrain.__globals__  # the module that calls the loop
    real = where["contrastive_train"]

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setitem(where, "contrastive_train", counted)
    return calls


def test_features_have_one_finite_row_per_pool_example(digits, tmp_path):
    features = pretrain_features(digits, "MLP", FAST, cache_dir=tmp_path, device="cpu")
    assert features.shape == (digits.n_pool, 50) and features.dtype == np.float32
    assert np.isfinite(features).all()
    assert np.allclose(np.linalg.norm(features, axis=1)[np.abs(features).sum(1) > 0], 1,
                       atol=1e-5)


def test_images_are_pretrained_with_the_image_views(tmp_path):
    data = _images()
    result = pretrain(data, "MNIST_Net", FAST, cache_dir=tmp_path, device="cpu")
    assert result.features.shape == (96, 50) and np.isfinite(result.features).all()
    assert set(result.encoder_state) == set(deepal.nets.MNIST_Net().state_dict())


def test_a_second_call_reads_the_cache_without_pretraining(digits, tmp_path, monkeypatch):
    calls = _count_trainings(monkeypatch)
    first = pretrain(digits, "MLP", FAST, cache_dir=tmp_path, device="cpu")
    again = pretrain(digits, "MLP", FAST, cache_dir=tmp_path, device="cpu")
    assert calls == [1] and first.computed and not again.computed
    assert np.array_equal(first.features, again.features) and first.folder == again.folder
    assert all(torch.equal(first.encoder_state[k], again.encoder_state[k])
               for k in first.encoder_state)
    record = json.loads((first.folder / RECORD).read_text())
    assert record["settings"]["epochs"] == 1 and record["n_pool"] == digits.n_pool


def test_where_and_how_the_result_is_used_do_not_change_the_key(digits, tmp_path, monkeypatch):
    calls = _count_trainings(monkeypatch)
    pretrain(digits, "MLP", FAST, cache_dir=tmp_path, device="cpu")
    pretrain(digits, None, {**FAST, "net": "MLP", "init_classifier": True,
                            "cache_dir": str(tmp_path)}, device="cpu")
    assert calls == [1]


@pytest.mark.parametrize("change", [{"temperature": 0.1}, {"epochs": 2}, {"seed": 1},
                                    {"max_examples": 100}, {"normalize": False}])
def test_other_settings_are_another_entry(digits, tmp_path, monkeypatch, change):
    calls = _count_trainings(monkeypatch)
    first = pretrain(digits, "MLP", FAST, cache_dir=tmp_path, device="cpu")
    other = pretrain(digits, "MLP", {**FAST, **change}, cache_dir=tmp_path, device="cpu")
    assert calls == [1, 1] and other.computed and other.folder != first.folder
    assert not np.array_equal(first.features, other.features)
    assert not pretrain(digits, "MLP", FAST, cache_dir=tmp_path, device="cpu").computed


def test_other_inputs_are_another_entry(tmp_path):
    first = pretrain(_images(seed=0), "MNIST_Net", FAST, cache_dir=tmp_path, device="cpu")
    other = pretrain(_images(seed=1), "MNIST_Net", FAST, cache_dir=tmp_path, device="cpu")
    assert other.computed and other.folder != first.folder
    handled = Data(_images(seed=0).X_train, np.zeros(96, dtype=int),
                   handler=image_handler((0.5,), (0.5,)), n_classes=10)
    assert pretrain(handled, "MNIST_Net", FAST, cache_dir=tmp_path, device="cpu").computed


def test_the_labels_are_never_read(digits, tmp_path):
    reference = pretrain_features(digits, "MLP", FAST, cache_dir=tmp_path / "a", device="cpu")
    poisoned = Data(digits.X_train, np.random.default_rng(0).permutation(digits.Y_train),
                    n_classes=10)

    class Poison:
        def __getattr__(self, name):
            raise AssertionError("a pool label was read")

        def __getitem__(self, item):
            raise AssertionError("a pool label was read")

        def __len__(self):
            raise AssertionError("a pool label was read")

    poisoned.Y_train = Poison()
    features = pretrain_features(poisoned, "MLP", FAST, cache_dir=tmp_path / "b", device="cpu")
    assert np.array_equal(features, reference)


def test_same_seed_same_features_and_the_callers_random_state_is_left_alone(digits, tmp_path):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = pretrain_features(digits, "MLP", FAST, cache_dir=tmp_path / "a", device="cpu")
    assert torch.equal(torch.get_rng_state(), before)
    second = pretrain_features(digits, "MLP", FAST, cache_dir=tmp_path / "b", device="cpu")
    cached = pretrain_features(digits, "MLP", FAST, cache_dir=tmp_path / "b", device="cpu")
    assert torch.equal(torch.get_rng_state(), before)
    assert np.array_equal(first, second) and np.array_equal(second, cached)


def _damage(folder, name: str, how: str) -> None:
    path = folder / name
    if how == "garbage":
        path.write_bytes(b"\x00not what it should be\xff" * 3)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "missing":
        path.unlink()
    elif how == "pickled":  # an object array: refused by allow_pickle=False
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif how == "other shape":
        np.save(path, np.zeros((3, 2), dtype=np.float32))
    elif how == "other key":
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "key": "0" * 20}))
    elif how == "code":  # a pickle that would run code if loaded without weights_only
        torch.save({"w": torch.zeros(1), "f": print}, path)


DAMAGE = [(FEATURES, "garbage"), (FEATURES, "empty"), (FEATURES, "missing"),
          (FEATURES, "pickled"), (FEATURES, "other shape"), (ENCODER, "garbage"),
          (ENCODER, "missing"), (ENCODER, "code"), (RECORD, "garbage"), (RECORD, "other key")]


@pytest.mark.parametrize("name, how", DAMAGE, ids=[f"{n}-{h}" for n, h in DAMAGE])
def test_a_damaged_cache_file_is_computed_again(digits, tmp_path, name, how):
    first = pretrain(digits, "MLP", FAST, cache_dir=tmp_path, device="cpu")
    _damage(first.folder, name, how)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = pretrain(digits, "MLP", FAST, cache_dir=tmp_path, device="cpu")
    assert again.computed and np.array_equal(first.features, again.features)
    assert any(name in str(w.message) for w in caught)
    assert not pretrain(digits, "MLP", FAST, cache_dir=tmp_path, device="cpu").computed


def test_a_missing_record_means_an_unfinished_entry(digits, tmp_path):
    first = pretrain(digits, "MLP", FAST, cache_dir=tmp_path, device="cpu")
    (first.folder / RECORD).unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # absent is not damaged: no warning
        assert pretrain(digits, "MLP", FAST, cache_dir=tmp_path, device="cpu").computed


def test_weights_of_another_architecture_are_computed_again(digits, tmp_path):
    first = pretrain(digits, "MLP", FAST, cache_dir=tmp_path, device="cpu")
    torch.save({"w": torch.zeros(2)}, first.folder / ENCODER)
    with pytest.warns(UserWarning, match="do not fit"):
        assert pretrain(digits, "MLP", FAST, cache_dir=tmp_path, device="cpu").computed


def test_typiclust_and_probcover_pick_the_very_first_batch_with_them(digits, tmp_path):
    features = pretrain_features(digits, "MLP", FAST, cache_dir=tmp_path, device="cpu")
    for name in ("TypiClust", "ProbCover"):
        data = deepal.get_dataset("digits")
        net = deepal.get_net("digits", device="cpu")
        strategy = deepal.get_strategy(name)(data, net, random_state=0, features=features)
        assert not strategy.needs_model and data.n_labeled == 0
        picked = strategy.query(10)
        assert len(set(picked.tolist())) == 10 and net.clf is None
