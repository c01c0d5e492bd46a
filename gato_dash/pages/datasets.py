"""/datasets: bring your own events in (CSV, Parquet, ROOT), map their columns, store them.

Three steps on one page: files (uploaded in chunks by assets/chunked_upload.js through
gato_dash.uploads, or a path on the server when the app allows it), a preview of what was
read with a column mapping to fill in, and the import itself (gato_core.datasets, which
checks everything and writes nothing unless all is well). Below, the stored datasets with
rename, delete and a link that opens the New-run form on them.

Sources travel through the browser as {"kind": "upload", "token"} or {"kind": "path",
"path"}; the server resolves them again on every use, so a crafted request can name
neither another upload's folder nor a server path when paths are off.
"""
from __future__ import annotations

import errno
import logging
import stat
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from gato_core import datasets as catalogue
from gato_core import import_steps
from gato_core.readers import DatasetError, Source, inspect_sources
from gato_core.selection import parse_selection
from gato_dash import formatting, runtime, uploads
from gato_dash.callback_set import CallbackSet
from gato_dash.spinner import spinner

log = logging.getLogger(__name__)

#: This page's callbacks, put on each app by gato_dash.app.create_app
CALLBACKS = CallbackSet()
dash.register_page(__name__, path="/datasets", title="Datasets · GATO Dashboard",
                   name="Datasets", order=4, callbacks=CALLBACKS)

MAX_SOURCES = 20
PREVIEW_ROWS = 5


# ----- sources ------------------------------------------------------------------------------
def resolve_sources(entries) -> list[Source]:
    """The files behind the page's source list, checked again here (see the module doc)."""
    if not isinstance(entries, list) or not entries:
        raise DatasetError({"data": "add at least one file"})
    if len(entries) > MAX_SOURCES:
        raise DatasetError({"data": f"at most {MAX_SOURCES} files at once"})
    sources = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise DatasetError({"data": "the list of files is damaged; add them again"})
        process = entry.get("process") if isinstance(entry.get("process"), str) else None
        process = (process or "").strip() or None
        if entry.get("kind") == "upload":
            try:
                path = uploads.completed_file(entry.get("token"))
            except uploads.UploadError as exc:
                raise DatasetError({"data": str(exc)}) from None
        elif entry.get("kind") == "path":
            path = _server_path(entry.get("path"))
        else:
            raise DatasetError({"data": "the list of files is damaged; add them again"})
        sources.append(Source(str(path), None, process))
    return sources


def _server_path(text) -> Path:
    if not runtime.settings().allow_server_paths:
        raise DatasetError({"path": "reading a path on the server is off (start the app with "
                                    "--allow-server-paths)"})
    if not isinstance(text, str) or not text.strip():
        raise DatasetError({"path": "give the path of a file on the server"})
    shown = text.strip()[:300]  # messages name the path and the problem, never the contents
    try:
        path = Path(text.strip()).expanduser()
    except RuntimeError:  # "~someone" for a user this machine does not know
        raise DatasetError({"path": f"{shown!r}: there is no such user's home folder on the "
                                    "server"}) from None
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise DatasetError({"path": f"{shown!r} is a folder; give the path of a file"})
        if not stat.S_ISREG(info.st_mode):
            raise DatasetError({"path": f"{shown!r} is not a regular file (a device, a pipe "
                                        "or a socket)"})
        with open(path, "rb"):  # readable by the server, not only listed
            pass
    except DatasetError:
        raise
    except (FileNotFoundError, NotADirectoryError):
        raise DatasetError({"path": f"there is no file {shown!r} on the server"}) from None
    except PermissionError:
        raise DatasetError({"path": f"{shown!r}: permission denied (the server may not read "
                                    "it)"}) from None
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte, a dead link...
        raise DatasetError({"path": f"{shown!r} cannot be read "
                                    f"({getattr(exc, 'strerror', None) or 'invalid path'})"}) \
            from None
    size = info.st_size
    limit = runtime.settings().max_upload_bytes
    if size > limit:
        raise DatasetError({"path": f"{path.name} has {formatting.byte_size(size, 4)}; this "
                                    f"server takes files up to {formatting.byte_size(limit)} "
                                    f"(--max-upload-gib)"})
    return path


def _source_label(entry: dict) -> str:
    if entry.get("kind") == "path":
        return str(entry.get("path"))
    return str(entry.get("filename") or "upload")


def datasets_dir() -> Path:
    return catalogue.datasets_folder(runtime.data_dir())


def runs_using(dataset_id: str) -> str | None:
    """Why a dataset cannot be deleted now: the runs that were trained on it."""
    users = [run for run in runtime.store().list_runs()
             if run["config"].get("dataset") == dataset_id]
    if not users:
        return None
    names = ", ".join(run["name"] or run["id"] for run in users[:3])
    more = f" and {len(users) - 3} more" if len(users) > 3 else ""
    return (f"{len(users)} run{'s' if len(users) != 1 else ''} ({names}{more}) "
            "were trained on it; delete those first")


