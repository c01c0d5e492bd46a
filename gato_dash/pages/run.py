"""/runs/<run_id>: watch a run train live, cancel it, pick a finished K, see its results.

The page only reads the run store; it starts nothing. A run trains because it was
created (gato_dash.runtime.dispatch starts it on the server, or a Celery worker takes it),
so a run nobody opens trains all the same, and a read-only dashboard cannot be made to
train one by a crafted request.

What the browser shows comes from the run store, polled every POLL_MS by a plain callback
that fetches only the epochs after the last one drawn (gato_dash.live), and appends them
with dcc.Graph.extendData. A run that has already ended is drawn by the page layout itself
(one poll done on the server), so it needs no poll round trips at all.
"""
from __future__ import annotations

import logging
from typing import NamedTuple
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, State, ctx, dcc, html, no_update

from gato_dash import formatting, live, run_summary, runtime
from gato_dash.runtime import dispatch, run_facts
from gato_dash.runtime.run_fields import DAMAGED
from gato_dash.runtime.stored_records import DamagedRecord
from gato_dash.figures import history
from gato_dash.pages.home import status_badge
from gato_dash.results_section import CALLBACKS as RESULTS_SECTION_CALLBACKS, results_section
from gato_dash.callback_set import CallbackSet
from gato_dash.status_colours import status_colour

log = logging.getLogger(__name__)

#: This page's callbacks and its results section's, put on each app by
#: gato_dash.app.create_app
CALLBACKS = CallbackSet()
CALLBACKS.include(RESULTS_SECTION_CALLBACKS)
dash.register_page(__name__, path_template="/runs/<run_id>", title="Run · GATO Dashboard",
                   name="Run", callbacks=CALLBACKS)

POLL_MS = 400
#: How often the watchdog looks at the poll; it re-arms one that has waited for an answer
#: longer than its backoff (assets/run_poll.js)
WATCHDOG_MS = 1000
GRAPH_CONFIG = {"displaylogo": False, "responsive": True}


# ----- layout ------------------------------------------------------------------------------
def not_found(run_id) -> html.Div:
    return html.Div([
        html.H3("No such run"),
        # the id comes from the URL: shown as text, never interpreted
        html.P(["There is no run with the id ", html.Code(str(run_id)),
                ". It may have been deleted."]),
        dcc.Link("Back to the list of runs", href="/", id="run-not-found-home"),
    ], id="run-not-found")


def damaged(run: dict, reason: str) -> html.Div:
    """The page of a run whose stored row or records cannot be read: what is wrong, and
    where to delete it (the Runs page lists it as damaged)."""
    return html.Div([
        html.Div([
            html.H3(str(run.get("name") or f"Run {run['id']}"), className="me-3 mb-0"),
            status_badge(DAMAGED),
        ], className="d-flex align-items-center mb-2"),
        dbc.Alert([html.Div(str(reason)),
                   html.Div(["It can be deleted on the ", dcc.Link("Runs page", href="/runs"),
                             "."])], color="danger", id="run-damaged"),
    ], id="run-page")


