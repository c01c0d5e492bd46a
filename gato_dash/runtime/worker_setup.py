"""What a Celery training worker needs before it takes a run, checked when it starts.

``celery -A gato_dash.worker worker`` imports the worker module with the current folder
on ``sys.path`` and takes it off again once the app is loaded (celery.utils.imports.
cwd_in_path). The pool processes are forks of that process: without the checkout on their
path, the first ``import gato_core`` in a job fails ("No module named 'gato_core'") while
the worker still answers pings. ``make_checkout_importable`` puts the checkout that this
package was imported from back on the path, for good: at ``worker_init``, after Celery's
clean-up and before the pool processes are forked.

A worker that could not train anything must not take runs: ``refuse_to_serve_unless_ready``
(at ``worker_init``, before the worker consumes a message) checks that the data folder
exists and is writable and that TensorFlow and the engine import, and otherwise logs why
and ends the worker with EXIT_NOT_READY.

No Celery import at module level and never TensorFlow: the import check runs in a child
process, so the worker's main process (which forks the pool) stays without TensorFlow.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .liveness import this_host

log = logging.getLogger(__name__)

#: The folder that holds gato_dash/ and gato_core/ (a checkout of this repository)
CHECKOUT = Path(__file__).resolve().parents[2]
#: What a training job imports; a worker that cannot import them refuses to start
ENGINE_MODULES = ("tensorflow", "gato_core.training")
#: Importing TensorFlow takes ~5 s, much longer on a busy machine or a network file system
IMPORT_CHECK_TIMEOUT_S = 300.0
#: Exit status of a worker that refused to serve (EX_CONFIG from sysexits.h)
EXIT_NOT_READY = 78
#: The engine self-check task: ``celery -A gato_dash.worker call gato.engine_check``
ENGINE_CHECK_TASK = "gato.engine_check"


class DatasetNotHere(RuntimeError):
    """A dataset run on a worker whose data folder does not hold that dataset."""


def make_checkout_importable() -> None:
    """Keep this checkout on ``sys.path`` (first, as the current folder was while the app
    loaded), so pool processes import gato_core from the same checkout as gato_dash."""
    path = str(CHECKOUT)
    if path not in sys.path:
        sys.path.insert(0, path)


def check_data_folder(data_dir) -> list[str]:
    """Problems with the data folder (empty list: fine): it must exist (a worker must not
    create an empty one of its own beside the shared one) and this process must be able
    to write there (event caches, run files)."""
    folder = Path(data_dir)
    host = this_host()
    if not folder.exists():
        return [f"the data folder {folder} does not exist on {host}: mount the shared data "
                "folder there, or set GATO_DATA_DIR to where it is mounted"]
    if not folder.is_dir():
        return [f"the data folder {folder} on {host} is not a folder"]
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".gato-write-check-"):
            pass
    except OSError as exc:
        return [f"the data folder {folder} on {host} is not writable by this worker "
                f"({exc.strerror or type(exc).__name__})"]
    return []


_IMPORT_CHECK = """\
import importlib, sys, traceback
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException as exc:
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        print(f"{name}: {last}")
"""


def check_engine_imports(modules=ENGINE_MODULES, search_path=None,
                         timeout_s: float = IMPORT_CHECK_TIMEOUT_S) -> list[str]:
    """Problems importing ``modules`` (empty list: fine), tried in a child process with
    ``search_path`` (default: this process's ``sys.path``, which the pool inherits)."""
    path = [p for p in (sys.path if search_path is None else search_path) if p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    try:
        done = subprocess.run([sys.executable, "-c", _IMPORT_CHECK, *modules], env=env,
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return [f"importing {', '.join(modules)} took more than {timeout_s:.0f} s"]
    failures = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 and not failures:  # the interpreter itself died
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        failures = [f"the import check ended with status {done.returncode}: {tail}"]
    return [f"cannot import {failure}" for failure in failures]


def refuse_to_serve_unless_ready(data_dir, modules=ENGINE_MODULES) -> None:
    """Check the data folder, then the imports; on a problem log each one and end the
    process with EXIT_NOT_READY (a SystemExit: Celery's signal dispatch passes it on)."""
    problems = check_data_folder(data_dir)
    if not problems:  # (a missing data folder says enough; skip the 5 s import)
        problems = check_engine_imports(modules)
    if problems:
        for problem in problems:
            log.critical("this worker refuses to serve: %s", problem)
        # also on stderr as it is: a worker's logging may not be set up yet
        print("gato worker refuses to serve:\n  " + "\n  ".join(problems), file=sys.stderr,
              flush=True)
        raise SystemExit(EXIT_NOT_READY)
    log.info("worker ready: data folder %s, engine imports", data_dir)


def serve_only_when_ready(app, data_dir, prepare=None) -> None:
    """Wire the checks into ``app``'s worker: at ``worker_init`` (before it consumes any
    message) make the checkout importable, run ``refuse_to_serve_unless_ready``, then ``prepare(data_dir)`` (e.g. the
    TensorFlow environment: it may create folders, so it runs after the data folder was
    found). Also registers the ``gato.engine_check`` task."""
    from celery.signals import worker_init

    def check(sender=None, **_):
        if getattr(sender, "app", app) is not app:
            return
        make_checkout_importable()
        refuse_to_serve_unless_ready(data_dir)
        if prepare is not None:
            prepare(data_dir)

    worker_init.connect(check, weak=False)
    app.task(name=ENGINE_CHECK_TASK)(engine_check)


def engine_check() -> dict:
    """Runs in a pool process: import the engine, compute one TensorFlow op, say where
    from. For an operator (``celery call``) and the tests: the pool can train."""
    import gato_core
    import gato_core.training  # noqa: F401
    import tensorflow as tf

    value = float(tf.reduce_sum(tf.constant([1.0, 2.0, 3.0])).numpy())
    return {"host": this_host(), "pid": os.getpid(), "gato_core": gato_core.__file__,
            "tensorflow": tf.__version__, "sum": value}


def require_dataset_here(datasets_dir, dataset_id: str) -> None:
    """A dataset run needs its sample in this machine's data folder: if it is not there,
    say which folder and which machine (a worker with its own, unshared data folder)."""
    from gato_core.datasets import MANIFEST

    # Only "not there" is this machine's problem; a damaged dataset is reported by the
    # engine when it loads it.
    if not (Path(datasets_dir) / str(dataset_id) / MANIFEST).is_file():
        raise DatasetNotHere(
            f"dataset {dataset_id!r} is not in the data folder {Path(datasets_dir).parent} "
            f"of worker host {this_host()}: every worker needs the web app's shared data "
            "folder (GATO_DATA_DIR)")
