"""Label Studio interchange: a batch out as JSON tasks, annotations back in.

Out: a list of tasks ``{"data": {"deepal_id": 7, "ref": "img/7.png", "image": URL}}``
(``"text"`` instead of ``"image"`` for texts and feature rows), and a labelling config with
one ``Choices`` control named ``label`` over the project's classes. In: Label Studio's JSON
export, a list of tasks each with ``data.deepal_id`` and ``annotations[].result[]`` whose
``value.choices`` holds the class; the latest annotation that was not cancelled counts.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import quoteattr

from deepal.errors import DeepALError

#: Prefix of image URLs in exported tasks: Label Studio's local-files route, so tasks work when
#: its LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT is the project's image folder.
LOCAL_FILES = "/data/local-files/?d="


def tasks(project: Any, item_ids: list[int], image_prefix: str = LOCAL_FILES) -> list[dict]:
    """Label Studio tasks for ``item_ids`` of ``project`` (a :class:`Project`)."""
    kind = project.settings.kind
    X = project.arrays()["X"]
    out = []
    for item_id in item_ids:
        found = project.store.item(item_id)
        if found is None:
            raise DeepALError(f"unknown item {item_id}")
        ref, text, _, _ = found
        data: dict[str, Any] = {"deepal_id": item_id, "ref": ref}
        if kind == "images":
            data["image"] = image_prefix + ref
        elif text is not None:
            data["text"] = text
        else:
            names = project.settings.feature_names or [
                f"x{j}" for j in range(X[item_id].size)]
            data["text"] = ", ".join(f"{n}={float(v):.4g}" for n, v in
                                     zip(names, X[item_id].reshape(-1), strict=False))
        out.append({"data": data})
    return out


def label_config(project: Any) -> str:
    """A Label Studio labelling config for the project's tasks."""
    shown = ('<Image name="image" value="$image"/>' if project.settings.kind == "images"
             else '<Text name="text" value="$text"/>')
    target = "image" if project.settings.kind == "images" else "text"
    choices = "\n    ".join(f"<Choice value={quoteattr(c)}/>" for c in project.classes)
    return (f'<View>\n  {shown}\n  <Choices name="label" toName="{target}" choice="single">\n'
            f"    {choices}\n  </Choices>\n</View>\n")


def parse_export(payload: Any) -> list[tuple[int, Any, Any, str]]:
    """``(task number, item, class name, annotator)`` for every annotated task of a Label
    Studio export; tasks are numbered from 1.

    Examples
    --------
    >>> parse_export([{"data": {"deepal_id": 3}, "annotations": [
    ...     {"completed_by": 7, "result": [{"value": {"choices": ["cat"]}}]}]}])
    [(1, 3, 'cat', 'label-studio:7')]
    """
    if not isinstance(payload, list):
        raise DeepALError("a Label Studio export is a JSON list of tasks")
    out = []
    for n, task in enumerate(payload, start=1):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise DeepALError(f"task {n} of the Label Studio export has no 'data' object")
        if "deepal_id" not in task["data"]:
            raise DeepALError(f"task {n} has no data.deepal_id: only tasks exported by "
                              "`deepal export --format label-studio` can be imported")
        answer = _latest_answer(task, f"task {n}")
        if answer is not None:  # None: not labeled in Label Studio yet
            out.append((n, task["data"]["deepal_id"], *answer))
    return out


def _list_of_objects(value: Any, where: str, key: str) -> list[dict[str, Any]]:
    """``value`` (a task's ``annotations``, an annotation's ``result``) if it is a list of
    objects; a missing or null one is empty."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise DeepALError(f"{where}: '{key}' must be a list of objects, as Label Studio "
                          f"exports it, got {type(value).__name__}")
    return value


def _choices(result: dict[str, Any], where: str) -> list[Any] | None:
    """The classes chosen in one ``result`` of an annotation (``None`` for another control)."""
    if result.get("type", "choices") != "choices":
        return None
    value = result.get("value")
    if not isinstance(value, dict) or not isinstance(value.get("choices"), list):
        raise DeepALError(f"{where}: a choices result needs 'value': {{'choices': [class]}}, "
                          f"got {type(value).__name__} 'value'")
    return value["choices"]


def _latest_answer(task: dict[str, Any], where: str) -> tuple[Any, str] | None:
    """The class chosen by the latest annotation of ``task`` not cancelled, and who chose
    it; ``None`` if there is none."""
    annotations = [a for a in _list_of_objects(task.get("annotations"), where, "annotations")
                   if not a.get("was_cancelled")]
    if not annotations:
        return None
    latest = annotations[-1]
    results = _list_of_objects(latest.get("result"), where, "result")
    choices = [c for c in (_choices(r, where) for r in results) if c]
    if not choices:
        return None
    if len(choices) != 1 or len(choices[0]) != 1:
        raise DeepALError(f"{where}: {sum(map(len, choices))} classes chosen, expected one")
    return choices[0][0], _annotator(latest.get("completed_by"), where)


def _annotator(who: Any, where: str) -> str:
    """Label Studio's ``completed_by`` (a user id, or an object with an email) as deepal's
    annotator name."""
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    if who is not None and not isinstance(who, (str, int)):
        raise DeepALError(f"{where}: 'completed_by' must be a user id or an object with an "
                          f"email, got {type(who).__name__}")
    return "label-studio" if who is None else f"label-studio:{who}"
