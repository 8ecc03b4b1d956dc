"""A labelling project's data source read once, at ``deepal project init``: the pool's inputs,
the labels the source already holds, and what the labelling page shows of each item (a
preview image, the text, or nothing for a feature row).

Each kind of source is read by the matching reader of :mod:`deepal.data.sources`; this module
only adds what a project keeps beside the inputs.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepal.config.project import KINDS, ProjectSettings
from deepal.data.pool import Handler
from deepal.errors import DeepALError

#: Longest side of the preview images the labelling page shows.
PREVIEW_SIZE = 256

_SUFFIX_KINDS = {".csv": "table", ".parquet": "table", ".npy": "numpy", ".npz": "numpy",
                 ".txt": "texts"}


def guess_kind(source: Path) -> str:
    """The kind of a data source from its path: a folder holds images, a file its suffix.

    Examples
    --------
    >>> guess_kind(Path("reviews.txt"))
    'texts'
    """
    if source.is_dir():
        return "images"
    kind = _SUFFIX_KINDS.get(source.suffix.lower())
    if kind is None:
        raise DeepALError(f"cannot tell what {source} holds: pass --kind ({', '.join(KINDS)})")
    return kind


@dataclass
class Source:
    """A source as a project keeps it.

    ``labels`` holds a class index per item (``-1``: not labeled); ``refs`` name the items
    (a file path relative to the source folder, ``row N``, ``line N``); ``texts`` and
    ``previews`` are what the labelling page shows, ``None`` where there is nothing."""

    X: np.ndarray
    labels: np.ndarray
    refs: list[str]
    classes: list[str]
    texts: list[str | None] = field(default_factory=list)
    previews: list[bytes | None] = field(default_factory=list)
    feature_names: list[str] | None = None

    def __post_init__(self) -> None:
        n = len(self.refs)
        self.texts = self.texts or [None] * n
        self.previews = self.previews or [None] * n

    def items(self) -> Iterator[tuple[int, str, str | None, bytes | None, str | None]]:
        """Rows ``(id, ref, text, preview, preview_type)`` of the project's item table."""
        for i, (ref, text, preview) in enumerate(
                zip(self.refs, self.texts, self.previews, strict=True)):
            yield i, ref, text, preview, None if preview is None else "image/png"

    def known_labels(self) -> list[tuple[int, int, str]]:
        """``(item, class, "source")`` for every item the source labels."""
        return [(i, int(c), "source") for i, c in enumerate(self.labels) if c >= 0]


def pool_handler(X: np.ndarray) -> Handler | None:
    """How a project's cached inputs become tensors: ``uint8`` images normalised to
    [-1, 1], feature rows standardised over the pool, a batch at a time; anything else as
    it is (``None``: the default handler)."""
    from deepal.data.handlers import image_handler
    from deepal.data.sources.tables import standardizer

    if X.ndim == 4 and X.dtype == np.uint8:
        return image_handler((0.5,) * X.shape[1], (0.5,) * X.shape[1])
    if X.ndim == 2 and len(X) > 1:
        return standardizer(X)
    return None


def read_source(settings: ProjectSettings, path: Path, classes: list[str] | None,
                previews: bool) -> Source:
    """Read the source at ``path`` as ``settings.kind`` says, once.

    Parameters
    ----------
    settings:
        The project's settings (kind, image size and channels, table columns).
    path:
        The pool's source, or its test set's.
    classes:
        The class names, or ``None`` where the source names them.
    previews:
        Keep a preview image of each item for the labelling page.

    Returns
    -------
    Source
        The inputs, labels, item names and page contents.
    """
    return _READERS[settings.kind](settings, path, classes, previews)


def _class_names(classes: list[str] | None, n_classes: int) -> list[str]:
    return classes or [str(i) for i in range(n_classes)]


