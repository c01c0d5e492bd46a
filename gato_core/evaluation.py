"""Hard-assignment evaluation, category layouts and data summaries (numpy only).

Everything here runs without TensorFlow so the web process can use it safely.
"""
from __future__ import annotations

import numpy as np

from . import binning, geometry, massfit, yields
from .baselines import category_yields
from .scenarios import EventSample
from .significance import asimov_z, objective_value, significance_per_signal

MAP_GRID = 120
BOUNDARY_SCAN_POINTS = 20_001
MASS_HIST_BINS = 40


def hard_assign(parameters: dict, scores: np.ndarray) -> np.ndarray:
    """Component index per event: argmax_k (log N + log pi), or the bin of the cut model."""
    scores = np.asarray(scores)
    if parameters["model"] == "sigmoid_cuts":
        return np.searchsorted(geometry.cut_positions(parameters), scores[:, 0], side="right")
    return np.argmax(geometry.gmm_log_scores(parameters, scores), axis=1)


def boundaries_1d(parameters: dict, score_range=(0.0, 1.0)) -> list[float]:
    """Where the hard category changes along the discriminant (a fine scan, as in §2)."""
    if parameters["model"] == "sigmoid_cuts":
        return [float(c) for c in np.sort(geometry.cut_positions(parameters))]
    grid = np.linspace(*score_range, BOUNDARY_SCAN_POINTS)
    cat = hard_assign(parameters, grid[:, None])
    change = np.nonzero(np.diff(cat))[0]
    return [float(0.5 * (grid[i] + grid[i + 1])) for i in change]


def segment_components(parameters: dict, boundaries, score_range=(0.0, 1.0)) -> list[int]:
    """The model component that wins each 1-D category, left to right (category i is the
    segment between boundaries i-1 and i). Categories are numbered by position; a
    Gaussian mixture's components win them in any order (e.g. 0, 3, 1, 4, 2), and a
    component may win two segments or none."""
    edges = np.array([score_range[0], *boundaries, score_range[1]], dtype=np.float64)
    middles = 0.5 * (edges[:-1] + edges[1:])
    return [int(c) for c in hard_assign(parameters, middles[:, None])]


def component_categories(result: dict) -> dict[int, list[int]]:
    """{model component: display indices (0-based) of the categories it wins}, for labels.

    1-D: from the parameters and boundaries (so results stored before the categories
    carried their winning component are labelled right too); 2-D: ``order``. The one
    mapping the figures use to name a component."""
    parameters = result.get("parameters") or {}
    boundaries = result.get("boundaries")
    n_components = int(parameters.get("n_cats") or result.get("n_cats") or 0)
    if int(parameters.get("dim", 0) or 0) == 1 and boundaries is not None:
        try:
            winners = segment_components(parameters, boundaries,
                                         tuple(parameters.get("mean_range") or (0.0, 1.0)))
        except (KeyError, TypeError, ValueError):  # incomplete parameters: what evaluate stored
            winners = [int(c.get("component", i))
                       for i, c in enumerate(result.get("categories") or [])]
        out = {c: [] for c in range(n_components)}
        for display, component in enumerate(winners):
            out.setdefault(component, []).append(display)
        return out
    order = list(result.get("order") or range(n_components))
    return {c: [int(order[c])] for c in range(len(order))}


def segment_index(scores_1d: np.ndarray, boundaries) -> np.ndarray:
    return np.searchsorted(np.asarray(boundaries, dtype=np.float64), scores_1d, side="right")


def category_map(parameters: dict, grid: int = MAP_GRID) -> list[int]:
    """Hard component per cell of a grid over the (p1, p2) simplex, -1 outside it (the
    whole unit square for independent scores)."""
    centres = (np.arange(grid) + 0.5) / grid
    x, y = np.meshgrid(centres, centres)  # row index = y
    cells = np.column_stack([x.ravel(), y.ravel()])
    cat = hard_assign(parameters, cells)
    if parameters.get("mean_mode", "softmax") == "softmax":
        cat[cells.sum(axis=1) > 1.0] = -1  # independent scores fill the whole square
    return cat.astype(int).tolist()


