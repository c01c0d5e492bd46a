"""What the run page's headline significance (issue #22: each Z with its sample) costs.

    python bench/bench_run_header.py [--rounds 9]

The headline reads the run's results from the store once more when the page is built (and
when the poll sees a new result). Measured in one process, interleaved, on a synthesized
finished bump-hunt run (tests/helpers/records.py: K = 5 and 8, 400 epochs, figures built
as the training job builds them): the server-side build of the whole run page
(``pages.run.layout``, which includes the headline) and the headline alone. Printed: the
medians and the headline's share of the page build, so the page's time before the change
is the page's time minus the headline's.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from helpers import records as rf  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)

    from gato_dash import runtime
    from gato_dash.app import create_app

    with tempfile.TemporaryDirectory() as folder:
        create_app(Path(folder) / "data", runtime.Settings())
        run_page = sys.modules["gato_dash.pages.run"]
        run_id, _, _ = rf.store_finished_run(runtime.store(), prebuild=True)
        for _ in range(2):  # figure cache and store connection warm, as on a second visit
            run_page.layout(run_id=run_id)
        page_ms, headline_ms = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            run_page.layout(run_id=run_id)
            t1 = time.perf_counter()
            text = run_page.headline(run_id)
            t2 = time.perf_counter()
            page_ms.append((t1 - t0) * 1000)
            headline_ms.append((t2 - t1) * 1000)
        page, head = statistics.median(page_ms), statistics.median(headline_ms)
        print(f"headline: {text}")
        print(f"run page build (with the headline): {page:8.2f} ms  (median of {args.rounds})")
        print(f"headline alone (its own store reads): {head:8.2f} ms")
        print(f"page with / without the headline: {page / max(page - head, 1e-9):.3f}x "
              f"(headline = {100 * head / page:.1f} % of the page build)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
