"""Time of the statistical-model summary (pyhf workspace + expected discovery significance
with and without MC-stat uncertainty) for one K, as the training job computes it right
after each K, and of the whole analysis export of one K.

    python bench/bench_statmodel.py [--repeat 3]

Events: the bump-hunt toy at its default size (two signals, five backgrounds: the largest
workspace a toy run makes). Categories: K quantiles of the signal1 score, so the yields
(and the MC statistics) look like a trained run's. Budget: the summary ready within 1 s
of a K finishing, for K <= 20 (pyhf numpy backend); the first summary of a process also
pays the pyhf import, printed separately.
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BUDGET_S = 1.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20])
    args = parser.parse_args()

    from gato_core.scenarios import generate
    from gato_core.yields import yields_table

    tick = time.perf_counter()
    importlib.import_module("pyhf")  # timed on its own: paid once per process
    import_s = time.perf_counter() - tick
    from gato_core import statmodel

    events = generate("bump_hunt")
    print(f"events: {events.n_events:,} (bump hunt defaults); pyhf import {import_s:.2f} s")
    print(f"{'K':>3} {'summary s (median)':>19} {'of budget':>9} {'Z asimov':>9} "
          f"{'Z pyhf':>8} {'Z pyhf+MC':>9}")
    for k in args.ks:
        score = events.scores[:, 0].astype(np.float64)
        edges = np.quantile(score, np.linspace(0, 1, k + 1)[1:-1])
        category = np.searchsorted(edges, score, side="right")
        table = yields_table(events, category, k)
        times = []
        for _ in range(args.repeat):
            tick = time.perf_counter()
            summary = statmodel.summary(table)
            times.append(time.perf_counter() - tick)
        median = statistics.median(times)
        s = "signal1"
        print(f"{k:>3} {median:>19.3f} {median / BUDGET_S:>8.0%} "
              f"{summary['asimov_z'][s]:>9.4f} {summary['pyhf_z'][s]:>8.4f} "
              f"{summary['pyhf_z_mc_stat'][s]:>9.4f}")


if __name__ == "__main__":
    main()
