"""Per-category diphoton-mass histograms of every process (bump hunt), for a later shape fit:
plain data, CSV, and ROOT TH1D via uproot (imported only when writing ROOT)."""
from __future__ import annotations

import csv
import io

import numpy as np

from .categoriser import ExportError
from .scenarios import EventSample

#: bins over the mass range (toys: [100, 180] GeV, so 1 GeV each)
N_BINS = 80
#: Name of the Asimov pseudo-data histogram in each category folder (Combine's convention)
DATA_NAME = "data_obs"


def mass_histograms(events: EventSample, category: np.ndarray, n_cats: int,
                    n_bins: int = N_BINS) -> dict:
    """``{"edges", "processes", "signals", "sum_w" [K][P][B], "sum_w2" [K][P][B]}`` over
    the full mass range (no window: the shape fit needs the side bands); events outside
    the range are left out."""
    if events.mass is None:
        raise ExportError("mass histograms need events with a mass (bump hunt, or a dataset "
                          "with a mass column)")
    lo, hi = events.mass_limits
    edges = np.linspace(lo, hi, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, events.mass, side="right") - 1, 0, n_bins - 1)
    keep = (np.asarray(category) >= 0) & (events.mass >= lo) & (events.mass <= hi)
    n_proc = len(events.process_names)
    flat = ((np.asarray(category)[keep].astype(np.int64) * n_proc + events.process[keep])
            * n_bins + bins[keep])
    w = events.weight[keep].astype(np.float64)
    size = n_cats * n_proc * n_bins
    sum_w = np.bincount(flat, weights=w, minlength=size).reshape(n_cats, n_proc, n_bins)
    sum_w2 = np.bincount(flat, weights=w * w, minlength=size).reshape(n_cats, n_proc, n_bins)
    return {"edges": edges.tolist(), "processes": list(events.process_names),
            "signals": list(events.signal_names), "sum_w": sum_w.tolist(),
            "sum_w2": sum_w2.tolist()}


def to_csv(hists: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["category", "process", "mass_low", "mass_high", "sum_w", "sum_w2"])
    edges = hists["edges"]
    for k, per_proc in enumerate(hists["sum_w"]):
        for j, p in enumerate(hists["processes"]):
            for i, v in enumerate(per_proc[j]):
                writer.writerow([k, p, edges[i], edges[i + 1], repr(float(v)),
                                 repr(float(hists["sum_w2"][k][j][i]))])
    return out.getvalue()


def _th1d(name: str, title: str, sum_w, sum_w2, edges):
    """A ROOT TH1D with per-bin sum w^2 (so ROOT and Combine see the MC errors)."""
    from uproot.writing.identify import to_TAxis, to_TH1x

    edges = np.asarray(edges, dtype=np.float64)
    centres = 0.5 * (edges[1:] + edges[:-1])
    sum_w = np.asarray(sum_w, dtype=np.float64)
    sum_w2 = np.asarray(sum_w2, dtype=np.float64)
    # ROOT keeps underflow and overflow bins at both ends (both empty here)
    data = np.concatenate([[0.0], sum_w, [0.0]])
    errors = np.concatenate([[0.0], sum_w2, [0.0]])
    axis = to_TAxis("xaxis", "m_{#gamma#gamma} [GeV]", len(sum_w), float(edges[0]),
                    float(edges[-1]))
    return to_TH1x(name, title, data, float(sum_w.sum()), float(sum_w.sum()),
                   float(sum_w2.sum()), float((sum_w * centres).sum()),
                   float((sum_w * centres ** 2).sum()), errors, axis)


def write_root(hists: dict, path) -> None:
    """One folder per category (``cat0``, ...), one TH1D per process plus ``data_obs``
    (Asimov: the sum of all processes)."""
    try:
        import uproot
    except ImportError:
        raise ExportError("writing ROOT files needs uproot (pip install uproot==5.7.7)") from None
    edges = hists["edges"]
    with uproot.recreate(path) as f:
        for k, per_proc in enumerate(hists["sum_w"]):
            folder = f"cat{k}"
            for j, p in enumerate(hists["processes"]):
                f[f"{folder}/{p}"] = _th1d(p, f"{p}, category {k}", per_proc[j],
                                          hists["sum_w2"][k][j], edges)
            total = np.sum(per_proc, axis=0)
            f[f"{folder}/{DATA_NAME}"] = _th1d(DATA_NAME, f"Asimov data, category {k}", total,
                                              total, edges)
