"""The Dash app factory: ``create_app(data_dir)`` builds the web app.

It wires Dash Pages (gato_dash/pages, shown in ``dash.page_container``) and their callbacks
(each page's ``CallbackSet``, put on this app: gato_dash.callback_set), the Bootstrap theme
from assets/ (no CDN: the app must work offline) and the dispatcher that trains every
queued run (gato_dash.runtime.dispatch: job processes of this machine, or Celery workers).
The state the pages share (data folder, run store, settings) lives in
``gato_dash.runtime``, which imports no Dash.

The web process itself never imports TensorFlow: jobs come from a fork server that has
imported it (gato_dash.runtime.jobs), and everything the pages compute is numpy.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from . import runtime, security, uploads
from .runtime import backends, dispatch

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(__file__).resolve().parent

log = logging.getLogger(__name__)


def create_app(data_dir=None, settings: runtime.Settings | None = None,
               password: str | None = None, broker: str | None = None,
               store: str | None = None, max_jobs: int = 1) -> dash.Dash:
    """The web app on ``data_dir``; ``password`` (from $GATO_PASSWORD) protects every page.

    ``broker`` (or $GATO_BROKER): a Redis URL sends training jobs to Celery workers;
    ``store`` (or $GATO_STORE): a PostgreSQL URL for a run store shared by machines
    (gato_dash.runtime.backends). Without them, everything stays on this machine, with at
    most ``max_jobs`` runs training at once. Queued runs start when they are created (and
    those left queued by an earlier server now), except in read-only mode."""
    problem = data_folder_problem(runtime.resolve_data_dir(data_dir))
    if problem:
        raise runtime.BackendError(problem)
    data_dir = runtime.configure(data_dir, settings, store=store)
    dispatch.configure(_dispatcher(data_dir, backends.resolve_broker(broker), max_jobs))

    app = dash.Dash(
        "gato_dash",  # a package name, so pages import as gato_dash.pages.<name>
        use_pages=True,
        pages_folder=str(PACKAGE / "pages"),
        assets_folder=str(REPO / "assets"),
        suppress_callback_exceptions=True,  # page components come and go
        title="GATO Dashboard",
        update_title=None,  # no "Updating..." flicker in the tab title while polling
        serve_locally=True,
        compress=True,  # gzip (flask-compress): plotly.js is 4.8 MB raw, ~1.4 MB compressed
        on_error=security.callback_error,  # a refused write (read-only) becomes a notice
    )
    # Dash has just imported the pages (again, for this app); a page names its callbacks
    # in its registration, and they go on this app, not on Dash's process-wide list
    for page in dash.page_registry.values():
        page["callbacks"].register(app)
    security.install(app, password)
    uploads.install(app.server)
    app.layout = page_shell()
    return app


def data_folder_problem(folder: Path) -> str | None:
    """Why the server cannot keep its runs in ``folder`` (not creatable, not writable), or
    None. Checked at start, so that a read-only folder is one clear line, not a traceback."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return (f"the data folder {folder} cannot be written ({exc.strerror or exc}): give "
                "--data-dir a folder this user can write, or fix its permissions")
    return None


def _dispatcher(data_dir: Path, broker: str | None, max_jobs: int):
    """Who trains the queued runs (gato_dash.runtime.dispatch); nobody in read-only mode."""
    if runtime.settings().read_only:  # a queued run's page still says who would train it
        return dispatch.NoDispatch(backends.make_celery(broker) if broker else None)
    backends.export_for_jobs(data_dir, runtime.store().location)
    if broker:
        return dispatch.CeleryDispatch(backends.make_celery(broker), runtime.store())
    # jobs start from a clean fork server, never from this threaded process
    from .runtime.jobs import use_fork_server

    use_fork_server(data_dir)
    return dispatch.EmbeddedRunner(runtime.store(), data_dir, max_jobs)


def navigation() -> list[tuple[str, str, str]]:
    """The navigation bar, from Dash's page registry: (name, address, how the address marks
    the link active) of every page with a fixed address, in the pages' ``order``. A page
    shown by an address template (a run) is reached from the others, not from the bar; a
    page may say ``nav_active="partial"`` when addresses below its own belong to it."""
    pages = [page for page in dash.page_registry.values() if not page.get("path_template")]
    return [(page["name"], page["path"], page.get("nav_active", "exact"))
            for page in sorted(pages, key=lambda page: page["order"])]


def page_shell() -> html.Div:
    return html.Div([
        dbc.Navbar(
            dbc.Container([
                dcc.Link("GATO Dashboard", href="/", className="navbar-brand"),
                dbc.Nav([dbc.NavItem(dbc.NavLink(label, href=href, active=active))
                         for label, href, active in navigation()], navbar=True),
            ], fluid=True),
            color="dark", dark=True, className="mb-3",
        ),
        dbc.Container([
            dbc.Alert(id=security.READ_ONLY_NOTICE, color="warning", is_open=False,
                      dismissable=True, className="py-2"),
            dash.page_container,
        ], fluid=True, className="pb-5"),
    ])