# ----- layout -------------------------------------------------------------------------------
def layout(**_query):
    settings = runtime.settings()
    read_only = settings.read_only
    add = dbc.Card(dbc.CardBody([
        html.H5("Add a dataset"),
        html.P("One table with a process column, or one file (or ROOT tree) per process. "
               "Classifier scores (1 to 3 columns), an optional weight and an optional "
               "diphoton-mass column; numbers only, apart from the process label.",
               className="small text-muted"),
        dbc.Row([
            dbc.Col([
                dbc.Label("Upload files (.csv, .parquet, .root)", className="small mb-0",
                          html_for="datasets-upload"),
                # a file input: assets/chunked_upload.js picks it up by its class and reports
                # to "<id>-done" (the finished upload) and "<id>-progress"
                dbc.Input(id="datasets-upload", type="file", size="sm",
                          className="gato-chunked-upload"),
                dbc.Progress(id="datasets-upload-progress", value=0, className="mt-1",
                             style={"height": "1rem"}),
                dbc.FormText("Sent in chunks; files up to "
                             f"{formatting.byte_size(settings.max_upload_bytes)}.",
                             className="small"),
            ], md=6),
            dbc.Col([
                dbc.Label("…or a file on the server", className="small mb-0"),
                dbc.InputGroup([
                    dbc.Input(id="datasets-path", size="sm", type="text",
                              placeholder="/data/ntuples/ggH.root",
                              disabled=not settings.allow_server_paths),
                    dbc.Button("Add", id="datasets-add-path", size="sm",
                               disabled=not settings.allow_server_paths),
                ], size="sm"),
                dbc.FormText("Off unless the app runs with --allow-server-paths."
                             if not settings.allow_server_paths else
                             "Read where the server runs.", className="small"),
            ], md=6),
        ]),
        html.Div(id="datasets-sources-view", className="mt-2"),
        spinner(html.Div(id="datasets-preview", className="mt-2")),
        html.Div(id="datasets-mapping", children=_mapping_form([], []), className="mt-2",
                 style={"display": "none"}),
        spinner(html.Div(id="datasets-import-message", className="mt-2")),
    ]), className="mb-3")
    return html.Div([
        html.H3("Datasets"),
        add if not read_only else dbc.Alert("This dashboard is read-only: datasets are listed "
                                            "but cannot be added.", color="secondary"),
        html.H5("Stored datasets"),
        html.Div(id="datasets-list", children=datasets_table()),
        html.Div(id="datasets-list-message", className="small mt-1"),
        dcc.Store(id="datasets-upload-done"),
        dcc.Store(id="datasets-sources", data=[]),
        dcc.Store(id="datasets-inspection"),
        dcc.Store(id="datasets-trees", data=[]),
        dcc.Store(id="datasets-refresh", data=0),
    ])


def _mapping_form(numeric: list[str], labels: list[str]):
    def dropdown(id_, options, multi=False, placeholder=None):
        return dcc.Dropdown(id=id_, options=[{"label": o, "value": o} for o in options],
                            multi=multi, placeholder=placeholder, className="small")

    def number(id_, placeholder):
        return dbc.Input(id=id_, type="number", size="sm", placeholder=placeholder)

    return dbc.Form([
        html.H6("Column mapping", className="mt-2"),
        dbc.Row([
            dbc.Col([dbc.Label("Score columns (1 to 3)", className="small mb-0"),
                     dropdown("datasets-scores", numeric, multi=True),
                     html.Div(id="datasets-score-hint", className="form-text small")],
                    md=6, lg=4),
            dbc.Col([dbc.Label("Weight column (optional: 1 per event)", className="small mb-0"),
                     dropdown("datasets-weight", numeric)], md=6, lg=4),
            dbc.Col([dbc.Label("Process column (optional: one process per file)",
                               className="small mb-0"),
                     dropdown("datasets-process", labels)], md=6, lg=4),
            dbc.Col([dbc.Label("Signal processes (one significance each)",
                               className="small mb-0"),
                     dropdown("datasets-signals", [], multi=True)], md=6, lg=4),
            dbc.Col([dbc.Label("Mass column (optional: bump hunt)", className="small mb-0"),
                     dropdown("datasets-mass", numeric)], md=6, lg=4),
            dbc.Col([dbc.Label("Signal window and fit range (GeV)", className="small mb-0"),
                     dbc.InputGroup([number("datasets-window-lo", "window low"),
                                     number("datasets-window-hi", "window high"),
                                     number("datasets-range-lo", "range low"),
                                     number("datasets-range-hi", "range high")], size="sm")],
                    md=12, lg=8),
        ]),
        html.Div(id="datasets-trees-view", className="mt-2"),
        _steps_form(),
        dbc.Row([
            dbc.Col(dbc.Checkbox(id="datasets-drop-nonfinite", value=False,
                                 label="Drop rows with NaN or inf (counted in the report)"),
                    md=6),
            dbc.Col([dbc.Input(id="datasets-name", size="sm", type="text",
                               maxLength=catalogue.MAX_NAME_LENGTH,
                               placeholder="dataset name (default: the first file's)")],
                    md=4),
            # type "button": Enter in a field of the form must not import half a mapping
            dbc.Col(dbc.Button("Import", id="datasets-import", color="primary", size="sm",
                               type="button"), md=2),
        ], className="mt-2 align-items-center"),
    ])


