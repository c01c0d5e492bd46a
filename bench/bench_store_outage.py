"""A writing job across PostgreSQL restarts: what a restart costs it, with and without retries.

    python bench/bench_store_outage.py [--restarts 3] [--rate 200]

Starts a throwaway PostgreSQL server (tests/local_servers.py). A writer thread plays a
training job: it claims a run and appends one epoch record every 1/``--rate`` s, with a
heartbeat, as ``gato_dash.runtime.jobs`` does. Meanwhile the server is restarted
(``pg_ctl restart -m fast``, which ends every session) ``--restarts`` times, 3 s apart.
Run twice in one go, on the same server:

- ``retry_s=0``: no retry, how the store behaved before (the first lost connection
  ends the job);
- ``retry_s=STORE_RETRY_S``: the store's default.

Prints per mode: restarts survived, epochs written, the longest stall between two stored
epochs (what a restart costs a job), and lost/duplicated epochs (seq order vs epoch order).
No TensorFlow: only the store is measured.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import local_servers  # noqa: E402
from gato_dash.runtime.run_store import RunStore  # noqa: E402
from gato_dash.runtime.store_retry import STORE_RETRY_S  # noqa: E402

CONFIG = {"scenario": "one_d", "n_signal": 2000, "n_bkg": 6000, "epochs": 10**6, "n_cats": [3]}


def epoch_record(epoch: int) -> dict:
    return {"kind": "epoch", "n_cats": 3, "epoch": epoch, "epochs": 10**6, "loss": -1.0,
            "significance": {"signal": 1.0}, "elapsed_s": 0.005 * epoch, "snapshot": None}


def one_mode(server, url: str, data_dir: Path, retry_s: float, restarts: int, rate: float):
    store = RunStore(url, data_dir, retry_s=retry_s)
    run_id = store.create_run(CONFIG)
    assert store.claim(run_id, pid=None)
    stop = threading.Event()
    stamps: list[float] = []
    failure: list[str] = []

    def job():
        epoch = 0
        try:
            while not stop.is_set():
                store.append_epoch(run_id, epoch_record(epoch))
                stamps.append(time.monotonic())
                if epoch % 20 == 0:
                    store.heartbeat(run_id)
                epoch += 1
                time.sleep(1.0 / rate)
        except Exception as exc:  # what ended the job
            failure.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}")

    thread = threading.Thread(target=job)
    thread.start()
    restart_s = []
    time.sleep(2.0)
    for _ in range(restarts):
        started = time.monotonic()
        server.restart()
        restart_s.append(time.monotonic() - started)
        time.sleep(3.0)
    stop.set()
    thread.join(STORE_RETRY_S + 10)
    reader = RunStore(url, data_dir)
    epochs = [r["epoch"] for r in reader.epochs(run_id, snapshots=False)]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    lost = len(set(range(max(epochs) + 1)) - set(epochs)) if epochs else 0
    duplicated = len(epochs) - len(set(epochs))
    store.close()
    reader.close()
    return {"failure": failure[0] if failure else "", "epochs": len(epochs),
            "max_stall_s": max(gaps) if gaps else float("nan"), "lost": lost,
            "duplicated": duplicated, "restart_s": restart_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0, help="epochs per second")
    args = parser.parse_args()
    server = local_servers.start_postgres()
    try:
        url = local_servers.create_database(server.url, "outage")
        data_dir = Path(tempfile.mkdtemp(prefix="gato-outage-"))
        for label, retry_s in (("before (no retry)", 0.0),
                               (f"after (retry up to {STORE_RETRY_S:.0f} s)", STORE_RETRY_S)):
            out = one_mode(server, url, data_dir, retry_s, args.restarts, args.rate)
            restarts = ", ".join(f"{s:.2f}" for s in out["restart_s"])
            print(f"{label}:")
            print(f"  pg_ctl restart took {restarts} s")
            print(f"  job {'ENDED: ' + out['failure'] if out['failure'] else 'kept writing'}")
            print(f"  epochs stored {out['epochs']}, longest stall {out['max_stall_s']:.2f} s, "
                  f"lost {out['lost']}, duplicated {out['duplicated']}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
