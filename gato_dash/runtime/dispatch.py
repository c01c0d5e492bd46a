"""Starting runs: every queued run in the store trains, whether or not a browser looks at it.

The create path calls ``submit(run_id)`` once the run is stored as "queued"; ``create_app``
chose the dispatcher with ``configure``:

- ``EmbeddedRunner`` (the default): a thread of the web process that starts each queued
  run in a job process of this machine (from the fork server of gato_dash.runtime.jobs),
  at most ``max_jobs`` at a time (``--max-jobs``, default 1: a run uses every core
  TensorFlow finds), oldest first. At start-up it takes the runs left queued by an earlier
  server. Every SCAN_S it looks at the store again, so a run created by another process
  sharing the store (or whose wake-up was missed) starts too; such a run is taken only
  once it has waited FOREIGN_GRACE_S, which leaves alone a process that creates a run and
  claims it itself at once (the importer, a test). A job process that dies is seen when
  it ends: the store then turns its run "interrupted" (it checks the process id), and the
  slot goes to the next run.
- ``CeleryDispatch`` (``--broker``): creating a run sends a plain Celery task
  (backends.TASK_NAME) to the workers. The message is only a wake-up, "train the oldest
  queued run": the worker claims it atomically in the store (RunStore.claim), so a
  duplicated message trains nothing twice and a lost one loses no run. The run store,
  not the broker, is what says which runs wait. A sweeper thread here re-sends a wake-up
  for a run still queued after RESEND_S while some worker is idle (fewer runs train, in
  the store, than workers answer a ping):
  that covers a broker restart that lost its queue (Redis without persistence), a message
  sent while the broker was down, and a wake-up that a busy worker reserved (Celery 5.3
  lets a busy worker prefetch again after it reconnects) while another worker is free.
- ``NoDispatch``: ``--viewer`` (read-only) starts nothing.

``submit`` never blocks the request that created the run and never raises: the
dispatcher's own thread does the work, and its next pass retries what failed.
"""
from __future__ import annotations

import logging
import threading
import time

from . import backends
from .run_store import RunStore

log = logging.getLogger(__name__)

#: How often the embedded runner looks at the store for runs to start and jobs that ended.
SCAN_S = 1.0
#: A queued run that this process did not submit is taken once it has waited this long.
FOREIGN_GRACE_S = 3.0
#: How often the Celery sweeper looks for runs that wait too long.
SWEEP_S = 2.0
#: A run still queued this long after its last wake-up, while a worker is idle, gets another.
RESEND_S = 10.0
#: A worker ping's answer is reused this long: a queued run's page polls every 0.4 s.
PING_CACHE_S = 5.0


class _WorkerNotes:
    """What a queued run's page says with Celery workers: which listen, or that none does
    (a ping, its answer kept PING_CACHE_S)."""

    def __init__(self, app):
        self.app = app
        self._ping: tuple[float, list[str]] | None = None

    def __call__(self):
        now = time.monotonic()
        ping = self._ping
        if ping is None or now - ping[0] > PING_CACHE_S:
            try:
                workers = backends.listening_workers(self.app)
            except Exception:  # said by queue_message below, never raised
                return backends.queue_message(self.app)
            self._ping = ping = (now, workers)
        return backends.queue_message(self.app, ping[1])


class NoDispatch:
    """Read-only: nothing is started (``--viewer``); with ``celery_app``, a queued run's
    page still says which workers listen."""

    def __init__(self, celery_app=None):
        self._notes = _WorkerNotes(celery_app) if celery_app is not None else None

    def submit(self, run_id: str) -> None:
        pass

    def queue_message(self):
        return self._notes() if self._notes else None

    def close(self) -> None:
        pass


class _Loop:
    """A daemon thread that runs ``_pass`` every ``interval_s`` or when woken."""

    interval_s = 1.0

    def __init__(self, name: str):
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _loop(self):
        while not self._stop.is_set():
            try:
                self._pass()
            except Exception:  # a busy database, a broker away: the next pass tries again
                log.exception("%s: a pass failed", self._thread.name)
            self._wake.wait(self.interval_s)
            self._wake.clear()

    def _pass(self):
        raise NotImplementedError


