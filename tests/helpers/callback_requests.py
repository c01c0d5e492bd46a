"""Callback requests as dash-renderer sends them, for every callback the real app registers,
built from ``app.callback_map`` with real run and dataset ids (no tests in here).

``populate(store, data_dir)`` fills a store with small finished runs, a queued and a
running run, and one imported dataset; ``plausible_values(ids)`` is what a page would hold
for each (component, property); ``request_body(app, output, values, ...)`` is the JSON of
one call, with a placeholder to splice a raw JSON fragment (NaN, 100 000-deep lists) in.
Shared by tests/test_callback_fuzz.py and tests/test_security.py.

``post_callback(app, first_output, values, changed)`` calls one callback of plain
component ids the way the browser does: a POST to /_dash-update-component through Flask's
test client, so a test sees what the browser gets (the JSON answer, or a status code),
with Dash choosing ``dash.ctx`` itself; nothing of Dash is mocked.
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from helpers import records

#: Where request_body puts a raw JSON fragment instead of a value
HOLE = "__hostile_value__"
WILDCARDS = ("ALL", "MATCH", "ALLSMALLER")


def store_small_run(store, scenario: str, n_cats=(3, 4), epochs: int = 30,
                    name: str = "fuzzed") -> str:
    """A finished run with results (small, so reports and figures build quickly)."""
    all_epochs, results = [], []
    for k in n_cats:
        recs = records.epochs_for(k, scenario, epochs, snapshot_interval=10, grid=30)
        all_epochs += recs
        result = records.result_for(k, recs, scenario)
        # what the engine's GMM stores beside the trained numbers
        result["parameters"].update(mean_mode="sigmoid", mean_range=[0.0, 1.0],
                                    sigma_base=0.1, damping=0.0)
        results.append(result)
    config = {"scenario": scenario, "model": "gmm", "n_cats": list(n_cats), "epochs": epochs,
              "snapshot_interval": 10, "seed": 42}
    run_id = store.create_run(config, name=name)
    store.claim(run_id)
    store.set_run_info(run_id, records.run_info(scenario))
    for record in all_epochs:
        store.append_epoch(run_id, record)
    for result in results:
        store.put_result(run_id, result)
    store.set_status(run_id, "finished")
    return run_id


def store_dataset(data_dir, folder) -> str:
    """One imported dataset (a small 1-D Parquet file); returns its id."""
    from gato_core import datasets as catalogue
    from gato_core.readers import Source
    from gato_core.scenarios import generate

    events = generate("one_d", 300, 1200, seed=3)
    path = folder / "toy.parquet"
    pq.write_table(pa.table({"score": events.scores[:, 0], "weight": events.weight,
                             "process": np.array(events.process_names)[events.process]}), path)
    manifest = catalogue.import_dataset(
        [Source(str(path), None, None)],
        {"score_columns": ["score"], "weight_column": "weight", "process_column": "process",
         "signals": ["signal"]},
        catalogue.datasets_folder(data_dir), name="toy")
    return manifest.id


def populate(store, data_dir, scratch) -> dict:
    """Runs of every kind and a dataset; returns their ids by role."""
    ids = {"one_d": store_small_run(store, "one_d", name="one"),
           "bump": store_small_run(store, "bump_hunt", name="bump"),
           "victim": store_small_run(store, "one_d", name="to delete")}
    ids["queued"] = store.create_run({"scenario": "one_d", "n_cats": [3], "epochs": 5},
                                     name="queued")
    ids["running"] = store.create_run({"scenario": "one_d", "n_cats": [3], "epochs": 5},
                                      name="running")
    store.claim(ids["running"])
    ids["dataset"] = store_dataset(data_dir, scratch)
    return ids


def runs_table_rows(store) -> list[dict]:
    from gato_dash import runs_table

    summaries = store.result_summaries()
    return [dict(runs_table.run_table_row(run, summaries.get(run["id"], [])),
                 open=f"[open](/runs/{run['id']})") for run in store.list_runs()]


def form_values() -> dict:
    """The New-run form's fields: two of them invalid, so that no request of a fuzz (which
    changes one value at a time) can start a run."""
    from gato_core.config import RunConfig
    from gato_dash.pages import new_run

    values = new_run.form_values(RunConfig.defaults("one_d"))
    return {**values, "epochs": "0", "n_signal": "-5"}


def plausible_values(ids: dict, store, valid_config: bool = False) -> dict:
    """(component id or pattern type, property) -> what a page of this app would hold."""
    from gato_dash import live

    rows = runs_table_rows(store)
    edited = [dict(row, name=row["name"] + " (renamed)", note="new note", tags="a, b")
              for row in rows]
    form = form_values()
    if valid_config:
        from gato_core.config import RunConfig
        from gato_dash.pages import new_run

        form = new_run.form_values(RunConfig.defaults("one_d"))
    inspection = [{"columns": [{"name": "score", "kind": "number", "values": None},
                               {"name": "process", "kind": "text",
                                "values": ["signal", "bkg1"]}],
                   "process": None, "source": "toy.parquet"}]
    source = {"kind": "upload", "token": "a" * 32, "filename": "toy.parquet", "process": ""}
    values = {
        ("_pages_location", "pathname"): f"/runs/{ids['one_d']}",
        ("_pages_location", "search"): "?tab=categories",
        ("run-poll", "n_intervals"): 3,
        ("run-poll-watchdog", "n_intervals"): 2,
        ("run-k", "value"): 3,
        ("run-state", "data"): live.initial_state(ids["running"]),
        ("run-view", "data"): {"tab": "categories"},
        ("run-cancel", "n_clicks"): 1,
        ("run-job", "data"): {"run": ids["queued"], "load": "0" * 32},
        ("results-run-id", "data"): ids["one_d"],
        ("results-k", "value"): 3,
        ("results-k", "options"): [{"label": "K = 3", "value": 3},
                                   {"label": "K = 4", "value": 4}],
        ("results-k-default", "data"): 4,
        ("results-density", "value"): False,
        ("results-log", "value"): True,
        ("results-prefilled", "data"): False,
        ("results-tabs", "value"): "numbers",
        ("compare-run-ids", "data"): [ids["one_d"], ids["bump"]],
        ("compare-k-default", "data"): 3,
        ("compare-tabs", "value"): "histories",
        ("compare-diff-only", "value"): True,
        ("compare-history-k", "value"): 3,
        ("compare-history-x", "value"): "fraction",
        ("compare-history-log", "value"): True,
        ("compare-history-smoothing", "value"): 0.5,
        ("compare-categories-k", "value"): 4,
        ("compare-categories-log", "value"): True,
        ("home-refresh", "n_intervals"): 4,
        ("new-scenario", "value"): "one_d",
        ("new-preview-log", "value"): True,
        ("new-name", "value"): "a new run",
        ("runs-filter-scenario", "value"): ["one_d", "bump_hunt"],
        ("runs-filter-status", "value"): ["finished"],
        ("runs-filter-text", "value"): "o",
        ("runs-refresh", "data"): 1,
        ("runs-table", "selected_row_ids"): [ids["victim"]],
        ("runs-table", "selected_rows"): [0, 1],
        ("runs-table", "data"): edited,
        ("runs-table", "data_previous"): rows,
        ("runs-table", "data_timestamp"): 1_700_000_000_000,
        ("runs-import-upload", "contents"): "data:application/zip;base64,UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==",
        ("runs-import-upload", "filename"): "results.zip",
        ("runs-import-path", "value"): "/tmp/no-such-results",
        ("datasets-upload-done", "data"): {"token": "b" * 32, "filename": "toy.parquet"},
        ("datasets-path", "value"): "/tmp/no-such-file.csv",
        ("datasets-sources", "data"): [source],
        ("datasets-source-process", "value"): "signal",
        ("datasets-inspection", "data"): inspection,
        ("datasets-process", "value"): "process",
        ("datasets-scores", "value"): ["score"],
        ("datasets-weight", "value"): None,
        ("datasets-signals", "value"): ["signal"],
        ("datasets-mass", "value"): None,
        ("datasets-window-lo", "value"): 120,
        ("datasets-window-hi", "value"): 130,
        ("datasets-range-lo", "value"): 100,
        ("datasets-range-hi", "value"): 180,
        ("datasets-drop-nonfinite", "value"): False,
        ("datasets-name", "value"): "renamed toy",
        ("datasets-refresh", "data"): 1,
        ("datasets-selection", "value"): "score > 0.1",
        ("datasets-luminosity", "value"): "138",
        ("datasets-scales", "value"): "signal=0.5",
        ("datasets-systematics", "value"): "lumi:*=0.016",
        ("datasets-trees", "data"): [{"source": "toy.root", "tree": "signal", "entries": 10,
                                      "branches": ["score"]}],
        ("datasets-tree-use", "value"): True,
        ("datasets-tree-process", "value"): "signal",
        ("dataset-name", "value"): "renamed toy",
        ("cfg", "value"): form,  # by field name: see concrete_ids
    }
    return values


def concrete_ids(ids: dict) -> dict:
    """Pattern type -> the ids of the components a page holds for it."""
    from gato_dash.figures import catalogue
    from gato_dash.pages import new_run

    k_names = [spec.name for spec in catalogue.CATALOGUE if spec.tab == "categories"]
    log_names = list(catalogue.LOG_FIGURES)
    return {
        "cfg": [{"type": "cfg", "name": n} for n in new_run.FORM_FIELDS],
        "cfg-col": [{"type": "cfg-col", "name": n} for n in new_run.FORM_FIELDS],
        "cfg-msg": [{"type": "cfg-msg", "name": n} for n in new_run.FORM_FIELDS],
        "datasets-remove": [{"type": "datasets-remove", "index": 0}],
        "datasets-source-process": [{"type": "datasets-source-process", "index": 0}],
        "datasets-tree-use": [{"type": "datasets-tree-use", "index": 0}],
        "datasets-tree-process": [{"type": "datasets-tree-process", "index": 0}],
        "datasets-tree-columns": [{"type": "datasets-tree-columns", "index": 0}],
        "dataset-rename": [{"type": "dataset-rename", "id": ids["dataset"]}],
        "dataset-delete": [{"type": "dataset-delete", "id": ids["dataset"]}],
        "dataset-name": [{"type": "dataset-name", "id": ids["dataset"]}],
        "results-kfig": [{"type": "results-kfig", "name": n} for n in k_names],
        "results-logfig": [{"type": "results-logfig", "name": n} for n in log_names],
        "run-job": [{"type": "run-job", "run": ids["queued"], "load": "0" * 32}],
        "run-job-result": [{"type": "run-job-result", "run": ids["queued"], "load": "0" * 32}],
    }


def parse_id(text: str):
    return json.loads(text) if text.startswith("{") else text


def split_output(output: str) -> list[tuple[object, str]]:
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    return [(parse_id(part.rsplit(".", 1)[0]), part.rsplit(".", 1)[1]) for part in parts]


def server_callbacks(app) -> list[str]:
    """The outputs (callback_map keys) of callbacks that run on the server."""
    return [key for key, cb in app.callback_map.items() if "callback" in cb]


def _instances(declared, ids_by_type: dict):
    """(is a list, concrete ids) of a declared dependency id."""
    if not isinstance(declared, dict):
        return False, [declared]
    concrete = ids_by_type[declared["type"]]
    fixed = {k: v for k, v in declared.items() if not isinstance(v, list)}
    concrete = [c for c in concrete if all(c.get(k) == v for k, v in fixed.items())]
    is_all = any(isinstance(v, list) and v[0] in ("ALL", "ALLSMALLER")
                 for v in declared.values())
    return is_all, concrete if is_all else concrete[:1]


def _value(declared, prop, concrete, values):
    key = declared["type"] if isinstance(declared, dict) else declared
    if prop == "id":
        return concrete
    value = values.get((key, prop), 1 if prop in ("n_clicks", "n_intervals") else None)
    if key == "cfg" and prop == "value":
        return value.get(concrete["name"], "")
    return value


def prop_id(component, prop: str) -> str:
    if isinstance(component, dict):
        component = json.dumps(component, sort_keys=True, separators=(",", ":"))
    return f"{component}.{prop}"


def request_body(app, output: str, values: dict, ids_by_type: dict, trigger: int = 0,
                 hole: tuple[str, int] | None = None, hole_entry: bool = False) -> dict:
    """One call of the callback registered for ``output``. ``trigger``: index of the input
    that changed. ``hole``: ("inputs" or "state", index) whose value is HOLE (the whole
    list of a pattern-matching ALL dependency, or with ``hole_entry`` its first entry's)."""
    callback = app.callback_map[output]
    outputs = []
    for component, prop in split_output(output):
        is_all, concrete = _instances(component, ids_by_type)
        entries = [{"id": c, "property": prop} for c in concrete]
        outputs.append(entries if is_all else entries[0])
    body = {"output": output,
            "outputs": outputs if output.startswith("..") else outputs[0]}
    changed = []
    for key in ("inputs", "state"):
        body[key] = []
        for index, dep in enumerate(callback.get(key, [])):
            declared, prop = parse_id(dep["id"]), dep["property"]
            is_all, concrete = _instances(declared, ids_by_type)
            entries = [{"id": c, "property": prop,
                        "value": _value(declared, prop, c, values)} for c in concrete]
            if hole == (key, index):
                if is_all and hole_entry and entries:
                    entries[0]["value"] = HOLE
                elif is_all:
                    entries = HOLE
                else:
                    entries[0]["value"] = HOLE
            body[key].append(entries if is_all or entries == HOLE else entries[0])
            if key == "inputs" and index == trigger:
                changed += [prop_id(c, prop) for c in concrete[:1]]
    body["changedPropIds"] = changed
    return body


def encode(body: dict, fragment: str | None = None) -> str:
    """The body as JSON text, with the raw JSON ``fragment`` where HOLE is."""
    text = json.dumps(body)
    if fragment is not None:
        text = text.replace(json.dumps(HOLE), fragment, 1)
    return text


# ----- one call of a callback, as a test of its answer makes it -----------------------------
def output_key(app, first_output: str) -> str:
    """The callback_map key of the callback whose first output is ``first_output``
    ("component-id.property")."""
    return next(key for key in app.callback_map
                if prop_id(*split_output(key)[0]) == first_output)


def callback_body(app, first_output: str, values: dict, changed: list[str]) -> dict:
    """The request body for the callback whose first output is ``first_output``: every
    input and state gets ``values["id.property"]`` (None if not given), ``changed`` lists
    the "id.property" that triggered it. Plain ids only: a pattern-matching dependency
    needs ``request_body``."""
    output = output_key(app, first_output)
    callback = app.callback_map[output]
    outputs = [{"id": component, "property": prop} for component, prop in split_output(output)]

    def dependencies(kind):
        return [{"id": dep["id"], "property": dep["property"],
                 "value": values.get(f"{dep['id']}.{dep['property']}")}
                for dep in callback.get(kind, [])]

    return {"output": output, "outputs": outputs if output.startswith("..") else outputs[0],
            "inputs": dependencies("inputs"), "state": dependencies("state"),
            "changedPropIds": list(changed)}


def post_callback(app, first_output: str, values: dict, changed: list[str]):
    """POST the callback (see ``callback_body``); returns (status code, {"id.property":
    value} of the answer)."""
    body = callback_body(app, first_output, values, changed)
    response = app.server.test_client().post("/_dash-update-component", data=encode(body),
                                             content_type="application/json")
    if response.status_code != 200:
        return response.status_code, {}
    answer = response.get_json()["response"]
    return 200, {f"{component}.{prop}": value
                 for component, props in answer.items() for prop, value in props.items()}