#: The analysis-step fields: (component id, engine key, label, placeholder, help)
STEP_FIELDS = [
    ("datasets-selection", "selection", "Selection cut (optional)",
     "nn_score > 0.1 & njets >= 2",
     "Events failing it are left out before anything else; columns, numbers, comparisons, "
     "& | ~ and + - * /."),
    ("datasets-luminosity", "luminosity", "Luminosity (optional)", "138",
     "Multiplies every weight (e.g. fb⁻¹ when the weights are cross-sections in fb)."),
    ("datasets-scales", "process_scales", "Per-process scale factors (optional)",
     "hh=0.031 ttbar=1.05",
     "PROCESS=FACTOR: cross-section × normalisation, multiplied into that process's weights."),
    ("datasets-systematics", "systematics", "lnN systematics (optional)",
     "lumi:*=0.016 xs_tt:ttbar=0.05",
     "NAME:PROCESS=U, U relative (0.05 = 5 %), * = every process; exported as pyhf normsys "
     "and Combine lnN, and used for the run's significance with systematics."),
]


def _steps_form():
    return html.Div([
        html.H6("Analysis steps", className="mt-2"),
        dbc.Row([
            dbc.Col([dbc.Label(label, html_for=id_, className="small mb-0"),
                     dbc.Input(id=id_, type="text", size="sm", placeholder=placeholder,
                               autoComplete="off"),
                     dbc.FormFeedback(id=f"{id_}-feedback", type="invalid"),
                     dbc.FormText(help_text, className="small")], md=6, lg=3)
            for id_, _, label, placeholder, help_text in STEP_FIELDS
        ]),
    ])


def check_steps_values(selection, luminosity, scales, systematics,
                       known_columns=None) -> dict[str, str]:
    """The engine's messages on the analysis-step fields: {engine key: message}."""
    problems = {}
    checks = [("selection", lambda: parse_selection(selection, known_columns)
               if _text(selection) else None),
              ("luminosity", lambda: import_steps.clean_luminosity(_text(luminosity))),
              ("process_scales", lambda: import_steps.clean_process_scales(_text(scales))),
              ("systematics", lambda: import_steps.clean_systematics(_text(systematics)))]
    for key, check in checks:
        try:
            check()
        except DatasetError as exc:
            problems[key] = exc.problems.get(key) or str(exc)
    return problems


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def trees_table(trees: list[dict]):
    """One row per tree of the ROOT files: a tick box, the process name, entries and
    whether it holds the mapped columns (filled in by tree_columns)."""
    if not trees:
        return None
    rows = [html.Tr([
        html.Td(dbc.Checkbox(id={"type": "datasets-tree-use", "index": i}, value=False,
                             label=tree["tree"])),
        html.Td(tree["source"]),
        html.Td(formatting.number(tree["entries"]), className="text-end"),
        html.Td(dbc.Input(id={"type": "datasets-tree-process", "index": i}, size="sm",
                          value=tree["tree"], debounce=True, style={"width": "10rem"})),
        html.Td(id={"type": "datasets-tree-columns", "index": i}, className="small"),
    ], id={"type": "datasets-tree-row", "index": i}) for i, tree in enumerate(trees)]
    head = html.Thead(html.Tr([html.Th(h) for h in ("tree", "file", "entries", "process",
                                                    "mapped columns")]))
    return html.Div([
        html.H6("Trees of the ROOT files", className="mt-2"),
        html.P("Tick the trees to import and name each one's process. With none ticked every "
               "tree holding the mapped columns is read (others, e.g. a meta tree, are "
               "skipped), and a file with a tree that looks like a systematic variation "
               "(ttbar_JESup) is refused until trees are chosen. Ticked trees are named here, "
               "not by the per-file process box.",
               className="small text-muted mb-1"),
        dbc.Table([head, html.Tbody(rows)], size="sm", className="small w-auto mb-1",
                  id="datasets-trees-table"),
    ])


