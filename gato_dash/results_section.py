"""Results section of the run page: figures per trained K, the numbers, and downloads.

``results_section(run_id)`` returns the component that the run page (pages/run.py) places
inside ``html.Div(id="run-results")`` once the run has at least one result. Not a page: its
callbacks are declared in ``CALLBACKS``, which the run page includes in its own
(gato_dash.callback_set).

Payload: only the selected K's figures travel (the 2-D animation is ~0.9 MB for 41
snapshots of 120 x 120, ~30 KB gzipped); the log switch re-sends only the small log-able
figures, and the density switch patches the animation's trace visibility instead of
re-sending it. Figures are built once per (run, K), by the training job when the K
finishes, and kept in memory and beside the run (gato_dash.figure_cache): a stored result
and the epochs of its K never change.

Opening a finished run draws its first view from one response: the page layout carries
the section with the first tab's figures (``prefill``), so the browser does not wait on
two more round trips; the hidden tabs' figures come from their callbacks meanwhile. A
section that arrives in a live page's poll response has no figures and its callbacks
fetch them; building starts (``prewarm``) as soon as that layout is made.

The section's K, tab and switches are kept in the run page's URL (``ResultsView``), so a
link opens on the same figures.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import re
import threading

from dataclasses import dataclass

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, Patch, State, dcc, html

from gato_core.categoriser import ExportError
from gato_core.config import DATASET_SCENARIO
from gato_core.datasets import datasets_folder, get_dataset
from gato_dash import figure_cache, formatting, runtime, view_state
from gato_dash.address_bar import keep_query_in_address_bar
from gato_dash.callback_set import CallbackSet
from gato_dash.spinner import spinner
from gato_dash.view_state import view_field
from gato_dash.figures import catalogue
from gato_dash.figures.baselines import significance_table_rows
from gato_dash.figures.category_numbers import category_table_rows
from gato_dash.figures.style import message_figure
from gato_dash.runtime import run_facts

GRAPH_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
ID_PREFIX = "results"
#: Friendlier table headings for row keys.
HEADERS = {"n_categories": "categories", "rel_unc": "σB/B", "background": "B",
           "category": "cat"}

log = logging.getLogger(__name__)

#: The section's callbacks; the run page includes them in its own (gato_dash.pages.run)
CALLBACKS = CallbackSet()


def _stored_run(run_id):
    """(store, run) for a download; no update at all for a run that is not (or no longer)
    stored, or an id that is not one."""
    store = current_store()
    run = store.get_run(run_id)
    if not run:
        raise dash.exceptions.PreventUpdate
    return store, run


def current_store():
    """The app's run store (gato_dash.runtime owns where it lives)."""
    return runtime.store()


# --------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------

def _graph(kind: str, name: str, figure=None, **style) -> dcc.Graph:
    """A results graph with a pattern-matching id: kind "kfig" (per K) or "logfig"."""
    return dcc.Graph(
        id={"type": f"{ID_PREFIX}-{kind}", "name": name},
        figure=figure if figure is not None else {},
        config=GRAPH_CONFIG, className="mb-3", style=style or None,
    )


def _table(rows: list[dict], columns: list[str] | None = None, text_columns=("method",),
           table_id: str | None = None):
    if not rows:
        return html.P("No numbers yet.", className="text-muted")
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    head = html.Thead(html.Tr([html.Th(_heading(c)) for c in columns]))
    body = html.Tbody([
        html.Tr([html.Td(formatting.number(row.get(c)), className="text-start" if c in text_columns
                         else "text-end") for c in columns])
        for row in rows
    ])
    extra = {"id": table_id} if table_id else {}
    return dbc.Table([head, body], size="sm", bordered=True, hover=True, striped=True,
                     responsive=True, className="small", **extra)


def _heading(column: str) -> str:
    # a category's Z is on the sample it was trained on: the heading says so
    if column.startswith("z_"):
        return f"Z({column[2:]}), training"
    return HEADERS.get(column, column)


