"""Backends: where runs are stored and where they train (embedded, or Celery workers).

Embedded (the default, nothing to set up): an SQLite run store in the data folder, and
each run trains in a process of this machine (Dash's DiskcacheManager, gato_dash.runtime.jobs).

Several machines (opt-in): ``--broker redis://HOST:6379/0`` (or $GATO_BROKER) hands the
training jobs to Celery workers through Redis (Dash's CeleryManager; Redis is also the
result backend), and ``--store postgresql://...`` (or $GATO_STORE) keeps the runs in one
PostgreSQL database that the web processes and all workers share. Workers are started with
``celery -A gato_dash.worker worker --concurrency 1`` and read the same variables
(gato_dash.worker). The data folder ($GATO_DATA_DIR: event samples, figures, run files)
must then be the same shared folder everywhere.

Nothing here imports TensorFlow, Dash pages or (unless a broker is given) Celery.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from . import STORE_ENV, STORE_FILE, BackendError

BROKER_ENV = "GATO_BROKER"
#: Where Dash keeps the jobs' results; the broker's Redis unless set.
RESULT_BACKEND_ENV = "GATO_RESULT_BACKEND"
DATA_DIR_ENV = "GATO_DATA_DIR"
#: How long to wait for workers to answer a ping: the run page asks while a run waits.
PING_TIMEOUT_S = 1.0
#: A ping answer is reused this long, so a page polling every 0.4 s does not ping each time.
PING_CACHE_S = 5.0
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
def make_celery(broker: str, result_backend: str | None = None):
    """The Celery app of the web process and of the workers (same settings on both)."""
    from celery import Celery

    backend = result_backend or os.environ.get(RESULT_BACKEND_ENV) or broker
    app = Celery("gato_dash", broker=broker, backend=backend)
    app.conf.update(
        # A worker with --concurrency 1 takes one run at a time and reserves nothing
        # more: with the default prefetching it would hold a queued run while training
        # another, and a second, idle worker could not take it.
        worker_prefetch_multiplier=1,
        task_acks_late=True,
        # A message redelivered after a lost worker is harmless: its run is no longer
        # queued, so the job's claim refuses it (gato_dash.runtime.jobs.run_training). But Redis
        # redelivers an unacknowledged message after the visibility timeout (1 h by
        # default) even while its worker still trains, and the refused twin's result would
        # make Dash terminate the task: the timeout must exceed any run.
        broker_transport_options={"visibility_timeout": 30 * 24 * 3600},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        result_expires=7 * 24 * 3600,
    )
    return app


def make_manager(data_dir: Path, broker: str | None, store_location: str):
    """The background-callback manager for the training jobs: CeleryManager with a broker,
    else DiskcacheManager whose job processes come from a fork server (gato_dash.runtime.jobs)."""
    export_for_jobs(data_dir, store_location)
    if broker:
        from dash import CeleryManager

        global _celery_app
        _celery_app = make_celery(broker)
        return CeleryManager(_celery_app)
    import diskcache
    from dash import DiskcacheManager

    from .jobs import use_fork_server

    use_fork_server(data_dir)
    return DiskcacheManager(diskcache.Cache(str(Path(data_dir) / "jobs")))


_celery_app = None
_ping_cache: tuple[float, list[str]] | None = None


def celery_app():
    """The web process's Celery app, or None in embedded mode."""
    return _celery_app


def listening_workers(app=None, timeout_s: float = PING_TIMEOUT_S) -> list[str]:
    """Names of the Celery workers that answer a ping within ``timeout_s``, sorted.

    A worker answers while it trains (its main process does, the run is in a child)."""
    app = app or _celery_app
    if app is None:
        return []
    answers = app.control.ping(timeout=timeout_s) or []
    return sorted(name for answer in answers for name in answer)


def queue_message(app=None) -> str | None:
    """What to say about a queued run: which workers listen, or that none does.

    None in embedded mode (a queued run there starts when its page opens). The answer is
    kept for PING_CACHE_S; a broker that cannot be reached is said so, never raised."""
    global _ping_cache
    app = app or _celery_app
    if app is None:
        return None
    now = time.monotonic()
    if _ping_cache is None or now - _ping_cache[0] > PING_CACHE_S or app is not _celery_app:
        try:
            workers = listening_workers(app)
        except Exception as exc:  # broker down or unreachable
            return f"The job queue cannot be reached ({type(exc).__name__}): is Redis running?"
        if app is _celery_app:
            _ping_cache = (now, workers)
    else:
        workers = _ping_cache[1]
    if not workers:
        return ("No worker is listening: the run waits in the queue until one starts "
                f"(`{WORKER_COMMAND}`).")
    names = ", ".join(workers)
    return f"Waiting for a free worker ({len(workers)} listening: {names})."
