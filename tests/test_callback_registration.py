"""Every app that ``create_app`` builds answers every callback, however many apps a process
builds (gato_dash.callback_set): the callbacks go on the app in the factory, not on Dash's
process-wide list that only the first app to answer a request takes."""
from __future__ import annotations

import ast
from pathlib import Path

from gato_dash import runtime
from gato_dash.app import create_app
from helpers import records
from helpers.callback_requests import post_callback

PACKAGE = Path(__file__).resolve().parents[1] / "gato_dash"
#: Dash's process-wide registration, which a second app of the process never sees
GLOBAL_REGISTRATION = {"callback", "clientside_callback"}


def test_two_apps_in_one_process_answer_the_same_callbacks(tmp_path):
    first = create_app(tmp_path / "first")
    second = create_app(tmp_path / "second")  # before the first has answered anything

    # on the app as soon as it is built, not at its first request
    assert set(first.callback_map) == set(second.callback_map)
    outputs = " ".join(second.callback_map)
    for part in ("results-significance.figure", "run-state.data", "home-runs.children",
                 "new-query.data", "runs-table.data", "compare-table.children",
                 "datasets-sources.data", "new-url-synced.children"):
        assert part in outputs, part

    # both answer a real request to a results-section callback (the store is the one
    # configured last, the second app's)
    run_id, _, _ = records.store_finished_run(runtime.store(), "one_d", n_cats=(3,))
    for app in (second, first):
        status, answer = post_callback(
            app, "results-significance.figure",
            {"results-run-id.data": run_id,
             "results-k.options": [{"label": "K = 3", "value": 3}]},
            ["results-run-id.data"])
        assert status == 200
        assert answer["results-significance.figure"]["data"]
    runtime.store().close()


def test_no_module_registers_callbacks_with_dash_itself():
    """``dash.callback`` / ``dash.clientside_callback`` would reach the first app only."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "vendor" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr in GLOBAL_REGISTRATION
                    and isinstance(node.value, ast.Name) and node.value.id == "dash"):
                found.append(f"{path.name}:{node.lineno} dash.{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module == "dash":
                found += [f"{path.name}:{node.lineno} from dash import {alias.name}"
                          for alias in node.names if alias.name in GLOBAL_REGISTRATION]
    assert found == []