def _category_table(result: dict):
    """The per-category numbers on the page; per-process yields are left to the CSV."""
    rows = category_table_rows(result)
    columns = [c for c in dict.fromkeys(k for row in rows for k in row)
               if not c.startswith("yield_") and c not in ("n_cats", "bkg_sum_w2")]
    return _table(rows, columns=columns, text_columns=())


def _numbers(result: dict, run: dict | None = None) -> list:
    """The category-numbers tab's text: what a fit would find, then the per-category table."""
    with_systematics = model_with_systematics(run, result) if run else None
    return [statistical_model_panel(result, with_systematics), _category_table(result)]


#: (run id, K, dataset content hash, its systematics) -> the statistical model with them
_SYSTEMATICS_MODELS: dict[tuple, dict | None] = {}
_SYSTEMATICS_LOCK = threading.Lock()


def model_with_systematics(run: dict, result: dict) -> dict | None:
    """The statistical model of a dataset run's K with its dataset's lnN systematics
    (gato_core.bundle.statistical_model: pyhf with normsys modifiers), or None when the
    run is not on a dataset with systematics or pyhf cannot compute it. Computed once per
    run, K and dataset content (a hypotest per signal takes a moment)."""
    config = run.get("config") or {}
    if config.get("scenario") != DATASET_SCENARIO or not config.get("dataset"):
        return None
    folder = datasets_folder(runtime.data_dir())
    try:
        manifest = get_dataset(folder, config["dataset"])
    except Exception:  # deleted or unreadable: the panel shows the stored numbers only
        return None
    systematics = (manifest.mapping or {}).get("systematics")
    if not systematics:
        return None
    key = (run.get("id"), int(result["n_cats"]), manifest.content_hash,
           json.dumps(systematics, sort_keys=True))
    with _SYSTEMATICS_LOCK:
        if key in _SYSTEMATICS_MODELS:
            return _SYSTEMATICS_MODELS[key]
    from gato_core.bundle import statistical_model  # pyhf on first use, not at start-up

    try:
        model = statistical_model(config, result, datasets_dir=folder)
    except Exception:
        log.exception("the statistical model with systematics of run %s K=%s failed",
                      run.get("id"), result.get("n_cats"))
        model = None
    if model is not None and "pyhf_z_syst" not in model:
        model = None
    with _SYSTEMATICS_LOCK:
        _SYSTEMATICS_MODELS[key] = model
    return model


