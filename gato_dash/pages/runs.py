"""/runs: every stored run in one table: filter, sort, rename, annotate, delete, compare, import.

User text (names, notes, tags) lives in DataTable cells, which render it as plain text; the
only markdown column is the link to the run page, built from the store's own ids.
"""
from __future__ import annotations

import errno
import logging
import sqlite3

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dash_table, dcc, html, no_update

from gato_core.config import DATASET_SCENARIO
from gato_core.scenarios import SCENARIOS
from gato_dash import runtime
from gato_dash.figure_cache import prebuild_figures
from gato_dash.comparison import selection
from gato_dash import runs_table
from gato_dash.runtime.importer import (
    MAX_ARCHIVE_BYTES,
    ImportProblem,
    import_result_dir,
    import_upload,
)
from gato_dash.runtime.run_fields import DAMAGED, STATUSES, TextTooLong
from gato_dash.callback_set import CallbackSet
from gato_dash.status_colours import status_text_colours

log = logging.getLogger(__name__)

#: This page's callbacks, put on each app by gato_dash.app.create_app
CALLBACKS = CallbackSet()
dash.register_page(__name__, path="/runs", name="Runs", title="Runs · GATO", order=2,
                   callbacks=CALLBACKS)

#: Editable columns and the store method that persists each.
EDITABLE = ("name", "note", "tags")
#: d3-format: 4 significant digits, trailing zeros trimmed (0.15 not 0.15000000000000002).
SHORT_NUMBER = {"specifier": ".4~g"}
COLUMNS = [
    {"id": "open", "name": "", "presentation": "markdown", "editable": False},
    {"id": "name", "name": "name", "editable": True},
    {"id": "scenario", "name": "scenario"},
    {"id": "status", "name": "status"},
    {"id": "ks", "name": "K"},
    {"id": "epochs", "name": "epochs", "type": "numeric"},
    {"id": "best_z", "name": "best hard Z per signal"},
    {"id": "best_objective", "name": "best objective", "type": "numeric",
     "format": {"specifier": ".3f"}},
    {"id": "lr_initial", "name": "lr start", "type": "numeric", "format": SHORT_NUMBER},
    {"id": "t_final", "name": "T end", "type": "numeric", "format": SHORT_NUMBER},
    {"id": "lam_yield", "name": "λ yield", "type": "numeric", "format": SHORT_NUMBER},
    {"id": "lam_unc", "name": "λ unc", "type": "numeric", "format": SHORT_NUMBER},
    {"id": "n_signal", "name": "signal ev.", "type": "numeric"},
    {"id": "n_bkg", "name": "bkg ev.", "type": "numeric"},
    {"id": "created", "name": "created"},
    {"id": "duration", "name": "duration"},
    {"id": "note", "name": "note", "editable": True},
    {"id": "tags", "name": "tags (comma-separated)", "editable": True},
]
def layout(**_query):
    scenario_options = [{"label": info.title, "value": key} for key, info in SCENARIOS.items()]
    scenario_options.append({"label": "Imported datasets", "value": DATASET_SCENARIO})
    status_options = [{"label": s, "value": s} for s in (*STATUSES, DAMAGED)]
    return html.Div([
        html.H3("Runs"),
        html.P("Every stored run. Click a name, note or tags cell to edit it; tick 2 to "
               f"{selection.MAX_COMPARE} runs to compare them side by side.", className="text-muted"),
        dbc.Row([
            dbc.Col(dcc.Dropdown(id="runs-filter-scenario", options=scenario_options, multi=True,
                                 placeholder="all scenarios"), md=3),
            dbc.Col(dcc.Dropdown(id="runs-filter-status", options=status_options, multi=True,
                                 placeholder="all statuses"), md=3),
            dbc.Col(dbc.Input(id="runs-filter-text", type="search", debounce=True,
                              placeholder="search name, note, tags, id"), md=4),
        ], className="g-2 mb-2"),
        dbc.Row([
            dbc.Col([
                dbc.Button("Compare", id="runs-compare", color="primary", disabled=True,
                           href=selection.compare_href([]), className="me-2"),
                dbc.Button("Delete…", id="runs-delete", color="danger", outline=True,
                           disabled=True, className="me-2"),
                html.Span(id="runs-selection-text", className="text-muted"),
            ], md=8),
            dbc.Col(html.Div(id="runs-edit-status", className="text-muted small text-end"), md=4),
        ], className="mb-2 align-items-center"),
        dash_table.DataTable(
            id="runs-table", columns=COLUMNS, data=[], row_selectable="multi",
            selected_rows=[], sort_action="native", page_action="native", page_size=25,
            style_table={"overflowX": "auto"},
            style_cell={"fontFamily": "inherit", "fontSize": "0.9rem", "padding": "4px 8px",
                        "textAlign": "left", "maxWidth": "260px", "overflow": "hidden",
                        "textOverflow": "ellipsis", "whiteSpace": "normal",
                        "overflowWrap": "anywhere"},
            style_header={"fontWeight": "600"},
            style_data_conditional=[
                {"if": {"column_editable": True}, "backgroundColor": "#fbfbf4"},
                *({"if": {"filter_query": f'{{status}} = "{status}"', "column_id": "status"},
                   "color": colour} for status, colour in status_text_colours().items()),
            ],
            style_cell_conditional=[{"if": {"column_id": "best_z"}, "minWidth": "240px"}],
            markdown_options={"link_target": "_self"},
            css=[{"selector": ".dash-cell-value p", "rule": "margin: 0"}],
        ),
        html.Div(id="runs-empty", className="text-muted my-3"),
        dcc.Store(id="runs-refresh", data=0),
        dbc.Modal([
            dbc.ModalHeader(dbc.ModalTitle("Delete runs?")),
            dbc.ModalBody(id="runs-delete-body"),
            dbc.ModalFooter([
                dbc.Button("Cancel", id="runs-delete-cancel", color="secondary"),
                dbc.Button("Delete", id="runs-delete-confirm", color="danger"),
            ]),
        ], id="runs-delete-modal", is_open=False),
        html.Hr(),
        _import_card(),
    ])