def layout(run_id=None, **query):
    try:
        run = runtime.store().get_run(run_id) if run_id else None
    except Exception:
        log.exception("reading run %s failed", run_id)
        return dbc.Alert("The run store could not be read; try again in a moment.",
                         color="danger")
    if run is None:
        return not_found(run_id)
    if run["status"] == DAMAGED:
        return damaged(run, run["message"])

    read_only = runtime.settings().read_only
    shown = None
    if run["status"] not in live.ACTIVE:
        # A run that has ended is drawn completely here, from one poll done server-side:
        # the browser gets histories, results and their figures in the page response
        # instead of after two more round trips. The first poll then finds nothing new.
        try:
            shown = _ended_view(run)
        except DamagedRecord as exc:
            return damaged(run, f"damaged: {exc}")
        except Exception:  # the poll will try again and say what is wrong
            log.exception("drawing ended run %s on the server failed", run["id"])
    if shown is None:
        shown = _polled_view(run)
    histories = html.Div([
        html.Div([
            html.Span("Show K: ", className="me-2"),
            dbc.RadioItems(id="run-k", options=shown.k_options, value=shown.k_value,
                           inline=True),
        ], className="d-flex align-items-center mb-2"),
        dbc.Row([
            # An explicit height: with responsive=True the graph fills its container, and
            # a container without one collapses, so the figures overlapped what follows.
            dbc.Col(dcc.Graph(id=f"run-fig-{kind}", figure=shown.figures[kind],
                              config=GRAPH_CONFIG,
                              style={"height": f"{history.FIGURE_HEIGHT}px"}),
                    lg=6, className="mb-2")
            for kind in history.FIGURES
        ]),
    ], id="run-histories")
    results = None
    if shown.has_results:
        # An ended run opens on its results; the training curves are one tab away. Only
        # the shown tab is drawn, so the page draws 3 figures instead of 7. A history
        # still arriving in chunks (the page polls again) stays on top: extendData must
        # not land on an unmounted graph.
        complete = shown.poll_ticks == 0
        results = results_block(run["id"], prefill=True, view=query,
                                training=histories if complete else None)
        if complete and getattr(results, "id", None) == "results-section":
            histories = None
    children = [
        html.Div([
            html.H3(run["name"] or f"Run {run['id']}", id="run-title",
                    className="me-3 mb-0 text-break"),
            status_badge(run["status"], id="run-badge"),
            dbc.Button("Cancel", id="run-cancel", color="warning", outline=True, size="sm",
                       className="ms-auto", disabled=not shown.cancellable,
                       style=_shown_if(shown.cancellable and not read_only)),
        ], className="d-flex align-items-center mb-1"),
        html.Div([
            html.Span(f"id {run['id']} · "),
            html.Span(run_facts.title_of(run)),
            html.Span(f" · created {formatting.timestamp(run['created'])} · "),
            dcc.Link("configure a similar run", href="/new?" + urlencode(_config_query(run))),
        ], className="text-muted small mb-2"),
        # the headline Z, each number with its sample; the poll fills it as K finish
        html.Div(headline(run["id"], run.get("run_info")), id="run-headline",
                 className="fw-semibold mb-1"),
        html.Div(shown.status, id="run-status", className="run-status mb-1"),
        # written by the poll watchdog (assets/run_poll.js) while the server does not answer
        html.Div(id="run-connection", className="run-connection small text-danger"),
        dbc.Progress(id="run-progress", value=shown.progress, label=shown.progress_label,
                     striped=True, animated=shown.active, className="mb-2",
                     style={"height": "1.2rem"}),
        html.Div(shown.alert, id="run-alert"),
        html.Div(id="run-cancel-feedback", className="small text-muted"),
        histories,
        html.Div(results, id="run-results", className="mt-3"),
        dcc.Store(id="run-state", data=shown.state),
        # The results view this page shows (the link's, then the controls'): a live run's
        # results section arrives, and is rebuilt for each new K, by the poll.
        dcc.Store(id="run-view", data=query),
        # Self-paced polling: max_intervals=0 means "no tick"; each poll's response allows
        # exactly one more tick POLL_MS later (see poll_run). A fixed-rate interval would
        # fire again while a slow response is still on its way, and Dash drops the older
        # response, so on a busy machine the page could stop updating altogether.
        dcc.Interval(id="run-poll", interval=POLL_MS, max_intervals=shown.poll_ticks),
        # A poll whose answer never comes (server restarted, network gone) would stop the
        # self-paced polling for good: this slower tick re-arms it with backoff.
        dcc.Interval(id="run-poll-watchdog", interval=WATCHDOG_MS,
                     disabled=bool(shown.state.get("done"))),
        dcc.Store(id="run-poll-health", data={"waiting_since": None, "retries": 0}),
    ]
    return html.Div(children, id="run-page")


class _LiveView(NamedTuple):
    """What the run page shows when it is first drawn (the poll outputs' initial values).

    A NamedTuple, not a dataclass: Dash executes page modules without registering them in
    sys.modules, where a dataclass looks its module up."""
    state: dict
    status: str
    progress: float
    progress_label: str
    active: bool
    k_options: list
    k_value: int | None
    cancellable: bool
    alert: object
    poll_ticks: int
    figures: dict
    #: ended with results: the layout draws the results section (prefilled)
    has_results: bool = False


def _polled_view(run: dict) -> _LiveView:
    """Empty frames that the page's polls fill (a queued or running run)."""
    signals = run_facts.signals_of(run)
    k_first = run["current_k"] or (run["n_cats"] or [None])[0]
    active = run["status"] in live.ACTIVE
    return _LiveView(
        state=live.initial_state(run["id"]), status=live.status_text(run),
        progress=live.progress(run)[0], progress_label="", active=active, k_options=[],
        k_value=None, cancellable=active, alert=None, poll_ticks=0,
        figures=history.history_figures([], signals, live.epochs_total(run), k_first))