def statistical_model_panel(result: dict, with_systematics: dict | None = None):
    """Asimov Z against pyhf's expected discovery significance without and with the MC
    statistical uncertainty (and with the dataset's lnN systematics when it has them),
    and the categories a real fit would choke on."""
    model = result.get("statistical_model") or with_systematics
    if not model:
        return html.P("No statistical model for this K (trained before it was computed, or "
                      "pyhf was missing); the analysis bundle computes it.",
                      className="text-muted small", id=f"{ID_PREFIX}-statmodel")
    syst_z = (with_systematics or {}).get("pyhf_z_syst") or {}
    rows = [{"signal": s, "Asimov Z, training": model["asimov_z"].get(s),
             "pyhf Z, training (no MC stat)": (model.get("pyhf_z") or {}).get(s),
             "pyhf Z, training (with MC stat)": (model.get("pyhf_z_mc_stat") or {}).get(s),
             **({"pyhf Z, training (MC stat + lnN systematics)": syst_z.get(s)}
                if syst_z else {})}
            for s in model.get("signals", [])]
    nuisances = (with_systematics or {}).get("systematics") or {}
    systematics_note = html.P(
        "Systematics (lnN, as pyhf normsys, one parameter each across categories): "
        + "; ".join(f"{name}: " + ", ".join(f"{p} {100 * u:g} %" for p, u in per.items())
                    for name, per in nuisances.items()) + ".",
        className="small text-muted mb-1", id=f"{ID_PREFIX}-statmodel-systematics") \
        if syst_z else None
    thresholds = model.get("thresholds") or {}
    flagged = [f for f in model.get("flags", [])
               if f.get("tiny_background") or f.get("large_mc_uncertainty")]
    notes = [html.Li(
        f"category {f['category']}: background {formatting.number(f.get('background'))}"
        + (" (tiny)" if f.get("tiny_background") else "")
        + f", relative MC uncertainty {formatting.number(f.get('rel_mc_unc'))}"
        + (" (large)" if f.get("large_mc_uncertainty") else ""))
        for f in flagged]
    return html.Div([
        html.H5("Statistical model (training sample)", className="mt-2"),
        html.P("What a fit of this categorisation finds on the training sample: the Asimov "
               "significance the optimiser maximised, and pyhf's expected discovery "
               "significance of its workspace (one channel per category, MC statistics as "
               "staterror).",
               className="small text-muted mb-1"),
        _table(rows, text_columns=("signal",), table_id=f"{ID_PREFIX}-statmodel-table"),
        systematics_note,
        html.Div([
            html.Small(f"Flagged when the background is below "
                       f"{formatting.number(thresholds.get('min_background'))} events or its "
                       f"relative MC uncertainty above "
                       f"{formatting.number(thresholds.get('max_rel_mc_uncertainty'))}:",
                       className="text-muted"),
            html.Ul(notes, className="small") if notes else
            html.Small(" none.", className="text-muted"),
        ]),
    ], id=f"{ID_PREFIX}-statmodel")


def _k_label(result: dict) -> str:
    status = result.get("status", "finished")
    return f"K = {result['n_cats']}" + ("" if status == "finished" else f" ({status})")


def default_k(results: list[dict]) -> int:
    """The K shown first: the largest finished one (else the last stored)."""
    finished = [r["n_cats"] for r in results if r.get("status") == "finished"]
    return max(finished) if finished else results[-1]["n_cats"]


@dataclass
class ResultsView:
    """What the section's controls set, kept in the run page's URL (gato_dash.view_state)
    so that a link opens the same figures: ``k``, ``tab``, ``log=1``, ``density=1``."""

    k: int | None = view_field("k", None, "k")
    tab: str = view_field("tab", "categories", "choice", catalogue.TABS)
    log: bool = view_field("log", False, "flag")
    density: bool = view_field("density", False, "flag")