def snapshot_layout(parameters: dict, dim: int, epoch: int, temperature: float,
                    score_range=(0.0, 1.0)) -> dict:
    layout = {"epoch": int(epoch), "temperature": float(temperature)}
    if dim == 1:
        layout["boundaries"] = boundaries_1d(parameters, score_range)
    elif dim == 2:  # a 3-score dataset has no flat map to draw
        layout["grid"] = MAP_GRID
        layout["categories"] = category_map(parameters)
    return layout


def _process_yields(events: EventSample, category: np.ndarray, n_cats: int):
    """[K, P] hard sum w, sum w^2 and event counts per process (mass window applied)."""
    return yields.process_sums(events, category, n_cats)


def mass_histograms(events: EventSample, category: np.ndarray, n_cats: int,
                    order: list[int]) -> dict:
    """Per displayed category, per process mass histograms plus the exponential background fit."""
    lo, hi = events.mass_limits
    edges = np.linspace(lo, hi, MASS_HIST_BINS + 1)
    counts = binning.weighted(edges, events.mass, events.weight, by=(
        (category, n_cats), (events.process, len(events.process_names)))).values()
    fit_edges = np.linspace(lo, hi, massfit.FIT_BINS + 1)
    is_bkg = events.background_mask()
    bkg_counts = binning.weighted(fit_edges, events.mass[is_bkg], events.weight[is_bkg],
                                  by=((category[is_bkg], n_cats),)).values()
    amplitude, slope, ok = massfit.fit_exponential(bkg_counts, fit_edges)
    by_display = sorted(range(n_cats), key=lambda comp: order[comp])
    return {
        "edges": edges.tolist(),
        "processes": list(events.process_names),
        "signals": list(events.signal_names),
        "window": list(events.signal_window),
        "counts": [np.round(counts[c], 6).tolist() for c in by_display],
        "fits": [
            {"A": float(amplitude[c]), "B": float(slope[c])} if ok[c] else None
            for c in by_display
        ],
    }


def assign_categories(parameters: dict, events: EventSample, score_range=(0.0, 1.0)):
    """(category per event, number of categories, 1-D boundaries or None).

    1-D: segments between the effective boundaries, left to right; otherwise components.
    """
    if events.dim == 1:
        boundaries = boundaries_1d(parameters, score_range)
        category = segment_index(events.scores[:, 0].astype(np.float64), boundaries)
        return category, len(boundaries) + 1, boundaries
    return hard_assign(parameters, events.scores), int(parameters["n_cats"]), None


def hard_significance(parameters: dict, events: EventSample, score_range=(0.0, 1.0),
                      bkg_rel_unc: float = 0.0) -> tuple[dict[str, float], float]:
    """(Z per signal, objective) of a trained categoriser on ``events``, e.g. a held-out
    sample: the same hard assignment and counting as ``evaluate``. ``bkg_rel_unc`` > 0:
    the Asimov Z with that relative background uncertainty (RunConfig.objective)."""
    category, n_cats, _ = assign_categories(parameters, events, score_range)
    signal, background, _ = category_yields(events, category, n_cats)
    z = significance_per_signal(signal, background, bkg_rel_unc)
    return {s: float(z[j]) for j, s in enumerate(events.signal_names)}, objective_value(z)


def best_start(parameter_sets: list[dict], events: EventSample, score_range=(0.0, 1.0),
               bkg_rel_unc: float = 0.0):
    """(hard objective of every start, index of the best; the first of equals), measured
    with the training objective (``bkg_rel_unc`` as in ``hard_significance``)."""
    objectives = [hard_significance(p, events, score_range, bkg_rel_unc)[1]
                  for p in parameter_sets]
    return objectives, int(np.argmax(objectives))