def _ended_view(run: dict) -> _LiveView:
    update = live.poll(runtime.store(), live.initial_state(run["id"]),
                       max_epochs=live.MAX_EPOCHS_ENDED)
    figures = update.figures or history.history_figures(
        [], run_facts.signals_of(run), live.epochs_total(run), update.k_value)
    return _LiveView(
        state=update.state, status=update.status_text, progress=update.progress,
        progress_label=update.progress_label, active=update.status in live.ACTIVE,
        k_options=update.k_options, k_value=update.k_value, cancellable=update.cancellable,
        alert=alert_for(update.status, update.status_text),
        # a long history arrives in chunks: let the page poll for the rest
        poll_ticks=0 if update.done else 1, figures=figures,
        has_results=bool(update.state["n_results"]) and update.status != "missing")


def _config_query(run: dict) -> dict:
    config = dict(run["config"])
    if isinstance(config.get("n_cats"), (list, tuple)):
        config["n_cats"] = ",".join(str(k) for k in config["n_cats"])
    return config


# ----- polling -----------------------------------------------------------------------------
POLL_OUTPUTS = {
    "state": Output("run-state", "data"),
    "status": Output("run-status", "children"),
    "badge": Output("run-badge", "children"),
    "badge_colour": Output("run-badge", "color"),
    "progress": Output("run-progress", "value"),
    "progress_label": Output("run-progress", "label"),
    "progress_animated": Output("run-progress", "animated"),
    "k_options": Output("run-k", "options"),
    "k_value": Output("run-k", "value"),
    "cancel_disabled": Output("run-cancel", "disabled"),
    "cancel_style": Output("run-cancel", "style"),
    "alert": Output("run-alert", "children"),
    "poll_ticks": Output("run-poll", "max_intervals"),
    "watchdog_off": Output("run-poll-watchdog", "disabled"),
    # an answer arrived: whatever the watchdog said about the connection is over
    "connection": Output("run-connection", "children", allow_duplicate=True),
    "results": Output("run-results", "children"),
    "headline": Output("run-headline", "children"),
    "figures": {kind: Output(f"run-fig-{kind}", "figure") for kind in history.FIGURES},
    "extends": {kind: Output(f"run-fig-{kind}", "extendData") for kind in history.FIGURES},
}


def _nothing_new() -> dict:
    """Every output of the poll left as it is."""
    return {key: ({kind: no_update for kind in value} if isinstance(value, dict) else no_update)
            for key, value in POLL_OUTPUTS.items()}


@CALLBACKS.callback(
    output=POLL_OUTPUTS,
    # the first poll runs when the page opens (it fills a queued or running run's page)
    prevent_initial_call="initial_duplicate",
    inputs={"n_intervals": Input("run-poll", "n_intervals"), "k_value": Input("run-k", "value"),
            "state": State("run-state", "data"), "view": State("run-view", "data")},
)
def poll_run(n_intervals, k_value, state, view):
    state = live.clean_state(state)
    if state is None:
        raise dash.exceptions.PreventUpdate
    n_intervals = n_intervals if isinstance(n_intervals, int) and n_intervals >= 0 else 0
    selected = k_value if ctx.triggered_id == "run-k" and isinstance(k_value, int) else None
    try:
        update = live.poll(runtime.store(), state, selected)
    except DamagedRecord as exc:  # polling again reads the same bytes: stop and say so
        return {**_nothing_new(), "status": f"damaged: {exc}", "poll_ticks": n_intervals,
                "watchdog_off": True}
    except Exception:
        # e.g. the database is locked for longer than the busy timeout: say so, retry
        log.exception("polling run %s failed", state.get("run"))
        return {**_nothing_new(), "status": "Could not read the run store; retrying…",
                "poll_ticks": n_intervals + 1}
    return render_update(update, n_intervals, view)


def render_update(update: live.LiveUpdate, n_intervals: int = 0, view=None) -> dict:
    """Map a LiveUpdate onto the poll callback's outputs (POLL_OUTPUTS); a results section
    is built showing ``view`` (the page's "run-view" store)."""
    results = no_update
    if update.results_changed and update.status != "missing":
        # nothing to show before the first K has a result
        results = (results_block(update.state["run"],
                                 view=view if isinstance(view, dict) else None)
                   if update.state["n_results"] else None)
    cancel_shown = update.cancellable and not runtime.settings().read_only
    # which tick this answers: the watchdog (assets/run_poll.js) sees that answers arrive
    state = {**update.state, "answered": n_intervals}
    status_text = update.status_text
    if update.status == "queued":
        # why it waits: a busy job slot, which Celery workers listen, or that none does
        status_text = queued_status(status_text, dispatch.queue_message())
    return {
        "state": state,
        "status": status_text,
        "badge": update.status,
        "badge_colour": status_colour(update.status),
        "progress": update.progress,
        "progress_label": update.progress_label,
        "progress_animated": update.status in live.ACTIVE,
        "k_options": update.k_options,
        "k_value": update.k_value,
        "cancel_disabled": not update.cancellable,
        "cancel_style": _shown_if(cancel_shown),
        "alert": alert_for(update.status, update.status_text),
        "poll_ticks": n_intervals if update.done else n_intervals + 1,  # one more tick, or none
        "watchdog_off": update.done,
        "connection": "",
        "results": results,
        "headline": headline(update.state["run"]) if update.results_changed else no_update,
        "figures": {kind: update.figures[kind] if update.figures else no_update
                    for kind in history.FIGURES},
        "extends": {kind: update.extends.get(kind, no_update) for kind in history.FIGURES},
    }


