"""A labelling project: a folder with a SQLite database (:mod:`deepal.labeling.store`) and the
pool decoded once (``pool.npz``), plus the trained model once there is one.

The source is read at ``init`` (:mod:`deepal.labeling.sources`); later commands never decode
it again and the page never reads outside the project. The settings in the database are data:
they are checked again (:class:`~deepal.config.project.StoredProjectSettings`) whenever a
project is opened, and a class is imported only when the user types its path.
"""

from __future__ import annotations

import os
import sqlite3
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deepal.config.base import validated
from deepal.config.project import QueryOptions, TrainOptions
from deepal.config.sharding import QuerySettings
from deepal.data.pool import Data
from deepal.errors import DeepALError, PoolExhaustedError
from deepal.labeling import labels as item_labels
from deepal.labeling.agreement import agreement, votes
from deepal.labeling.folder import (
    DB_NAME,
    MODEL_NAME,
    POOL_NAME,
    PRETRAINING_FOLDER,
    check_model_strategy,
    create_project,
    stored_settings,
)
from deepal.labeling.model_file import model_record, save_model, sklearn_record
from deepal.labeling.sources import pool_handler
from deepal.labeling.stopping import record_stop_predictions, stop_set, stopping_report
from deepal.labeling.store import Round, Store
from deepal.plugins import is_import_spec
from deepal.resources import DEFAULT_THREADS, torch_threads

