"""/compare?runs=<id>,<id>,...: 2 to 6 runs side by side; the URL alone reproduces the view.

The page is drawn completely on the server when it is opened (parameter table and every
figure), so a bookmarked or shared link shows the same view with no clicks. The controls
then redraw single panels; their callbacks re-read the runs by id through a small cache
rather than shipping run data to the browser. The link also carries what the controls
show (tab, K, axes, smoothing, differences only: see ``compare.ViewState``), and the
controls keep it up to date in the address bar.
"""
from __future__ import annotations

import logging

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html, no_update

from gato_dash import runtime
from gato_dash.comparison import export, loading, parameters, selection
from gato_dash import view_state
from gato_dash.address_bar import keep_query_in_address_bar
from gato_dash.figures import compare as figs
from gato_dash.callback_set import CallbackSet

log = logging.getLogger(__name__)

#: This page's callbacks, put on each app by gato_dash.app.create_app
CALLBACKS = CallbackSet()
# nav_active: /compare?runs=... and its views are this page too (gato_dash.app.navigation)
dash.register_page(__name__, path="/compare", name="Compare", title="Compare runs · GATO",
                   order=3, nav_active="partial", callbacks=CALLBACKS)

#: Loaded runs shared by the page and its callbacks (controls redraw without re-reading).
_RUN_CACHE = loading.RunCache(size=24)
SECTION_LABELS = {"run": "run", "config": "setting", "result": "result"}
RESULT_ROW_COLOUR = "#fff8e1"
BEST_CELL_STYLE = {"fontWeight": "700", "color": "#0a6b2b"}
DIFFERS_STYLE = {"backgroundColor": "#eef4ff"}


# ----- loading ---------------------------------------------------------------------------
def load_runs(store, run_ids: list[str]) -> tuple[list[loading.ComparedRun], list[str]]:
    return loading.load_comparison(store, run_ids, cache=_RUN_CACHE)


# ----- page ------------------------------------------------------------------------------
def layout(runs=None, **query):
    chosen = selection.parse_run_ids(runs)
    if not chosen.ids:
        return _message_page("Choose runs to compare",
                             [f"The link names no valid run ({'; '.join(chosen.problems)})."
                              if chosen.problems else "The link names no runs.",
                              " Tick 2 to 6 runs on the Runs page and press Compare."])
    try:
        loaded, missing = load_runs(runtime.store(), chosen.ids)
    except Exception:
        log.exception("loading runs %s failed", chosen.ids)
        return _message_page("Could not load these runs",
                             ["The run store could not be read; see the server log."])
    if len(loaded) < selection.MIN_COMPARE:
        found = f"only {len(loaded)} of them exists" if loaded else "none of them exists"
        return _message_page("Not enough runs to compare",
                             [f"The link names {len(chosen.ids)} run(s), {found}. ",
                              html.Ul([html.Li(p) for p in chosen.problems + missing])])
    try:
        return _compare_page(loaded, chosen.problems + missing, query)
    except Exception:  # odd stored data must give a message, not a server error
        log.exception("building the compare view of %s failed", chosen.ids)
        return _message_page("Could not compare these runs",
                             ["Their stored records could not be read; see the server log."])


def _message_page(title: str, body) -> html.Div:
    return html.Div([
        html.H3(title),
        html.Div(body, className="mb-3"),
        dcc.Link("Go to the runs table", href="/runs"),
    ], id="compare-message")


