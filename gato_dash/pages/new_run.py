"""/new: pick a scenario, set every RunConfig field, press Run.

The engine is the single judge of a configuration: every change is validated with
``RunConfig.from_dict`` and its messages appear next to the fields (Run stays disabled
until there are none). The form state is mirrored into the URL query string, so a link
reproduces the form; a bad value in a link is shown as a marked field, never a crash.
"""
from __future__ import annotations

import functools
import logging
import threading
from dataclasses import fields, replace
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update

from gato_core import datasets as catalogue
from gato_core.config import (DATASET_DEFAULTS, DATASET_SCENARIO, MAX_SNAPSHOTS_PER_K, MODELS,
                              OBJECTIVES, PRESETS, ConfigError, RunConfig)
from gato_core.initial import INITS
from gato_core.evaluation import MAP_GRID, inclusive_summary
from gato_core.scenarios import SCENARIOS, generate
from gato_core.schedules import SCHEDULES
from gato_dash import runtime
from gato_dash.runtime import dispatch, run_facts
from gato_dash.address_bar import keep_query_in_address_bar
from gato_dash.figures.previews import inclusive_preview
from gato_dash.runtime.run_fields import MAX_NAME_CHARS, TextTooLong
from gato_dash.callback_set import CallbackSet

log = logging.getLogger(__name__)

#: This page's callbacks, put on each app by gato_dash.app.create_app
CALLBACKS = CallbackSet()
dash.register_page(__name__, path="/new", title="New run · GATO Dashboard", name="New run",
                   order=1, callbacks=CALLBACKS)

# ----- the form's fields ------------------------------------------------------------------
#: (field, label, help). Every RunConfig field but ``scenario`` (the picker) appears once.
GROUPS = [
    ("Data", [
        ("dataset", "Dataset", "your events, imported on the Datasets page"),
        ("held_out_fraction", "Held-out fraction",
         "datasets: share of the events kept out of training to check the categories "
         "(toy runs use an independent sample)"),
        ("n_signal", "Signal events (per signal)", "generated events of each signal process"),
        ("n_bkg", "Background events", "generated background events, split by cross section"),
        ("noise", "Detector smearing", "relative smearing of the classifier inputs (0-1)"),
        ("seed", "Seed", "same seed, same events and same initial model"),
        ("mass_sigma", "Mass resolution σm (GeV)", "bump hunt: signal width and window 125 ± σm"),
    ]),
    ("Model and training", [
        ("model", "Model", "Gaussian mixture (all scenarios) or sigmoid cuts (1-D only)"),
        ("n_cats", "Numbers of categories K", "one training per K, e.g. 5, 10, 20"),
        ("init", "Initial placement", "auto: slices of equal signal (GMM), random (cuts)"),
        ("n_starts", "Starts", "trained side by side; the best continues alone"),
        ("explore_fraction", "Share of epochs with every start", "then the best start goes on"),
        ("epochs", "Epochs", "per K"),
        ("snapshot_interval", "Snapshot every (epochs)", "category map and hard Z recorded"),
        ("rewt_interval", "Reweight every (epochs)", "bump hunt: background refit interval"),
    ]),
    ("Learning rate", [
        ("lr_initial", "Initial", ""),
        ("lr_final", "Final", ""),
        ("lr_schedule", "Schedule", ""),
    ]),
    ("Temperature", [
        ("t_initial", "Initial", "soft assignment temperature (Gaussian mixture)"),
        ("t_final", "Final", ""),
        ("t_schedule", "Schedule", "also anneals the sigmoid steepness"),
        ("steepness_initial", "Sigmoid steepness, initial", "sigmoid-cut model only"),
        ("steepness_final", "Sigmoid steepness, final", "sigmoid-cut model only"),
    ]),
    ("Objective", [
        ("objective", "Training objective",
         "Asimov Z, or the Asimov Z with a background uncertainty σb = u·b in every category "
         "(keeps categories out of regions where a systematic would dominate)"),
        ("bkg_rel_unc", "Relative background uncertainty u",
         "for the objective with a background uncertainty, e.g. 0.1 for 10 %"),
    ]),
    ("Penalties", [
        ("lam_yield", "Low-background λ", "0 switches the penalty off"),
        ("thr_yield", "Background-yield threshold", "penalise categories below this yield"),
        ("lam_unc", "MC-uncertainty λ", "0 switches the penalty off"),
        ("thr_unc", "Relative-uncertainty threshold", "penalise categories above this"),
    ]),
]
FORM_FIELDS = [name for _, items in GROUPS for name, _, _ in items]
SELECTS = {"model": MODELS, "lr_schedule": SCHEDULES, "t_schedule": SCHEDULES, "init": INITS,
           "objective": OBJECTIVES}
