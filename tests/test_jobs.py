"""The training job: every record reaches the store; cancel, divergence and errors end the
run with the right status; a run is trained once. The last tests use the real engine."""
from __future__ import annotations

import multiprocessing
import time
from types import SimpleNamespace

import pytest

from gato_dash.runtime.jobs import run_training
from gato_dash.runtime.run_store import RunStore
from helpers.waiting import wait_until

TINY = {"scenario": "one_d", "n_signal": 2000, "n_bkg": 6000, "epochs": 30, "n_cats": [3],
        "snapshot_interval": 10}


class Rec(SimpleNamespace):
    def to_dict(self):
        return dict(self.__dict__)


def fake_train(epochs=5, ks=(3,), diverge_at=None, fail_at=None):
    """A stand-in for gato_core.training.train with the same record stream."""
    def train(config, should_stop=None, cache_dir=None, events=None, datasets_dir=None):
        yield Rec(kind="run_info", scenario="one_d", signal_names=["signal"])
        for k in ks:
            status, message, done = "finished", "", 0
            for e in range(epochs):
                if should_stop():
                    status, message = "cancelled", f"cancelled at epoch {e}"
                    break
                if fail_at == e:
                    raise FloatingPointError("boom")
                if diverge_at == e:
                    status, message = "diverged", f"diverged at epoch {e}"
                    break
                done = e + 1
                yield Rec(kind="epoch", n_cats=k, epoch=e, epochs=epochs, loss=-1.0,
                          significance={"signal": 1.0}, elapsed_s=0.01 * done, snapshot=None)
            yield Rec(kind="result", n_cats=k, status=status, message=message, epochs_done=done)
            if status != "finished":
                return
    return train


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs.sqlite")


def test_every_record_is_stored(store, tmp_path):
    run_id = store.create_run(TINY)
    status = run_training(store.path, run_id, tmp_path / "events", train=fake_train(7, (3, 5)))
    assert status == "finished"
    run = store.get_run(run_id)
    assert run["status"] == "finished" and run["message"] == ""
    assert run["run_info"]["scenario"] == "one_d"
    assert [(r["n_cats"], r["epoch"]) for r in store.epochs(run_id)] == \
        [(3, e) for e in range(7)] + [(5, e) for e in range(7)]
    assert store.result_ks(run_id) == [3, 5]
    assert run["started"] <= run["finished"]


def test_trained_once(store):
    run_id = store.create_run(TINY)
    assert run_training(store.path, run_id, train=fake_train()) == "finished"
    assert run_training(store.path, run_id, train=fake_train()) == "not-claimed"
    assert len(store.epochs(run_id)) == 5


def test_cancel_between_epochs(store):
    run_id = store.create_run(TINY)
    calls = {"n": 0}

    def train(config, should_stop=None, cache_dir=None, datasets_dir=None):
        def stop_after_three():
            calls["n"] += 1
            if calls["n"] == 4:
                store.request_cancel(run_id)
                # the job reads the flag at most every CANCEL_POLL_S: ask until it has
                return wait_until(should_stop, 5.0, "the job to read the cancel",
                                  interval_s=0.01)
            return should_stop()
        return fake_train(50)(config, should_stop=stop_after_three)

    assert run_training(store.path, run_id, train=train) == "cancelled"
    run = store.get_run(run_id)
    assert run["status"] == "cancelled"
    assert run["message"] == "cancelled at epoch 3 (K=3)"
    assert len(store.epochs(run_id)) == 3 and store.result_ks(run_id) == [3]  # work kept


def test_diverged(store):
    run_id = store.create_run(TINY)
    assert run_training(store.path, run_id, train=fake_train(10, (3, 5), diverge_at=4)) == "diverged"
    run = store.get_run(run_id)
    assert run["message"] == "diverged at epoch 4 (K=3)"


def test_failure_is_one_line_for_the_user(store):
    run_id = store.create_run(TINY)
    assert run_training(store.path, run_id, train=fake_train(10, fail_at=2)) == "failed"
    run = store.get_run(run_id)
    assert run["status"] == "failed"
    assert run["message"] == "training failed: FloatingPointError: boom"
    assert "Traceback" not in run["message"]


def test_invalid_stored_config_fails_cleanly(store):
    run_id = store.create_run({"scenario": "one_d", "epochs": -3})
    assert run_training(store.path, run_id, train=fake_train()) == "failed"
    assert "epochs" in store.get_run(run_id)["message"]


def test_deleted_mid_run_stops(store):
    run_id = store.create_run(TINY)

    def train(config, should_stop=None, cache_dir=None, datasets_dir=None):
        for rec in fake_train(100)(config, should_stop=should_stop):
            if rec.kind == "epoch" and rec.epoch == 2:
                store.delete(run_id)
            yield rec

    assert run_training(store.path, run_id, train=train) == "deleted"
    assert store.get_run(run_id) is None and store.epochs(run_id) == []


# ----- the real engine ----------------------------------------------------------------------
def test_real_engine_tiny_run(store, tmp_path):
    run_id = store.create_run(TINY)
    assert run_training(store.path, run_id, tmp_path / "events") == "finished"
    epochs = store.epochs(run_id)
    assert [r["epoch"] for r in epochs] == list(range(30))
    assert all(r["n_cats"] == 3 for r in epochs)
    snapshots = [r["epoch"] for r in epochs if r["snapshot"]]
    assert snapshots == [0, 10, 20, 29]
    (result,) = store.results(run_id)
    assert result["status"] == "finished" and result["significance"]["signal"] > 0
    assert store.get_run(run_id)["run_info"]["optimum_1d"]
    assert any((tmp_path / "events").iterdir())  # events cached for the next run


