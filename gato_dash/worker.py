"""A training worker for the several-machines mode: ``celery -A gato_dash.worker worker``.

Start it with the same backends as the web app (gato_dash.runtime.backends), e.g.::

    GATO_BROKER=redis://HOST:6379/0 GATO_STORE=postgresql://gato@HOST:5432/gato \\
    GATO_DATA_DIR=/shared/gato_data celery -A gato_dash.worker worker --concurrency 1

``--concurrency 1``: one run at a time per worker (a run uses all the cores TensorFlow
finds; start one worker per machine, or per GPU). The worker knows one plain Celery task,
``backends.TASK_NAME``: a wake-up that claims the oldest queued run in the store and
trains it (gato_dash.runtime.dispatch explains why a message names no run it must train).
This module imports no Dash and no pages. The task runs in a thread of the worker (the
"threads" pool, backends.make_celery) and waits for the run's job process, a child of the
fork server that the worker starts (and that imports TensorFlow) when it starts
(``worker_init``), so the first run does not wait for that import.
Before that, at ``worker_init`` too (gato_dash.runtime.worker_setup), the worker puts its
checkout back on ``sys.path`` and refuses to serve (exit 78) without its data folder or
engine.
"""
from __future__ import annotations

import logging

from celery.signals import worker_init

from . import runtime
from .runtime import backends, jobs, worker_setup

log = logging.getLogger(__name__)

broker = backends.resolve_broker()
if broker is None:
    raise backends.BackendError(
        f"a worker needs the job queue: set ${backends.BROKER_ENV} (e.g. "
        "redis://HOST:6379/0), the same as the web app's --broker")
data_dir = runtime.resolve_data_dir()
store_location = runtime.resolve_store(data_dir)

#: The Celery app (``celery -A gato_dash.worker`` finds it by this name).
app = backends.make_celery(broker)
celery_app = app
# At worker start, before consuming: put this checkout back on sys.path (Celery took the
# current folder off it), check the data folder and the engine's imports (else log why and
# exit), then set TensorFlow's environment. Connected first, so it runs before the fork
# server below starts (and imports TensorFlow) from the checkout now on sys.path.
worker_setup.serve_only_when_ready(app, data_dir, prepare=runtime.configure_tensorflow)


@app.task(name=backends.TASK_NAME)
def train_queued_run(run_id=None):
    """Claim the oldest queued run (``run_id``: the run whose creation sent this wake-up)
    and train it; a wake-up that finds no queued run does nothing."""
    trained, status = jobs.train_next_queued(hint=run_id)
    log.info("wake-up for run %s: %s %s", run_id, trained or "no run", status)
    return status


@worker_init.connect
def _start_fork_server(**_):
    """The worker starts its fork server (it imports TensorFlow, ~5 s) before its first
    job; each run trains in a child of it (gato_dash.runtime.jobs.train_in_job_process)."""
    try:
        jobs.use_fork_server(data_dir)
        jobs.warm_up_fork_server()
    except Exception:  # the job will report it as its failure
        log.exception("starting the training processes' fork server failed")
