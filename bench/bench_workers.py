"""Celery workers: throughput of one vs two workers, and the Celery path's start-up overhead.

    python bench/bench_workers.py [--runs 4] [--epochs 400] [--store postgresql|sqlite]

Starts throwaway Redis and PostgreSQL servers on loopback ports (tests/local_servers.py)
and real workers (``celery -A gato_dash.worker worker --concurrency 1``). Runs are started
the way the web app starts them when they are created: ``submit`` of the dispatcher
(gato_dash.runtime.dispatch), a Celery wake-up, or, for the embedded mode, the job runner
and its fork server (as ``python app.py`` runs them).

Prints:
1. ``--runs`` short runs queued at once on one worker, then on two: wall time until all
   have finished, the throughput ratio, and per run its queue wait and training time.
   All workers share this machine's cores, so the ratio shows what a second worker adds
   *here*; on separate machines each worker brings its own cores.
2. Time from sending a job to its first epoch in the store, for one short run: embedded
   (fork server) vs Celery worker, both warm (TensorFlow imported, XLA cache filled), as
   the median of 3.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import local_servers  # noqa: E402
from gato_dash import runtime  # noqa: E402
from gato_dash.runtime import backends, dispatch  # noqa: E402
from gato_dash.runtime.run_store import RunStore  # noqa: E402


def config(epochs: int) -> dict:
    return {"scenario": "one_d", "n_signal": 2000, "n_bkg": 6000, "epochs": epochs,
            "n_cats": [3], "snapshot_interval": 50}


def wait_all(store: RunStore, run_ids, timeout_s=900) -> None:
    deadline = time.monotonic() + timeout_s
    while any(store.run_status(r)["status"] in ("queued", "running") for r in run_ids):
        if time.monotonic() > deadline:
            raise SystemExit("runs did not finish in time")
        time.sleep(0.1)
    bad = [(r, store.run_status(r)["status"]) for r in run_ids
           if store.run_status(r)["status"] != "finished"]
    if bad:
        raise SystemExit(f"runs did not finish: {bad}")


def first_epoch_s(store: RunStore, dispatcher, epochs: int) -> float:
    run_id = store.create_run(config(epochs))
    t0 = time.monotonic()
    dispatcher.submit(run_id)
    while not store.epochs(run_id, snapshots=False, limit=1):
        if time.monotonic() - t0 > 300:
            raise SystemExit("no first epoch within 300 s")
        time.sleep(0.005)
    elapsed = time.monotonic() - t0
    wait_all(store, [run_id])
    return elapsed


def batch(store: RunStore, dispatcher, n_runs: int, epochs: int) -> dict:
    run_ids = [store.create_run(config(epochs)) for _ in range(n_runs)]
    t_sent = time.time()
    t0 = time.monotonic()
    for run_id in run_ids:
        dispatcher.submit(run_id)
    wait_all(store, run_ids)
    wall = time.monotonic() - t0
    runs = [store.get_run(r) for r in run_ids]
    return {"wall": wall,
            "wait": [r["started"] - t_sent for r in runs],
            "train": [r["finished"] - r["started"] for r in runs]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--store", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="gato-bench-workers-"))
    data_dir = scratch / "data"
    data_dir.mkdir()
    servers, workers = [], []
    try:
        redis = local_servers.start_redis()
        servers.append(redis)
        if args.store == "postgresql":
            pg = local_servers.start_postgres()
            servers.append(pg)
            store_location = local_servers.create_database(pg.url, "bench")
        else:
            store_location = str(data_dir / backends.STORE_FILE)
        store = RunStore(store_location, data_dir)
        runtime.configure_tensorflow(data_dir)
        env = {**os.environ, backends.BROKER_ENV: redis.url, backends.STORE_ENV: store_location,
               backends.DATA_DIR_ENV: str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONPATH": str(REPO)}
        celery_app = backends.make_celery(redis.url)
        celery = dispatch.CeleryDispatch(celery_app, RunStore(store_location, data_dir)).start()

        def start_workers(names):
            for name in names:
                workers.append(local_servers.start_worker(name, env, scratch / f"{name}.log",
                                                          REPO))
            deadline = time.monotonic() + 120
            while len(backends.listening_workers(celery_app, 0.5)) < len(names):
                if time.monotonic() > deadline:
                    raise SystemExit("workers did not start")
            # warm-up, untimed: every worker imports TensorFlow and compiles once
            warm = [store.create_run(config(20)) for _ in names]
            for run_id in warm:
                celery.submit(run_id)
            wait_all(store, warm)

        def stop_workers():
            while workers:
                local_servers.kill_worker(workers.pop())

        print(f"store: {args.store}; {args.runs} runs of {args.epochs} epochs, one_d, "
              f"8000 events, K=3; {os.cpu_count()} cores on this machine")
        results = {}
        for n_workers in (1, 2):
            start_workers([f"w{i + 1}" for i in range(n_workers)])
            results[n_workers] = batch(store, celery, args.runs, args.epochs)
            r = results[n_workers]
            print(f"{n_workers} worker(s): all {args.runs} done in {r['wall']:.1f} s; "
                  f"per run: train {statistics.median(r['train']):.1f} s (median), "
                  f"queue wait " + ", ".join(f"{w:.1f}" for w in sorted(r['wait'])) + " s")
            if n_workers == 1:
                # one warm worker is left running for the start-up comparison below
                celery_first = [first_epoch_s(store, celery, args.epochs) for _ in range(3)]
            stop_workers()
        print(f"throughput, two workers / one: {results[1]['wall'] / results[2]['wall']:.2f}x")

        celery.close()
        # embedded: the job runner and fork server that `python app.py` uses
        from gato_dash.runtime.jobs import use_fork_server, warm_up_fork_server

        use_fork_server(data_dir)
        warm_up_fork_server()
        embedded = dispatch.EmbeddedRunner(RunStore(store_location, data_dir), data_dir).start()
        first_epoch_s(store, embedded, 20)  # warm-up: the XLA cache is filled already
        embedded_first = [first_epoch_s(store, embedded, args.epochs) for _ in range(3)]
        e, c = statistics.median(embedded_first), statistics.median(celery_first)
        embedded.close()
        print(f"submit -> first epoch in the store (median of 3): embedded {e:.2f} s, "
              f"Celery {c:.2f} s, overhead {c - e:+.2f} s")
    finally:
        for proc in workers:
            local_servers.kill_worker(proc)
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