def headline(run_id: str, run_info: dict | None = None) -> str | None:
    """The run's headline significance (gato_dash.run_summary.headline); None without one."""
    try:
        store = runtime.store()
        if run_info is None:
            run_info = (store.get_run(run_id) or {}).get("run_info")
        return run_summary.headline(store.results(run_id), run_info)
    except Exception:  # the header goes without; the results below say what is wrong
        log.exception("the headline of run %s failed", run_id)
        return None


def queued_status(status_text: str, note) -> list | str:
    """The status line of a queued run with what the dispatcher says about its wait; a
    command in it (how to start a worker) is shown as code."""
    if note is None:
        return status_text
    parts = [status_text, " ", note.text]
    if note.command:
        parts += [" ", html.Code(note.command, className="text-nowrap"), "."]
    return parts


def _shown_if(visible: bool) -> dict:
    return {} if visible else {"display": "none"}


# The browser tab's title says how the run stands, so a run left in another tab can be
# followed from the tab strip.
CALLBACKS.clientside_callback(
    """function (status, name) {
        document.title = (name || "Run") + " · " + status + " · GATO";
        return window.dash_clientside.no_update;
    }""",
    Output("run-title", "title"),
    Input("run-badge", "children"),
    State("run-title", "children"),
)

# The poll watchdog (assets/run_poll.js): re-arms a poll whose answer never came.
CALLBACKS.clientside_callback(
    ClientsideFunction(namespace="gato", function_name="pollWatchdog"),
    Output("run-poll", "max_intervals", allow_duplicate=True),
    Output("run-poll-health", "data"),
    Output("run-connection", "children"),
    Input("run-poll-watchdog", "n_intervals"),
    State("run-poll", "n_intervals"),
    State("run-state", "data"),
    State("run-poll-health", "data"),
    prevent_initial_call=True,
)


def alert_for(status: str, text: str):
    if status in ("cancelled", "diverged", "failed", "interrupted", "missing"):
        return dbc.Alert(text, color=status_colour(status), className="py-2",
                         id="run-alert-message")
    return None


# ----- cancel ------------------------------------------------------------------------------
@CALLBACKS.callback(
    Output("run-cancel-feedback", "children"),
    Input("run-cancel", "n_clicks"),
    State("run-state", "data"),
    prevent_initial_call=True,
)
def cancel_run(n_clicks, state):
    state = live.clean_state(state)
    if not n_clicks or state is None:
        raise dash.exceptions.PreventUpdate
    runtime.require_writable("runs cannot be cancelled here")
    if runtime.store().request_cancel(state["run"]):
        return "Cancel requested: the run stops after the current epoch."
    return "The run had already ended."


# ----- results -----------------------------------------------------------------------------
#: The results section's store of its view as a query string (gato_dash.results_section),
#: copied into "run-view" so that a section the poll rebuilds keeps what the controls show.
RESULTS_VIEW_QUERY = "results-view-query"

CALLBACKS.clientside_callback(
    """function (query) {
        if (query === null || query === undefined) {
            return window.dash_clientside.no_update;
        }
        return Object.fromEntries(new URLSearchParams(query));
    }""",
    Output("run-view", "data"),
    Input(RESULTS_VIEW_QUERY, "data"),
    prevent_initial_call=True,
)


def results_block(run_id: str, prefill: bool = False, training=None, view: dict | None = None):
    """The results section of ``run_id`` (gato_dash.results_section).

    ``training`` (the history graphs) becomes a tab of the section when it is given;
    ``view``: the page's query (tab, K, switches: see results_section.ResultsView)."""
    try:
        return results_section(run_id, prefill=prefill, training=training, view=view)
    except DamagedRecord as exc:
        return dbc.Alert([html.Div(f"damaged: {exc}"),
                          html.Div(["The run can be deleted on the ",
                                    dcc.Link("Runs page", href="/runs"), "."])],
                         color="danger", id="run-damaged")
    except Exception:
        log.exception("results_section(%s) failed", run_id)
        return dbc.Alert("The results could not be drawn (see the server log); the training "
                         "curves above are complete.", color="warning", id="run-results-error")