def chosen_trees(trees, used, processes) -> dict[str, str] | None:
    """``{tree: process}`` for the engine's ``trees`` setting from the ticked rows (None when
    nothing is ticked: the engine then reads every usable tree)."""
    if not isinstance(trees, list) or not trees:
        return None
    used = used if isinstance(used, list) else []
    processes = processes if isinstance(processes, list) else []
    if len(used) != len(trees) or len(processes) != len(trees):
        raise DatasetError({"trees": "the list of trees is out of date; add the files again"})
    chosen: dict[str, str] = {}
    for tree, tick, process in zip(trees, used, processes):
        if tick is not True or not isinstance(tree, dict) or not isinstance(tree.get("tree"), str):
            continue
        name = tree["tree"]
        process = _text(process) or name
        if chosen.get(name, process) != process:
            raise DatasetError({"trees": f"tree {name!r} is in several files with different "
                                         f"process names ({chosen[name]!r}, {process!r}); a "
                                         f"tree name stands for one process"})
        chosen[name] = process
    return chosen or None


def datasets_table():
    try:
        manifests = catalogue.list_datasets(datasets_dir())
    except Exception:
        log.exception("listing datasets failed")
        return dbc.Alert("The datasets folder could not be read.", color="danger")
    if not manifests:
        return html.P("No datasets yet.", className="text-muted", id="datasets-none")
    read_only = runtime.settings().read_only
    rows = []
    for m in manifests:
        processes = [html.Span(p, className="fw-bold" if p in m.signals else None)
                     for p in m.processes]
        joined = []
        for item in processes:
            joined += [item, ", "]
        actions = [dcc.Link("Train on it", href=f"/new?scenario=dataset&dataset={m.id}",
                            className="btn btn-sm btn-outline-primary me-1")]
        if not read_only:
            actions += [
                dbc.Input(id={"type": "dataset-name", "id": m.id}, value=m.name, size="sm",
                          maxLength=catalogue.MAX_NAME_LENGTH,
                          style={"width": "12rem", "display": "inline-block"}),
                dbc.Button("Rename", id={"type": "dataset-rename", "id": m.id}, size="sm",
                           color="secondary", outline=True, className="ms-1"),
                dbc.Button("Delete", id={"type": "dataset-delete", "id": m.id}, size="sm",
                           color="danger", outline=True, className="ms-1"),
            ]
        rows.append(html.Tr([
            html.Td([html.Div(m.name), html.Small(m.id, className="text-muted")]),
            html.Td(f"{m.n_events:,}"),
            html.Td(joined[:-1]),
            html.Td(f"{m.dim}" + (" + mass" if m.has_mass else "")),
            html.Td(formatting.timestamp(m.created)),
            html.Td(html.Code(m.content_hash.split(":")[-1][:12], title=m.content_hash)),
            html.Td(html.Ul([html.Li(n) for n in m.notes], className="small mb-0")
                    if m.notes else ""),
            html.Td(actions, style={"whiteSpace": "nowrap"}),
        ], id={"type": "dataset-row", "id": m.id}))
    header = ["name", "events", "processes (signals bold)", "scores", "imported", "hash",
              "notes", ""]
    return dbc.Table([html.Thead(html.Tr([html.Th(h) for h in header])), html.Tbody(rows)],
                     size="sm", hover=True, responsive=True, id="datasets-table")


def _preview(inspection: list[dict]):
    blocks = []
    for table in inspection:
        stats = html.Table([
            html.Thead(html.Tr([html.Th(h) for h in
                                ("column", "type", "min", "max", "NaN", "inf")])),
            html.Tbody([html.Tr([
                html.Td(c["name"]), html.Td(c.get("dtype")),
                html.Td(_short(c.get("min"))), html.Td(_short(c.get("max"))),
                html.Td(c.get("nan", "")), html.Td(c.get("inf", "")),
            ]) for c in table["columns"]]),
        ], className="table table-sm small mb-1")
        preview = table["preview"]
        rows = html.Table([
            html.Thead(html.Tr([html.Th(c) for c in preview["columns"]])),
            html.Tbody([html.Tr([html.Td(_short(v)) for v in row])
                        for row in preview["rows"][:PREVIEW_ROWS]]),
        ], className="table table-sm small")
        title = f"{table['source']}: {table['n_rows']:,} rows"
        if table.get("process"):
            title += f" (process {table['process']!r} unless a process column says otherwise)"
        blocks.append(html.Div([html.H6(title, className="mt-2"), stats,
                                html.Details([html.Summary("first rows", className="small"),
                                              rows])]))
    return html.Div(blocks, id="datasets-preview-tables")


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


