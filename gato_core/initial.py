"""Initial placement of categories from the score distribution (numpy only).

Random starting means leave many components in regions without signal, where they stay:
the gradient there is tiny, and the optimum needs its categories where the signal purity
changes fastest. Starting from slices of equal signal yield puts the components where
the significance is made, and the gradient then only has to refine them.
"""
from __future__ import annotations

import numpy as np

#: "auto": signal quantiles for the Gaussian mixture; the random start for sigmoid cuts,
#: which is already near-equidistant and measured better for that model
INITS = ("auto", "signal_quantiles", "random")


def signal_slices(n_signals: int, n_cats: int) -> list[tuple[int, float, float]]:
    """Split K components over the signals (round-robin) and each signal's events into
    slices of equal signal yield along its own score; (signal, lo, hi) quantile fractions
    per component."""
    per_signal = [len(range(j, n_cats, n_signals)) for j in range(n_signals)]
    return [(j, i / n, (i + 1) / n) for j, n in enumerate(per_signal) for i in range(n)]


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, fractions) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order], dtype=np.float64)
    cum /= cum[-1]
    index = np.searchsorted(cum, np.asarray(fractions), side="left")
    return values[order][np.clip(index, 0, len(values) - 1)]


def signal_quantile_means(scores: np.ndarray, signal_weights: np.ndarray, n_cats: int) -> np.ndarray:
    """[K, D] starting means: per component, the signal-weighted mean position of one slice
    of equal signal yield along its signal's own score (1-D: the score itself).

    ``signal_weights`` [N, S] holds each signal's event weights (zero for other events).
    Several signals count equally, whatever their cross sections, as the geometric-mean
    objective does.
    """
    scores = np.asarray(scores, dtype=np.float64)
    # negative weights (NLO samples) say nothing about where the signal sits
    weights = np.clip(np.asarray(signal_weights, dtype=np.float64), 0.0, None)
    if weights.ndim != 2 or weights.shape[0] != scores.shape[0]:
        raise ValueError("signal_weights must be [N, S] for N events")
    if np.any(weights.sum(axis=0) <= 0):
        raise ValueError("every signal needs events with positive weight to place categories")
    means = np.empty((n_cats, scores.shape[1]))
    for k, (j, lo, hi) in enumerate(signal_slices(weights.shape[1], n_cats)):
        has = weights[:, j] > 0
        own = scores[has, min(j, scores.shape[1] - 1)]
        w = weights[has, j]
        q_lo, q_hi = _weighted_quantile(own, w, [lo, hi])
        inside = (own >= q_lo) & (own <= q_hi)
        means[k] = np.average(scores[has][inside], axis=0, weights=w[inside])
    return means


def signal_quantile_cuts(scores: np.ndarray, signal_weights: np.ndarray, n_cats: int) -> np.ndarray:
    """[K-1] starting cut points on a 1-D score: quantiles k/K of the signal yield."""
    own = np.asarray(scores, dtype=np.float64)[:, 0]
    w = np.clip(np.asarray(signal_weights, dtype=np.float64), 0.0, None).sum(axis=1)
    keep = w > 0
    if not keep.any():
        raise ValueError("the signal needs events with positive weight to place categories")
    return _weighted_quantile(own[keep], w[keep], np.arange(1, n_cats) / n_cats)
