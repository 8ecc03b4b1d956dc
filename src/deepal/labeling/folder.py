"""A labelling project's folder: the files in it, its creation from a data source (all of it
or nothing), and its settings read back from the database and checked."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from deepal.config.base import ConfigError, validated
from deepal.config.project import ProjectSettings, StoredProjectSettings
from deepal.data.pool import UNKNOWN
from deepal.errors import DeepALError, UnknownNameError
from deepal.labeling.sources import Source, guess_kind, read_source
from deepal.labeling.store import Store
from deepal.nets.sklearn_net import PROBABILITY_STRATEGIES
from deepal.plugins import canonical_name, is_import_spec
from deepal.strategies.features import feature_strategies, takes_features
from deepal.strategies.registry import STRATEGIES, get_strategy

S = TypeVar("S", bound=ProjectSettings)

#: The database file inside a project folder.
DB_NAME = "deepal.sqlite"
#: The cached inputs of the pool (and test set).
POOL_NAME = "pool.npz"
#: The model trained at the last query or export.
MODEL_NAME = "model.pt"
#: The folder of the items' self-supervised features and weights (``--features``).
PRETRAINING_FOLDER = "pretraining"


def create_project(root: Path, source: str | os.PathLike[str],
                   classes: Sequence[str] | str | None, kind: str | None,
                   test: str | os.PathLike[str] | None, settings: Mapping[str, Any]) -> None:
    """Check the settings, read the source (and test set) once, then write the project's
    pool and database in ``root``; on any error, nothing stays behind.

    ``settings`` are the other fields of :class:`~deepal.config.project.ProjectSettings`."""
    root = Path(root)
    if (root / DB_NAME).exists():
        raise DeepALError(f"{root} already holds a labelling project ({DB_NAME})")
    source_path = _existing(source, "data source")
    test_path = None if test is None else _existing(test, "test set")
    checked = known_strategy(validated(ProjectSettings, {
        **settings, "kind": kind or guess_kind(source_path), "source": str(source_path),
        "test": None if test_path is None else str(test_path),
        "classes": _class_list(classes)}))
    if is_import_spec(checked.strategy):
        get_strategy(checked.strategy)  # typed by the user now: a typo fails now
    named = None if checked.classes is None else list(checked.classes)
    loaded = read_source(checked, source_path, named, previews=True)
    if checked.net == "SmallCNN" and loaded.X.ndim != 4:
        raise ConfigError(f"net: SmallCNN needs images, and the items of {source_path} have "
                          f"shape {loaded.X.shape[1:]}: choose --net MLP (or auto)")
    final = validated(StoredProjectSettings, {
        **checked.model_dump(), "classes": loaded.classes,
        "feature_names": loaded.feature_names})
    arrays = {"X": loaded.X}
    if test_path is not None:
        arrays.update(_test_arrays(final, test_path))
    _write_project(root, final, loaded, arrays)


def stored_settings(store: Store) -> StoredProjectSettings:
    """The settings in a project's database, checked: a damaged or hand-edited value is
    refused with its key, and nothing it names is imported."""
    meta = store.meta()
    meta.pop("schema_version", None)  # the store's own
    try:
        return known_strategy(validated(StoredProjectSettings, meta))
    except ConfigError as error:
        raise ConfigError(f"the labelling project database {store.path} holds a setting "
                          f"deepal refuses: {error}. Was it edited by hand? Create the "
                          "project again with `deepal project init`") from None


def known_strategy(settings: S) -> S:
    """``settings`` with its strategy checked against deepal's registry and spelled as the
    registry does; a ``package.module:Class`` is kept as typed and not imported here."""
    if is_import_spec(settings.strategy):
        return settings
    try:
        name = canonical_name(settings.strategy, list(STRATEGIES), "strategy")
    except UnknownNameError as error:
        raise ConfigError(f"strategy: {error}") from None
    check_model_strategy(settings.model, name)
    check_features_strategy(settings.features, name)
    return settings.model_copy(update={"strategy": name})


def check_features_strategy(features: str | None, strategy: str) -> None:
    """Refuse self-supervised features for a project whose strategy of deepal's takes none
    (they would do nothing); a user's own class is left to say so itself.

    Raises
    ------
    ConfigError
        Naming the strategies that take features.
    """
    if features is None or is_import_spec(strategy) or takes_features(get_strategy(strategy)):
        return
    raise ConfigError(f"features: {strategy} takes no features, so --features {features} "
                      f"would do nothing: choose one of {', '.join(feature_strategies())} "
                      "with --strategy")


def check_model_strategy(model: str | None, strategy: str) -> None:
    """Refuse a strategy of deepal's that needs a network (embeddings, gradients, dropout)
    for a project whose model is a scikit-learn classifier; a user's own class is left to
    say so itself.

    Raises
    ------
    ConfigError
        Naming the strategies that need only class probabilities.
    """
    if model is None or is_import_spec(strategy) or strategy in PROBABILITY_STRATEGIES:
        return
    raise ConfigError(f"strategy: {strategy} needs a network's embeddings, gradients or "
                      f"dropout, which the scikit-learn model {model} does not have: choose "
                      f"one of {', '.join(PROBABILITY_STRATEGIES)}")


def _existing(path: str | os.PathLike[str], what: str) -> Path:
    resolved = Path(path).expanduser().resolve()
    if not resolved.exists():
        raise DeepALError(f"{what} {str(path)!r} does not exist")
    return resolved


def _class_list(classes: Sequence[str] | str | None) -> list[str] | None:
    """Class names given as a list or as ``"a,b,c"``, stripped."""
    if classes is None:
        return None
    names = classes.split(",") if isinstance(classes, str) else list(classes)
    others = [c for c in names if not isinstance(c, str)]
    if others:
        raise ConfigError(f"classes: class names must be strings, got {others[0]!r}")
    return [c.strip() for c in names]


def _test_arrays(settings: StoredProjectSettings, path: Path) -> dict[str, np.ndarray]:
    tested = read_source(settings, path, list(settings.classes), previews=False)
    if (tested.labels == UNKNOWN).any():
        raise DeepALError(f"the test set {path} must be labeled throughout")
    return {"X_test": tested.X, "y_test": tested.labels}


def _write_project(root: Path, settings: StoredProjectSettings, loaded: Source,
                   arrays: dict[str, np.ndarray]) -> None:
    """Write the pool, the database, its items and the source's labels, or nothing."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        _save_npz(root / POOL_NAME, arrays)
        store = Store(root / DB_NAME, create=True)
        store.set_meta(settings.model_dump())
        store.add_items(loaded.items())
        known = loaded.known_labels()
        if known:
            store.add_labels(known, source="source")
    except BaseException:
        # A half-made project would block the next init: remove what this one wrote.
        for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", POOL_NAME):
            (root / name).unlink(missing_ok=True)
        raise


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)