# ----- callbacks: sources -----------------------------------------------------------------
@CALLBACKS.callback(
    Output("datasets-sources", "data"),
    Output("datasets-import-message", "children", allow_duplicate=True),
    Input("datasets-upload-done", "data"),
    Input("datasets-add-path", "n_clicks"),
    Input({"type": "datasets-remove", "index": ALL}, "n_clicks"),
    State("datasets-path", "value"),
    State("datasets-sources", "data"),
    prevent_initial_call=True,
)
def edit_sources(upload, _add, _remove, path, sources):
    sources = [s for s in (sources if isinstance(sources, list) else []) if isinstance(s, dict)]
    trigger = ctx.triggered_id
    runtime.require_writable("datasets cannot be added")
    if trigger == "datasets-upload-done":
        if not isinstance(upload, dict):
            raise dash.exceptions.PreventUpdate
        if upload.get("error"):
            return no_update, _problem(f"The upload of {upload.get('filename')} failed: "
                                       f"{upload['error']}")
        entry = {"kind": "upload", "token": upload.get("token"),
                 "filename": uploads.safe_filename(upload.get("filename")) or "upload",
                 "process": ""}
    elif trigger == "datasets-add-path":
        try:
            _server_path(path)
        except DatasetError as exc:
            return no_update, _problem(str(exc))
        entry = {"kind": "path", "path": path.strip(), "process": ""}
    elif isinstance(trigger, dict) and trigger.get("type") == "datasets-remove":
        index = trigger.get("index")
        if not ctx.triggered[0].get("value") or not isinstance(index, int):
            raise dash.exceptions.PreventUpdate
        removed = sources[index] if 0 <= index < len(sources) else None
        if removed and removed.get("kind") == "upload":
            uploads.discard(removed.get("token"))
        return [s for i, s in enumerate(sources) if i != index], None
    else:
        raise dash.exceptions.PreventUpdate
    if len(sources) >= MAX_SOURCES:
        return no_update, _problem(f"At most {MAX_SOURCES} files at once.")
    return sources + [entry], None


@CALLBACKS.callback(
    Output("datasets-sources-view", "children"),
    Input("datasets-sources", "data"),
)
def show_sources(sources):
    if not isinstance(sources, list) or not sources:
        return html.P("No files yet.", className="small text-muted mb-0")
    return html.Div([
        html.Div([
            html.Span(_source_label(entry), className="me-2"),
            dbc.Input(id={"type": "datasets-source-process", "index": i}, size="sm",
                      value=entry.get("process", ""), placeholder="process name (per file)",
                      style={"width": "14rem", "display": "inline-block"}, debounce=True),
            dbc.Button("remove", id={"type": "datasets-remove", "index": i}, size="sm",
                       color="link", className="py-0"),
        ], className="small mb-1")
        for i, entry in enumerate(sources) if isinstance(entry, dict)
    ], id="datasets-source-list")


@CALLBACKS.callback(
    Output("datasets-sources", "data", allow_duplicate=True),
    Input({"type": "datasets-source-process", "index": ALL}, "value"),
    State("datasets-sources", "data"),
    prevent_initial_call=True,
)
def name_processes(names, sources):
    if not isinstance(sources, list) or len(names) != len(sources):
        raise dash.exceptions.PreventUpdate
    changed = False
    for entry, name in zip(sources, names):
        name = (name or "")[:100] if isinstance(name, str) else ""
        if isinstance(entry, dict) and entry.get("process", "") != name:
            entry["process"], changed = name, True
    if not changed:
        raise dash.exceptions.PreventUpdate
    return sources


# ----- callbacks: preview and mapping ------------------------------------------------------
@CALLBACKS.callback(
    Output("datasets-preview", "children"),
    Output("datasets-inspection", "data"),
    Output("datasets-mapping", "style"),
    Output("datasets-scores", "options"),
    Output("datasets-weight", "options"),
    Output("datasets-mass", "options"),
    Output("datasets-process", "options"),
    Output("datasets-score-hint", "children"),
    Input("datasets-sources", "data"),
    prevent_initial_call=True,
)
def inspect(sources):
    hidden = {"display": "none"}
    if not isinstance(sources, list) or not sources:
        return None, None, hidden, [], [], [], [], None
    try:
        inspection = inspect_sources(resolve_sources(sources),
                                     max_bytes=runtime.settings().max_upload_bytes)
    except DatasetError as exc:
        return _problem(f"The files could not be read: {exc}"), None, hidden, [], [], [], [], \
            None
    except Exception:
        log.exception("inspecting %s failed", sources)
        return _problem("The files could not be read (see the server log)."), None, hidden, \
            [], [], [], [], None
    numeric = _ordered({c["name"] for t in inspection for c in t["columns"]
                        if c.get("kind") == "number"}, inspection)
    labels = _ordered({c["name"] for t in inspection for c in t["columns"]
                       if c.get("kind") in ("text", "number")}, inspection)
    not_numbers = _not_numbers(inspection, set(numeric))
    # Columns that cannot be numbers are listed, greyed out, rather than left out: a
    # score column read as text must not just be missing without a word.
    number_options = [{"label": c, "value": c} for c in numeric] + [
        {"label": f"{name} ({why}: not a number)", "value": name, "disabled": True}
        for name, why in not_numbers.items()]
    keep = [{"columns": [{k: c.get(k) for k in ("name", "kind", "values")}
                         for c in t["columns"]], "process": t.get("process"),
             "source": t["source"]} for t in inspection]
    return (_preview(inspection), keep, {}, *[number_options] * 3,
            [{"label": c, "value": c} for c in labels], _score_hint(not_numbers))


