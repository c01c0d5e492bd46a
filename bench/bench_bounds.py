"""Bounded resources (issue #21): what hostile input costs, before and after, in one run.

Each figure is measured in a fresh Python process against a checkout of the code, so the
old and the new code run side by side on the same machine at the same time:

- upload start: median time of a start with 10 and with 5000 abandoned upload folders
  (idle for an hour, not yet stale), and their ratio;
- upload start body: peak memory growth of a server sent a 300 MB JSON start body with
  chunked transfer encoding (no Content-Length);
- Parquet bomb: a 0.9 MB file declaring 100 M rows, inspected and imported: time, peak
  memory growth, outcome; the same for a CSV of 25 M short rows;
- process labels: importing 20 k and 2 M distinct labels: time and outcome (the old code
  is stopped after ``--timeout`` seconds);
- figure cache: files beside a run after 500 crafted result counts.

Usage: python bench/bench_bounds.py [--before PATH] [--timeout 60]  (for the label imports)
``--before`` is a checkout of the old code, e.g. ``git worktree add /tmp/before main``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


# ----- measurements, each run in its own process (``--worker NAME CHECKOUT SCRATCH``) ----
def peak_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def upload_start(scratch: Path) -> dict:
    import statistics
    import time

    from gato_dash import uploads
    from gato_dash.app import create_app

    def median_start(n_old: int) -> tuple[float, float]:
        client = create_app(scratch / f"data{n_old}").server.test_client()
        folder = uploads.uploads_folder()
        folder.mkdir(parents=True)
        hour_ago = time.time() - 3600
        for i in range(n_old):
            old = folder / f"{i:032x}"
            old.mkdir()
            (old / "upload.json").write_text(json.dumps({"filename": "a.csv", "size": 10,
                                                         "started": hour_ago}))
            (old / "a.csv").write_bytes(b"12345")
            os.utime(old / "a.csv", (hour_ago, hour_ago))
        body = json.dumps({"filename": "b.csv", "size": 10})
        times = []
        for _ in range(21):
            began = time.perf_counter()
            answer = client.post(uploads.ROUTE, data=body, content_type="application/json")
            times.append(time.perf_counter() - began)
            assert answer.status_code == 200, answer.data
        return times[0], statistics.median(times[1:])

    first_few, few = median_start(10)
    first_many, many = median_start(5000)
    return {"first start, 10 old (ms)": first_few * 1e3, "median start, 10 old (ms)": few * 1e3,
            "first start, 5000 old (ms)": first_many * 1e3,
            "median start, 5000 old (ms)": many * 1e3, "ratio 5000/10": many / few}


def upload_body(scratch: Path) -> dict:
    import http.client
    import threading

    from werkzeug.serving import make_server

    from gato_dash import uploads
    from gato_dash.app import create_app

    server = make_server("127.0.0.1", 0, create_app(scratch / "data").server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    before = peak_bytes()
    piece = b"x" * (1 << 20)
    body = iter([b'{"filename": "a.csv", "size": 10, "pad": "', *(piece for _ in range(300)),
                 b'"}'])
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=300)
    try:
        connection.request("POST", uploads.ROUTE, body=body, encode_chunked=True,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        status = response.status
        response.read()
    except OSError as err:  # the server answered early and closed the connection
        status = f"connection closed ({type(err).__name__})"
    server.shutdown()
    return {"status": status, "peak memory growth (MB)": (peak_bytes() - before) / 1e6}


def write_bomb(path: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 10_000_000
    table = pa.table({
        "score": pa.array(np.full(rows, 0.5, np.float32)),
        "weight": pa.array(np.ones(rows, np.float32)),
        "process": pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int32)),
                                                  pa.array(["signal"]))})
    with pq.ParquetWriter(path, table.schema) as writer:
        for _ in range(10):
            writer.write_table(table, row_group_size=rows)


MAPPING = {"score_columns": ["score"], "weight_column": "weight",
           "process_column": "process", "signals": ["signal"]}


def bomb(scratch: Path, step: str) -> dict:
    import importlib
    import time

    from gato_core.datasets import read_events
    from gato_core.readers import DatasetError, inspect_sources
    importlib.import_module("pyarrow.parquet")  # imported before the baseline
    path = scratch / ("bomb.parquet" if not step.startswith("csv") else "rows.csv")
    before = peak_bytes()
    began = time.perf_counter()
    try:
        if step in ("inspect", "csv inspect"):
            inspect_sources([str(path)])
        else:
            read_events([str(path)], MAPPING)
        outcome = "read"
    except DatasetError as err:
        outcome = str(err)[:90]
    return {"seconds": time.perf_counter() - began,
            "peak memory growth (MB)": (peak_bytes() - before) / 1e6, "outcome": outcome}


def labels(scratch: Path, n_labels: int) -> dict:
    import time

    from gato_core.datasets import read_events
    from gato_core.readers import DatasetError

    began = time.perf_counter()
    try:
        read_events([str(scratch / f"labels{n_labels}.parquet")],
                    {"score_columns": ["score"], "process_column": "process",
                     "signals": ["signal"]})
        outcome = "imported"
    except DatasetError as err:
        outcome = str(err)[:90]
    except Exception as err:  # the old code overflowed int16 beyond 32,767 processes
        outcome = f"{type(err).__name__}: {str(err)[:70]}"
    return {"seconds": time.perf_counter() - began, "outcome": outcome}


def write_labels(path: Path, n_labels: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    names = pc.binary_join_element_wise("p", pa.array(np.arange(n_labels)).cast(pa.string()), "")
    names = pa.concat_arrays([pa.array(["signal"]), names.slice(1)])
    pq.write_table(pa.table({"score": pa.array(np.linspace(0, 1, n_labels, dtype=np.float32)),
                             "process": names}), path)


def figure_files(scratch: Path) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from helpers import records as rf

    from gato_dash import figure_cache as fc
    from gato_dash.runtime.run_store import RunStore

    store = RunStore(scratch / "runs.sqlite")
    run_id, _, _ = rf.store_finished_run(store, "one_d", n_cats=(3, 5))
    cache = fc.FigureCache(size=24, store=lambda: store)
    for n in range(500):  # what a K dropdown's options of length n ask for
        cache.get(fc.run_key(run_id, n), lambda n=n: {"results": n})
    folder = store.run_dir(run_id) / fc.FIGURES_DIR
    return {"figure files after 500 crafted requests": len(list(folder.iterdir()))}


WORKERS = {
    "upload start": upload_start,
    "upload start body, 300 MB chunked": upload_body,
    "parquet bomb, inspect": lambda scratch: bomb(scratch, "inspect"),
    "parquet bomb, import": lambda scratch: bomb(scratch, "import"),
    "CSV of 25 M short rows (260 MB), inspect": lambda scratch: bomb(scratch, "csv inspect"),
    "CSV of 25 M short rows (260 MB), import": lambda scratch: bomb(scratch, "csv import"),
    "labels 20 k, import": lambda scratch: labels(scratch, 20_000),
    "labels 2 M, import": lambda scratch: labels(scratch, 2_000_000),
    "figure cache": figure_files,
}


def worker(name: str, checkout: str, scratch: str) -> None:
    sys.path.insert(0, checkout)
    os.chdir(checkout)
    print(json.dumps(WORKERS[name](Path(scratch))))


# ----- the comparison -------------------------------------------------------------------
def measure(name: str, checkout: Path, scratch: Path, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(dir=scratch) as own:
        for shared in [*scratch.glob("*.parquet"), *scratch.glob("*.csv")]:
            os.symlink(shared, Path(own) / shared.name)
        try:
            done = subprocess.run([sys.executable, __file__, "--worker", name, str(checkout),
                                   own], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"outcome": f"did not finish in {timeout:.0f} s (stopped)"}
    if done.returncode != 0:
        return {"outcome": "failed: " + done.stderr.strip().splitlines()[-1][:120]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(value) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a checkout of the old code")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return 0
    checkouts = {"before": args.before, "after": REPO} if args.before else {"after": REPO}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        write_bomb(scratch / "bomb.parquet")
        (scratch / "rows.csv").write_bytes(b"score,weight,process\n"
                                           + b"0.5,1,signal\n0.5,1,b\n" * 12_500_000)
        write_labels(scratch / "labels20000.parquet", 20_000)
        write_labels(scratch / "labels2000000.parquet", 2_000_000)
        print(f"Parquet bomb: {os.path.getsize(scratch / 'bomb.parquet') / 1e6:.2f} MB on disk, "
              f"100,000,000 rows")
        for name in WORKERS:
            print(f"\n{name}")
            for label, checkout in checkouts.items():
                # only the label counts may never end (the old quadratic code)
                limit = args.timeout if name.startswith("labels") else 1800
                figures = measure(name, checkout, scratch, limit)
                print(f"  {label:6} " + "; ".join(f"{k}: {show(v)}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
