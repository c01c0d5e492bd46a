"""The training job as a Dash background callback, registered on import.

Both sides import this module: the web process (through the run page, which puts the
``run-job`` stores in its layout) and a Celery worker (gato_dash.worker), which finds the
job's Celery task by the callback's identity (its ids and the job function's source). That
is why it lives apart from the page: a worker imports it without the Dash pages and
without building an app. TensorFlow is imported only inside the job.
"""
from __future__ import annotations

from dash import MATCH, Input, Output, callback

from .runtime.jobs import start_training_job

#: The run page's stores: {"type": JOB_INPUT, "run": id, "load": token} fires the job once.
JOB_INPUT = "run-job"
JOB_OUTPUT = "run-job-result"

callback(
    Output({"type": JOB_OUTPUT, "run": MATCH, "load": MATCH}, "data"),
    Input({"type": JOB_INPUT, "run": MATCH, "load": MATCH}, "data"),
    background=True,
    interval=2000,  # only how often the renderer asks "done?"; the page polls the store
)(start_training_job)