def _import_card():
    return dbc.Card(dbc.CardBody([
        html.H5("Import command-line results"),
        html.P(["Results of ", html.Code("python -m gato_core run … --out DIR"),
                ": upload the folder as a .zip or .tar.gz, or give its path on this server."],
               className="text-muted small"),
        dbc.Row([
            dbc.Col(dcc.Upload(
                id="runs-import-upload", max_size=MAX_ARCHIVE_BYTES, multiple=False,
                accept=".zip,.tar.gz,.tgz,application/zip,application/gzip",
                children=html.Div(["Drop an archive here or ", html.A("choose a file")]),
                style={"border": "1px dashed #999", "borderRadius": "6px", "padding": "14px",
                       "textAlign": "center", "cursor": "pointer"}), md=5),
            dbc.Col(dbc.InputGroup([
                dbc.Input(id="runs-import-path", placeholder="/path/to/result folder"),
                dbc.Button("Import folder", id="runs-import-folder", color="secondary"),
            ]), md=7),
        ], className="g-2"),
        html.Div(id="runs-import-message", className="mt-2"),
    ]), className="mb-4")


# ----- table data ------------------------------------------------------------------------
def table_rows(store) -> list[dict]:
    """One row per stored run, newest first (best Z from the light result summaries)."""
    summaries = store.result_summaries()
    rows = []
    for run in store.list_runs():
        results = summaries.get(run["id"], [])
        damage = runs_table.damage_of(run, results)
        if damage is None:
            try:
                row = runs_table.run_table_row(run, results)
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                # a shape no check foresaw: this run is shown damaged, the table stays
                log.warning("run %s cannot be shown as a row: %r", run["id"], exc)
                row = runs_table.damaged_row(run, "damaged: its stored numbers cannot be "
                                                  "read (see the server log)")
        else:
            row = runs_table.damaged_row(run, damage)
        rows.append(dict(row, open=f"[open](/runs/{run['id']})"))
    return rows