__all__ = ["DB_NAME", "MODEL_NAME", "POOL_NAME", "Project", "QueryResult"]


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

    Parameters
    ----------
    root:
        The project's folder.

    Examples
    --------
    ``project = Project.init("pets", "photos", classes=["cat", "dog"])``, then
    ``project.query(50)``.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.store = Store(self.root / DB_NAME)
        try:
            self.settings = stored_settings(self.store)
            self.n_items = self.store.n_items()  # items are fixed at init
        except sqlite3.DatabaseError as error:  # a damaged file, or not SQLite at all
            raise DeepALError(f"{self.store.path} is not a labelling project database deepal "
                              f"can read ({error}): restore it from a copy") from None
        self.classes: list[str] = list(self.settings.classes)
        self._arrays: dict[str, np.ndarray] | None = None

    # -- creation --------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        root: str | os.PathLike[str],
        source: str | os.PathLike[str],
        classes: Sequence[str] | str | None = None,
        kind: str | None = None,
        test: str | os.PathLike[str] | None = None,
        **settings: Any,
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
        kind:
            What the source holds (default: guessed from its path).
        test:
            An optional labeled test set of the same kind (for the held-out accuracy).
        **settings:
            The other fields of :class:`~deepal.config.project.ProjectSettings`: ``net``,
            ``strategy`` (a name of ``deepal list``, or ``package.module:Class``),
            ``image_size``, ``channels``, ``n_epoch``, ``seed``, ``label_column``,
            ``text_column``, ``semi_supervised``, ``warm_start_epochs``, ``features``.

        Returns
        -------
        Project
            The new project, its items listed and the source's labels recorded.

        Examples
        --------
        ``Project.init("reviews", "reviews.txt", classes="pos,neg", n_epoch=10)``
        """
        create_project(Path(root), source, classes, kind, test, settings)
        return cls(root)

    # -- the pool --------------------------------------------------------------------------

    def arrays(self) -> dict[str, np.ndarray]:
        """The cached inputs: ``X`` and, with a test set, ``X_test`` and ``y_test``."""
        if self._arrays is None:
            try:
                with np.load(self.root / POOL_NAME, allow_pickle=False) as npz:
                    self._arrays = {key: npz[key] for key in npz.files}
            except (OSError, ValueError, zipfile.BadZipFile) as error:
                raise DeepALError(f"cannot read the project's pool {self.root / POOL_NAME} "
                                  f"({error}): create the project again") from None
        return self._arrays

    def data(self) -> Data:
        """The pool as a :class:`Data`: the current labels applied, the test set if any.

        Images are normalised to [-1, 1] and feature rows standardised over the pool, a batch
        at a time."""
        arrays = self.arrays()
        data = Data(arrays["X"], None, arrays.get("X_test"), arrays.get("y_test"),
                    handler=pool_handler(arrays["X"]), class_names=self.classes)
        labels = self.store.current_labels()
        if labels:
            known = np.array(sorted(labels), dtype=np.int64)
            data.label(known, [labels[i].class_index for i in known])
        return data

    def net(self, device: str | None = None, n_epoch: int | None = None,
            data: Data | None = None) -> Any:
        """The project's network (untrained): :func:`~deepal.nets.defaults.default_net` of
        its pool, with the project's network name, epochs and semi-supervised training (on
        the pool's unlabeled items); or, for a project with a scikit-learn ``model``, that
        classifier in a :class:`~deepal.SklearnNet`."""
        from deepal.nets.defaults import default_net
        from deepal.nets.semi_supervised import UnlabeledPool

        if self.settings.model is not None:
            return self._sklearn_net()
        epochs = n_epoch or self.settings.n_epoch
        params: dict[str, Any] = {} if epochs is None else {"n_epoch": epochs}
        semi = self.settings.semi_supervised
        if semi is not None:
            params["semi_supervised"] = semi.model_dump()
        if self.settings.warm_start_epochs is not None:  # from scratch until given a model
            params.update(warm_start=True, warm_start_epochs=self.settings.warm_start_epochs)
        pool = self.data() if data is None else data
        net = default_net(pool, device=device, params=params or None,
                          architecture=self.settings.net)
        net.unlabeled_inputs = UnlabeledPool(pool)  # the unlabeled items, inputs only
        return net

    def _sklearn_net(self) -> Any:
        from deepal.nets.sklearn_models import sklearn_model
        from deepal.nets.sklearn_net import SklearnNet

        assert self.settings.model is not None
        net = SklearnNet(sklearn_model(self.settings.model, self.settings.seed))
        net.n_classes = len(self.classes)  # a class no label has yet still gets its column
        return net

    # -- labels ----------------------------------------------------------------------------

    def class_index(self, label: Any) -> int:
        """The index of a class given by name (or index), or a clear error."""
        return item_labels.class_index(self.classes, label)

    def item_id(self, item: Any, refs: dict[str, int] | None = None) -> int:
        """The id of an item given by id or by reference (its file path), or a clear error."""
        return item_labels.item_id(self.n_items, item, refs)

    def label(self, item: Any, label: Any, annotator: str, source: str = "web") -> None:
        """Record one label (one transaction); the item, class and annotator's name are
        checked first."""
        who = item_labels.annotator_name(annotator, "annotator")
        self.store.add_labels([(self.item_id(item), self.class_index(label), who)], source)

    def import_labels(self, path: str | os.PathLike[str], annotator: str = "import") -> int:
        """Record the labels of a CSV / JSON / Label Studio file in one transaction: one bad
        row refuses the whole file and changes nothing. Returns the number of labels."""
        return item_labels.import_label_file(self.store, self.classes, path, annotator)

    def export_labels(self, path: Path) -> int:
        """Write every current label as CSV ``item,ref,label,annotator,labeled_at``."""
        return item_labels.export_label_file(self.store, self.classes, path)

    # -- querying --------------------------------------------------------------------------

    def query(self, n: int, device: str | None = None, n_epoch: int | None = None,
              strategy: str | None = None, threads: int = DEFAULT_THREADS,
              exclude: Sequence[int] = (), training_hooks: Sequence[Any] = (),
              sharding: QuerySettings | Mapping[str, Any] | None = None) -> QueryResult:
        """Train on the labels so far, pick the next ``n`` items, record the round.

        ``strategy`` replaces the project's for this round; a project whose strategy is a
        user's ``package.module:Class`` needs it passed here again (it is never imported from
        the database). ``threads`` is torch's CPU thread count, recorded with the round.

        ``exclude`` names unlabeled items not to pick (the items an annotator is labelling
        while this query runs): the strategy picks ``n`` more than that and they are dropped,
        so the round holds the strategy's first ``n`` other picks. ``training_hooks`` are
        :class:`~deepal.nets.hooks.TrainingHook` objects added to the network (to follow
        the training's progress). ``sharding`` (:class:`~deepal.config.sharding.QuerySettings`
        or its keys) computes the query over a pool split into shards, for the same picks;
        Ray, and the cluster it names, are checked before anything is trained or written."""
        from deepal.seeding import seed_everything
        from deepal.sharded.configured import check_query_settings, query_function

        started = time.perf_counter()
        options = validated(QueryOptions, {"n": n, "n_epoch": n_epoch, "strategy": strategy,
                                           "threads": threads,
                                           "sharding": {} if sharding is None else sharding})
        check_query_settings(options.sharding)
        name, strategy_cls = self._round_strategy(options.strategy)
        data = self.data()
        skip = {int(i) for i in exclude if not data.labeled_idxs[int(i)]}
        if options.n + len(skip) > data.n_unlabeled:
            raise PoolExhaustedError(f"-n {n} exceeds the {data.n_unlabeled - len(skip)} "
                                     "unlabeled items" + (" not being labelled" if skip else ""))
        rounds = self.store.rounds()
        seed_everything(self.settings.seed + len(rounds))
        notes = _open_items_note(rounds, data)
        with torch_threads(options.threads):
            net = self.net(device, options.n_epoch, data)
            self._continue_last_model(net, notes)
            name, chosen = self._built_strategy(name, strategy_cls, data, net, notes)
            # The shards start (and a cluster is reached) before training: a failure there
            # costs no training and leaves no model written. Their copies of the network
            # carry no hooks; they load its weights at the query.
            with query_function(options.sharding, chosen) as query:
                chosen.net.training_hooks.extend(training_hooks)
                accuracy = self._train(chosen, data) if data.n_labeled else None
                stop_votes = (self._stop_set_predictions(chosen, data) if data.n_labeled
                              else None)
                picked = [int(i) for i in query(options.n + len(skip))]
            idxs = [i for i in picked if i not in skip][:options.n]
        round_id = self.store.add_round(name, data.n_labeled, idxs, accuracy,
                                        time.perf_counter() - started, options.threads)
        if stop_votes is not None:
            record_stop_predictions(self.root, round_id, stop_votes)
        return QueryResult(round_id, name, idxs, data.n_labeled, accuracy,
                           "; ".join(notes) or None)

    def _continue_last_model(self, net: Any, notes: list[str]) -> None:
        """With ``warm_start_epochs``, give ``net`` the weights of the last saved model, so
        that this query's training continues from them; without a model yet, or with one
        that does not fit the network, it trains from scratch (said in ``notes``)."""
        from deepal.labeling.model_file import read_model

        path = self.root / MODEL_NAME
        if self.settings.warm_start_epochs is None or not path.is_file():
            return
        try:
            record = read_model(path, self.classes)
            net.load_state_dict({"clf": record["state_dict"], "epochs_trained": 0})
        except DeepALError as error:  # a StateError too: weights of another network
            notes.append(f"the last model could not be continued ({error}), so this round "
                         "trains from scratch")

    def _built_strategy(self, name: str, strategy_cls: Any, data: Data, net: Any,
                        notes: list[str]) -> tuple[str, Any]:
        """This round's strategy over ``data`` and ``net``, with the items' features where
        it takes them and the project asks for them; random while no label exists and the
        strategy needs a model (said in ``notes``)."""
        from deepal.strategies.random_sampling import RandomSampling

        extra = self._features(strategy_cls, data, net)
        if data.n_labeled == 0 and strategy_cls.needs_model and not extra:
            notes.append(f"no labels yet, so this first batch is random; {name} takes over "
                         "once items are labeled")
            return "RandomSampling", RandomSampling(data, net)
        return name, strategy_cls(data, net, **extra)

    def _features(self, strategy_cls: Any, data: Data, net: Any) -> dict[str, Any]:
        """``{"features": ...}``, the items' self-supervised features, for a strategy that
        takes them in a project that asks for them (pretrained on the items' inputs with the
        project's network, once per pool, kept in the project folder); else ``{}``."""
        from deepal.config.pretraining import PretrainingSettings
        from deepal.pretraining.pretrain import pretrain_module
        from deepal.strategies.features import takes_features

        if self.settings.features is None or not takes_features(strategy_cls):
            return {}
        pretrained = pretrain_module(
            data, net.net, f"{self.settings.net}-{self.settings.kind}", PretrainingSettings(),
            dataset="items", cache_dir=self.root / PRETRAINING_FOLDER, device=net.device)
        return {"features": pretrained.features}

    def _round_strategy(self, typed: str | None) -> tuple[str, Any]:
        """The name and class of this round's strategy, refused if the project's model cannot
        serve it (a scikit-learn model and a strategy that needs a network)."""
        from deepal.strategies.registry import get_strategy

        name = self._strategy_name(typed)
        strategy_cls = get_strategy(name)
        check_model_strategy(self.settings.model,
                             name if is_import_spec(name) else strategy_cls.__name__)
        return name, strategy_cls

    def _strategy_name(self, typed: str | None) -> str:
        """The strategy of this round: the one typed, else the project's own, which must be
        one of deepal's (the database never names a class to import)."""
        if typed is not None:
            return typed
        stored = self.settings.strategy
        if is_import_spec(stored):
            raise DeepALError(
                f"this project's strategy is {stored!r}, a class outside deepal, and deepal "
                "imports classes only from the command line, never from a project's "
                f"database: if it is your own, pass it again with --strategy {stored} "
                f"(strategy={stored!r} in Python)")
        return stored

    def _train(self, chosen: Any, data: Data) -> float | None:
        """Train ``chosen``'s network, save it, and return its held-out accuracy if any."""
        chosen.train()
        self._save_model(chosen.net)
        if not data.n_test:
            return None
        return float(data.cal_test_acc(chosen.predict(data.get_test_data())))

    def _stop_set_predictions(self, chosen: Any, data: Data) -> np.ndarray:
        """The trained model's classes for the stop set (:mod:`deepal.labeling.stopping`)."""
        items = stop_set(self.n_items, self.settings.seed)
        return chosen.predict(data.handler(self.arrays()["X"][items], None)).numpy()

    def _save_model(self, net: Any) -> Path:
        X = self.arrays()["X"]
        if self.settings.model is not None:
            labels = self.store.current_labels()
            items = sorted(labels)
            record = sklearn_record(self.settings.model, self.settings.seed, self.classes, X,
                                    items, [labels[i].class_index for i in items])
        else:
            record = model_record(net, self.classes, X, pool_handler(X))
        return save_model(self.root / MODEL_NAME, record)

    def train_and_save(self, device: str | None = None, n_epoch: int | None = None,
                       threads: int = DEFAULT_THREADS) -> Path:
        """Train on every label so far with ``threads`` CPU threads and save the model
        (``model.pt``)."""
        from deepal.seeding import seed_everything

        data = self.data()
        if data.n_labeled == 0:
            raise DeepALError("nothing is labeled yet, so there is no model to train")
        validated(TrainOptions, {"n_epoch": n_epoch, "threads": threads})
        seed_everything(self.settings.seed)
        with torch_threads(threads):
            net = self.net(device, n_epoch, data)
            net.train(data.get_labeled_data()[1])
        return self._save_model(net)

    # -- predictions -----------------------------------------------------------------------

    def predict(self, files: Sequence[str | os.PathLike[str]] | None = None, top_k: int = 3,
                review_below: float = 0.5, retrain: bool = False, device: str | None = None,
                threads: int = DEFAULT_THREADS) -> list[dict[str, Any]]:
        """The trained model's predictions for the unlabeled items, or for ``files``.

        Parameters
        ----------
        files:
            New files of the project's kind (image files or folders, tables, text files,
            arrays); ``None``: the project's items that have no label.
        top_k:
            Classes listed per item, most probable first.
        review_below:
            Items whose predicted class has a lower probability get ``needs_review``.
        retrain:
            Train on every label first (as ``deepal export`` does) instead of using the
            saved ``model.pt``.
        device, threads:
            Where to predict (and train), and torch's CPU threads.

        Returns
        -------
        list of dict
            Per item: ``item`` (the project's id, ``None`` for a new file), ``ref``,
            ``label``, ``probability``, ``top`` and ``needs_review``.

        Examples
        --------
        ``[row["label"] for row in project.predict(files=["new_photos/"])]``
        """
        from deepal.labeling.model_file import read_model
        from deepal.labeling.predict import (
            PredictOptions,
            new_inputs,
            predict_probabilities,
            prediction_rows,
        )

        options = validated(PredictOptions, {"top_k": top_k, "review_below": review_below,
                                             "threads": threads},
                            names={"top_k": "--top-k", "review_below": "--review-below"})
        # A missing model is named before any file is decoded; a retrain comes after the
        # files are read, so a bad file stops it before model.pt is rewritten.
        record = None if retrain else read_model(self.root / MODEL_NAME, self.classes)
        if files is not None:
            X, refs = new_inputs(self, files)
            ids: list[int | None] = [None] * len(refs)
        else:
            labeled = self.store.current_labels()
            ids = [i for i in range(self.n_items) if i not in labeled]
            X = self.arrays()["X"][np.asarray(ids, dtype=np.int64)]
            named = self.store.refs([i for i in ids if i is not None])
            refs = [named[i] for i in ids if i is not None]
        if record is None:
            self.train_and_save(device=device, threads=options.threads)
            record = read_model(self.root / MODEL_NAME, self.classes)
        if not len(X):
            return []
        with torch_threads(options.threads):
            probs = predict_probabilities(self, X, record, device)
        return prediction_rows(probs, self.classes, refs, ids, options.top_k,
                               options.review_below)

    def review(self, folds: int = 5, device: str | None = None,
               threads: int = DEFAULT_THREADS) -> list[dict[str, Any]]:
        """The labeled items, most doubtful label first (:mod:`deepal.labeling.doubt`):
        each predicted by a model trained without it, ``flagged`` where the model confidently
        prefers another class.

        Parameters
        ----------
        folds:
            Models trained (each on all labels but one fold).
        device, threads:
            Where to train, and torch's CPU threads.

        Returns
        -------
        list of dict
            ``item``, ``ref``, ``label``, ``annotator``, ``label_probability``,
            ``suggested``, ``suggested_probability``, ``flagged``.

        Examples
        --------
        ``[row["ref"] for row in project.review() if row["flagged"]]``
        """
        from deepal.labeling.doubt import review_rows

        validated(TrainOptions, {"threads": threads})
        with torch_threads(threads):
            return review_rows(self, folds, device)

    # -- reporting -------------------------------------------------------------------------

    def batch(self) -> tuple[int | None, list[int]]:
        """The latest round's id and its items, in the order they were picked."""
        latest = self.store.latest_round()
        return (None, []) if latest is None else (latest.id, latest.item_ids)

    def status(self) -> dict[str, Any]:
        """Labels per class, the model (a scikit-learn model's name, or the network's), the
        rounds, the latest held-out accuracy."""
        labels = self.store.current_labels()
        per_class = {name: 0 for name in self.classes}
        for label in labels.values():
            per_class[self.classes[label.class_index]] += 1
        rounds = self.store.rounds()
        _, batch = self.batch()
        refs = self.store.refs(batch)
        return {
            "n_items": self.store.n_items(), "n_labeled": len(labels), "per_class": per_class,
            "model": self.settings.model or self.settings.net,
            "rounds": [{"round": r.id, "strategy": r.strategy, "n_labeled": r.n_labeled,
                        "n_queried": len(r.item_ids), "test_accuracy": r.test_accuracy,
                        "threads": r.threads, "created_at": r.created_at} for r in rounds],
            "batch_labeled": sum(1 for i in batch if i in labels), "batch_size": len(batch),
            "test_accuracy": next((r.test_accuracy for r in reversed(rounds)
                                   if r.test_accuracy is not None), None),
            "has_test_set": "X_test" in self.arrays(),
            "batch": [{"item": i, "ref": refs[i], "label": self.classes[labels[i].class_index]
                       if i in labels else None} for i in batch],
            "stopping": stopping_report(self.root, len(self.classes), rounds),
            "agreement": agreement(votes(self.store.label_history()), self.classes),
        }


def _open_items_note(rounds: list[Round], data: Data) -> list[str]:
    """A note on the latest round's items that are still unlabeled."""
    if not rounds:
        return []
    open_items = sum(1 for i in rounds[-1].item_ids if data.labeled_idxs[i] == 0)
    if not open_items:
        return []
    return [f"{open_items} items of round {rounds[-1].id} were not labeled; they stay in the "
            "pool"]
