"""Labelling for real: a project folder with a SQLite store, query rounds, label import and
export (CSV, JSON, Label Studio) and a web page to label in (``deepal label``)."""

from deepal.labeling.project import Project
from deepal.labeling.store import Store

__all__ = ["Project", "Store"]