def _not_numbers(inspection: list[dict], numeric: set) -> dict[str, str]:
    """Columns that are numbers in no file: {name: "text" or its type}, in file order."""
    found = {}
    for table in inspection:
        for column in table["columns"]:
            name = column["name"]
            if name not in numeric and name not in found:
                found[name] = "text" if column.get("kind") == "text" else \
                    f"type {column.get('dtype')}"
    return found


def _score_hint(not_numbers: dict[str, str]):
    """Why some columns are not offered as scores (None when every column is a number)."""
    if not not_numbers:
        return None
    listed = ", ".join(f"{name} ({why})" for name, why in not_numbers.items())
    return (f"Not numbers, so not offered as scores, weight or mass: {listed}. A score "
            "column listed here has an entry that is not a number (a repeated header, "
            "\"n/a\"): fix it in the file and add the file again.")


def _ordered(names: set, inspection: list[dict]) -> list[str]:
    order = []
    for table in inspection:
        for column in table["columns"]:
            if column["name"] in names and column["name"] not in order:
                order.append(column["name"])
    return order


@CALLBACKS.callback(
    Output("datasets-trees", "data"),
    Output("datasets-trees-view", "children"),
    Input("datasets-sources", "data"),
    prevent_initial_call=True,
)
def list_root_trees(sources):
    """The trees of each ROOT file (headers only), for the tick boxes."""
    if not isinstance(sources, list) or not sources:
        return [], None
    try:
        resolved = resolve_sources(sources)
        trees = []
        for entry, source in zip(sources, resolved):
            if source.format != "root":
                continue
            for info in import_steps.list_trees(source.path):
                trees.append({"source": _source_label(entry), "tree": info.name,
                              "entries": info.entries, "branches": list(info.branches)})
    except DatasetError:
        return [], None  # the preview beside says why the files cannot be read
    except Exception:
        log.exception("listing the trees of %s failed", sources)
        return [], None
    return trees, trees_table(trees)


@CALLBACKS.callback(
    Output({"type": "datasets-tree-columns", "index": ALL}, "children"),
    Input("datasets-scores", "value"),
    Input("datasets-weight", "value"),
    Input("datasets-mass", "value"),
    State("datasets-trees", "data"),
)
def tree_columns(scores, weight, mass, trees):
    """Whether each tree holds the columns mapped so far (a meta tree does not)."""
    wanted = [c for c in ((scores if isinstance(scores, list) else [scores])
                          + [weight, mass]) if isinstance(c, str) and c]
    # a pattern-matching output arrives as one list of ids (or as a one-output group)
    targets = ctx.outputs_list
    grouped = bool(targets) and isinstance(targets[0], list)
    count = len(targets[0]) if grouped else len(targets)
    out = []
    for i in range(count):
        tree = trees[i] if isinstance(trees, list) and i < len(trees) \
            and isinstance(trees[i], dict) else {}
        branches = tree.get("branches") if isinstance(tree.get("branches"), list) else []
        missing = [c for c in wanted if c not in branches]
        if not wanted:
            out.append("pick the score columns")
        elif missing:
            out.append(html.Span(f"missing {', '.join(missing)}", className="text-danger"))
        else:
            out.append(html.Span("all", className="text-success"))
    return [out] if grouped else out


@CALLBACKS.callback(
    Output("datasets-selection", "invalid"),
    Output("datasets-luminosity", "invalid"),
    Output("datasets-scales", "invalid"),
    Output("datasets-systematics", "invalid"),
    Output("datasets-selection-feedback", "children"),
    Output("datasets-luminosity-feedback", "children"),
    Output("datasets-scales-feedback", "children"),
    Output("datasets-systematics-feedback", "children"),
    Input("datasets-selection", "value"),
    Input("datasets-luminosity", "value"),
    Input("datasets-scales", "value"),
    Input("datasets-systematics", "value"),
    State("datasets-inspection", "data"),
    prevent_initial_call=True,
)
def check_steps(selection, luminosity, scales, systematics, inspection):
    """The engine's verdict on each analysis-step field, shown under it as it is typed."""
    columns = None
    if isinstance(inspection, list) and inspection:
        columns = {c.get("name") for t in inspection if isinstance(t, dict)
                   for c in (t.get("columns") or []) if isinstance(c, dict)}
    problems = check_steps_values(selection, luminosity, scales, systematics, columns)
    keys = [key for _, key, *_ in STEP_FIELDS]
    return (*[key in problems for key in keys], *[problems.get(key) for key in keys])