@CALLBACKS.callback(
    Output("runs-table", "data"),
    Output("runs-table", "selected_rows"),
    Output("runs-empty", "children"),
    Input("runs-filter-scenario", "value"),
    Input("runs-filter-status", "value"),
    Input("runs-filter-text", "value"),
    Input("runs-refresh", "data"),
    State("runs-table", "selected_row_ids"),
)
def refresh_table(scenarios, statuses, text, _refresh, selected_ids):
    all_rows = table_rows(runtime.store())
    rows = runs_table.filter_rows(all_rows, scenarios, statuses, text)
    # Keep the ticked runs ticked across filtering and refreshes (indices shift, ids don't).
    keep = set(selected_ids or [])
    selected = [i for i, row in enumerate(rows) if row["id"] in keep]
    if not all_rows:
        empty = "No runs stored yet: start one from the New run page, or import one below."
    elif not rows:
        empty = f"No run matches the filters ({len(all_rows)} stored)."
    else:
        empty = ""
    return rows, selected, empty


@CALLBACKS.callback(
    Output("runs-compare", "href"),
    Output("runs-compare", "disabled"),
    Output("runs-delete", "disabled"),
    Output("runs-selection-text", "children"),
    Input("runs-table", "selected_rows"),
    State("runs-table", "data"),
)
def selection_changed(selected_rows, data):
    ids = [data[i]["id"] for i in (selected_rows or []) if i < len(data or [])]
    n = len(ids)
    if n == 0:
        text = ""
    elif n < selection.MIN_COMPARE:
        text = f"1 run selected: select at least {selection.MIN_COMPARE} to compare"
    elif n > selection.MAX_COMPARE:
        text = f"{n} runs selected: at most {selection.MAX_COMPARE} can be compared"
    else:
        text = f"{n} runs selected"
    can_compare = selection.MIN_COMPARE <= n <= selection.MAX_COMPARE
    return selection.compare_href(ids), not can_compare, n == 0, text


# ----- edits -----------------------------------------------------------------------------
@CALLBACKS.callback(
    Output("runs-edit-status", "children"),
    Input("runs-table", "data_timestamp"),
    State("runs-table", "data"),
    State("runs-table", "data_previous"),
    prevent_initial_call=True,
)
def save_edits(_timestamp, data, previous):
    if not data or not previous:
        return no_update
    runtime.require_writable("changes are not saved")
    if not isinstance(data, list) or not isinstance(previous, list):
        raise dash.exceptions.PreventUpdate
    before = {row.get("id"): row for row in previous if isinstance(row, dict)}
    store = runtime.store()
    saved, refused = [], []
    for row in data:
        old = before.get(row.get("id")) if isinstance(row, dict) else None
        if old is None:
            continue
        for column in EDITABLE:
            if (row.get(column) or "") == (old.get(column) or ""):
                continue
            value = str(row.get(column) or "")
            try:
                if column == "name":
                    store.rename(row["id"], value)
                elif column == "note":
                    store.set_note(row["id"], value)
                else:
                    store.set_tags(row["id"], runs_table.parse_tags(value))
            except TextTooLong as exc:
                refused.append(f"{column} of {row['id']} not saved: {exc}")
                continue
            except (sqlite3.Error, OSError) as exc:
                log.warning("saving %s of run %s failed: %r", column, row["id"], exc)
                refused.append(f"{column} of {row['id']} not saved: {write_problem(exc)}")
                continue
            saved.append(f"{column} of {row['id']}")
    parts = (["saved " + ", ".join(saved)] if saved else []) + refused
    return "; ".join(parts) if parts else no_update