#: What a select shows for a value (the value itself when not listed)
SELECT_LABELS = {"asimov": "Asimov Z",
                 "asimov_bkg_unc": "Asimov Z with a background uncertainty (σb)"}
DEFAULT_SCENARIO = "one_d"
#: What the scenario picker offers: the toy scenarios and the user's own datasets
SCENARIO_CHOICES = (*SCENARIOS, DATASET_SCENARIO)
#: Fields that only mean something for one kind of run (hidden for the other)
TOY_ONLY = ("n_signal", "n_bkg", "noise", "mass_sigma")
DATASET_ONLY = ("dataset", "held_out_fraction")
#: Stored bytes of one snapshot frame: a 2-D frame is a MAP_GRID² category map as JSON
#: (~2.5 bytes a cell), a 1-D frame a few boundaries, a 3-score frame only its epoch.
SNAPSHOT_BYTES = {1: 400, 2: int(2.5 * MAP_GRID ** 2), 3: 60}



def form_values(config: RunConfig) -> dict[str, str]:
    """The form's text for each field of ``config``."""
    data = config.to_dict()
    out = {}
    for name in FORM_FIELDS:
        value = data[name]
        if name == "n_cats":
            out[name] = ", ".join(str(k) for k in value)
        elif isinstance(value, float):
            out[name] = f"{value:g}"
        else:
            out[name] = str(value)
    return out


def scenario_defaults(scenario: str, dataset: str = "") -> RunConfig:
    """The defaults the form starts from; a dataset run's before a dataset is picked."""
    if scenario == DATASET_SCENARIO:
        return replace(RunConfig.defaults(scenario, dataset="picked-later"), dataset=dataset)
    return RunConfig.defaults(scenario)


def preset_values(scenario: str, preset: str, dataset: str = "") -> dict[str, str]:
    """The form's values for a preset: "quick" (small, fast), "reference" (the reference
    workflow's optimiser: one random start) or "default" (the scenario's defaults)."""
    config = scenario_defaults(scenario, dataset)
    if preset == "reference":
        config = replace(config.updated(**PRESETS["reference"], dataset="picked-later"),
                         dataset=dataset)
    if preset == "quick":
        # each scenario brings its own (gato_core.scenarios.ScenarioInfo.quick_demo)
        info = DATASET_DEFAULTS if scenario == DATASET_SCENARIO else SCENARIOS[scenario]
        config = replace(config.updated(**info.quick_demo, dataset="picked-later"),
                         dataset=dataset)
    return form_values(config)


def scenario_description(scenario: str) -> str:
    if scenario == DATASET_SCENARIO:
        return ("Your own events: a dataset imported on the Datasets page. Part of it is "
                "held out and the categories are checked on it.")
    return SCENARIOS[scenario].description


def _manifests() -> list:
    """The stored datasets, newest first (none when the folder cannot be read)."""
    try:
        return catalogue.list_datasets(catalogue.datasets_folder(runtime.data_dir()))
    except Exception:
        log.exception("listing datasets failed")
        return []


def dataset_options() -> list[dict]:
    return [{"label": f"{m.name} ({m.n_events:,} events)", "value": m.id}
            for m in _manifests()]


NO_DATASET_YET = "no dataset yet: import one on the Datasets page"


def preselected_dataset(given: str = "") -> str:
    """The dataset a dataset run starts with: the one given (a link, the form) when it is
    stored here, else the newest, else "" (there is none yet)."""
    ids = [m.id for m in _manifests()]
    if isinstance(given, str) and given in ids:
        return given
    return ids[0] if ids else ""


def snapshot_cost(config: RunConfig | None, dim: int) -> str:
    """What the snapshot setting will take on disk, said next to it."""
    if config is None:
        return ""
    frames = config.snapshots_per_k * len(config.n_cats)
    size = frames * SNAPSHOT_BYTES.get(dim, SNAPSHOT_BYTES[2])
    capped = (f" (every {config.snapshot_every} epochs: at most {MAX_SNAPSHOTS_PER_K} "
              f"per K are kept)" if config.snapshot_every != config.snapshot_interval else "")
    return (f"Snapshots: {config.snapshots_per_k} per K, {frames} in all, about "
            f"{size / 1e6:.1f} MB on disk{capped}.")


