"""Reference binnings GATO is measured against, and the exact 1-D optimum (ALGORITHM §3, §5)."""
from __future__ import annotations

import numpy as np

from . import binning
from .scenarios import EventSample
from .significance import asimov_z, objective_value, significance_per_signal

ARGMAX_LOW_EDGE = 0.33
FINE_BINS = 1500
#: A category of the 1-D optimum must hold at least this many background MC events.
#: Without it, on small samples, the optimum isolates fine bins with signal and (almost) no
#: simulated background and claims a meaningless Z; at the default sizes it never binds.
MIN_BKG_EVENTS = 10


def category_yields(events: EventSample, category: np.ndarray, n_cats: int, use_window=True):
    """Hard yields: ([S, K] signal, [K] background, [K] background sum w^2).

    Events with category < 0 are left out. For the bump hunt only events inside the
    mass window count (no reweighting), as in the reference evaluation.
    """
    keep = category >= 0
    if use_window:
        keep &= events.in_window()
    cat = category[keep]
    w = events.weight[keep].astype(np.float64)
    proc = events.process[keep]
    signal = np.stack(
        [
            np.bincount(cat[proc == events.process_index(s)],
                        weights=w[proc == events.process_index(s)], minlength=n_cats)
            for s in events.signal_names
        ]
    )
    bkg_ids = [i for i, n in enumerate(events.process_names) if n not in events.signal_names]
    is_bkg = np.isin(proc, bkg_ids)
    background = np.bincount(cat[is_bkg], weights=w[is_bkg], minlength=n_cats)
    sum_w2 = np.bincount(cat[is_bkg], weights=w[is_bkg] ** 2, minlength=n_cats)
    return signal, background, sum_w2


def equidistant_1d(events: EventSample, n_bins: int, score_range=(0.0, 1.0)) -> float:
    """Z of the first signal in ``n_bins`` equal bins; see equidistant_1d_per_signal."""
    return equidistant_1d_per_signal(events, n_bins, score_range)[events.signal_names[0]]


def equidistant_1d_per_signal(events: EventSample, n_bins: int,
                              score_range=(0.0, 1.0)) -> dict[str, float]:
    edges = np.linspace(*score_range, n_bins + 1)
    category = binning.bin_index(edges, events.scores[:, 0])
    signal, background, _ = category_yields(events, category, n_bins)
    z = significance_per_signal(signal, background)
    return {name: float(z[j]) for j, name in enumerate(events.signal_names)}


def argmax_assignment(events: EventSample, n_bins: int, signal_index: int) -> np.ndarray:
    """Events whose 3-class argmax is this signal get an equidistant bin of its own score
    on [0.33, 1]; all others -1.

    Score j belongs to signal j. Softmax scores get the background class 1 - sum as a
    competitor; independent scores (a dataset's sigmoid outputs) compete only with each other.
    """
    p = events.scores.astype(np.float64)
    full = p
    if (events.mean_mode or "softmax") == "softmax":
        full = np.concatenate([p, 1.0 - p.sum(axis=1, keepdims=True)], axis=1)
    own = p[:, signal_index]
    edges = np.linspace(ARGMAX_LOW_EDGE, 1.0, n_bins + 1)
    bins = binning.bin_index(edges, own)
    return np.where(np.argmax(full, axis=1) == signal_index, bins, -1)


def argmax_baseline(events: EventSample, n_bins: int) -> dict[str, float]:
    """Z per signal, each from its own argmax + equidistant scheme."""
    out = {}
    for j, name in enumerate(events.signal_names):
        category = argmax_assignment(events, n_bins, j)
        signal, background, _ = category_yields(events, category, n_bins)
        out[name] = float(significance_per_signal(signal, background)[j])
    return out


def fine_histograms(events: EventSample, n_fine: int = FINE_BINS, score_range=(0.0, 1.0)):
    """Signal and background yields, and background MC event counts, in equal fine bins."""
    edges = np.linspace(*score_range, n_fine + 1)
    category = binning.bin_index(edges, events.scores[:, 0])
    signal, background, _ = category_yields(events, category, n_fine)
    keep = events.background_mask() & events.in_window()
    counts = np.bincount(category[keep], minlength=n_fine)
    return signal[0], background, edges, counts