# ----- delete ----------------------------------------------------------------------------
@CALLBACKS.callback(
    Output("runs-delete-modal", "is_open"),
    Output("runs-delete-body", "children"),
    Output("runs-refresh", "data"),
    Input("runs-delete", "n_clicks"),
    Input("runs-delete-cancel", "n_clicks"),
    Input("runs-delete-confirm", "n_clicks"),
    State("runs-table", "selected_row_ids"),
    State("runs-table", "data"),
    State("runs-refresh", "data"),
    prevent_initial_call=True,
)
def delete_runs(_open, _cancel, _confirm, selected_ids, data, refresh):
    ids = [i for i in (selected_ids or []) if i in {row["id"] for row in data or []}]
    if ctx.triggered_id == "runs-delete" and ids:
        names = {row["id"]: row["name"] or row["id"] for row in data}
        body = [html.P(f"Delete {len(ids)} run{'s' if len(ids) != 1 else ''} with all their "
                       "histories, results and files? This cannot be undone."),
                html.Ul([html.Li(f"{names[i]} ({i})") for i in ids])]
        return True, body, no_update
    if ctx.triggered_id == "runs-delete-confirm" and ids:
        runtime.require_writable("runs cannot be deleted")
        store = runtime.store()
        for run_id in ids:
            try:
                store.delete(run_id)
            except (sqlite3.Error, OSError) as exc:  # a full disk, a read-only folder
                log.warning("deleting run %s failed: %r", run_id, exc)
                return True, dbc.Alert(f"Run {run_id} could not be deleted: "
                                       f"{write_problem(exc)}", color="danger",
                                       id="runs-delete-problem"), (refresh or 0) + 1
        return False, no_update, (refresh or 0) + 1
    return False, no_update, no_update


def write_problem(exc: Exception) -> str:
    """What a failed write to the store or the data folder means for the user."""
    text = str(exc).lower()
    if isinstance(exc, sqlite3.Error) and "readonly" in text or \
            getattr(exc, "errno", None) in (errno.EROFS, errno.EACCES, errno.EPERM):
        return ("the run store or the data folder is read-only for the server; ask whoever "
                "runs it to make the data folder writable")
    if getattr(exc, "errno", None) == errno.ENOSPC or "full" in text:
        return "the disk of the data folder is full"
    return "the run store could not be written (see the server log)"


# ----- import ----------------------------------------------------------------------------
@CALLBACKS.callback(
    Output("runs-import-message", "children"),
    Output("runs-refresh", "data", allow_duplicate=True),
    Input("runs-import-upload", "contents"),
    Input("runs-import-folder", "n_clicks"),
    State("runs-import-upload", "filename"),
    State("runs-import-path", "value"),
    State("runs-refresh", "data"),
    prevent_initial_call=True,
)
def import_results(contents, _clicks, filename, path, refresh):
    runtime.require_writable("imports are off")
    store = runtime.store()
    try:
        if ctx.triggered_id == "runs-import-upload":
            if not contents or not isinstance(contents, str):
                return no_update, no_update
            run_id = import_upload(str(filename or "upload"), contents, store,
                                   on_result=prebuild_figures)
        else:
            if not runtime.settings().allow_server_paths:
                return dbc.Alert("Reading a path on the server is off; start the app with "
                                 "--allow-server-paths to allow it, or upload an archive.",
                                 color="warning"), no_update
            if not isinstance(path, str) or not path.strip():
                return dbc.Alert("Give the path of a result folder.", color="warning"), no_update
            run_id = import_result_dir(path.strip(), store, on_result=prebuild_figures)
    except ImportProblem as exc:
        return dbc.Alert(f"Import refused: {exc}", color="danger"), no_update
    except sqlite3.Error as exc:
        log.warning("import failed: %r", exc)
        return dbc.Alert(f"Import failed: {write_problem(exc)}", color="danger"), no_update
    except OSError as exc:
        return dbc.Alert(f"Import failed: {exc.strerror or exc}", color="danger"), no_update
    except Exception:  # an unexpected file shape must not surface as a server error
        log.exception("import failed")
        return dbc.Alert("Import failed: the files could not be read (see the server log).",
                         color="danger"), no_update
    run = store.get_run(run_id) or {}
    return dbc.Alert(["Imported ", dcc.Link(run.get("name") or run_id, href=f"/runs/{run_id}"),
                      f" ({run.get('message', '')})."], color="success"), (refresh or 0) + 1