def values_from_query(query: dict) -> tuple[str, dict[str, str], str, list[str]]:
    """(scenario, field texts, run name, notices) from a URL query; never raises."""
    notices = []
    scenario = _one(query.get("scenario")) or DEFAULT_SCENARIO
    if scenario not in SCENARIO_CHOICES:
        notices.append(f"The link names an unknown scenario ({scenario!r}); showing "
                       f"{SCENARIOS[DEFAULT_SCENARIO].title} instead.")
        scenario = DEFAULT_SCENARIO
    values = form_values(scenario_defaults(scenario))
    unknown = []
    for key, raw in query.items():
        if key in ("scenario", "name"):
            continue
        if key in values:
            values[key] = _one(raw) or ""  # kept as typed: validation marks bad values
        else:
            unknown.append(key)
    if scenario == DATASET_SCENARIO and not values["dataset"]:
        # "Your dataset" without one named: start on the newest rather than on an error
        values["dataset"] = preselected_dataset()
    if unknown:
        notices.append("Ignored settings in the link that do not exist: "
                       + ", ".join(sorted(unknown)) + ".")
    return scenario, values, _one(query.get("name")) or "", notices


def _one(value):
    if isinstance(value, list):
        return value[-1] if value else None
    return value


def validate(scenario: str, values: dict[str, str]) -> tuple[RunConfig | None, dict[str, str]]:
    """The engine's verdict on the form: (config, {}) or (None, {field: message})."""
    try:
        config = RunConfig.from_dict({"scenario": scenario, **values})
    except ConfigError as exc:
        problems = dict(exc.problems)
        if scenario == DATASET_SCENARIO and not values.get("dataset") and "dataset" in problems:
            # nothing picked because there is nothing to pick: say what to do, not that an
            # id is malformed
            problems["dataset"] = NO_DATASET_YET
        return None, problems
    except Exception as exc:  # should not happen; never let it reach the user as a 500
        log.exception("validating %r failed", values)
        return None, {"config": f"could not check this configuration ({type(exc).__name__})"}
    if config.is_dataset:
        try:
            catalogue.get_dataset(catalogue.datasets_folder(runtime.data_dir()), config.dataset)
        except Exception:
            return None, {"dataset": "there is no such dataset here; import one on the "
                                     "Datasets page"}
    return config, {}


def query_string(scenario: str, values: dict[str, str], name: str) -> str:
    items = [("scenario", scenario)] + [(k, values.get(k, "")) for k in FORM_FIELDS]
    if name:
        items.append(("name", name))
    return urlencode(items)


# ----- the inclusive samples the preview draws (numpy only; figures/previews.py) ---------
@functools.lru_cache(maxsize=8)
def inclusive(scenario: str) -> dict:
    n_signal, n_bkg = SCENARIOS[scenario].preview_events
    return inclusive_summary(generate(scenario, n_signal, n_bkg, seed=42))


def warm_previews() -> None:
    """Fill the preview cache in the background so the first visit is instant."""
    def work():
        for key in SCENARIOS:
            try:
                inclusive(key)
            except Exception:
                log.exception("preview of %s failed", key)
    threading.Thread(target=work, name="warm-previews", daemon=True).start()


@functools.lru_cache(maxsize=8)
def _dataset_inclusive(dataset_id: str, content_hash: str) -> dict:
    events = catalogue.load_dataset(catalogue.datasets_folder(runtime.data_dir()), dataset_id,
                                    mmap=True)
    return inclusive_summary(events)


def dataset_inclusive(dataset_id: str) -> dict:
    """The inclusive summary of an imported dataset (cached while its content is the same)."""
    manifest = catalogue.get_dataset(catalogue.datasets_folder(runtime.data_dir()), dataset_id)
    return _dataset_inclusive(manifest.id, manifest.content_hash)


# ----- layout ------------------------------------------------------------------------------
def _field(name: str, label: str, help_text: str, value: str, scenario: str):
    field_id = {"type": "cfg", "name": name}
    if name == "dataset":
        control = dbc.Select(id=field_id, value=value, size="sm", options=dataset_options(),
                             placeholder="import one on the Datasets page first")
    elif name in SELECTS:
        control = dbc.Select(id=field_id, value=value, size="sm",
                             options=[{"label": SELECT_LABELS.get(o, o), "value": o}
                                      for o in SELECTS[name]])
    else:
        control = dbc.Input(id=field_id, value=value, type="text", size="sm",
                            autoComplete="off", debounce=False)
    return dbc.Col([
        dbc.Label(label, html_for=f"cfg-{name}", className="small mb-0"),
        control,
        dbc.FormFeedback(id={"type": "cfg-msg", "name": name}, type="invalid"),
        dbc.FormText(help_text, className="small") if help_text else None,
    ], md=6, lg=4, className="mb-2", id={"type": "cfg-col", "name": name},
        style=field_style(name, scenario))