def results_section(run_id: str, prefill: bool = False, training=None,
                    view: dict | None = None):
    """The results block of one run (figures, numbers table, downloads).

    ``prefill=True`` (a finished run's page, drawn server-side in one response) puts the
    first tab's figures (the default K's) into the layout, so the browser draws them
    without asking again; their callback skips its initial call. The hidden tabs' figures
    come from their callbacks' initial calls, which the server answers while the browser
    is still loading plotly.js, so a run opened for the first time does not wait for
    figures it does not show yet. Without ``prefill`` (the section arriving in a live
    page's poll response, which must stay small) every figure comes from the callbacks.
    ``training``: the run page's history graphs, shown as the last tab. ``view``: the
    page's query values (see ``ResultsView``); what cannot be meant is ignored and named.
    """
    store = current_store()
    run = store.get_run(run_id)
    results = store.results(run_id) if run else []
    if not run or not results:
        return html.Div(html.P("No results yet: they appear when the first category count "
                               "has finished training.", className="text-muted"),
                        id=f"{ID_PREFIX}-empty")
    run_info = run.get("run_info") or {}
    k_default = default_k(results)
    dim = run_facts.dim_of(run)
    two_d = dim == 2
    shown, problems = view_state.parse(ResultsView(k=k_default), view or {},
                                       [r["n_cats"] for r in results])
    if shown.density and not two_d:
        problems.append(view_state.ignored("density", "1", "density contours are drawn for "
                                           "2-D runs only"))
        shown.density = False
    k = shown.k
    if prefill:
        figures = _figures(figure_cache.k_key(run_id, k))
        if shown.density and "category_map" in figures:
            figures = dict(figures, category_map=_with_density(figures["category_map"]))
    else:
        figures = {}
        prewarm(run_id, k, len(results))
    selected = next(r for r in results if r["n_cats"] == k)
    def on_tab(tab):
        return catalogue.names(run, selected, dim=dim, tab=tab)

    controls = dbc.Row([
        dbc.Col([
            dbc.Label("Category count", html_for=f"{ID_PREFIX}-k", className="me-2 fw-bold"),
            dbc.RadioItems(id=f"{ID_PREFIX}-k", inline=True, value=k,
                           options=[{"label": _k_label(r), "value": r["n_cats"]}
                                    for r in results]),
        ], md="auto"),
        dbc.Col(dbc.Switch(id=f"{ID_PREFIX}-log", label="Log scale", value=shown.log),
                md="auto"),
        dbc.Col(dbc.Switch(id=f"{ID_PREFIX}-density", label="Density contours",
                           value=shown.density, disabled=not two_d), md="auto",
                style=None if two_d else {"display": "none"}),
    ], className="g-3 align-items-center mb-3")

    downloads = html.Div([
        dbc.Button("Report (HTML)", id=f"{ID_PREFIX}-dl-report-btn", color="primary",
                   size="sm", className="me-2"),
        dbc.Button("Results (JSON)", id=f"{ID_PREFIX}-dl-json-btn", color="secondary",
                   outline=True, size="sm", className="me-2"),
        dbc.Button("Categories (CSV)", id=f"{ID_PREFIX}-dl-csv-btn", color="secondary",
                   outline=True, size="sm", className="me-2"),
        dbc.Button(f"Parameters K = {k} (JSON)", id=f"{ID_PREFIX}-dl-params-btn",
                   color="secondary", outline=True, size="sm", className="me-2"),
        dbc.Button(f"Analysis bundle K = {k} (zip)", id=f"{ID_PREFIX}-dl-bundle-k-btn",
                   color="success", outline=True, size="sm", className="me-2"),
        dbc.Button("Analysis bundle, every K (zip)", id=f"{ID_PREFIX}-dl-bundle-btn",
                   color="success", outline=True, size="sm", className="me-2"),
        dcc.Download(id=f"{ID_PREFIX}-dl-bundle"),
        dcc.Download(id=f"{ID_PREFIX}-dl-report"),
        dcc.Download(id=f"{ID_PREFIX}-dl-json"),
        dcc.Download(id=f"{ID_PREFIX}-dl-csv"),
        dcc.Download(id=f"{ID_PREFIX}-dl-params"),
        html.Div(html.Small("Parameters restore the trained categoriser with "
                            "gato_core.model.from_parameters(json.load(f)). The analysis "
                            "bundle holds the categoriser file (gato_core.apply), the yields, "
                            "a pyhf workspace and a Combine datacard, with a README.",
                            className="text-muted")),
        spinner(html.Div(id=f"{ID_PREFIX}-dl-bundle-message")),
    ], className="mb-3")

    def k_graph(name):
        figure = (figures.get(name) or _empty(name)) if prefill else None
        return spinner(_graph("kfig", name, figure), kind="circle")

    # Tabs, because dcc.Tabs mounts only the selected tab: opening a run draws the first
    # tab's three figures, not all seven (Plotly draws one figure at a time, ~0.1-0.3 s
    # each). The other tabs' figures are in the layout all the same, so the K and log
    # switches update them and they show at once when their tab is picked.
    # The "Categories" tab's figures do not follow the log switch ("kfig"), the others do
    # ("logfig"): each kind comes from its own callback.
    tabs = [dcc.Tab(label="Categories", value="categories", id=f"{ID_PREFIX}-tab-categories",
                    children=[k_graph(name) for name in on_tab("categories")])]
    spectra = [_graph("logfig", name) for name in on_tab("spectra")]
    if spectra:
        tabs.append(dcc.Tab(label="Mass spectra" if two_d else "Histogram", value="spectra",
                            id=f"{ID_PREFIX}-tab-spectra", children=spectra))
    baselines = dbc.Row([
        dbc.Col(dcc.Graph(id=f"{ID_PREFIX}-significance", figure={}, config=GRAPH_CONFIG),
                lg=7),
        dbc.Col(_table(significance_table_rows(run_info, results),
                       table_id=f"{ID_PREFIX}-significance-table"), lg=5),
    ], className="mt-2")
    tabs.append(dcc.Tab(label="Baselines", value="baselines", id=f"{ID_PREFIX}-tab-baselines",
                        children=baselines))
    numbers = [*(_graph("logfig", name) for name in on_tab("numbers")),
               html.Div(id=f"{ID_PREFIX}-category-table", children=_numbers(selected, run))]
    tabs.append(dcc.Tab(label="Category numbers", value="numbers", id=f"{ID_PREFIX}-tab-numbers",
                        children=numbers))
    if training is not None:
        tabs.append(dcc.Tab(label="Training history", value="training",
                            id=f"{ID_PREFIX}-tab-training", children=training))

    if shown.tab not in [tab.value for tab in tabs]:
        problems.append(view_state.ignored("tab", shown.tab, "this run's results have no "
                                           "such tab"))
        shown.tab = "categories"
    return html.Div([
        dcc.Store(id=f"{ID_PREFIX}-run-id", data=run_id),
        dcc.Store(id=f"{ID_PREFIX}-k-default", data=k_default),
        # the view's query string, kept in the address bar by a clientside callback
        dcc.Store(id=f"{ID_PREFIX}-view-query"),
        html.Div(id=f"{ID_PREFIX}-view-query-applied", hidden=True),
        # the per-K figures are in this layout already: show_k skips its initial call
        dcc.Store(id=f"{ID_PREFIX}-prefilled", data=prefill),
        html.H3("Results", className="mt-4"),
        dbc.Alert([html.Div(problem) for problem in problems], color="warning",
                  id=f"{ID_PREFIX}-view-problems") if problems else None,
        controls,
        downloads,
        html.H4(id=f"{ID_PREFIX}-k-heading", children=f"K = {k} categories",
                className="mt-3"),
        dcc.Tabs(id=f"{ID_PREFIX}-tabs", value=shown.tab, children=tabs,
                 className="mb-2"),
    ], id=f"{ID_PREFIX}-section")


