"""Weighted histograms over given bin edges, in one place: ``hist`` (scikit-hep) with Weight
storage, so every histogram carries the sum of weights and of squared weights per bin.

The edges are a Variable axis on purpose: an event exactly on an edge goes to the bin on
its right, as ``np.searchsorted(edges, x, side="right") - 1`` always put it here. A Regular
axis finds the bin by floating-point division and can put such an event one bin lower.

Two rules for events outside the edges, both the engine's since before ``hist``:
- ``CLIP``: below the first edge counts in the first bin; at or above the last edge (and
  NaN) in the last bin (the training's mass histograms and background fits);
- ``DROP``: outside [first, last] left out; the last edge itself is in the last bin
  (``np.histogram``'s rule; the exported mass histograms).
"""
from __future__ import annotations

import hist
import numpy as np

CLIP = "clip"
DROP = "drop"


def bin_index(edges, values) -> np.ndarray:
    """The bin of each value under the ``CLIP`` rule (int64, 0..len(edges)-2)."""
    axis = hist.axis.Variable(np.asarray(edges, dtype=np.float64))
    index = axis.index(np.asarray(values, dtype=np.float64))
    return np.clip(index, 0, len(axis) - 1).astype(np.int64, copy=False)


def weighted(edges, values, weights, *, by=(), outside: str = CLIP,
             label: str = "") -> hist.Hist:
    """Histogram of ``values`` with ``weights`` over ``edges``, split by integer labels.

    ``by``: ``((labels, n), ...)``, one axis 0..n-1 per entry in front of the edges axis
    (an event whose label is outside 0..n-1 is left out). ``outside``: CLIP or DROP (see
    the module). ``.values()`` are sums of weights, ``.variances()`` sums of squared
    weights, both float64 and summed in event order (as ``np.bincount`` summed them).
    The flow bins stay empty: an outside event is in an edge bin or left out.
    """
    if outside not in (CLIP, DROP):
        raise ValueError(f"outside must be {CLIP!r} or {DROP!r}, got {outside!r}")
    edges = np.asarray(edges, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    labels = [np.asarray(lab, dtype=np.int64) for lab, _ in by]
    lo, hi = edges[0], edges[-1]
    if outside == DROP:
        keep = (values >= lo) & (values <= hi)
        values, weights = values[keep], weights[keep]
        labels = [lab[keep] for lab in labels]
    # Moving the values into the edge bins before filling (not the sums afterwards) keeps
    # every weight in its place in the event-order sum: the edge bins come out bit for bit
    # as np.bincount summed them. NaN sorted last in np.searchsorted: the last bin.
    top = np.nextafter(hi, lo)
    values = np.nan_to_num(np.clip(values, lo, top), copy=False, nan=top)
    axes = [hist.axis.Integer(0, int(n), underflow=False, overflow=False)
            for _, n in by]
    h = hist.Hist(*axes, hist.axis.Variable(edges, label=label), storage=hist.storage.Weight())
    h.fill(*labels, values, weight=weights)
    return h
