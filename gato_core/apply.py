"""Assign categories to new events with a categoriser file (numpy only, no TensorFlow).

    >>> from gato_core.apply import apply
    >>> categories = apply("categoriser.json", scores)          # [N] ints, 0..K-1

Category numbers are the dashboard's: 1-D left to right, 2-D most significant first.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import geometry
from .categoriser import RULE_ARGMAX, ExportError, load, validate
from .evaluation import segment_index

__all__ = ["apply", "assign", "score_matrix", "ExportError"]


def _column_names(scores):
    """Column names of a mapping, DataFrame or structured array; None for a plain array."""
    if hasattr(scores, "keys"):
        return list(scores.keys())
    names = getattr(getattr(scores, "dtype", None), "names", None)
    return list(names) if names else None


def score_matrix(categoriser: dict, scores) -> np.ndarray:
    """[N, D] float64 model inputs: columns picked by name from a mapping (dict, DataFrame,
    structured array) or taken as given from an [N, D] array, then rescaled."""
    columns = categoriser["scores"]["columns"]
    names = _column_names(scores)
    if names is not None:
        missing = [c for c in columns if c not in names]
        if missing:
            raise ExportError(f"score column(s) {missing} not found; the categoriser reads "
                              f"{columns}, the events have {names}")
        x = np.column_stack([np.asarray(scores[c], dtype=np.float64) for c in columns])
    else:
        x = np.asarray(scores, dtype=np.float64)
        if x.ndim == 1 and len(columns) == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != len(columns):
            raise ExportError(f"scores must be [N, {len(columns)}] ({', '.join(columns)}), "
                              f"got shape {list(x.shape)}")
    shift = np.asarray(categoriser["scores"]["shift"], dtype=np.float64)
    scale = np.asarray(categoriser["scores"]["scale"], dtype=np.float64)
    if np.any(shift != 0.0) or np.any(scale != 1.0):
        x = (x - shift) / scale
    return x


def assign(categoriser: dict, x: np.ndarray) -> np.ndarray:
    """Category of every row of ``x``, [N, D] model inputs (already selected and rescaled:
    the scores the run was trained on)."""
    if categoriser["rule"] == RULE_ARGMAX:
        gmm = categoriser["gmm"]
        component = np.argmax(geometry.mixture_log_scores(
            x, gmm["means"], gmm["cholesky"], gmm["log_weights"]), axis=1)
        return np.asarray(categoriser["category_of_component"], dtype=np.int64)[component]
    # cuts: the number of cut values at or below the score
    return segment_index(np.asarray(x, dtype=np.float64)[:, 0],
                         categoriser["cuts"]).astype(np.int64)


def apply(categoriser, scores, mass=None) -> np.ndarray:
    """Category index (0..K-1, the dashboard's numbering) of every event.

    ``categoriser``: the file's dict or a path to it. ``scores``: [N, D] array in the order
    of the file's ``scores.columns``, or a mapping/DataFrame with those columns. ``mass``:
    optional [N] masses; with a mass window in the file, events outside it get -1.
    """
    if isinstance(categoriser, (str, Path)):
        categoriser = load(categoriser)
    else:
        validate(categoriser)
    category = assign(categoriser, score_matrix(categoriser, scores))
    if mass is not None and categoriser.get("mass"):
        lo, hi = categoriser["mass"]["window"]
        m = np.asarray(mass, dtype=np.float64)
        category = np.where((m >= lo) & (m <= hi), category, -1)
    return category
