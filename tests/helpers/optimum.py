"""Where GATO stands against the exact 1-D optimum, checked the one way that holds.

The optimum (gato_core.baselines.optimum_1d) is the best split of 1500 fine bins; GATO's
cuts are continuous, so GATO may beat it, but only by the fine-binning resolution: the
same cuts moved to the nearest fine-bin edges form one of the splits the optimum chose
among, so they can never beat it.
"""
from __future__ import annotations

from gato_core.baselines import FINE_BINS, fine_histograms, optimal_partition
from gato_core.significance import combined_z


def snapped_against_optimum(events, boundaries) -> tuple[float, float, int, int]:
    """(Z of ``boundaries`` moved to the nearest fine-bin edges, the optimum over the fine
    bins with as many bins and at least as many background MC events in each, that number
    of bins, that least number of events)."""
    fine_s, fine_b, _, fine_n = fine_histograms(events)
    snapped = sorted({int(round(x * FINE_BINS)) for x in boundaries} - {0, FINE_BINS})
    cuts = [0] + snapped + [FINE_BINS]
    pieces = list(zip(cuts[:-1], cuts[1:]))
    s = [fine_s[a:b].sum() for a, b in pieces]
    b = [fine_b[a:b].sum() for a, b in pieces]
    least = int(min(fine_n[a:b].sum() for a, b in pieces))
    best, _ = optimal_partition(fine_s, fine_b, len(pieces), fine_n, least)
    return combined_z(s, b), best, len(pieces), least
