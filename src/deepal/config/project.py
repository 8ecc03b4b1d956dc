"""The settings of a labelling project: what ``deepal project init`` is given, what the
project's database keeps, and what a query is asked.

The same model checks a new project before anything is written and an existing project's
database when it is opened: the database is data, and a damaged or hand-edited setting is
refused with the key it concerns instead of failing somewhere later. Like every module of
:mod:`deepal.config` it imports no other part of deepal: whether a strategy's name is one of
the registry's is checked where the registry is (:mod:`deepal.labeling.folder`).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, model_validator

from deepal.config.base import Settings
from deepal.config.fields import Name, Names, PositiveInt, Seed
from deepal.config.sharding import QuerySettings
from deepal.config.training import SemiSupervised

Kind = Literal["images", "table", "numpy", "texts"]
NetName = Literal["auto", "SmallCNN", "MLP"]
ModelName = Literal["logistic_regression", "random_forest", "extra_trees",
                    "hist_gradient_boosting", "naive_bayes"]
#: Kinds of data source a project reads.
KINDS: tuple[str, ...] = get_args(Kind)
#: Networks a project can name ("auto": a small CNN for images, an MLP otherwise).
NETS: tuple[str, ...] = get_args(NetName)
#: scikit-learn classifiers a project of feature rows can name in place of a network (built
#: by :mod:`deepal.nets.sklearn_models`).
MODELS: tuple[str, ...] = get_args(ModelName)
#: Kinds of data whose items are feature rows, which a scikit-learn model can take.
FEATURE_KINDS = ("table", "numpy")

# A strategy of the registry (an identifier), or ``package.module:Class``: dotted identifiers
# on both sides of one colon. Whether a name is in the registry is the registry's to say.
_STRATEGY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?$")


def _strategy_form(name: str) -> str:
    if not _STRATEGY.match(name):
        raise ValueError("expected a strategy name of `deepal list` or package.module:ClassName")
    return name


def _two_or_more(names: tuple[str, ...]) -> tuple[str, ...]:
    if len(names) < 2:
        raise ValueError("a project needs at least two classes: pass --classes a,b,...")
    unprintable = [name for name in names if not name.isprintable()]
    if unprintable:
        raise ValueError(f"class names are shown and written as text: {unprintable[0]!r} "
                         "holds a control character")
    return names


def _image_size(pixels: int) -> int:
    if not 4 <= pixels <= 4096:
        raise ValueError("must be between 4 and 4096 pixels")
    return pixels


#: A strategy's name, or the import path of a user's strategy class.
StrategyName = Annotated[str, AfterValidator(_strategy_form)]
#: A project's class names: distinct, not blank, at least two.
ClassNames = Annotated[Names, AfterValidator(_two_or_more)]


class ProjectSettings(Settings):
    """The settings of a labelling project, as ``Project.init`` takes them.

    Parameters
    ----------
    kind:
        What the source holds: ``images``, ``table``, ``numpy`` or ``texts``.
    source, test:
        The data source and the optional labeled test set (absolute paths).
    classes:
        The class names (distinct, at least two); ``None`` while the source is still to
        name them.
    net:
        ``auto``, ``SmallCNN`` or ``MLP``.
    model:
        A scikit-learn classifier of :data:`MODELS` in place of the network (tables and
        arrays only; ``net`` stays ``auto``); ``None``: the network.
    strategy:
        A strategy of ``deepal list``, or a ``package.module:Class`` the user typed.
    seed:
        The seed of the first round (round ``r`` uses ``seed + r - 1``).
    n_epoch:
        Training epochs per query; ``None``: the default network's.
    image_size, channels:
        Images are decoded once at ``image_size`` pixels a side, gray (1) or colour (3).
    label_column, text_column:
        For tables: the column of labels and the column of texts.
    feature_names:
        The names of a table's feature columns (set from the table).
    semi_supervised:
        Train on the unlabeled items too (:class:`~deepal.config.training.SemiSupervised`:
        FixMatch for images, pseudo-labels otherwise); ``None``: on the labels alone.
    warm_start_epochs:
        Each query continues training the last saved model (``model.pt``) for this many
        epochs, with the labels it now has, instead of retraining from scratch for
        ``n_epoch`` (which the first training, with no model yet, still makes); ``None``:
        retrain every query.
    features:
        ``"self-supervised"``: a strategy that takes fixed features (TypiClust, ProbCover)
        embeds the items with features pretrained on them (SimCLR, kept in the project
        folder), and picks even the first batch; ``None``: the network's embedding.

    Examples
    --------
    >>> from deepal.config import validated
    >>> validated(ProjectSettings, {"kind": "images", "source": "/data/photos",
    ...                             "classes": ["cat", "dog"]}).net
    'auto'
    """

    kind: Kind
    source: str
    classes: ClassNames | None = None
    test: str | None = None
    net: NetName = "auto"
    model: ModelName | None = None
    strategy: StrategyName = "EntropySampling"
    seed: Seed = 1
    n_epoch: PositiveInt | None = None
    image_size: Annotated[int, AfterValidator(_image_size)] = 32
    channels: Literal[1, 3] = 3
    label_column: Name | None = None
    text_column: Name | None = None
    feature_names: list[str] | None = None
    semi_supervised: SemiSupervised | None = None
    warm_start_epochs: PositiveInt | None = None
    features: Literal["self-supervised"] | None = None

    @model_validator(mode="after")
    def _fits_the_data(self) -> ProjectSettings:
        for problem in (_columns_problem(self), _model_problem(self), _features_problem(self)):
            if problem is not None:
                raise ValueError(problem)
        return self


def _columns_problem(settings: ProjectSettings) -> str | None:
    """A column named for data that has none, which would else be ignored without a word."""
    if settings.label_column is not None and settings.kind not in ("table", "texts"):
        return (f"label_column: {settings.kind} data has no columns; only a table (or a table "
                "of texts) has a column of labels")
    if settings.text_column is not None and settings.kind != "texts":
        return (f"text_column: only texts are read from a text column, and this project's "
                f"data is {settings.kind}: pass --kind texts")
    return None


def _model_problem(settings: ProjectSettings) -> str | None:
    """A scikit-learn model with data or options it cannot serve."""
    model = settings.model
    if model is None:
        return None
    if settings.kind not in FEATURE_KINDS:
        return (f"model: a scikit-learn model takes rows of features, and this project's data "
                f"is {settings.kind}: leave --model out to train a network")
    if settings.semi_supervised is not None:
        return (f"model: {model} is fitted on the labels alone; semi-supervised training "
                "needs a network: pass one of --model and --semi-supervised")
    if settings.warm_start_epochs is not None:
        return (f"model: {model} is fitted again from its labels at every query; continued "
                "training needs a network: pass one of --model and --warm-start-epochs")
    if settings.net != "auto":
        return (f"model: {model} replaces the network, so --net {settings.net} cannot be "
                "used with it: pass one of the two")
    return None


def _features_problem(settings: ProjectSettings) -> str | None:
    """Self-supervised features that nothing could learn or use."""
    if settings.features is None:
        return None
    if settings.model is not None:
        return (f"features: the scikit-learn model {settings.model} serves no strategy that "
                "takes features: pass one of --model and --features")
    if settings.kind == "texts":
        return ("features: self-supervised features are learnt from augmented views of images "
                "or feature rows, and this project's data is texts: leave --features out")
    return None


class StoredProjectSettings(ProjectSettings):
    """:class:`ProjectSettings` as a project's database holds them: the classes are known.

    Examples
    --------
    >>> from deepal.config import ConfigError, validated
    >>> try:
    ...     validated(StoredProjectSettings, {"kind": "images", "source": "/data"})
    ... except ConfigError as error:
    ...     print(error)
    classes: field required
    """

    classes: ClassNames


class TrainOptions(Settings):
    """How a project's network is trained this time.

    Parameters
    ----------
    threads:
        CPU threads of torch while training (and querying).
    n_epoch:
        Training epochs; ``None``: the project's.

    Examples
    --------
    >>> from deepal.config import validated
    >>> validated(TrainOptions, {"threads": 2}).threads
    2
    """

    threads: PositiveInt
    n_epoch: PositiveInt | None = None


class QueryOptions(TrainOptions):
    """What one ``deepal query`` asks of a project: :class:`TrainOptions` and

    Parameters
    ----------
    n:
        Items to pick.
    strategy:
        Another strategy this time (a name, or a ``package.module:Class`` the user typed).
    sharding:
        Where the query is computed (:class:`~deepal.config.sharding.QuerySettings`).

    Examples
    --------
    >>> from deepal.config import validated
    >>> validated(QueryOptions, {"n": 10, "threads": 1}).strategy is None
    True
    """

    n: PositiveInt
    strategy: StrategyName | None = None
    sharding: QuerySettings = QuerySettings()
