"""A labelling project: a folder with a SQLite database (:mod:`deepal.labeling.store`) and the
pool decoded once (``pool.npz``), plus the trained model once there is one.

The source (an image folder, a CSV/Parquet table, a ``.npy``/``.npz`` file or a text file)
is read at ``init``: its items are listed in the database with what the labelling page
shows (a preview image, the text, or the feature row), and the pool's inputs are cached, so
later commands never decode the source again and the page never reads outside the project.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepal.data.pool import UNKNOWN, Data
from deepal.errors import DeepALError, PoolExhaustedError

#: The database file inside a project folder.
DB_NAME = "deepal.sqlite"
#: The cached inputs of the pool (and test set).
POOL_NAME = "pool.npz"
#: The model trained at the last query or export.
MODEL_NAME = "model.pt"
#: Kinds of data source.
KINDS = ("images", "table", "numpy", "texts")
#: Networks a project can name ("auto": by the pool's shape).
NETS = ("auto", "SmallCNN", "MLP")
#: Longest side of the preview images the labelling page shows.
PREVIEW_SIZE = 256


def guess_kind(source: Path) -> str:
    """The kind of a data source from its path: a folder holds images, a file its suffix."""
    if source.is_dir():
        return "images"
    suffix = source.suffix.lower()
    kinds = {".csv": "table", ".parquet": "table", ".npy": "numpy", ".npz": "numpy",
             ".txt": "texts"}
    if suffix not in kinds:
        raise DeepALError(f"cannot tell what {source} holds: pass --kind ({', '.join(KINDS)})")
    return kinds[suffix]


@dataclass
class _Loaded:
    """A source read at init: inputs, labels found in it, and what the page shows."""

    X: np.ndarray
    labels: np.ndarray  # class index or -1
    refs: list[str]
    texts: list[str | None]
    previews: list[bytes | None]
    classes: list[str]
    feature_names: list[str] | None = None


def _read_source(kind: str, source: Path, classes: list[str] | None, options: dict[str, Any],
                 previews: bool) -> _Loaded:
    """Read a data source once: its inputs, labels and page contents."""
    if kind == "images":
        from deepal.data.sources.images import decode_images, list_image_folder
        from deepal.data.sources.labels import encode_labels

        paths, names, found = list_image_folder(source)
        classes = classes or found
        if classes is None:
            raise DeepALError(f"{source} holds unlabeled images: name the classes with "
                              "--classes cat,dog,...")
        labels, classes = encode_labels(names, len(paths), classes)
        shown: list[bytes | None] = [None] * len(paths)

        def keep_preview(i: int, image: Any) -> None:
            if previews:
                shown[i] = _preview_png(image)

        pixels = decode_images(paths, options["image_size"], options["channels"], keep_preview)
        refs = [p.relative_to(source).as_posix() for p in paths]
        return _Loaded(pixels.numpy(), labels, refs, [None] * len(paths), shown,
                       list(classes or []))
    if kind == "table":
        from deepal.data.sources.tables import from_table

        data = from_table(source, label_column=options.get("label_column"), class_names=classes,
                          standardize=False)
        features = np.asarray(data.X_train, dtype=np.float32)
        names = data.class_names or [str(i) for i in range(data.n_classes)]
        n = len(features)
        return _Loaded(features, data.Y_train, [f"row {i + 1}" for i in range(n)], [None] * n,
                       [None] * n, names, data.feature_names)  # type: ignore[attr-defined]
    if kind == "numpy":
        from deepal.data.sources.arrays import from_numpy_file

        data = from_numpy_file(source, class_names=classes)
        arr = np.asarray(data.X_train)
        names = data.class_names or [str(i) for i in range(data.n_classes)]
        shown = ([_preview_png_array(x) for x in arr] if previews and arr.ndim == 4
                 else [None] * len(arr))
        return _Loaded(arr, data.Y_train, [f"row {i}" for i in range(len(arr))],
                       [None] * len(arr), shown, names)
    if kind == "texts":
        from deepal.data.sources.labels import encode_labels
        from deepal.data.sources.texts import embed_texts

        texts, raw = _read_texts(source, options.get("text_column"), options.get("label_column"))
        labels, classes = encode_labels(raw, len(texts), classes)
        if classes is None:
            raise DeepALError("name the classes with --classes a,b,...")
        return _Loaded(embed_texts(texts), labels, [f"line {i + 1}" for i in range(len(texts))],
                       list(texts), [None] * len(texts), list(classes))
    raise DeepALError(f"unknown kind of source {kind!r}: choose one of {', '.join(KINDS)}")


def _read_texts(source: Path, text_column: str | None,
                label_column: str | None) -> tuple[list[str], list[Any] | None]:
    if source.suffix.lower() in (".csv", ".parquet"):
        from deepal.data.sources.tables import read_table

        columns = read_table(source)
        column = text_column or "text"
        if column not in columns:
            raise DeepALError(f"{source} has no text column {column!r}: pass --text-column "
                              f"(columns: {list(columns)})")
        labels = columns[label_column] if label_column in columns else None
        return [str(t) for t in columns[column]], labels
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DeepALError(f"cannot read texts from {source}: {error}") from error
    texts = [line for line in lines if line.strip()]
    if not texts:
        raise DeepALError(f"{source} holds no text (one text per line)")
    return texts, None


def _preview_png(image: Any) -> bytes:
    """The image shrunk to at most :data:`PREVIEW_SIZE` pixels a side, as PNG."""
    small = image.copy()
    small.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
    buffer = io.BytesIO()
    small.save(buffer, format="PNG")
    return buffer.getvalue()


def _preview_png_array(x: np.ndarray) -> bytes | None:
    """A ``(C, H, W)`` ``uint8`` image as PNG (None where Pillow is absent)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    if x.dtype != np.uint8 or x.shape[0] not in (1, 3):
        return None
    arr = x[0] if x.shape[0] == 1 else x.transpose(1, 2, 0)
    return _preview_png(Image.fromarray(np.ascontiguousarray(arr)))