def evaluate(parameters: dict, events: EventSample, score_range=(0.0, 1.0)) -> dict:
    """Hard-assignment results of a trained categoriser (the numbers that count).

    1-D: categories are the segments between the effective boundaries, left to right.
    2-D: categories are the model components, numbered by significance (most first).
    """
    category, n_cats, boundaries = assign_categories(parameters, events, score_range)
    signal, background, sum_w2 = category_yields(events, category, n_cats)
    total_signal = signal.sum(axis=0)
    z_cat = np.stack([asimov_z(row, background + total_signal - row) for row in signal])
    if events.dim == 1:
        order = list(range(n_cats))
    else:
        rank = np.argsort(-(z_cat ** 2).sum(axis=0), kind="stable")
        order = [0] * n_cats
        for display, comp in enumerate(rank):
            order[int(comp)] = display
    process_yields, process_sum_w2, process_counts = _process_yields(events, category, n_cats)
    edges = [score_range[0]] + list(boundaries or []) + [score_range[1]]
    # 1-D: categories are segments, numbered left to right; "component" names the model
    # component that wins each (not the segment's own number)
    winners = segment_components(parameters, boundaries, score_range) \
        if events.dim == 1 else list(range(n_cats))
    categories = []
    for display, comp in sorted((order[c], c) for c in range(n_cats)):
        entry = {
            "index": display,
            "component": int(winners[comp]),
            "signal": {s: float(signal[j, comp]) for j, s in enumerate(events.signal_names)},
            "background": float(background[comp]),
            "bkg_sum_w2": float(sum_w2[comp]),
            "rel_unc": float(np.sqrt(sum_w2[comp]) / background[comp]) if background[comp] > 0 else None,
            "z": {s: float(z_cat[j, comp]) for j, s in enumerate(events.signal_names)},
            "process_yields": {p: float(process_yields[comp, i])
                               for i, p in enumerate(events.process_names)},
            # with these the yields table (and the statistical model) needs no events
            "process_sum_w2": {p: float(process_sum_w2[comp, i])
                               for i, p in enumerate(events.process_names)},
            "process_counts": {p: int(process_counts[comp, i])
                               for i, p in enumerate(events.process_names)},
        }
        if events.dim == 1:
            entry["range"] = [float(edges[comp]), float(edges[comp + 1])]
        categories.append(entry)
    z = significance_per_signal(signal, background)
    significance = {s: float(z[j]) for j, s in enumerate(events.signal_names)}
    out = {
        "significance": significance,
        "objective": objective_value(z),
        "categories": categories,
        "order": order,
        "boundaries": boundaries,
        "mass_histograms": None,
        "components": geometry.components(parameters),
    }
    if events.mass is not None:
        out["mass_histograms"] = mass_histograms(events, category, n_cats, order)
    return out


def inclusive_summary(events: EventSample) -> dict:
    """Small weighted histograms of the inclusive data for previews and reports."""
    out = {"processes": list(events.process_names), "signals": list(events.signal_names)}
    w = events.weight.astype(np.float64)
    names = events.process_names
    if events.dim == 1:
        edges = np.linspace(0.0, 1.0, 51)
        counts = binning.weighted(edges, events.scores[:, 0], w, outside=binning.DROP,
                                  by=((events.process, len(names)),)).values()
        out["score_hist"] = {
            "edges": edges.tolist(),
            "counts": {p: counts[i].tolist() for i, p in enumerate(names)},
        }
    else:
        grid = 40
        ix = np.clip((events.scores[:, 0] * grid).astype(int), 0, grid - 1)
        iy = np.clip((events.scores[:, 1] * grid).astype(int), 0, grid - 1)
        cell = iy * grid + ix
        out["score_density"] = {
            "grid": grid,
            "counts": {
                p: np.bincount(cell[events.process == i], weights=w[events.process == i],
                               minlength=grid * grid).tolist()
                for i, p in enumerate(names)
            },
        }
    if events.mass is not None:
        edges = np.linspace(*events.mass_limits, 81)
        counts = binning.weighted(edges, events.mass, w, outside=binning.DROP,
                                  by=((events.process, len(names)),)).values()
        out["mass_hist"] = {
            "edges": edges.tolist(),
            "counts": {p: counts[i].tolist() for i, p in enumerate(names)},
            "window": list(events.signal_window),
        }
    return out