def test_real_engine_cancel_within_two_seconds(store, tmp_path):
    run_id = store.create_run({**TINY, "epochs": 100000, "n_cats": [3, 5]})
    # A process of its own from a fork server, as in the app. (A "spawn" child that ran TF
    # and was cancelled aborts in interpreter finalisation; fork-server children end with
    # os._exit and never finalise.)
    job = multiprocessing.get_context("forkserver").Process(
        target=run_training, args=(store.path, run_id, tmp_path / "events"))
    job.start()
    wait_until(lambda: store.run_status(run_id)["epochs_done"] >= 5, 120, "5 epochs",
               interval_s=0.05)
    t0 = time.monotonic()
    store.request_cancel(run_id)
    wait_until(lambda: store.run_status(run_id)["status"] != "running", 30,
               "the cancelled run to stop", interval_s=0.02)
    took = time.monotonic() - t0
    assert took < 2.0, f"cancel took {took:.2f} s, longer than 2 s"
    job.join(30)
    run = store.get_run(run_id)
    assert job.exitcode == 0 and run["status"] == "cancelled"
    n = run["epochs_done"]
    assert run["message"] == f"cancelled at epoch {n} (K=3)"
    assert store.result_ks(run_id) == [3]  # the partial training is kept


def slow_data_train(config, should_stop=None, cache_dir=None, events=None, datasets_dir=None):
    """Stands still in data preparation, as generating 1.2 M events does, never asking
    should_stop: only the watchdog can end it in time."""
    time.sleep(60)
    yield Rec(kind="run_info", scenario="one_d", signal_names=["signal"])


def test_cancel_during_data_preparation_ends_the_job(store, tmp_path):
    run_id = store.create_run(TINY)
    job = multiprocessing.get_context("forkserver").Process(
        target=run_training, args=(store.path, run_id, tmp_path / "events", slow_data_train))
    job.start()
    wait_until(lambda: store.run_status(run_id)["status"] == "running", 60,
               "the job to claim the run", interval_s=0.05)
    t0 = time.monotonic()
    store.request_cancel(run_id)
    job.join(20)  # far below the 60 s the data step would take
    took = time.monotonic() - t0
    print(f"\ncancel during data preparation: job ended {took:.2f} s after the request")
    assert job.exitcode == 0, "the job did not end after its cancel"
    run = store.get_run(run_id)
    assert run["status"] == "cancelled"
    assert run["message"] == "cancelled while preparing the data"


class FlagReads:
    """The real store, counting how often the cancel flag is read."""

    def __init__(self, store: RunStore):
        self.store, self.count = store, 0

    def cancel_requested(self, run_id: str) -> bool:
        self.count += 1
        return self.store.cancel_requested(run_id)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_watchdog_leaves_an_engine_that_stops_by_itself_alone(store):
    from gato_dash.runtime.jobs import CancelWatchdog

    run_id = store.create_run(TINY)
    store.claim(run_id)
    ended = []
    store.request_cancel(run_id)
    flag_reads = FlagReads(store)
    with CancelWatchdog(flag_reads, run_id, grace_s=5.0, poll_s=0.01,
                        exit_process=lambda: ended.append(True)):
        wait_until(lambda: flag_reads.count, 5.0, "the watchdog to read the cancel flag",
                   interval_s=0.01)
        # time passes well inside the 5 s grace: a watchdog that did not wait it out
        # would end the job now
        time.sleep(0.3)
    assert ended == []
    assert store.get_run(run_id)["status"] == "running"  # the job's own ending decides


def test_a_worker_job_claims_the_oldest_queued_run_from_the_store_its_environment_names(
        postgres_url, tmp_path, monkeypatch):
    """The Celery task's body: store and data folder come from $GATO_STORE /
    $GATO_DATA_DIR (here a PostgreSQL store), never from the message, which is only a
    wake-up: it trains the oldest queued run, whichever run the message names, and a
    wake-up that finds nothing queued does nothing."""
    from gato_dash.runtime import backends
    from gato_dash.runtime.jobs import train_next_queued

    data_dir = tmp_path / "shared"
    store = RunStore(postgres_url, data_dir)
    oldest = store.create_run({**TINY, "epochs": 5})
    newer = store.create_run({**TINY, "epochs": 5})
    monkeypatch.setenv(backends.STORE_ENV, postgres_url)
    monkeypatch.setenv(backends.DATA_DIR_ENV, str(data_dir))
    assert train_next_queued(hint=newer) == (oldest, "finished")
    assert [r["epoch"] for r in store.epochs(oldest)] == list(range(5))
    assert store.get_run(newer)["status"] == "queued"
    assert any((data_dir / "events").iterdir())  # the events went to the shared folder
    assert train_next_queued(hint=oldest) == (newer, "finished")  # a duplicate: the next
    assert train_next_queued(hint=newer) == (None, "nothing-queued")
    store.close()


def test_a_job_process_imports_no_dash():
    """Dash stays out of the training processes: what the fork server preloads and what a
    job process runs import none of it (the web process alone draws and serves)."""
    import subprocess
    import sys
    from pathlib import Path

    check = ("import sys, gato_dash.runtime.jobs as jobs; "
             "[__import__(m) for m in jobs.FORK_SERVER_PRELOAD if m != 'tensorflow' "
             "and not m.startswith('gato_core')]; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('dash', 'diskcache', 'plotly', 'flask')))")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
