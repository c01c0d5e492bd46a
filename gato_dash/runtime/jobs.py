"""The training job: drives ``gato_core.training.train`` and writes every record to the store.

A run trains in a process of its own that ``gato_dash.runtime.dispatch`` starts when the
run is created: embedded, a process of this machine (``train_run_in_this_process``); with a
broker, a Celery worker, possibly on another machine (gato_dash.worker, which runs
``train_next_queued``). Neither imports Dash. The embedded job process comes from a
*fork server* (see ``use_fork_server``), not from the web process: forking the
multi-threaded web server copies locks other threads hold at that moment (seen here:
SQLite's allocator mutex, held by a polling request), and the child then hangs forever.
The fork server is a clean single-threaded process that has imported TensorFlow once
(import only), so each job starts with TF loaded and nothing else.

The store is the only channel back to the web process: records as they happen, a
heartbeat, and a cancel flag read between epochs (a flag, not a signal: it reaches a job on
any machine that shares the store).
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, Iterable

from .recording import final_status, store_records
from .liveness import FencedOut
from .run_store import RunStore
from .store_retry import StoreUnreachable

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 2.0
#: After a cancel, the engine has this long to stop by itself (it checks between epochs and
#: phases); a step that does not return in time (event generation, the exact 1-D optimum,
#: the final evaluation) is cut short by ending the job process. The 2 s budget for a
#: cancel minus the cancel poll and a margin.
CANCEL_GRACE_S = 1.2
#: should_stop() is called once per epoch; epochs can take a millisecond, so the store is
#: read at most this often (well inside the 2 s cancel budget).
CANCEL_POLL_S = 0.1
#: A job that gave up on an unreachable store (after store_retry.STORE_RETRY_S) keeps trying
#: this much longer to record why it ended; after that its run is marked interrupted.
RECORD_OUTAGE_S = 600.0


class CancelFlag:
    """``should_stop`` for the engine: True once the store says cancel (or the run is gone)."""

    def __init__(self, store: RunStore, run_id: str, poll_s: float = CANCEL_POLL_S):
        self.store, self.run_id, self.poll_s = store, run_id, poll_s
        self._checked = 0.0
        self._stop = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self._stop and now - self._checked >= self.poll_s:
            self._checked = now
            try:
                self._stop = self.store.cancel_requested(self.run_id)
            except Exception:  # a busy database must not kill the training
                log.exception("reading the cancel flag of %s failed", self.run_id)
        return self._stop


class _JobThread:
    """A daemon thread beside the training for as long as the ``with`` block runs. It
    shares the job's store: each store operation borrows a connection and gives it back,
    so the thread leaves none behind (the job closes the store when it ends)."""

    def __init__(self, store: RunStore, run_id: str, name: str):
        self.store, self.run_id = store, run_id
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name}-{run_id}",
                                        daemon=True)

    def _run(self):
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join(timeout=5)
        return False


class Heartbeat(_JobThread):
    """Keeps the run's heartbeat fresh while a long step runs (data generation, XLA
    compilation), so the run is not mistaken for interrupted."""

    def __init__(self, store: RunStore, run_id: str, interval_s: float = HEARTBEAT_INTERVAL_S):
        super().__init__(store, run_id, "heartbeat")
        self.interval_s = interval_s

    def _run(self):
        while not self._done.wait(self.interval_s):
            try:
                self.store.heartbeat(self.run_id)
            except FencedOut:
                return  # the run is no longer this job's: the training ends at its next write
            except Exception:
                log.exception("heartbeat of %s failed", self.run_id)


class CancelWatchdog(_JobThread):
    """Ends the job process when a cancel is not honoured within CANCEL_GRACE_S.

    Epochs and results are in the store as they happen, so ending the process loses only
    the step under way; the run is marked cancelled first, with the phase it was in.
    """

    def __init__(self, store: RunStore, run_id: str, grace_s: float = CANCEL_GRACE_S,
                 poll_s: float = CANCEL_POLL_S, exit_process: Callable[[], None] | None = None):
        super().__init__(store, run_id, "cancel")
        self.grace_s, self.poll_s = grace_s, poll_s
        self.phase = "preparing the data"
        self._exit = exit_process or (lambda: os._exit(0))

    def _run(self):
        while not self._done.wait(self.poll_s):
            try:
                requested = self.store.cancel_requested(self.run_id)
            except Exception:
                log.exception("reading the cancel flag of %s failed", self.run_id)
                continue
            if not requested:
                continue
            if self._done.wait(self.grace_s):
                return  # the engine stopped by itself
            log.warning("run %s did not stop within %.1f s of its cancel while %s: ending its "
                        "job process", self.run_id, self.grace_s, self.phase)
            try:
                self.store.set_status(self.run_id, "cancelled", f"cancelled while {self.phase}")
            except FencedOut:
                pass  # no longer this job's run: nothing to record, the process still ends
            self._exit()
            return


#: What the engine is doing after the record of each kind (for a cancel's message)
PHASE_AFTER = {"run_info": "computing the baselines and compiling the model",
               "epoch": "training", "result": "setting up the next category count"}


#: Imported once by the fork server; every job process starts with them loaded. The job
#: builds no figures (no Plotly: the web process draws) and imports no Dash.
FORK_SERVER_PRELOAD = ["gato_dash.runtime.jobs", "gato_dash.runtime.run_store", "tensorflow",
                       "gato_core.training"]


def use_fork_server(data_dir) -> None:
    """Make job processes come from a fork server (call before any job starts).

    The environment is inherited when the fork server starts: the data folder travels to
    the jobs as $GATO_DATA_DIR.
    """
    os.environ["GATO_DATA_DIR"] = str(data_dir)
    multiprocessing.set_forkserver_preload(FORK_SERVER_PRELOAD)


def job_context():
    """The multiprocessing context whose processes come from the fork server."""
    return multiprocessing.get_context("forkserver")


def warm_up_fork_server() -> None:
    """Start the fork server now (it imports TensorFlow, ~5 s) instead of at the first run."""
    import multiprocessing.forkserver

    multiprocessing.forkserver.ensure_running()


def train_run_in_this_process(store_location: str, data_dir, run_id: str) -> str:
    """Body of an embedded job process (gato_dash.runtime.dispatch): train ``run_id`` if it
    can still be claimed. A module-level function: the fork server imports it by name."""
    from . import open_store

    data_dir = Path(data_dir)
    store = open_store(data_dir, store_location)
    try:
        return run_training(store, run_id, data_dir / "events",
                            datasets_dir=data_dir / "datasets")
    finally:
        store.close()


#: Exit code of a job process that found its run already taken (or no longer queued)
NOT_CLAIMED_EXIT = 3


def job_process_main(store_location: str, data_dir, run_id: str) -> None:
    """Body of a job process: train ``run_id``; exits NOT_CLAIMED_EXIT if it could not
    claim it. Module-level: the fork server imports it by name."""
    if train_run_in_this_process(store_location, data_dir, run_id) == "not-claimed":
        sys.exit(NOT_CLAIMED_EXIT)


def train_in_job_process(store, data_dir, run_id: str) -> str:
    """Train ``run_id`` in a process of its own from the fork server and wait for it;
    returns the run's final status, or "not-claimed".

    The Celery worker trains nothing in its own process: a job that the cancel watchdog
    ends (``os._exit``) or that crashes takes only its own process, and the worker goes
    on taking tasks (gato_dash.runtime.backends.make_celery says why that matters)."""
    process = job_context().Process(target=job_process_main,
                                    args=(store.location, str(data_dir), run_id),
                                    name=f"gato-job-{run_id}")
    process.start()
    process.join()
    if process.exitcode == NOT_CLAIMED_EXIT:
        return "not-claimed"
    run = store.run_status(run_id)  # a job process gone without a word: now interrupted
    if process.exitcode != 0:
        log.warning("run %s: job process %s ended with exit code %s", run_id, process.pid,
                    process.exitcode)
    return run["status"] if run else "deleted"


def train_next_queued(hint: str | None = None) -> tuple[str | None, str]:
    """Body of the Celery task: claim the oldest queued run and train it (in a job
    process, see ``train_in_job_process``).

    ``hint`` (the run whose creation sent the message) is only tried when no older run
    waits: a message is a wake-up, not an assignment, so a lost or duplicated message
    changes nothing (gato_dash.runtime.dispatch). The data folder and store come from this
    process's environment ($GATO_DATA_DIR, $GATO_STORE), never from the message.
    Returns (run id, final status), or (None, "nothing-queued").
    """
    from . import open_store, resolve_data_dir

    data_dir = resolve_data_dir()
    store = open_store(data_dir)
    try:
        candidates = store.run_ids("queued")
        if hint and hint not in candidates:
            candidates.append(str(hint))
        for run_id in candidates:
            status = train_in_job_process(store, data_dir, run_id)
            if status != "not-claimed":
                return run_id, status
        return None, "nothing-queued"
    finally:
        store.close()  # a worker lives on: do not keep a database connection per job


def run_training(store, run_id: str, cache_dir=None,
                 train: Callable[..., Iterable] | None = None, datasets_dir=None) -> str:
    """Claim the queued run and train it to the end; returns the final status.

    ``store``: a RunStore or an SQLite file path. Returns "not-claimed" without doing
    anything if another job already has the run (two dispatchers, a duplicated wake-up)
    or it is no longer queued; "fenced-out" if the run stopped being this job's while it
    trained (marked interrupted while the job was frozen: the job then writes nothing
    more); "store-unreachable" if the store went away and did not come back in time to
    record the end.
    """
    if not isinstance(store, RunStore):
        store = RunStore(store)
    if not store.claim(run_id, os.getpid()):
        return "not-claimed"
    run = store.get_run(run_id)
    if run is None:
        return "not-claimed"
    stop = CancelFlag(store, run_id)
    try:
        with Heartbeat(store, run_id), CancelWatchdog(store, run_id) as watchdog:
            from gato_core.config import RunConfig

            from .worker_setup import require_dataset_here

            config = RunConfig.from_dict(run["config"])
            if config.is_dataset and datasets_dir is not None:
                require_dataset_here(datasets_dir, config.dataset)
            if train is None:
                # TensorFlow is usually imported already (the web process preloads it), so
                # this costs nothing on the click-to-first-epoch path.
                from gato_core.training import train
            if cache_dir is not None:
                Path(cache_dir).mkdir(parents=True, exist_ok=True)

            def records():
                for record in train(config, should_stop=stop, cache_dir=cache_dir,
                                    datasets_dir=datasets_dir):
                    data = record.to_dict()
                    watchdog.phase = PHASE_AFTER.get(data.get("kind"), watchdog.phase)
                    yield data

            results = store_records(store, run_id, records())
            if results is None:
                return "deleted"
        status, message = final_status(results, store.cancel_requested(run_id))
    except FencedOut as exc:  # marked interrupted (or claimed again) while it was frozen
        log.warning("run %s: %s; the job ends here", run_id, exc)
        return "fenced-out"
    except StoreUnreachable as exc:
        log.error("run %s: %s", run_id, exc)
        return _record_when_the_store_is_back(store, run_id, f"training stopped: {exc}")
    except Exception as exc:  # the user sees one line; the server log gets the traceback
        log.error("run %s failed:\n%s", run_id, traceback.format_exc())
        status, message = "failed", f"training failed: {type(exc).__name__}: {exc}"[:500]
    try:
        store.set_status(run_id, status, message)
    except FencedOut as exc:
        log.warning("run %s: %s; its end (%s) is not recorded", run_id, exc, status)
        return "fenced-out"
    except StoreUnreachable as exc:
        log.error("run %s: %s", run_id, exc)
        return _record_when_the_store_is_back(
            store, run_id, f"{status}{': ' + message if message else ''}; then {exc}")
    return status


def _record_when_the_store_is_back(store: RunStore, run_id: str, message: str,
                                   within_s: float = RECORD_OUTAGE_S) -> str:
    """The job must end without its store: record why as soon as the store answers again
    (for up to ``within_s``), as the run's failure, or, if the run was marked interrupted
    meanwhile, as the cause added to that message. Returns the job's final status."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            store.set_status(run_id, "failed", message[:500])
            return "failed"
        except FencedOut:
            try:
                store.add_interruption_cause(run_id, message[:500])
            except StoreUnreachable as exc:
                log.error("run %s: could not record why it ended (%s)", run_id, exc)
            return "fenced-out"
        except StoreUnreachable as exc:
            if time.monotonic() >= deadline:
                log.error("run %s: could not record its end (%s); it will be marked "
                          "interrupted when the store is back", run_id, exc)
                return "store-unreachable"