def field_style(name: str, scenario: str) -> dict:
    """Toy-data fields are hidden for a dataset run, dataset fields for a toy run."""
    hidden = TOY_ONLY if scenario == DATASET_SCENARIO else DATASET_ONLY
    return {"display": "none"} if name in hidden else {}


def layout(**query):
    scenario, values, name, notices = values_from_query(query)
    return html.Div([
        html.H3("New run"),
        *[dbc.Alert(n, color="warning", className="py-2", dismissable=True) for n in notices],
        dbc.Row([
            dbc.Col([
                html.H5("Scenario"),
                dbc.RadioItems(
                    id="new-scenario", value=scenario,
                    options=[{"label": SCENARIOS[k].title, "value": k} for k in SCENARIOS]
                    + [{"label": "Your dataset", "value": DATASET_SCENARIO}],
                ),
                html.P(scenario_description(scenario), id="new-scenario-description",
                       className="text-muted small mt-2"),
                html.Div([
                    dbc.Button("Quick demo", id="preset-quick", color="secondary",
                               outline=True, size="sm", className="me-2"),
                    dbc.Button("Reference", id="preset-reference", color="secondary",
                               outline=True, size="sm"),
                ], className="mb-1"),
                dbc.FormText("Presets and a new scenario load that scenario's settings. "
                             "Quick demo: small samples, one K, done in seconds. "
                             "Reference: the reference workflow's settings and optimiser (one "
                             "random start), for a side-by-side comparison."),
            ], lg=4),
            dbc.Col([
                dcc.Graph(id="new-preview", config={"displaylogo": False},
                          figure=go.Figure(layout={"height": 330, "template": "plotly_white"})),
                dbc.Switch(id="new-preview-log", label="log scale", value=True),
            ], lg=8),
        ], className="mb-3"),
        dbc.Form([
            html.Div([
                html.H6(group, className="mt-2 text-secondary"),
                dbc.Row([_field(n, label, help_text, values[n], scenario)
                         for n, label, help_text in items]),
            ])
            for group, items in GROUPS
        ]),
        dbc.Row([
            dbc.Col([
                dbc.Label("Run name (optional)", html_for="new-name", className="small mb-0"),
                dbc.Input(id="new-name", value=name, type="text", size="sm", maxLength=MAX_NAME_CHARS,
                          placeholder="e.g. 1-D, strong penalty"),
            ], md=6, lg=4),
            dbc.Col(dbc.Button("Run", id="new-run-button", color="primary", className="px-5",
                               disabled=True), className="d-flex align-items-end"),
        ], className="mt-2 mb-2"),
        html.Div(id="new-snapshot-cost", className="small text-muted"),
        html.Div(id="new-problems"),
        dcc.Store(id="new-query"),
        html.Div(id="new-url-synced", hidden=True),
        dcc.Location(id="new-redirect", refresh="callback-nav"),
    ])


# ----- callbacks ---------------------------------------------------------------------------
@CALLBACKS.callback(
    Output({"type": "cfg", "name": ALL}, "value"),
    Input("new-scenario", "value"),
    Input("preset-quick", "n_clicks"),
    Input("preset-reference", "n_clicks"),
    State({"type": "cfg", "name": ALL}, "id"),
    State({"type": "cfg", "name": "dataset"}, "value"),
    prevent_initial_call=True,
)
def load_preset(scenario, _quick, _reference, ids, dataset):
    """A new scenario or a preset button fills every field with that scenario's values
    (the dataset picked stays picked)."""
    if scenario not in SCENARIO_CHOICES:
        raise dash.exceptions.PreventUpdate
    preset = {"preset-quick": "quick", "preset-reference": "reference"}.get(ctx.triggered_id,
                                                                           "default")
    if scenario == DATASET_SCENARIO:
        # the dataset picked stays picked; none yet (switching to "Your dataset"): the newest
        dataset = preselected_dataset(dataset if isinstance(dataset, str) else "")
    values = preset_values(scenario, preset, dataset if isinstance(dataset, str) else "")
    return [values[i["name"]] for i in ids]