@CALLBACKS.callback(
    Output("datasets-signals", "options"),
    Input("datasets-process", "value"),
    Input("datasets-inspection", "data"),
    Input("datasets-sources", "data"),
    Input({"type": "datasets-tree-use", "index": ALL}, "value"),
    Input({"type": "datasets-tree-process", "index": ALL}, "value"),
    State("datasets-trees", "data"),
)
def signal_options(process_column, inspection, sources, tree_used=None, tree_processes=None,
                   trees=None):
    """Signals are picked among the process names the import will see."""
    names = []
    try:
        ticked = chosen_trees(trees, tree_used, tree_processes)
    except DatasetError:
        ticked = None
    if ticked and not process_column:
        names = list(ticked.values())
    elif isinstance(inspection, list):
        if process_column:
            for table in inspection:
                for column in table.get("columns", []):
                    if column.get("name") == process_column and column.get("values"):
                        names += [str(v) for v in column["values"]]
        else:
            given = [(s.get("process") or "").strip() if isinstance(s, dict) else ""
                     for s in (sources or [])]
            for i, table in enumerate(inspection):
                name = given[i] if i < len(given) and len(given) == len(inspection) else ""
                names.append(name or table.get("process") or table.get("source"))
    unique = list(dict.fromkeys(n for n in names if n))
    return [{"label": n, "value": n} for n in unique]


@CALLBACKS.callback(
    Output("datasets-import-message", "children"),
    Output("datasets-refresh", "data"),
    Output("datasets-sources", "data", allow_duplicate=True),
    Input("datasets-import", "n_clicks"),
    State("datasets-sources", "data"),
    State("datasets-scores", "value"),
    State("datasets-weight", "value"),
    State("datasets-process", "value"),
    State("datasets-signals", "value"),
    State("datasets-mass", "value"),
    State("datasets-window-lo", "value"),
    State("datasets-window-hi", "value"),
    State("datasets-range-lo", "value"),
    State("datasets-range-hi", "value"),
    State("datasets-drop-nonfinite", "value"),
    State("datasets-name", "value"),
    State("datasets-refresh", "data"),
    State("datasets-selection", "value"),
    State("datasets-luminosity", "value"),
    State("datasets-scales", "value"),
    State("datasets-systematics", "value"),
    State("datasets-trees", "data"),
    State({"type": "datasets-tree-use", "index": ALL}, "value"),
    State({"type": "datasets-tree-process", "index": ALL}, "value"),
    prevent_initial_call=True,
)
def import_dataset(n_clicks, sources, scores, weight, process, signals, mass, window_lo,
                   window_hi, range_lo, range_hi, drop_nonfinite, name, refresh,
                   selection=None, luminosity=None, scales=None, systematics=None,
                   trees=None, tree_used=None, tree_processes=None):
    if not n_clicks:
        raise dash.exceptions.PreventUpdate
    runtime.require_writable("datasets cannot be added")
    mapping = {
        "score_columns": scores or [], "signals": signals or [],
        "weight_column": weight or None, "process_column": process or None,
        "mass_column": mass or None,
        "mass_window": [window_lo, window_hi] if mass else None,
        "mass_range": [range_lo, range_hi] if mass else None,
        "drop_nonfinite": bool(drop_nonfinite),
        # the analysis steps as typed: the engine parses and checks them (its messages name
        # the setting, shown by the field and in the list below)
        "selection": _text(selection) or None,
        "luminosity": _text(luminosity) or None,
        "process_scales": _text(scales) or None,
        "systematics": _text(systematics) or None,
    }
    try:
        resolved = resolve_sources(sources)
        mapping["trees"] = chosen_trees(trees, tree_used, tree_processes)
        if not process and not mapping["trees"]:
            names = [s.process for s in resolved]
            if all(names):
                mapping["process_names"] = names
        manifest = catalogue.import_dataset(
            resolved, mapping, datasets_dir(), name=(name or "") if isinstance(name, str) else "",
            max_bytes=runtime.settings().max_upload_bytes)
    except DatasetError as exc:
        return _problem(["Nothing was imported:", html.Ul([html.Li(f"{k}: {m}") for k, m in
                                                           exc.problems.items()])]), \
            no_update, no_update
    except OSError as exc:  # the readers turn read errors into DatasetError: this is a write
        log.warning("importing %s failed: %r", sources, exc)
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            why = "the data folder is read-only for the server"
        elif exc.errno == errno.ENOSPC:
            why = "the disk of the data folder is full"
        else:
            why = f"the datasets folder could not be written ({exc.strerror or exc})"
        return _problem(f"Nothing was imported: {why}."), no_update, no_update
    except Exception:
        log.exception("importing %s failed", sources)
        return _problem("Nothing was imported: the files could not be read (see the server "
                        "log)."), no_update, no_update
    for entry in sources:
        if entry.get("kind") == "upload":
            uploads.discard(entry.get("token"))
    message = dbc.Alert([
        html.Div([f"Imported {manifest.name!r}: {manifest.n_events:,} events. ",
                  dcc.Link("Train on it", href=f"/new?scenario=dataset&dataset={manifest.id}",
                           id="datasets-train-link")]),
        process_yields_table(manifest.process_summary),
        *analysis_steps_summary(manifest),
        html.Ul([html.Li(n) for n in manifest.notes], className="small mb-0")
        if manifest.notes else None,
    ], color="success", id="datasets-imported")
    return message, (refresh or 0) + 1, []


