"""Per-category diphoton-mass histograms of every process (bump hunt), for a later shape fit:
``hist`` objects (gato_core.binning), CSV, and ROOT TH1D via uproot (imported only when
writing ROOT)."""
from __future__ import annotations

import csv
import io

import hist
import numpy as np

from . import binning
from .categoriser import ExportError
from .scenarios import EventSample

#: bins over the mass range (toys: [100, 180] GeV, so 1 GeV each)
N_BINS = 80
#: Name of the Asimov pseudo-data histogram in each category folder (Combine's convention)
DATA_NAME = "data_obs"
#: the mass axis's title in the ROOT files (ROOT's TLatex)
MASS_LABEL = "m_{#gamma#gamma} [GeV]"


def mass_histograms(events: EventSample, category: np.ndarray, n_cats: int,
                    n_bins: int = N_BINS) -> hist.Hist:
    """Weighted histograms [category, process (``events.process_names`` order), mass] over
    the full mass range (no window: the shape fit needs the side bands); events outside
    the range are left out (``binning.DROP``). ``.values()`` sum w, ``.variances()`` sum w^2."""
    if events.mass is None:
        raise ExportError("mass histograms need events with a mass (bump hunt, or a dataset "
                          "with a mass column)")
    lo, hi = events.mass_limits
    # events without a category (-1) fall outside the category axis: left out
    return binning.weighted(np.linspace(lo, hi, n_bins + 1), events.mass, events.weight,
                            by=((category, n_cats), (events.process, len(events.process_names))),
                            outside=binning.DROP, label=MASS_LABEL)


def to_csv(hists: hist.Hist, processes) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["category", "process", "mass_low", "mass_high", "sum_w", "sum_w2"])
    edges = hists.axes[-1].edges.tolist()
    sum_w, sum_w2 = hists.values(), hists.variances()
    for k in range(sum_w.shape[0]):
        for j, p in enumerate(processes):
            for i in range(len(edges) - 1):
                writer.writerow([k, p, edges[i], edges[i + 1], repr(float(sum_w[k, j, i])),
                                 repr(float(sum_w2[k, j, i]))])
    return out.getvalue()


def _th1d(name: str, title: str, one: hist.Hist):
    """ROOT TH1D of a 1-D weighted histogram, with its per-bin sum w^2 (so ROOT and Combine
    see the MC errors). Built with uproot's to_TH1x rather than written as the hist object
    itself: uproot 5.7's own conversion stores fTsumw2 = sum w (not sum w^2) and a
    variable-bin axis for our Variable axis; this keeps the files as they were."""
    from uproot.writing.identify import to_TAxis, to_TH1x

    edges = one.axes[0].edges
    centres = 0.5 * (edges[1:] + edges[:-1])
    sum_w, sum_w2 = one.values(), one.variances()
    # ROOT keeps underflow and overflow bins at both ends (empty: binning folds or drops)
    data = np.concatenate([[0.0], sum_w, [0.0]])
    errors = np.concatenate([[0.0], sum_w2, [0.0]])
    axis = to_TAxis("xaxis", one.axes[0].label, len(sum_w), float(edges[0]), float(edges[-1]))
    return to_TH1x(name, title, data, float(sum_w.sum()), float(sum_w.sum()),
                   float(sum_w2.sum()), float((sum_w * centres).sum()),
                   float((sum_w * centres ** 2).sum()), errors, axis)


def write_root(hists: hist.Hist, processes, path) -> None:
    """One folder per category (``cat0``, ...), one TH1D per process plus ``data_obs``
    (Asimov: the sum of all processes, with Poisson errors: sum w^2 = sum w)."""
    try:
        import uproot
    except ImportError:
        raise ExportError("writing ROOT files needs uproot (pip install uproot==5.7.7)") from None
    mass_axis = hists.axes[-1]
    with uproot.recreate(path) as f:
        for k in range(hists.values().shape[0]):
            folder = f"cat{k}"
            for j, p in enumerate(processes):
                f[f"{folder}/{p}"] = _th1d(p, f"{p}, category {k}", hists[k, j, :])
            total = np.sum(hists.values()[k], axis=0)
            asimov = hist.Hist(mass_axis, storage=hist.storage.Weight())
            asimov.view()["value"] = total
            asimov.view()["variance"] = total
            f[f"{folder}/{DATA_NAME}"] = _th1d(DATA_NAME, f"Asimov data, category {k}", asimov)