def _compare_page(runs: list[loading.ComparedRun], warnings: list[str],
                  query: dict | None = None) -> html.Div:
    ks = sorted({k for r in runs for k in r.trained_ks})
    k_default = loading.default_k(runs)
    k_options = [{"label": f"K = {k}", "value": k} for k in ks]
    # the rest of the link: which tab, K, axes... (bad values are named, then ignored)
    view, problems = selection.parse_view_state(query or {}, ks, k_default)
    warnings = warnings + problems
    return html.Div([
        html.H3(f"Comparing {len(runs)} runs"),
        html.Div([_run_chip(i, r) for i, r in enumerate(runs)], className="mb-2"),
        dbc.Alert([html.Div(w) for w in warnings], color="warning") if warnings else None,
        dcc.Store(id="compare-run-ids", data=[r.id for r in runs]),
        dcc.Store(id="compare-k-default", data=k_default),
        # the view's query string, kept in the address bar by a clientside callback
        dcc.Store(id="compare-view-query"),
        html.Div(id="compare-view-query-applied", hidden=True),
        # ----- parameter table
        dbc.Card(dbc.CardBody([
            dbc.Row([
                dbc.Col(html.H4("Parameters and results", className="mb-0"), md="auto"),
                dbc.Col(dbc.Switch(id="compare-diff-only", label="differences only",
                                   value=view.differences_only), md="auto"),
                dbc.Col(dbc.Button("Download CSV", id="compare-csv-button", size="sm",
                                   outline=True, color="secondary"), md="auto"),
            ], className="align-items-center g-3 mb-2"),
            html.Div("Highlighted: final significances; bold green: the best run of a row; "
                     "blue: settings that differ.", className="text-muted small mb-2"),
            # A plain table, not a DataTable: nothing here needs editing or paging, and the
            # DataTable's own bundle and first render were ~0.3 s of the view's open time.
            html.Div(parameter_table_view(runs, differences_only=view.differences_only),
                     id="compare-table", style={"overflowX": "auto"}),
            dcc.Download(id="compare-csv"),
        ]), className="mb-3"),
        # Tabs, because dcc.Tabs mounts only the selected one: the view opens drawing one
        # figure, not three (each costs 0.1-0.3 s in Plotly on this machine); the others
        # are in the page already and draw when their tab is picked.
        dbc.Card(dbc.CardBody(dcc.Tabs(id="compare-tabs", value=view.tab, children=[
            dcc.Tab(label="Training histories", value="histories", id="compare-tab-histories",
                    children=_histories_panel(runs, k_options, view)),
            dcc.Tab(label="Significance against number of categories", value="significance",
                    id="compare-tab-significance", children=html.Div(_panel(
                        "compare-significance",
                        lambda: figs.significance_vs_categories_figure(runs)),
                        className="mt-2")),
            dcc.Tab(label="Final categories", value="categories", id="compare-tab-categories",
                    children=_categories_panel(runs, k_options, view)),
        ])), className="mb-4"),
    ], id="compare-view")


def _histories_panel(runs, k_options, view: selection.ViewState):
    k = view.history_k
    return [
        dbc.Row([
            dbc.Col(dcc.Dropdown(id="compare-history-k", options=k_options, value=k,
                                 clearable=False), md=2),
            dbc.Col(dbc.RadioItems(
                id="compare-history-x", inline=True, value=view.x_mode,
                options=[{"label": "epoch", "value": "epoch"},
                         {"label": "fraction of training", "value": "fraction"}]), md=4),
            dbc.Col(dbc.Switch(id="compare-history-log", label="log y", value=view.history_log),
                    md=2),
            dbc.Col([html.Small("smoothing"),
                     dcc.Slider(id="compare-history-smoothing", min=0, max=selection.MAX_SMOOTHING,
                                step=0.05, value=view.smoothing,
                                marks={0: "0", 0.5: "0.5", selection.MAX_SMOOTHING: "0.95"})], md=3),
            dbc.Col(dbc.Button("Histories CSV", id="compare-history-csv-button", size="sm",
                               outline=True, color="secondary"), md=1),
        ], className="align-items-center g-2 mt-2"),
        dcc.Download(id="compare-history-csv"),
        _panel("compare-history", lambda: figs.history_figure(
            runs, k, log_y=view.history_log, smoothing=view.smoothing, x_mode=view.x_mode)
            if k is not None else _raise("no run has trained a category count")),
    ]


def _categories_panel(runs, k_options, view: selection.ViewState):
    k = view.categories_k
    return [
        dbc.Row([
            dbc.Col(dcc.Dropdown(id="compare-categories-k", options=k_options,
                                 value=k, clearable=False), md=2),
            dbc.Col(dbc.Switch(id="compare-categories-log", label="log y (1-D)",
                               value=view.categories_log), md=3),
        ], className="align-items-center g-2 mt-2"),
        _panel("compare-categories", lambda: figs.category_figure(
            runs, k, log_y=view.categories_log)
            if k is not None else _raise("no run has trained a category count")),
    ]