def optimal_partitions(signal: np.ndarray, background: np.ndarray, n_cats_list,
                       bkg_events: np.ndarray | None = None, min_bkg_events: int = 0) -> dict:
    """Exact best split of ordered fine bins into K contiguous, non-empty segments, each with
    at least ``min_bkg_events`` background MC events, for every K in ``n_cats_list``.

    Dynamic programming: best[k][j] = max_i best[k-1][i] + Z^2(i..j), O(K N^2) with prefix
    sums; one pass up to the largest K serves all of them. Returns {K: (Z, cut indices into
    the fine-bin edges)}; Z is nan where no split qualifies.
    """
    n_cats_list = sorted({int(k) for k in n_cats_list})
    s_cum = np.concatenate([[0.0], np.cumsum(signal, dtype=np.float64)])
    b_cum = np.concatenate([[0.0], np.cumsum(background, dtype=np.float64)])
    n = len(signal)
    if n_cats_list[-1] > n:
        raise ValueError(f"cannot split {n} fine bins into {n_cats_list[-1]} categories")
    # z2[i, j]: segment of fine bins i..j-1 (i < j)
    seg_s = s_cum[None, :] - s_cum[:, None]
    seg_b = b_cum[None, :] - b_cum[:, None]
    z2 = asimov_z(np.maximum(seg_s, 0), np.maximum(seg_b, 0)) ** 2
    z2[np.tril_indices(n + 1)] = -np.inf  # i >= j is no segment
    if min_bkg_events > 0:
        n_cum = np.concatenate([[0], np.cumsum(bkg_events)])
        z2[(n_cum[None, :] - n_cum[:, None]) < min_bkg_events] = -np.inf
    best = z2[0].copy()  # one segment from edge 0 to edge j
    choices = []
    out = {}
    for k in range(1, n_cats_list[-1] + 1):
        if k > 1:
            total = best[:, None] + z2
            arg = np.argmax(total, axis=0)
            best = total[arg, np.arange(n + 1)]
            choices.append(arg)
        if k in n_cats_list:
            if not np.isfinite(best[n]):
                out[k] = (float("nan"), [])
                continue
            cuts, j = [], n
            for arg in reversed(choices):
                j = int(arg[j])
                cuts.append(j)
            out[k] = (float(np.sqrt(best[n])), sorted(cuts))
    return out


def optimal_partition(signal, background, n_cats: int, bkg_events=None, min_bkg_events: int = 0):
    """(Z, cut indices) of the best split into ``n_cats`` segments; see optimal_partitions."""
    return optimal_partitions(signal, background, [n_cats], bkg_events, min_bkg_events)[n_cats]


def optimum_1d(events: EventSample, n_cats: int, n_fine: int = FINE_BINS, score_range=(0.0, 1.0),
               min_bkg_events: int = MIN_BKG_EVENTS):
    """(Z, boundaries) of the best K-category split over ``n_fine`` equal fine bins, every
    category holding at least ``min_bkg_events`` background MC events."""
    signal, background, edges, counts = fine_histograms(events, n_fine, score_range)
    z, cuts = optimal_partition(signal, background, n_cats, counts, min_bkg_events)
    return z, [float(edges[c]) for c in cuts]


def optimum_1d_table(events: EventSample, ks, n_fine: int = FINE_BINS, score_range=(0.0, 1.0),
                     min_bkg_events: int = MIN_BKG_EVENTS) -> dict[int, float]:
    """Exact 1-D optimum Z for every K in ``ks``, in one DP pass."""
    signal, background, _, counts = fine_histograms(events, n_fine, score_range)
    table = optimal_partitions(signal, background, ks, counts, min_bkg_events)
    return {k: z for k, (z, _) in table.items()}


def has_reference_baseline(events: EventSample) -> bool:
    """1-D: equidistant bins; 2-D/3-score: argmax needs one score per signal."""
    return events.dim == 1 or events.dim == len(events.signal_names)


def reference_baselines(events: EventSample, baseline_bins) -> dict:
    """Baselines keyed by number of categories: {signal: {K: Z}} and the objective per K.

    Empty when the scores have no baseline (see has_reference_baseline).
    """
    per_signal = {name: {} for name in events.signal_names}
    objective = {}
    if not has_reference_baseline(events):
        return {"per_signal": per_signal, "objective": objective}
    for n in baseline_bins:
        if events.dim == 1:
            z = equidistant_1d_per_signal(events, n)
            k = n
        else:
            z = argmax_baseline(events, n)
            k = events.dim * n + 1  # n bins per signal plus the background-like remainder
        for name, value in z.items():
            per_signal[name][k] = value
        objective[k] = objective_value([z[s] for s in events.signal_names])
    return {"per_signal": per_signal, "objective": objective}