def process_yields_table(summary: dict[str, dict]):
    """Events and weighted yield (the sum of the weights: what the significance counts) of
    each process of an import; a yield far from the expected one shows a wrong weight
    column or a missing scale at once."""
    rows = [html.Tr([html.Td(name), html.Td("signal" if s.get("signal") else "background"),
                     html.Td(formatting.number(s.get("events")), className="text-end"),
                     html.Td(formatting.number(s.get("weight_sum")), className="text-end")])
            for name, s in summary.items()]
    head = html.Thead(html.Tr([html.Th("process"), html.Th("role"), html.Th("events"),
                               html.Th("weighted yield (Σ weights)")]))
    return dbc.Table([head, html.Tbody(rows)], size="sm", className="small mb-1 mt-1 w-auto",
                     id="datasets-imported-yields")


def analysis_steps_summary(manifest) -> list:
    """What the selection, the scale factors and the systematics did, from the engine's
    import report (numbers as the engine counted them)."""
    report = manifest.report or {}
    out = []
    cut = report.get("selection")
    if cut:
        out.append(html.P([
            "Selection ", html.Code(cut.get("expression")), ": kept ",
            html.Span(formatting.number(cut.get("events_kept")), id="datasets-cut-events-kept"),
            f" of {formatting.number(cut.get('events_read'))} events, weighted yield ",
            html.Span(formatting.number(cut.get("weight_kept")), id="datasets-cut-weight-kept"),
            f" of {formatting.number(cut.get('weight_read'))} (before scale factors).",
        ], className="small mb-1", id="datasets-imported-selection"))
    scaling = report.get("scaling")
    if scaling:
        factors = scaling.get("process_scales") or {}
        before, after = scaling.get("yields_before") or {}, scaling.get("yields_after") or {}
        luminosity = scaling.get("luminosity")
        rows = [html.Tr([html.Td(p), html.Td(formatting.number(factors.get(p)),
                                             className="text-end"),
                         html.Td(formatting.number(before.get(p)), className="text-end"),
                         html.Td(formatting.number(after.get(p)), className="text-end")],
                        id={"type": "datasets-scaled-row", "process": p})
                for p in after]
        head = html.Thead(html.Tr([html.Th("process"), html.Th("process factor"),
                                   html.Th("yield before"), html.Th("yield after")]))
        out.append(html.Div([
            html.Small("Scale factors: luminosity "
                       + (formatting.number(luminosity) if luminosity is not None else "1")
                       + " × the process's factor."),
            dbc.Table([head, html.Tbody(rows)], size="sm", className="small mb-1 w-auto",
                      id="datasets-imported-scaling"),
        ]))
    systematics = (manifest.mapping or {}).get("systematics")
    if systematics:
        out.append(html.P("lnN systematics: " + "; ".join(
            f"{name} " + ", ".join(f"{p} {100 * float(u):g} %" for p, u in per.items())
            for name, per in systematics.items()), className="small mb-1",
            id="datasets-imported-systematics"))
    return out


# ----- callbacks: the list --------------------------------------------------------------------
@CALLBACKS.callback(
    Output("datasets-list", "children"),
    Output("datasets-list-message", "children"),
    Input("datasets-refresh", "data"),
    Input({"type": "dataset-rename", "id": ALL}, "n_clicks"),
    Input({"type": "dataset-delete", "id": ALL}, "n_clicks"),
    State({"type": "dataset-name", "id": ALL}, "value"),
    State({"type": "dataset-name", "id": ALL}, "id"),
    prevent_initial_call=True,
)
def manage(_refresh, _rename, _delete, names, name_ids):
    trigger = ctx.triggered_id
    message = None
    if isinstance(trigger, dict) and ctx.triggered[0].get("value"):
        runtime.require_writable("datasets cannot be renamed or deleted")
        dataset_id = trigger.get("id")
        try:
            if trigger.get("type") == "dataset-rename":
                new_names = {i.get("id"): n for i, n in zip(name_ids, names)
                             if isinstance(i, dict)}
                manifest = catalogue.rename_dataset(datasets_dir(), dataset_id,
                                                    str(new_names.get(dataset_id) or ""))
                message = f"Renamed to {manifest.name!r}."
            elif trigger.get("type") == "dataset-delete":
                catalogue.delete_dataset(datasets_dir(), dataset_id, in_use=runs_using)
                message = f"Deleted dataset {dataset_id}."
        except DatasetError as exc:
            message = dbc.Alert(str(exc), color="warning", className="py-1 mb-0",
                                id="datasets-list-problem")
    return datasets_table(), message


def _problem(children):
    return dbc.Alert(children, color="danger", className="py-2", id="datasets-problem")