def _raise(reason: str):
    raise figs.PanelNotApplicable(reason)


def _run_chip(index: int, run: loading.ComparedRun):
    return html.Span([
        html.Span(style={"display": "inline-block", "width": "12px", "height": "12px",
                         "borderRadius": "2px", "marginRight": "6px",
                         "backgroundColor": figs.run_colour(index)}),
        dcc.Link(run.name, href=f"/runs/{run.id}"),
        html.Span(f" · {run.scenario} · {run.run.get('status', '')}", className="text-muted"),
    ], className="me-4 d-inline-block compare-run-chip")


def _panel(graph_id: str, build):
    """A graph, or the reason it does not apply (never an empty chart)."""
    figure, reason = _figure_or_reason(build)
    return html.Div([
        html.Div(reason, id=f"{graph_id}-reason", className="alert alert-secondary",
                 style={} if reason else {"display": "none"}),
        dcc.Graph(id=f"{graph_id}-graph", figure=figure or {},
                  style={} if figure else {"display": "none"},
                  config={"displaylogo": False}),
    ])


def _figure_or_reason(build):
    try:
        return build(), ""
    except figs.PanelNotApplicable as exc:
        return None, f"Not shown: {exc}."
    except Exception:
        log.exception("a compare panel failed")
        return None, "This panel could not be drawn for these runs (see the server log)."


def _panel_outputs(build):
    figure, reason = _figure_or_reason(build)
    return (figure or {}, {} if figure else {"display": "none"},
            reason, {} if reason else {"display": "none"})


# ----- parameter table -------------------------------------------------------------------
def _table_columns(runs):
    return ([{"id": "section", "name": ""}, {"id": "parameter", "name": "parameter"}]
            + [{"id": f"run{i}", "name": r.name} for i, r in enumerate(runs)])


def parameter_table(runs, differences_only: bool) -> list[dict]:
    """Table rows; ``mark`` and ``best`` are data fields (not columns) the styles key on."""
    rows = parameters.visible_rows(parameters.comparison_rows(runs), differences_only)
    data = []
    for row in rows:
        record = {"key": row.key, "section": SECTION_LABELS[row.section],
                  "parameter": row.label,
                  "mark": "result" if row.section == "result"
                  else "differs" if row.differs and row.key not in ("name", "id") else "",
                  "best": "" if row.best_index is None else f"run{row.best_index}"}
        record.update({f"run{i}": text for i, text in enumerate(row.texts())})
        data.append(record)
    return data


def parameter_table_view(runs, differences_only: bool) -> html.Table:
    """The parameter table as HTML: result rows tinted, differing settings blue, the best
    run of a result row bold green. Cell text is data (Dash escapes it), never markup."""
    columns = _table_columns(runs)
    header = html.Thead(html.Tr([html.Th(c["name"]) for c in columns]))
    body = []
    for record in parameter_table(runs, differences_only):
        row_style = ({"backgroundColor": RESULT_ROW_COLOUR} if record["mark"] == "result"
                     else DIFFERS_STYLE if record["mark"] == "differs" else None)
        cells = []
        for column in columns:
            key = column["id"]
            cell_style = BEST_CELL_STYLE if key == record["best"] else None
            cells.append(html.Td(record.get(key, ""), style=cell_style))
        body.append(html.Tr(cells, style=row_style))
    return html.Table([header, html.Tbody(body)],
                      className="table table-sm compare-parameter-table mb-0")


@CALLBACKS.callback(
    Output("compare-table", "children"),
    Input("compare-diff-only", "value"),
    State("compare-run-ids", "data"),
    prevent_initial_call=True,
)
def toggle_differences(differences_only, run_ids):
    runs, _ = load_runs(runtime.store(), run_ids or [])
    return parameter_table_view(runs, bool(differences_only))