@dataclass(frozen=True)
class QueryResult:
    """What ``deepal query`` did."""

    round_id: int
    strategy: str
    item_ids: list[int]
    n_labeled: int
    test_accuracy: float | None
    note: str | None


class Project:
    """A labelling project in a folder.

    Create one with :meth:`init`, open it with ``Project(folder)``.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        from deepal.labeling.store import Store

        self.root = Path(root)
        self.store = Store(self.root / DB_NAME)
        self.settings = self.store.meta()
        self.classes: list[str] = list(self.settings["classes"])
        self._arrays: dict[str, np.ndarray] | None = None
        self.n_items = self.store.n_items()  # items are fixed at init

    # -- creation --------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        root: str | os.PathLike[str],
        source: str | os.PathLike[str],
        classes: Sequence[str] | None = None,
        kind: str | None = None,
        test: str | os.PathLike[str] | None = None,
        net: str = "auto",
        strategy: str = "EntropySampling",
        image_size: int = 32,
        channels: int = 3,
        n_epoch: int | None = None,
        seed: int = 1,
        label_column: str | None = None,
        text_column: str | None = None,
    ) -> Project:
        """Create a project in folder ``root`` over the data ``source``.

        Parameters
        ----------
        source:
            An image folder (flat = unlabeled, or class sub-folders), a ``.csv`` /
            ``.parquet`` table, a ``.npy`` / ``.npz`` file, or a ``.txt`` file (one text per
            line; or a table with ``text_column`` and ``kind="texts"``).
        classes:
            The class names; required unless the source names them (sub-folders, labels).
        test:
            An optional labeled test set of the same kind (for the held-out accuracy).
        net:
            ``auto`` (a small CNN for images, an MLP otherwise), ``SmallCNN`` or ``MLP``.
        strategy:
            The query strategy (a name of ``deepal list``, or ``package.module:Class``).
        image_size, channels:
            Images are decoded once at ``image_size`` x ``image_size``, RGB (3) or gray (1).
        n_epoch:
            Training epochs per query (default 20).
        label_column, text_column:
            For tables: the column of labels, the column of texts.
        """
        from deepal.labeling.store import Store
        from deepal.strategies.registry import get_strategy

        root = Path(root)
        if (root / DB_NAME).exists():
            raise DeepALError(f"{root} already holds a labelling project ({DB_NAME})")
        source_path = Path(source).expanduser().resolve()
        if not source_path.exists():
            raise DeepALError(f"data source {str(source)!r} does not exist")
        kind = kind or guess_kind(source_path)
        if kind not in KINDS:
            raise DeepALError(f"unknown kind {kind!r}: choose one of {', '.join(KINDS)}")
        if net not in NETS:
            raise DeepALError(f"unknown net {net!r}: choose one of {', '.join(NETS)}")
        get_strategy(strategy)  # an unknown strategy fails now, not at the first query
        names = _class_list(classes)
        options = {"image_size": image_size, "channels": channels,
                   "label_column": label_column, "text_column": text_column}
        loaded = _read_source(kind, source_path, names, options, previews=True)
        if len(loaded.classes) < 2:
            raise DeepALError("a project needs at least two classes: pass --classes a,b,...")
        arrays: dict[str, np.ndarray] = {"X": loaded.X}
        if test is not None:
            test_path = Path(test).expanduser().resolve()
            tested = _read_source(kind, test_path, loaded.classes, options, previews=False)
            if (tested.labels == UNKNOWN).any():
                raise DeepALError(f"the test set {test} must be labeled throughout")
            arrays.update(X_test=tested.X, y_test=tested.labels)
        root.mkdir(parents=True, exist_ok=True)
        try:
            _save_npz(root / POOL_NAME, arrays)
            store = Store(root / DB_NAME, create=True)
            store.set_meta({
                "kind": kind, "source": str(source_path), "classes": loaded.classes,
                "net": net, "strategy": strategy, "seed": seed, "n_epoch": n_epoch,
                "image_size": image_size, "channels": channels,
                "feature_names": loaded.feature_names,
                "test": None if test is None else str(test),
            })
            store.add_items((i, ref, text, preview, None if preview is None else "image/png")
                            for i, (ref, text, preview) in
                            enumerate(zip(loaded.refs, loaded.texts, loaded.previews,
                                          strict=True)))
            known = [(i, int(c), "source") for i, c in enumerate(loaded.labels)
                     if c != UNKNOWN]
            if known:
                store.add_labels(known, source="source")
        except BaseException:
            # A half-made project would block the next init: remove what this one wrote.
            for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", POOL_NAME):
                (root / name).unlink(missing_ok=True)
            raise
        return cls(root)

    # -- the pool --------------------------------------------------------------------------

    def arrays(self) -> dict[str, np.ndarray]:
        """The cached inputs: ``X`` and, with a test set, ``X_test`` and ``y_test``."""
        if self._arrays is None:
            with np.load(self.root / POOL_NAME, allow_pickle=False) as npz:
                self._arrays = {key: npz[key] for key in npz.files}
        return self._arrays

    def data(self) -> Data:
        """The pool as a :class:`Data`: the current labels applied, the test set if any.

        Images are normalised to [-1, 1] and feature rows standardised over the pool, a batch
        at a time."""
        from functools import partial

        from deepal.data.handlers import TensorHandler, image_handler
        from deepal.data.pool import Handler

        arrays = self.arrays()
        X = arrays["X"]
        handler: Handler | None = None
        if X.ndim == 4 and X.dtype == np.uint8:
            handler = image_handler((0.5,) * X.shape[1], (0.5,) * X.shape[1])
        elif X.ndim == 2 and len(X) > 1:
            std = X.std(axis=0)
            std[std == 0] = 1.0  # a constant feature stays 0 instead of dividing by zero
            handler = partial(TensorHandler, mean=X.mean(axis=0).tolist(), std=std.tolist())
        data = Data(X, None, arrays.get("X_test"), arrays.get("y_test"), handler=handler,
                    class_names=self.classes)
        labels = self.store.current_labels()
        if labels:
            known = np.array(sorted(labels), dtype=np.int64)
            data.label(known, [labels[i].class_index for i in known])
        return data

    def net(self, device: str | None = None, n_epoch: int | None = None) -> Any:
        """The project's network (untrained): SmallCNN for images, MLP otherwise."""
        from functools import partial

        from deepal.nets.architectures import MLP
        from deepal.nets.defaults import DEFAULT_OWN_PARAMS, SmallCNN
        from deepal.nets.net import Net, merge_params

        shape = self.arrays()["X"].shape
        name = self.settings["net"]
        if name == "auto":
            name = "SmallCNN" if len(shape) == 4 else "MLP"
        if name == "SmallCNN" and len(shape) != 4:
            raise DeepALError(f"SmallCNN needs images, and this pool's items have shape "
                              f"{tuple(shape[1:])}: use --net MLP")
        architecture = (
            partial(SmallCNN, n_classes=len(self.classes), in_channels=int(shape[1]))
            if name == "SmallCNN" else
            partial(MLP, n_features=int(np.prod(shape[1:])), n_classes=len(self.classes))
        )
        epochs = n_epoch or self.settings.get("n_epoch")
        params = merge_params(DEFAULT_OWN_PARAMS, {} if epochs is None else {"n_epoch": epochs})
        return Net(architecture, params, device=device)

    # -- labels ----------------------------------------------------------------------------

    def class_index(self, label: Any) -> int:
        """The index of a class given by name (or index), or a clear error."""
        if isinstance(label, str) and label in self.classes:
            return self.classes.index(label)
        if isinstance(label, int) and not isinstance(label, bool) and \
                0 <= label < len(self.classes):
            return label
        raise DeepALError(f"unknown class {label!r}: the classes are {', '.join(self.classes)}")

    def item_id(self, item: Any, refs: dict[str, int] | None = None) -> int:
        """The id of an item given by id or by reference (its file path), or a clear error."""
        n = self.n_items
        text = str(item).strip()
        if refs is not None and text in refs:
            return refs[text]
        if text.lstrip("-").isdigit() and 0 <= int(text) < n:
            return int(text)
        raise DeepALError(f"unknown item {item!r}: items are 0..{n - 1} or their file names")

    def label(self, item: Any, label: Any, annotator: str, source: str = "web") -> None:
        """Record one label (one transaction)."""
        self.store.add_labels([(self.item_id(item), self.class_index(label), annotator)], source)

    def import_labels(self, path: str | os.PathLike[str], annotator: str = "import") -> int:
        """Record the labels of a CSV / JSON / Label Studio file in one transaction.

        Every row is checked first (the item exists, the class is one of the project's); one
        bad row refuses the whole file and changes nothing. Returns the number of labels."""
        from deepal.labeling.interchange import read_label_rows

        file = Path(path)
        rows = read_label_rows(file, annotator)
        refs = self.store.item_ids_by_ref()
        checked = []
        for n, (item, label, who) in enumerate(rows, start=1):
            try:
                checked.append((self.item_id(item, refs), self.class_index(label), who))
            except DeepALError as error:
                raise DeepALError(f"{file}, label {n}: {error}; nothing was imported") from None
        if not checked:
            raise DeepALError(f"{file} holds no labels; nothing was imported")
        source = "label-studio" if any(w.startswith("label-studio") for _, _, w in checked) \
            else "import"
        self.store.add_labels(checked, source)
        return len(checked)

    # -- querying --------------------------------------------------------------------------

    def query(self, n: int, device: str | None = None, n_epoch: int | None = None,
              strategy: str | None = None) -> QueryResult:
        """Train on the labels so far, pick the next ``n`` items, record the round."""
        from deepal.seeding import seed_everything
        from deepal.strategies.random_sampling import RandomSampling
        from deepal.strategies.registry import get_strategy

        if n < 1:
            raise DeepALError(f"-n must be at least 1, got {n}")
        started = time.perf_counter()
        name = strategy or self.settings["strategy"]
        strategy_cls = get_strategy(name)
        data = self.data()
        if n > data.n_unlabeled:
            raise PoolExhaustedError(f"-n {n} exceeds the {data.n_unlabeled} unlabeled items")
        rounds = self.store.rounds()
        seed_everything(int(self.settings["seed"]) + len(rounds))
        notes = []
        if rounds:
            open_items = sum(1 for i in rounds[-1].item_ids if data.labeled_idxs[i] == 0)
            if open_items:
                notes.append(f"{open_items} items of round {rounds[-1].id} were not labeled; "
                             "they stay in the pool")
        if data.n_labeled == 0 and strategy_cls.needs_model:
            notes.append(f"no labels yet, so this first batch is random; {name} takes over "
                         "once items are labeled")
            strategy_cls, name = RandomSampling, "RandomSampling"
        net = self.net(device, n_epoch)
        chosen = strategy_cls(data, net)
        accuracy = None
        if data.n_labeled:
            chosen.train()
            self._save_model(net)
            if data.n_test:
                accuracy = data.cal_test_acc(chosen.predict(data.get_test_data()))
        idxs = [int(i) for i in chosen.query(n)]
        round_id = self.store.add_round(name, data.n_labeled, idxs, accuracy,
                                        time.perf_counter() - started)
        return QueryResult(round_id, name, idxs, data.n_labeled, accuracy,
                           "; ".join(notes) or None)

    def _save_model(self, net: Any) -> Path:
        import torch

        path = self.root / MODEL_NAME
        tmp = path.with_name(path.name + ".tmp")
        torch.save({"state_dict": net.clf.state_dict(), "classes": self.classes,
                    "architecture": type(net.clf).__name__,
                    "input_shape": list(self.arrays()["X"].shape[1:])}, tmp)
        os.replace(tmp, path)
        return path

    def train_and_save(self, device: str | None = None, n_epoch: int | None = None) -> Path:
        """Train on every label so far and save the model (``model.pt``)."""
        from deepal.seeding import seed_everything

        data = self.data()
        if data.n_labeled == 0:
            raise DeepALError("nothing is labeled yet, so there is no model to train")
        seed_everything(int(self.settings["seed"]))
        net = self.net(device, n_epoch)
        net.train(data.get_labeled_data()[1])
        return self._save_model(net)

    # -- reporting -------------------------------------------------------------------------

    def batch(self) -> tuple[int | None, list[int]]:
        """The latest round's id and its items, in the order they were picked."""
        latest = self.store.latest_round()
        return (None, []) if latest is None else (latest.id, latest.item_ids)

    def status(self) -> dict[str, Any]:
        """Labels per class, the rounds, the latest held-out accuracy."""
        labels = self.store.current_labels()
        per_class = {name: 0 for name in self.classes}
        for label in labels.values():
            per_class[self.classes[label.class_index]] += 1
        rounds = self.store.rounds()
        _, batch = self.batch()
        return {
            "n_items": self.store.n_items(), "n_labeled": len(labels), "per_class": per_class,
            "rounds": [{"round": r.id, "strategy": r.strategy, "n_labeled": r.n_labeled,
                        "n_queried": len(r.item_ids), "test_accuracy": r.test_accuracy,
                        "created_at": r.created_at} for r in rounds],
            "batch_labeled": sum(1 for i in batch if i in labels), "batch_size": len(batch),
            "test_accuracy": next((r.test_accuracy for r in reversed(rounds)
                                   if r.test_accuracy is not None), None),
            "has_test_set": "X_test" in self.arrays(),
        }

    def export_labels(self, path: Path) -> int:
        """Write every current label as CSV ``item,ref,label,annotator,labeled_at``."""
        import csv

        labels = self.store.current_labels()
        refs = self.store.refs(sorted(labels))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["item", "ref", "label", "annotator", "labeled_at"])
            for item_id in sorted(labels):
                label = labels[item_id]
                writer.writerow([item_id, refs[item_id], self.classes[label.class_index],
                                 label.annotator, label.created_at])
        os.replace(tmp, path)
        return len(labels)


def _class_list(classes: Sequence[str] | str | None) -> list[str] | None:
    if classes is None:
        return None
    names = [c.strip() for c in classes.split(",")] if isinstance(classes, str) else \
        [str(c).strip() for c in classes]
    if any(not c for c in names) or len(set(names)) != len(names):
        raise DeepALError(f"class names must be distinct and not empty, got {names}")
    return names


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)
