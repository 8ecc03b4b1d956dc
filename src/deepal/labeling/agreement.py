"""Annotator agreement: where two or more annotators labelled the same item, whether they
agree, and why the label a project keeps is the one it keeps.

An item's label is its latest label not retracted (:mod:`deepal.labeling.store`); each
annotator's *vote* on an item is that annotator's latest label of it not retracted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def votes(history: Iterable[Sequence[Any]]) -> dict[int, dict[str, int]]:
    """Each item's votes by annotator, from the label history (rows ``(item, class,
    annotator, created_at, source, retracted_at)``, oldest first).

    Examples
    --------
    >>> votes([(3, 0, "ann", "t1", "web", None), (3, 1, "bob", "t2", "web", None),
    ...        (3, 1, "ann", "t3", "web", "t4")])
    {3: {'ann': 0, 'bob': 1}}
    """
    out: dict[int, dict[str, int]] = {}
    for item, class_index, annotator, _, _, retracted in history:
        if retracted is None:
            out.setdefault(int(item), {})[str(annotator)] = int(class_index)
    return out


def agreement(by_item: dict[int, dict[str, int]], classes: Sequence[str]) -> dict[str, Any]:
    """How often annotators agree on the items several of them labelled.

    Returns
    -------
    dict
        ``items`` (items with two or more annotators), ``agreeing``, ``agreement`` (their
        share, ``None`` without such items) and ``conflicts``: ``[{"item", "labels":
        {annotator: class}}]``.

    Examples
    --------
    >>> found = agreement({1: {"a": 0, "b": 0}, 2: {"a": 0, "b": 1}, 3: {"a": 1}}, ["x", "y"])
    >>> found["agreement"], found["conflicts"]
    (0.5, [{'item': 2, 'labels': {'a': 'x', 'b': 'y'}}])
    """
    shared = {i: v for i, v in sorted(by_item.items()) if len(v) >= 2}
    conflicts = [{"item": i, "labels": {who: classes[c] for who, c in v.items()}}
                 for i, v in shared.items() if len(set(v.values())) > 1]
    agreeing = len(shared) - len(conflicts)
    return {"items": len(shared), "agreeing": agreeing,
            "agreement": agreeing / len(shared) if shared else None, "conflicts": conflicts}


def kept_because(kept_by: str, item_votes: dict[str, int], classes: Sequence[str]) -> str:
    """Why an item's label is the one kept, for the export.

    Examples
    --------
    >>> kept_because("bob", {"ann": 0, "bob": 1}, ["cat", "dog"])
    'latest label; annotators disagree: ann=cat, bob=dog'
    >>> kept_because("ann", {"ann": 0}, ["cat", "dog"])
    'only annotator'
    """
    if len(item_votes) <= 1:
        return "only annotator"
    if len(set(item_votes.values())) == 1:
        return f"{len(item_votes)} annotators agree"
    said = ", ".join(f"{who}={classes[c]}" for who, c in sorted(item_votes.items()))
    return f"latest label; annotators disagree: {said}"
