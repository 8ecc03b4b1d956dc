"""The scikit-learn classifiers a labelling project can name (``deepal project init
--model``): a name, never an object, is what the project's database keeps, and each name
builds its estimator here with the project's seed, so that training again on the same labels
gives the same model.

Examples
--------
>>> type(sklearn_model("random_forest", seed=1)).__name__
'RandomForestClassifier'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deepal.errors import DeepALError

__all__ = ["SKLEARN_MODELS", "sklearn_model"]


def _logistic_regression(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000, random_state=seed)


def _random_forest(seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=200, random_state=seed)


def _extra_trees(seed: int) -> Any:
    from sklearn.ensemble import ExtraTreesClassifier

    return ExtraTreesClassifier(n_estimators=200, random_state=seed)


def _hist_gradient_boosting(seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(random_state=seed)


def _naive_bayes(seed: int) -> Any:
    from sklearn.naive_bayes import GaussianNB

    return GaussianNB()


#: Each model name's builder, taking the seed (the names are those of
#: :data:`deepal.config.project.MODELS`).
SKLEARN_MODELS: dict[str, Callable[[int], Any]] = {
    "logistic_regression": _logistic_regression,
    "random_forest": _random_forest,
    "extra_trees": _extra_trees,
    "hist_gradient_boosting": _hist_gradient_boosting,
    "naive_bayes": _naive_bayes,
}


def sklearn_model(name: str, seed: int) -> Any:
    """A new, unfitted scikit-learn classifier ``name`` whose randomness is fixed by ``seed``.

    Parameters
    ----------
    name:
        One of :data:`SKLEARN_MODELS`.
    seed:
        The estimator's ``random_state`` (where it has one).

    Returns
    -------
    object
        The estimator, with ``fit`` and ``predict_proba``.

    Raises
    ------
    DeepALError
        If ``name`` is not one of them.
    """
    if name not in SKLEARN_MODELS:
        raise DeepALError(f"unknown scikit-learn model {name!r}: choose one of "
                          f"{', '.join(SKLEARN_MODELS)}")
    return SKLEARN_MODELS[name](seed)