# --------------------------------------------------------------------------------------
# Data access (gato_dash.figure_cache: built once per run and K, kept in memory and on disk)
# --------------------------------------------------------------------------------------

#: Per-K figure dicts are ~1 MB (2-D animation); a few runs' worth stays in memory.
_CACHE = figure_cache.FigureCache(size=24, store=lambda: current_store())


def clear_cache() -> None:
    """Forget the figures held in memory (tests; the files beside the runs stay)."""
    _CACHE.clear()
    with _SYSTEMATICS_LOCK:
        _SYSTEMATICS_MODELS.clear()


def prewarm(run_id: str, n_cats: int, n_results: int) -> None:
    """Start getting the figures the page will ask for first, in a background thread.

    The layout reaches the browser, which then loads plotly.js (~0.5 s) before asking for
    figures; reading (or, for a run the job did not prebuild, building) them meanwhile
    takes that time off the page's draw time.
    """
    def build():
        try:
            _figures(figure_cache.run_key(run_id, n_results))
            _figures(figure_cache.log_key(run_id, n_cats, False))
            _figures(figure_cache.k_key(run_id, n_cats))
        except Exception:  # the callbacks will retry and report; never kill a thread loudly
            log.exception("prewarming results figures of run %s failed", run_id)

    threading.Thread(target=build, name=f"results-prewarm-{run_id}", daemon=True).start()