@CALLBACKS.callback(
    Output({"type": "cfg-col", "name": ALL}, "style"),
    Input("new-scenario", "value"),
    State({"type": "cfg-col", "name": ALL}, "id"),
)
def show_fields(scenario, ids):
    return [field_style(i["name"], scenario) for i in ids]


@CALLBACKS.callback(
    Output("new-scenario-description", "children"),
    Output("new-preview", "figure"),
    Input("new-scenario", "value"),
    Input("new-preview-log", "value"),
    Input({"type": "cfg", "name": "dataset"}, "value"),
)
def show_scenario(scenario, log_scale, dataset):
    if scenario not in SCENARIO_CHOICES:
        raise dash.exceptions.PreventUpdate
    try:
        if scenario == DATASET_SCENARIO:
            figure = inclusive_preview(dataset_inclusive(dataset), bool(log_scale)) \
                if isinstance(dataset, str) and dataset else go.Figure(layout={
                    "title": "Pick a dataset", "height": 330, "template": "plotly_white"})
        else:
            figure = inclusive_preview(inclusive(scenario), bool(log_scale))
    except Exception:
        log.exception("preview of %s failed", scenario)
        figure = go.Figure(layout={"title": "The preview could not be drawn", "height": 330})
    return scenario_description(scenario), figure


@CALLBACKS.callback(
    Output({"type": "cfg", "name": ALL}, "invalid"),
    Output({"type": "cfg-msg", "name": ALL}, "children"),
    Output("new-run-button", "disabled"),
    Output("new-problems", "children"),
    Output("new-query", "data"),
    Output("new-snapshot-cost", "children"),
    Input({"type": "cfg", "name": ALL}, "value"),
    Input("new-scenario", "value"),
    Input("new-name", "value"),
    State({"type": "cfg", "name": ALL}, "id"),
)
def check_form(raw_values, scenario, name, ids):
    names = [i["name"] for i in ids]
    values = {n: ("" if v is None else str(v)) for n, v in zip(names, raw_values)}
    config, problems = validate(scenario, values)
    invalid = [n in problems for n in names]
    messages = [problems.get(n, "") for n in names]
    other = [f"{k}: {m}" for k, m in problems.items() if k not in names]
    alert = dbc.Alert([html.Div(m) for m in other], color="danger", className="py-2") \
        if other else None
    return (invalid, messages, config is None, alert, query_string(scenario, values, name or ""),
            snapshot_cost(config, run_facts.dim_of(
                {"config": {"scenario": scenario, "dataset": values.get("dataset", "")}})))


# Mirror the form into the address bar without a navigation: the page is not rebuilt
# while the user types.
keep_query_in_address_bar(CALLBACKS, "new-query", "new-url-synced")


@CALLBACKS.callback(
    Output("new-redirect", "href"),
    Output("new-problems", "children", allow_duplicate=True),
    Input("new-run-button", "n_clicks"),
    State({"type": "cfg", "name": ALL}, "value"),
    State({"type": "cfg", "name": ALL}, "id"),
    State("new-scenario", "value"),
    State("new-name", "value"),
    prevent_initial_call=True,
)
def start_run(n_clicks, raw_values, ids, scenario, name):
    if not n_clicks:
        raise dash.exceptions.PreventUpdate
    runtime.require_writable("it shows runs but starts none")
    if not isinstance(ids, list) or not isinstance(raw_values, list) \
            or not all(isinstance(i, dict) for i in ids):
        raise dash.exceptions.PreventUpdate
    values = {i.get("name"): ("" if v is None else str(v)) for i, v in zip(ids, raw_values)}
    config, problems = validate(scenario, values)
    if config is None:
        return no_update, dbc.Alert("Fix the marked settings first.", color="danger")
    try:
        run_id = runtime.store().create_run(config.to_dict(),
                                            name=name if isinstance(name, str) else None)
    except TextTooLong as exc:
        return no_update, dbc.Alert(f"The name is too long: {exc}.", color="danger")
    except Exception:
        log.exception("creating a run failed")
        return no_update, dbc.Alert("The run could not be stored; try again.", color="danger")
    dispatch.submit(run_id)  # it trains now, whether or not its page is ever opened
    return f"/runs/{run_id}", no_update


def _check_coverage():
    # Every engine setting must be on the form (a new RunConfig field must not be missed).
    missing = {f.name for f in fields(RunConfig)} - set(FORM_FIELDS) - {"scenario"}
    if missing:
        log.warning("RunConfig fields missing from the new-run form: %s", sorted(missing))


_check_coverage()
warm_previews()
