"""A training worker for the several-machines mode: ``celery -A gato_dash.worker worker``.

Start it with the same backends as the web app (gato_dash.runtime.backends), e.g.::

    GATO_BROKER=redis://HOST:6379/0 GATO_STORE=postgresql://gato@HOST:5432/gato \\
    GATO_DATA_DIR=/shared/gato_data celery -A gato_dash.worker worker --concurrency 1

``--concurrency 1``: one run at a time per worker (a run uses all the cores TensorFlow
finds; start one worker per machine, or per GPU). The worker imports this module to find
the Celery task behind the run page's background callback, so the module builds the
Celery app and the CeleryManager and registers the training callback at import time. It
does not build the Dash app or import its pages; TensorFlow is imported by each pool
process when it starts (``worker_process_init``), so the first run does not wait for it.
At ``worker_init`` (gato_dash.runtime.worker_setup) the worker puts its checkout back on
``sys.path`` for the pool and refuses to serve (exit 78) without its data folder or engine.
"""
from __future__ import annotations

import logging

from celery.signals import worker_process_init
from dash import CeleryManager

from . import runtime
from .runtime import backends, worker_setup

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
# exit), then set TensorFlow's environment (before a pool process imports TensorFlow).
worker_setup.serve_only_when_ready(app, data_dir, prepare=runtime.configure_tensorflow)
#: Registers a Celery task for every background callback, now and later.
manager = CeleryManager(app)

from . import training_callback  # noqa: E402,F401  (registers the training job's task)


@worker_process_init.connect
def _preload_training(**_):
    """Each pool process imports the engine (TensorFlow, ~5 s) once, before its first job."""
    try:
        import gato_core.training  # noqa: F401
    except Exception:  # the job will report it as its failure
        log.exception("importing the training engine failed")
