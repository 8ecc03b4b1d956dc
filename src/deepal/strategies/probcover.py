"""ProbCover (Yehuda et al., 2022): greedy maximum coverage of delta-balls, for low budgets."""

from __future__ import annotations

from typing import Any

import numpy as np

from deepal.config.arguments import integer, number
from deepal.data.pool import Data
from deepal.errors import DeepALError
from deepal.nets.net import Net
from deepal.scores.clustering import kmeans_centres
from deepal.scores.coverage import (
    MAX_EDGES,
    ball_graph,
    capped_ball_graph,
    covered_by,
    max_coverage,
    purity_radius,
)
from deepal.scores.neighbours import nearest
from deepal.strategies.base import Strategy
from deepal.strategies.features import check_features, pool_features


class ProbCover(Strategy):
    """Pick the unlabeled examples whose ``delta``-balls cover the most uncovered examples.

    The pool (labeled examples and candidates) becomes a graph with an edge between examples
    at embedding distance ``<= delta``. Examples within ``delta`` of a labeled one count as
    covered from the start; each pick is then the unlabeled example whose ball holds the most
    uncovered examples, and its ball becomes covered. Once everything is covered, the rest of
    the batch is drawn at random (as in the paper).

    The graph is built in blocks of rows and stored as sparse edges (never ``N x N``):
    ``O(N^2 d)`` time once per query, memory the number of edges (capped by ``max_edges``; on
    a large pool use ``max_candidates``). The paper embeds with a self-supervised model: pass
    such ``features`` to use them instead of the network's embedding (then no trained network
    is needed, even for the first batch). With a weak embedding (the classifier's after 20
    MNIST labels) the purity radius is tiny, most balls hold one point, and the picks crowd
    into the one dense region: measured below random sampling there.

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword).
    delta:
        Ball radius in embedding space. ``None`` (default) chooses it at each query by the
        paper's purity rule: the largest radius at which a fraction ``alpha`` of the balls hold
        a single k-means cluster (``k`` = the number of classes); see
        :func:`~deepal.scores.coverage.purity_radius`. That radius is lowered if its graph
        would exceed ``max_edges`` (:func:`~deepal.scores.coverage.capped_ball_graph`); an
        explicit ``delta`` whose graph is too large raises an error instead.
    alpha:
        Purity for the automatic ``delta`` (the paper's 0.95).
    max_edges:
        Most edges of the graph before an error.
    features:
        Fixed features of the whole pool, shape ``(n_pool, d)``, or ``None`` for the
        network's embedding (see :mod:`deepal.strategies.features`).

    Attributes
    ----------
    last_delta:
        The radius used by the last query.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.ProbCover(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    state_attrs = (*Strategy.state_attrs, "last_delta")

    def __init__(
        self,
        dataset: Data,
        net: Net,
        delta: float | None = None,
        alpha: float = 0.95,
        max_edges: int = MAX_EDGES,
        features: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, net, **kwargs)
        self.features = check_features(features, dataset)
        self.needs_model = self.features is None  # type: ignore[misc]  # per instance
        self.delta = None if delta is None else number("delta", delta, at_least=0)
        self.alpha = number("alpha", alpha, above=0)
        if self.alpha > 1:
            raise DeepALError(f"alpha must be in (0, 1], got {alpha!r}")
        self.max_edges = integer("max_edges", max_edges, minimum=1)
        self.last_delta: float | None = None

    def query(self, n: int) -> np.ndarray:
        idxs = np.union1d(np.flatnonzero(self.dataset.labeled_idxs), self.candidate_idxs())
        embeddings = pool_features(self, idxs, self.features)
        labeled = self.dataset.labeled_idxs[idxs]
        if self.delta is not None:
            graph, delta = ball_graph(embeddings, self.delta, max_edges=self.max_edges), self.delta
        else:
            graph, delta = capped_ball_graph(
                embeddings, self._purity_delta(embeddings), self.max_edges, self.rng)
        self.last_delta = delta
        picks, _ = max_coverage(graph, covered_by(graph, labeled), ~labeled, n)
        if len(picks) < n:  # everything is covered: the rest at random
            rest = np.setdiff1d(np.flatnonzero(~labeled), picks)
            picks = np.concatenate([picks, self.rng.choice(rest, n - len(picks), replace=False)])
        return idxs[picks]

    def _purity_delta(self, embeddings: Any) -> float:
        k = min(self.dataset.n_classes, len(embeddings))
        pseudo_labels, _ = nearest(embeddings, kmeans_centres(embeddings, k, self.rng))
        return purity_radius(embeddings, pseudo_labels, self.alpha, rng=self.rng)