def _figures(key: tuple) -> dict:
    """The figures of a cache key (``figure_cache.k_key``, ``log_key``, ``run_key``) of a
    stored run: from memory, from the run's folder, or built once from the store and kept.
    No update at all for a run or K the store does not hold."""
    def build():
        store = current_store()
        kind, run_id, count = key[:3]
        run = store.get_run(run_id)
        results = store.results(run_id)
        if run is None or (kind != "run" and count not in {int(r["n_cats"]) for r in results}):
            raise dash.exceptions.PreventUpdate
        # only the per-K figures (the animation, the histories) draw epochs: read just K's
        epochs = store.epochs(run_id, n_cats=count) if kind == "k" else ()
        return figure_cache.build_figures(key, run, results, epochs)
    return _CACHE.get(key, build)


def _result(store, run_id: str, n_cats: int) -> dict:
    for result in store.results(run_id):
        if int(result["n_cats"]) == int(n_cats):
            return result
    raise dash.exceptions.PreventUpdate


def _empty(name: str) -> dict:
    return message_figure(name, "Not available for this category count.").to_plotly_json()


def _slug(run: dict) -> str:
    """File-name-safe stem: run id plus a tidy version of the (user-typed) name."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(run.get("name") or "")).strip("-.")[:40]
    return f"gato-{run['id']}" + (f"-{name}" if name else "")


# --------------------------------------------------------------------------------------
# Callbacks
# --------------------------------------------------------------------------------------

@CALLBACKS.callback(
    Output(f"{ID_PREFIX}-significance", "figure"),
    Input(f"{ID_PREFIX}-run-id", "data"),
    State(f"{ID_PREFIX}-k", "options"),
)
def show_comparison(run_id, k_options):
    if not run_id:
        raise dash.exceptions.PreventUpdate
    return _figures(figure_cache.run_key(run_id, len(k_options or [])))["significance_comparison"]


@CALLBACKS.callback(
    Output({"type": f"{ID_PREFIX}-kfig", "name": ALL}, "figure"),
    Output(f"{ID_PREFIX}-category-table", "children"),
    Output(f"{ID_PREFIX}-k-heading", "children"),
    Output(f"{ID_PREFIX}-dl-params-btn", "children"),
    Output(f"{ID_PREFIX}-dl-bundle-k-btn", "children"),
    Input(f"{ID_PREFIX}-k", "value"),
    Input(f"{ID_PREFIX}-density", "value"),
    State(f"{ID_PREFIX}-run-id", "data"),
    State(f"{ID_PREFIX}-prefilled", "data"),
)
def show_k(n_cats, show_density, run_id, prefilled):
    """Per-K figures on a K change; on a density-switch change only a small patch."""
    # the initial call of a section whose layout already holds these figures
    if n_cats is None or not run_id or (prefilled and dash.ctx.triggered_id is None):
        raise dash.exceptions.PreventUpdate
    names = [o["id"]["name"] for o in dash.ctx.outputs_list[0]]
    figures = _figures(figure_cache.k_key(run_id, n_cats))
    if dash.ctx.triggered_id == f"{ID_PREFIX}-density":
        # Flip the contour traces' visibility in the browser's copy of the animation
        # instead of re-sending its frames (~1 MB).
        updates = []
        for name in names:
            if name != "category_map" or name not in figures:
                updates.append(dash.no_update)
                continue
            patched = Patch()
            for i, trace in enumerate(figures[name].get("data", [])):
                if trace.get("type") == "contour":
                    patched["data"][i]["visible"] = True if show_density else "legendonly"
            updates.append(patched)
        return updates, dash.no_update, dash.no_update, dash.no_update, dash.no_update
    k_figures = [figures.get(name) or _empty(name) for name in names]
    if show_density and "category_map" in names:
        k_figures[names.index("category_map")] = _with_density(figures["category_map"])
    result = _result(current_store(), run_id, n_cats)
    return (k_figures, _numbers(result, current_store().get_run(run_id)),
            f"K = {n_cats} categories",
            f"Parameters K = {n_cats} (JSON)", f"Analysis bundle K = {n_cats} (zip)")


def _with_density(figure: dict) -> dict:
    """A copy of a cached category-map figure dict with the density contours shown."""
    data = [dict(t, visible=True) if t.get("type") == "contour" else t for t in figure["data"]]
    return dict(figure, data=data)


@CALLBACKS.callback(
    Output(f"{ID_PREFIX}-view-query", "data"),
    Input(f"{ID_PREFIX}-k", "value"),
    Input(f"{ID_PREFIX}-tabs", "value"),
    Input(f"{ID_PREFIX}-log", "value"),
    Input(f"{ID_PREFIX}-density", "value"),
    State(f"{ID_PREFIX}-run-id", "data"),
    State(f"{ID_PREFIX}-k-default", "data"),
    prevent_initial_call=True,
)
def keep_view_in_url(n_cats, tab, log, density, run_id, k_default):
    """The query string that reproduces what the controls show now (checked like a link)."""
    if not run_id:
        raise dash.exceptions.PreventUpdate
    defaults = ResultsView(k=k_default)
    shown = view_state.from_controls(
        defaults, {"k": n_cats, "tab": tab, "log": log, "density": density},
        current_store().result_ks(run_id))
    return view_state.query(shown, defaults)


keep_query_in_address_bar(CALLBACKS, f"{ID_PREFIX}-view-query", f"{ID_PREFIX}-view-query-applied")


@CALLBACKS.callback(
    Output({"type": f"{ID_PREFIX}-logfig", "name": ALL}, "figure"),
    Input(f"{ID_PREFIX}-k", "value"),
    Input(f"{ID_PREFIX}-log", "value"),
    State(f"{ID_PREFIX}-run-id", "data"),
)
def show_log_figures(n_cats, log, run_id):
    if n_cats is None or not run_id:
        raise dash.exceptions.PreventUpdate
    figures = _figures(figure_cache.log_key(run_id, n_cats, log))
    names = [o["id"]["name"] for o in dash.ctx.outputs_list]
    return [figures.get(name) or _empty(name) for name in names]


@CALLBACKS.callback(
    Output(f"{ID_PREFIX}-dl-report", "data"),
    Input(f"{ID_PREFIX}-dl-report-btn", "n_clicks"),
    State(f"{ID_PREFIX}-run-id", "data"),
    prevent_initial_call=True,
)
def download_report(_clicks, run_id):
    from gato_dash.report import build_report

    store, run = _stored_run(run_id)
    document = build_report(run, store.epochs(run_id), store.results(run_id))
    return dict(content=document, filename=f"{_slug(run)}-report.html", type="text/html")


@CALLBACKS.callback(
    Output(f"{ID_PREFIX}-dl-json", "data"),
    Input(f"{ID_PREFIX}-dl-json-btn", "n_clicks"),
    State(f"{ID_PREFIX}-run-id", "data"),
    prevent_initial_call=True,
)
def download_json(_clicks, run_id):
    store, run = _stored_run(run_id)
    return dict(content=json.dumps(results_document(run, store.results(run_id)), indent=1),
                filename=f"{_slug(run)}-results.json", type="application/json")


@CALLBACKS.callback(
    Output(f"{ID_PREFIX}-dl-csv", "data"),
    Input(f"{ID_PREFIX}-dl-csv-btn", "n_clicks"),
    State(f"{ID_PREFIX}-run-id", "data"),
    prevent_initial_call=True,
)
def download_csv(_clicks, run_id):
    store, run = _stored_run(run_id)
    return dict(content=categories_csv(store.results(run_id)),
                filename=f"{_slug(run)}-categories.csv", type="text/csv")


@CALLBACKS.callback(
    Output(f"{ID_PREFIX}-dl-params", "data"),
    Input(f"{ID_PREFIX}-dl-params-btn", "n_clicks"),
    State(f"{ID_PREFIX}-k", "value"),
    State(f"{ID_PREFIX}-run-id", "data"),
    prevent_initial_call=True,
)
def download_parameters(_clicks, n_cats, run_id):
    if n_cats is None:
        raise dash.exceptions.PreventUpdate
    from gato_core.bundle import PARAMETERS_FILE

    store, run = _stored_run(run_id)
    try:
        content = analysis_export(run, store.results(run_id), n_cats, PARAMETERS_FILE)
    except ExportError:  # a K never trained (or without parameters): nothing to download
        raise dash.exceptions.PreventUpdate from None
    return dict(content=content.decode(),
                filename=f"{_slug(run)}-K{int(n_cats)}-parameters.json",
                type="application/json")


@CALLBACKS.callback(
    Output(f"{ID_PREFIX}-dl-bundle", "data"),
    Output(f"{ID_PREFIX}-dl-bundle-message", "children"),
    Input(f"{ID_PREFIX}-dl-bundle-btn", "n_clicks"),
    Input(f"{ID_PREFIX}-dl-bundle-k-btn", "n_clicks"),
    State(f"{ID_PREFIX}-k", "value"),
    State(f"{ID_PREFIX}-run-id", "data"),
    prevent_initial_call=True,
)
def download_bundle(_all, _one, n_cats, run_id):
    one_k = dash.ctx.triggered_id == f"{ID_PREFIX}-dl-bundle-k-btn"
    if not isinstance(run_id, str) or (one_k and not isinstance(n_cats, int)):
        raise dash.exceptions.PreventUpdate
    store, run = _stored_run(run_id)
    try:
        content = analysis_export(run, store.results(run_id), n_cats if one_k else None)
    except ExportError as exc:
        return dash.no_update, dbc.Alert(f"No bundle: {exc}", color="warning",
                                         className="py-1", id=f"{ID_PREFIX}-dl-bundle-problem")
    except Exception:
        log.exception("building the analysis bundle of %s failed", run_id)
        return dash.no_update, dbc.Alert("The bundle could not be built (see the server log).",
                                         color="danger", className="py-1")
    suffix = f"-K{int(n_cats)}" if one_k else ""
    return dcc.send_bytes(content, f"{_slug(run)}{suffix}-analysis.zip"), None


def analysis_export(run: dict, results: list[dict], n_cats: int | None,
                    name: str | None = None) -> bytes:
    """gato_core.bundle.export for a stored run (events from the data folder's caches):
    the zip, or the file ``name`` of K = ``n_cats``. pyhf and uproot are imported on the
    first bundle, not when the app starts."""
    from gato_core.bundle import export

    data_dir = runtime.data_dir()
    return export(run["config"], results, n_cats, name, cache_dir=data_dir / "events",
                  datasets_dir=datasets_folder(data_dir))


# --------------------------------------------------------------------------------------
# Download contents (plain functions, unit-tested)
# --------------------------------------------------------------------------------------

def results_document(run: dict, results: list[dict]) -> dict:
    """Everything needed to reproduce the numbers: run metadata, config, RunInfo, results."""
    meta_keys = ("id", "name", "note", "tags", "scenario", "status", "message", "created",
                 "started", "finished")
    return {
        "format": "gato-dashboard-results/1",
        "run": {k: run.get(k) for k in meta_keys},
        "config": run.get("config"),
        "run_info": run.get("run_info"),
        "results": results,
    }


def categories_csv(results: list[dict]) -> str:
    """One row per (K, category) with the per-category numbers of every result."""
    rows = [row for result in results for row in category_table_rows(result)]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
