"""Backends: where runs are stored and where they train (embedded, or Celery workers).

Embedded (the default, nothing to set up): an SQLite run store in the data folder, and
each run trains in a process of this machine (gato_dash.runtime.dispatch starts it from
the fork server of gato_dash.runtime.jobs).

Several machines (opt-in): ``--broker redis://HOST:6379/0`` (or $GATO_BROKER) hands the
training to Celery workers through Redis: creating a run sends a plain Celery task
(TASK_NAME) that wakes a worker, which claims the oldest queued run from the store. With
``--store postgresql://...`` (or $GATO_STORE) the runs live in one PostgreSQL database that
the web processes and all workers share. Workers are started with
``celery -A gato_dash.worker worker --concurrency 1`` and read the same variables
(gato_dash.worker). The data folder ($GATO_DATA_DIR: event samples, figures, run files)
must then be the same shared folder everywhere.

Nothing here imports TensorFlow, Dash or (unless a broker is given) Celery.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from . import STORE_ENV, STORE_FILE, BackendError

BROKER_ENV = "GATO_BROKER"
DATA_DIR_ENV = "GATO_DATA_DIR"
#: How long to wait for workers to answer a ping: the run page asks while a run waits.
PING_TIMEOUT_S = 1.0
WORKER_COMMAND = "celery -A gato_dash.worker worker --concurrency 1"


def resolve_broker(value=None) -> str | None:
    """--broker, else $GATO_BROKER, else None (embedded jobs)."""
    broker = (value or os.environ.get(BROKER_ENV) or "").strip() or None
    if broker is not None and not broker.startswith(("redis://", "rediss://")):
        raise BackendError(f"broker {broker!r}: give a Redis URL, e.g. redis://HOST:6379/0")
    return broker


def export_for_jobs(data_dir: Path, store_location: str) -> None:
    """Put the data folder and store into this process's environment, which embedded job
    processes (the fork server) inherit. The default store is left implicit, so a later
    ``create_app`` with another data folder in this process does not inherit this one's."""
    os.environ[DATA_DIR_ENV] = str(data_dir)
    if str(store_location) == str(Path(data_dir) / STORE_FILE):
        os.environ.pop(STORE_ENV, None)
    else:
        os.environ[STORE_ENV] = str(store_location)


# ----- Celery ------------------------------------------------------------------------------
#: The one Celery task: "train a queued run" (gato_dash.worker). An explicit name, so the
#: web process sends it by name without importing the worker module.
TASK_NAME = "gato.train_queued_run"


def make_celery(broker: str):
    """The Celery app of the web process and of the workers (same settings on both).

    A message is only a wake-up: the task claims the oldest queued run from the store
    (gato_dash.runtime.dispatch). No result backend: nothing reads a task's return value,
    the run store says how a run went."""
    from celery import Celery

    app = Celery("gato_dash", broker=broker)
    app.conf.update(
        task_ignore_result=True,
        # A worker with --concurrency 1 takes one run at a time and reserves nothing
        # more: with the default prefetching it would hold a wake-up while training,
        # and a second, idle worker could not take it. (After a broker restart Celery 5.3
        # lets a busy worker reserve one message again: the web process's sweeper then
        # sends another wake-up, which the idle worker takes.)
        worker_prefetch_multiplier=1,
        task_acks_late=True,
        # A wake-up redelivered while its worker still trains (Redis redelivers an
        # unacknowledged message after the visibility timeout) would only claim another
        # queued run, but it should not: keep the timeout above any run's length.
        broker_transport_options={"visibility_timeout": 30 * 24 * 3600},
        # Keep reconnecting to a broker that went away, for as long as it takes (the
        # default gives up after 100 tries), also at start-up.
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # A lost broker connection must not cancel a run that trains: its records go to
        # the store, not through the broker (Celery 5.3 warns unless this is explicit).
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # A web request that creates a run while the broker is down must not hang on it:
        # the sweeper sends the wake-up again later.
        broker_connection_timeout=2.0,
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0,
                                   "interval_step": 0.5, "interval_max": 0.5},
        # The task only waits for its job process (gato_dash.runtime.jobs), so a thread
        # runs it: no pool process that a job could take down. With the default prefork
        # pool, a pool process that a cancelled or crashed job ended was replaced, and
        # after a broker restart the replaced one took no task again (while the worker
        # still answered pings); its replacement also imported TensorFlow, which took
        # longer than Celery allows a new pool process (4 s), so it was killed over and
        # over. ``--pool`` on the command line still chooses another pool.
        worker_pool="threads",
        worker_hijack_root_logger=False,
    )
    return app


def send_wake_up(app, run_id: str | None = None) -> None:
    """Ask a worker to train the oldest queued run (``run_id``: the run that prompted it).

    Raises what the broker raises when it cannot be reached."""
    app.send_task(TASK_NAME, args=[run_id])


def listening_workers(app, timeout_s: float = PING_TIMEOUT_S) -> list[str]:
    """Names of the Celery workers that answer a ping within ``timeout_s``, sorted.

    A worker answers while it trains (its main process does, the run is in a child)."""
    answers = app.control.ping(timeout=timeout_s) or []
    return sorted(name for answer in answers for name in answer)


class QueueNote(NamedTuple):
    """What to say about a queued run; ``command`` (if any) is shown as code after it."""
    text: str
    command: str | None = None

    def __str__(self) -> str:
        return f"{self.text} {self.command}" if self.command else self.text


def queue_message(app, workers: list[str] | None = None) -> QueueNote:
    """Which workers listen, or that none does (``workers``: a ping's answer already had).

    A broker that cannot be reached is said so, never raised."""
    if workers is None:
        try:
            workers = listening_workers(app)
        except Exception as exc:  # broker down or unreachable
            return QueueNote(f"The job queue cannot be reached ({type(exc).__name__}): "
                             "is Redis running?")
    if not workers:
        return QueueNote("No worker is listening: the run waits in the queue until one "
                         "starts. Start one with", WORKER_COMMAND)
    names = ", ".join(workers)
    return QueueNote(f"Waiting for a free worker ({len(workers)} listening: {names}).")
