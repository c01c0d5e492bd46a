"""Cost of the weighted histograms: the numpy idiom the engine used before (searchsorted,
clip, bincount of a flat index) against gato_core.binning (hist, Weight storage), on
2 M events, for the three shapes the engine fills:

- background fit during training (every ``rewt_interval`` epochs of a bump hunt):
  10 mass bins x K categories, sum of weights only;
- result mass histograms: 80 bins x K categories x 7 processes, sum of weights;
- exported mass histograms: the same with sum of squared weights, events outside dropped.

    python bench/bench_binning.py [--events 2000000] [--repeat 5]

Prints the median time of each and the ratio hist / numpy (above 1: hist is slower).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gato_core import binning  # noqa: E402

N_CATS, N_PROC = 8, 7


def numpy_fit_counts(edges, mass, weight, category):
    n = len(edges) - 1
    bins = np.clip(np.searchsorted(edges, mass, side="right") - 1, 0, n - 1)
    counts = np.zeros((N_CATS, n))
    np.add.at(counts, (category, bins), weight)
    return counts


def numpy_mass_hists(edges, mass, weight, category, process, squares=False, drop=False):
    n = len(edges) - 1
    bins = np.clip(np.searchsorted(edges, mass, side="right") - 1, 0, n - 1)
    if drop:
        keep = (mass >= edges[0]) & (mass <= edges[-1])
        bins, category, process, weight = bins[keep], category[keep], process[keep], weight[keep]
    flat = (category * N_PROC + process) * n + bins
    w = weight.astype(np.float64)
    size = N_CATS * N_PROC * n
    out = [np.bincount(flat, weights=w, minlength=size)]
    if squares:
        out.append(np.bincount(flat, weights=w * w, minlength=size))
    return out


def median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.events
    mass = rng.uniform(100.0, 180.0, n)
    weight = rng.exponential(1.0, n).astype(np.float32)
    category = rng.integers(0, N_CATS, n)
    process = rng.integers(0, N_PROC, n)
    fit_edges, mass_edges = np.linspace(100, 180, 11), np.linspace(100, 180, 81)
    cases = [
        ("background fit (training, per rewt_interval)",
         lambda: numpy_fit_counts(fit_edges, mass, weight, category),
         lambda: binning.weighted(fit_edges, mass, weight, by=((category, N_CATS),)).values()),
        ("result mass histograms",
         lambda: numpy_mass_hists(mass_edges, mass, weight, category, process),
         lambda: binning.weighted(mass_edges, mass, weight,
                                  by=((category, N_CATS), (process, N_PROC))).values()),
        ("exported mass histograms (sum w^2, drop)",
         lambda: numpy_mass_hists(mass_edges, mass, weight, category, process, True, True),
         lambda: binning.weighted(mass_edges, mass, weight,
                                  by=((category, N_CATS), (process, N_PROC)),
                                  outside=binning.DROP).variances()),
    ]
    print(f"{n:,} events, median of {args.repeat}")
    for name, by_numpy, by_hist in cases:
        t_numpy, t_hist = median_time(by_numpy, args.repeat), median_time(by_hist, args.repeat)
        print(f"{name:46s} numpy {t_numpy * 1e3:7.1f} ms  hist {t_hist * 1e3:7.1f} ms  "
              f"ratio {t_hist / t_numpy:5.2f}")


if __name__ == "__main__":
    main()
