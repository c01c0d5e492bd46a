"""Runs table: time to build its rows for many stored runs.

    python bench/bench_runs_table.py [--runs 200]

Stores N finished bump-hunt runs (two K each, records of realistic size from
tests/helpers/records.py) in a scratch store, then times the runs page's table rows
(gato_dash.pages.runs.table_rows: best Z from RunStore.result_summaries) against reading
every full result record in Python, which is what the table did before.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from helpers import records as rf  # noqa: E402
from gato_dash import runs_table  # noqa: E402
from gato_dash.runtime.run_store import RunStore  # noqa: E402


def best_of(repeat: int, work) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        store = RunStore(Path(scratch) / "runs.sqlite")
        run, _, results = rf.run_record("bump_hunt", n_cats=(5, 8))
        for i in range(args.runs):
            run_id = store.create_run(run["config"], name=f"run {i}")
            store.claim(run_id)
            for result in results:
                store.put_result(run_id, result)
            store.set_status(run_id, "finished")
        size_mb = os.path.getsize(store.path) / 1e6

        # the page module registers itself with Dash Pages: it needs an app first
        import dash

        from gato_dash.app import PACKAGE
        dash.Dash("gato_dash", use_pages=True, pages_folder=str(PACKAGE / "pages"))
        table_rows = sys.modules["gato_dash.pages.runs"].table_rows

        summaries = best_of(3, lambda: table_rows(store))
        full = best_of(3, lambda: [runs_table.run_table_row(r, store.results(r["id"]))
                                   for r in store.list_runs()])
    print(f"{args.runs} finished bump-hunt runs ({size_mb:.0f} MB store): runs table rows in "
          f"{summaries * 1000:.0f} ms; reading every full result instead: {full * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