def _images(settings: ProjectSettings, path: Path, classes: list[str] | None,
            previews: bool) -> Source:
    from deepal.data.sources.images import decode_images, list_image_folder
    from deepal.data.sources.labels import encode_labels

    paths, names, found = list_image_folder(path)
    classes = classes or found
    if classes is None:
        raise DeepALError(f"{path} holds unlabeled images: name the classes with "
                          "--classes cat,dog,...")
    labels, classes = encode_labels(names, len(paths), classes)
    shown: list[bytes | None] = [None] * len(paths)

    def keep_preview(i: int, image: Any) -> None:
        if previews:
            shown[i] = preview_png(image)

    pixels = decode_images(paths, settings.image_size, settings.channels, keep_preview)
    refs = [p.relative_to(path).as_posix() for p in paths]
    return Source(pixels.numpy(), labels, refs, list(classes or []), previews=shown)


def _table(settings: ProjectSettings, path: Path, classes: list[str] | None,
           previews: bool) -> Source:
    from deepal.data.sources.tables import from_table

    data = from_table(path, label_column=settings.label_column, class_names=classes,
                      standardize=False)
    features = np.asarray(data.X_train, dtype=np.float32)
    refs = [f"row {i + 1}" for i in range(len(features))]
    return Source(features, data.Y_train, refs, _class_names(data.class_names, data.n_classes),
                  feature_names=data.feature_names)  # type: ignore[attr-defined]


def _numpy(settings: ProjectSettings, path: Path, classes: list[str] | None,
           previews: bool) -> Source:
    from deepal.data.sources.arrays import from_numpy_file

    data = from_numpy_file(path, class_names=classes)
    arr = np.asarray(data.X_train)
    shown = [preview_png_array(x) for x in arr] if previews and arr.ndim == 4 else []
    return Source(arr, data.Y_train, [f"row {i}" for i in range(len(arr))],
                  _class_names(data.class_names, data.n_classes), previews=shown)


def _texts(settings: ProjectSettings, path: Path, classes: list[str] | None,
           previews: bool) -> Source:
    from deepal.data.sources.labels import encode_labels
    from deepal.data.sources.texts import embed_texts

    texts, raw = _read_texts(path, settings.text_column, settings.label_column)
    labels, classes = encode_labels(raw, len(texts), classes)
    if classes is None:
        raise DeepALError("name the classes with --classes a,b,...")
    return Source(embed_texts(texts), labels, [f"line {i + 1}" for i in range(len(texts))],
                  list(classes), texts=list(texts))


_READERS: dict[str, Callable[[ProjectSettings, Path, list[str] | None, bool], Source]] = {
    "images": _images, "table": _table, "numpy": _numpy, "texts": _texts,
}


def _read_texts(path: Path, text_column: str | None,
                label_column: str | None) -> tuple[list[str], list[Any] | None]:
    """The texts of a table's text column (and its labels), or of a file's lines."""
    if path.suffix.lower() in (".csv", ".parquet"):
        from deepal.data.sources.tables import read_table

        columns = read_table(path)
        column = text_column or "text"
        if column not in columns:
            raise DeepALError(f"{path} has no text column {column!r}: pass --text-column "
                              f"(columns: {list(columns)})")
        if label_column is not None and label_column not in columns:
            raise DeepALError(f"{path} has no label column {label_column!r} (columns: "
                              f"{list(columns)})")
        labels = columns[label_column] if label_column is not None else None
        return [str(t) for t in columns[column]], labels
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DeepALError(f"cannot read texts from {path}: {error}") from error
    texts = [line for line in lines if line.strip()]
    if not texts:
        raise DeepALError(f"{path} holds no text (one text per line)")
    return texts, None


def preview_png(image: Any) -> bytes:
    """A PIL image shrunk to at most :data:`PREVIEW_SIZE` pixels a side, as PNG."""
    small = image.copy()
    small.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
    buffer = io.BytesIO()
    small.save(buffer, format="PNG")
    return buffer.getvalue()


def preview_png_array(x: np.ndarray) -> bytes | None:
    """A ``(C, H, W)`` ``uint8`` image as PNG (None where Pillow is absent or ``x`` is not
    such an image)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    if x.dtype != np.uint8 or x.shape[0] not in (1, 3):
        return None
    arr = x[0] if x.shape[0] == 1 else x.transpose(1, 2, 0)
    return preview_png(Image.fromarray(np.ascontiguousarray(arr)))
