"""The Dash app factory and the per-process runtime (data folder, run store, job manager).

``create_app(data_dir)`` wires Dash Pages (gato_dash/pages), the Bootstrap theme from
assets/ (no CDN: the app must work offline) and a DiskcacheManager whose job processes
train the runs. The data folder holds:

- ``runs.sqlite``  the run store (gato_dash.store)
- ``jobs/``        diskcache of the background-callback manager
- ``events/``      generated event samples, cached by the engine
- ``xla/``         TensorFlow's persistent XLA compilation cache (see configure_tensorflow)
- ``runs/<id>/``   files belonging to one run (removed with the run)

The web process itself never imports TensorFlow: jobs come from a fork server that has
imported it (gato_dash.jobs), and everything the pages compute is numpy.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from . import first_page, plotlyjs, settings
# re-exported: app.py and the importer use them from here
from .settings import STORE_FILE, configure_tensorflow, resolve_data_dir  # noqa: F401
from .store import RunStore

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(__file__).resolve().parent
DEFAULT_DATA_DIR = settings.DEFAULT_DATA_DIR

log = logging.getLogger(__name__)


class Runtime:
    """What the pages need from the running app; set once by ``create_app``."""

    data_dir: Path | None = None
    store: RunStore | None = None


def data_dir() -> Path:
    if Runtime.data_dir is None:
        raise RuntimeError("create_app() has not been called in this process")
    return Runtime.data_dir


def store() -> RunStore:
    if Runtime.store is None:
        raise RuntimeError("create_app() has not been called in this process")
    return Runtime.store


def create_app(data_dir=None, broker=None, store=None) -> dash.Dash:
    """``broker`` (or $GATO_BROKER): a Redis URL sends training jobs to Celery workers;
    ``store`` (or $GATO_STORE): a PostgreSQL URL for a run store shared by machines
    (gato_dash.settings). Without them, everything stays on this machine."""
    data_dir = resolve_data_dir(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    Runtime.data_dir = data_dir
    Runtime.store = settings.open_store(data_dir, store)
    # Embedded: jobs start from a clean fork server, never from this threaded process.
    manager = settings.make_manager(data_dir, settings.resolve_broker(broker),
                                    Runtime.store.location)

    app = dash.Dash(
        "gato_dash",  # a package name, so pages import as gato_dash.pages.<name>
        use_pages=True,
        pages_folder=str(PACKAGE / "pages"),
        assets_folder=str(REPO / "assets"),
        background_callback_manager=manager,
        suppress_callback_exceptions=True,  # page components come and go
        title="GATO Dashboard",
        update_title=None,  # no "Updating..." flicker in the tab title while polling
        serve_locally=True,
        # gzip (flask-compress): plotly.js (the cartesian bundle, see _serve_partial_plotlyjs)
        # is 1.5 MB raw and ~0.5 MB compressed; this keeps first visits within budget
        compress=True,
    )
    _serve_partial_plotlyjs(app)
    _import_optional_sections()
    page_container = first_page.install(app)
    # A function, so the navigation reflects every page registered by then and the first
    # page of a visit comes inside the initial layout (gato_dash.first_page).
    app.layout = lambda: _shell(page_container())
    return app


#: Where dcc.Graph loads plotly.js from, on demand, when the first graph of a page mounts
#: (dash-renderer sets window._dashPlotlyJSURL to this path when serving locally).
PLOTLYJS_PATH = "_dash-component-suites/plotly/package_data/plotly.min.js"


def _serve_partial_plotlyjs(app: dash.Dash) -> None:
    """Answer dcc.Graph's request for plotly.js with the cartesian bundle (gato_dash.plotlyjs).

    Pages without graphs still load no plotly.js at all. Without a bundle matching the
    installed plotly, Dash serves the full one as before.
    """
    from flask import Response, request

    bundle = plotlyjs.cartesian_bundle()
    if bundle is None:
        return
    body = bundle.encode("utf-8")
    tag = hashlib.sha1(body).hexdigest()

    def serve_plotlyjs():
        # Revalidated like Dash's own unfingerprinted files. flask-compress appends ":gzip"
        # to the tag of a compressed answer, which is what the browser sends back.
        if tag in request.headers.get("If-None-Match", ""):
            return Response(None, status=304)
        response = Response(body, mimetype="application/javascript")
        response.set_etag(tag)
        return response

    # A fully static rule: Werkzeug prefers it over Dash's <package>/<path> rule.
    app.server.add_url_rule(app.config.routes_pathname_prefix + PLOTLYJS_PATH,
                            "gato_plotlyjs", serve_plotlyjs)


def _import_optional_sections() -> None:
    """Modules other people add to pages/ without register_page (so Dash does not import
    them): import them here so their callbacks exist before the first request."""
    try:
        import gato_dash.pages.run_results  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "gato_dash.pages.run_results":
            log.exception("importing the results section failed")
    except Exception:
        log.exception("importing the results section failed")


def _nav_links() -> list:
    registered = {page["path"] for page in dash.page_registry.values()}
    links = [dbc.NavItem(dbc.NavLink("Home", href="/", active="exact")),
             dbc.NavItem(dbc.NavLink("New run", href="/new", active="exact"))]
    if "/runs" in registered:
        links.append(dbc.NavItem(dbc.NavLink("Runs", href="/runs", active="exact")))
    if "/compare" in registered:
        links.append(dbc.NavItem(dbc.NavLink("Compare", href="/compare", active="partial")))
    return links


def _shell(page_container) -> html.Div:
    return html.Div([
        dbc.Navbar(
            dbc.Container([
                dcc.Link("GATO Dashboard", href="/", className="navbar-brand"),
                dbc.Nav(_nav_links(), navbar=True),
            ], fluid=True),
            color="dark", dark=True, className="mb-3",
        ),
        dbc.Container(page_container, fluid=True, className="pb-5"),
    ])


#: The name other modules (pages/run_results.py) use for ``store()``.
get_store = store