class EmbeddedRunner(_Loop):
    """Job processes on this machine, at most ``max_jobs`` at once, oldest run first."""

    interval_s = SCAN_S

    def __init__(self, store: RunStore, data_dir, max_jobs: int = 1, context=None):
        super().__init__("gato-job-runner")
        if int(max_jobs) < 1:
            raise ValueError("max_jobs must be at least 1")
        self.store, self.data_dir, self.max_jobs = store, data_dir, int(max_jobs)
        self._context = context
        self._lock = threading.Lock()
        self._submitted: set[str] = set()
        #: queued run -> when a scan first saw it (None: the first scan takes them all)
        self._seen: dict[str, float] | None = None
        #: run id -> its job process
        self.jobs: dict = {}

    def submit(self, run_id: str) -> None:
        with self._lock:
            self._submitted.add(str(run_id))
        self.wake()

    def running(self) -> list[str]:
        """Runs whose job process is alive (as of the last pass)."""
        with self._lock:
            return list(self.jobs)

    def queue_message(self):
        busy = len(self.running())
        if busy < self.max_jobs:
            return backends.QueueNote("Starting on this server.")
        return backends.QueueNote(
            f"Waiting for a free job slot ({busy} of {self.max_jobs} in use on this "
            "server; runs start in the order they were created).")

    def _pass(self):
        self._reap()
        with self._lock:
            free = self.max_jobs - len(self.jobs)
        queued = self.store.run_ids("queued")
        now = time.monotonic()
        with self._lock:
            first = self._seen is None
            seen = {} if first else self._seen
            self._seen = {r: seen.get(r, now) for r in queued}
            eligible = [r for r in queued if r not in self.jobs
                        and (first or r in self._submitted
                             or now - self._seen[r] >= FOREIGN_GRACE_S)]
            self._submitted &= set(queued)  # started or no longer queued: forget
        for run_id in eligible[:max(free, 0)]:
            self._start(run_id)

    def _start(self, run_id: str) -> None:
        from . import jobs

        context = self._context or jobs.job_context()
        process = context.Process(target=jobs.train_run_in_this_process,
                                  args=(self.store.location, str(self.data_dir), run_id),
                                  name=f"gato-job-{run_id}")
        process.start()
        log.info("run %s: job process %s started", run_id, process.pid)
        with self._lock:
            self.jobs[run_id] = process
            self._submitted.discard(run_id)

    def _reap(self) -> None:
        with self._lock:
            ended = {r: p for r, p in self.jobs.items() if not p.is_alive()}
            for run_id in ended:
                del self.jobs[run_id]
        for run_id, process in ended.items():
            process.join(0)
            # Reading the run lets the store see a job that died without a word (its
            # process id is gone) and turn its run interrupted now, not at a page's poll.
            run = self.store.run_status(run_id)
            if process.exitcode in (0, None):
                continue
            log.warning("run %s: job process %s ended with exit code %s (run %s)",
                        run_id, process.pid, process.exitcode,
                        run["status"] if run else "deleted")
            # A job that died before it claimed its run would be started again and
            # again: the run fails instead, with a reason (taken atomically, so a job of
            # another dispatcher that has it meanwhile is left alone).
            if run and run["status"] == "queued" and self.store.claim(run_id, process.pid):
                self.store.set_status(run_id, "failed", (
                    f"the training process ended before it started (exit code "
                    f"{process.exitcode}); see the server log"))

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop starting runs; job processes that train go on (their runs stay valid)."""
        super().close(timeout_s)


class CeleryDispatch(_Loop):
    """Wake-ups to Celery workers, and a sweeper that re-sends them for runs left waiting."""

    interval_s = SWEEP_S

    def __init__(self, app, store: RunStore, resend_s: float = RESEND_S, sweep_s: float = SWEEP_S):
        super().__init__("gato-celery-sweeper")
        self.app, self.store = app, store
        self.resend_s, self.interval_s = resend_s, sweep_s
        self._lock = threading.Lock()
        self._to_send: list[str] = []
        #: run id -> when this process last sent (or first saw) a wake-up for it
        self._last_wake: dict[str, float] = {}
        self.queue_message = _WorkerNotes(app)

    def submit(self, run_id: str) -> None:
        with self._lock:
            self._to_send.append(str(run_id))
        self.wake()

    def _pass(self):
        with self._lock:
            to_send, self._to_send = self._to_send, []
        now = time.monotonic()
        for run_id in to_send:
            self._send(run_id, now)
        queued = self.store.run_ids("queued")
        with self._lock:
            # forget runs that no longer wait; a run seen for the first time counts as
            # woken now (its creator sent, or will send, the first wake-up)
            self._last_wake = {r: self._last_wake.get(r, now) for r in queued}
            waiting = [r for r in queued if now - self._last_wake[r] >= self.resend_s]
        if not waiting:
            return
        try:
            listening = backends.listening_workers(self.app)
        except Exception as exc:  # the broker is away: the next pass asks again
            log.warning("runs %s wait, but the workers cannot be asked (%s: %s)",
                        waiting, type(exc).__name__, exc)
            return
        # Idle workers, counted from the store: each worker trains one run at a time
        # (--concurrency 1), and the store knows which runs train. Celery's own list of
        # active tasks is not used: after a broker restart it kept a finished task of
        # the old connection for good, and the worker looked busy while it was idle.
        idle = len(listening) - len(self.store.run_ids("running", limit=10_000))
        if idle <= 0:
            return  # every worker is busy (or none listens): a wake-up would only wait
        log.info("runs %s still queued while %d of the workers (%s) are idle: sending "
                 "wake-ups again", waiting[:idle], idle, ", ".join(listening))
        for run_id in waiting[:idle]:
            self._send(run_id, now)

    def _send(self, run_id: str, now: float) -> None:
        with self._lock:
            self._last_wake[run_id] = now
        try:
            backends.send_wake_up(self.app, run_id)
        except Exception as exc:  # broker down: the sweep sends it again later
            log.warning("the wake-up for run %s could not be sent (%s: %s); the sweeper "
                        "retries", run_id, type(exc).__name__, exc)


_current: NoDispatch | EmbeddedRunner | CeleryDispatch = NoDispatch()


def configure(dispatcher):
    """Make ``dispatcher`` this process's (started); the previous one stops starting runs."""
    global _current
    previous, _current = _current, dispatcher
    previous.close()
    if isinstance(dispatcher, _Loop):
        dispatcher.start()
    return dispatcher


def current():
    return _current


def submit(run_id: str) -> None:
    """A run was created "queued": have it trained (see the module docstring)."""
    _current.submit(run_id)


def queue_message():
    """What a queued run's page says about its wait (a backends.QueueNote), or None."""
    try:
        return _current.queue_message()
    except Exception:
        log.exception("asking about the queue failed")
        return None