@CALLBACKS.callback(
    Output("compare-csv", "data"),
    Input("compare-csv-button", "n_clicks"),
    State("compare-diff-only", "value"),
    State("compare-run-ids", "data"),
    prevent_initial_call=True,
)
def download_csv(_clicks, differences_only, run_ids):
    runs, _ = load_runs(runtime.store(), run_ids or [])
    if not runs:
        return no_update
    rows = parameters.visible_rows(parameters.comparison_rows(runs), bool(differences_only))
    return dict(content=export.comparison_csv(runs, rows),
                filename="gato-compare-" + "-".join(r.id for r in runs) + ".csv",
                type="text/csv")


@CALLBACKS.callback(
    Output("compare-history-csv", "data"),
    Input("compare-history-csv-button", "n_clicks"),
    State("compare-history-k", "value"),
    State("compare-history-x", "value"),
    State("compare-run-ids", "data"),
    prevent_initial_call=True,
)
def download_history_csv(_clicks, n_cats, x_mode, run_ids):
    runs, _ = load_runs(runtime.store(), run_ids or [])
    if not runs or n_cats is None:
        return no_update
    return dict(content=export.history_csv(runs, int(n_cats), x_mode=x_mode or "epoch"),
                filename=f"gato-histories-K{int(n_cats)}-" + "-".join(r.id for r in runs)
                + ".csv", type="text/csv")


# ----- figure controls -------------------------------------------------------------------
@CALLBACKS.callback(
    Output("compare-history-graph", "figure"),
    Output("compare-history-graph", "style"),
    Output("compare-history-reason", "children"),
    Output("compare-history-reason", "style"),
    Input("compare-history-k", "value"),
    Input("compare-history-x", "value"),
    Input("compare-history-log", "value"),
    Input("compare-history-smoothing", "value"),
    State("compare-run-ids", "data"),
    prevent_initial_call=True,
)
def redraw_histories(n_cats, x_mode, log_y, smoothing, run_ids):
    if n_cats is None:  # a dropdown without a choice (clearable=False: not from the page)
        raise dash.exceptions.PreventUpdate
    runs, _ = load_runs(runtime.store(), run_ids or [])
    return _panel_outputs(lambda: figs.history_figure(
        runs, int(n_cats), log_y=bool(log_y), smoothing=float(smoothing or 0),
        x_mode=x_mode or "epoch"))


@CALLBACKS.callback(
    Output("compare-categories-graph", "figure"),
    Output("compare-categories-graph", "style"),
    Output("compare-categories-reason", "children"),
    Output("compare-categories-reason", "style"),
    Input("compare-categories-k", "value"),
    Input("compare-categories-log", "value"),
    State("compare-run-ids", "data"),
    prevent_initial_call=True,
)
def redraw_categories(n_cats, log_y, run_ids):
    if n_cats is None:
        raise dash.exceptions.PreventUpdate
    runs, _ = load_runs(runtime.store(), run_ids or [])
    return _panel_outputs(lambda: figs.category_figure(runs, int(n_cats), log_y=bool(log_y)))


# ----- the view in its URL ------------------------------------------------------------------
@CALLBACKS.callback(
    Output("compare-view-query", "data"),
    Input("compare-tabs", "value"),
    Input("compare-diff-only", "value"),
    Input("compare-history-k", "value"),
    Input("compare-history-x", "value"),
    Input("compare-history-log", "value"),
    Input("compare-history-smoothing", "value"),
    Input("compare-categories-k", "value"),
    Input("compare-categories-log", "value"),
    State("compare-run-ids", "data"),
    State("compare-k-default", "data"),
    prevent_initial_call=True,
)
def keep_view_in_url(tab, differences_only, history_k, x_mode, history_log, smoothing,
                     categories_k, categories_log, run_ids, k_default):
    """The query string that reproduces what the controls show now (checked like a link)."""
    runs, _ = load_runs(runtime.store(), run_ids or [])
    defaults = selection.default_view(k_default)
    view = view_state.from_controls(
        defaults,
        {"tab": tab, "diff": differences_only, "k": history_k, "x": x_mode,
         "log": history_log, "smooth": smoothing, "ck": categories_k, "clog": categories_log},
        {k for r in runs for k in r.trained_ks})
    return selection.view_query([r.id for r in runs], view, defaults)


keep_query_in_address_bar(CALLBACKS, "compare-view-query", "compare-view-query-applied")
