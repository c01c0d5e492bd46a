"""The results page hands the categorisation to the analysis: the bundle downloads for one
K or every K, refusals are messages, and the statistical-model panel shows pyhf's numbers."""
from __future__ import annotations

import base64
import io
import json
import zipfile

import pytest

from gato_dash import runtime
from gato_dash.app import create_app
from gato_dash.runtime.jobs import run_training
from helpers.callback_requests import post_callback

TINY = {"scenario": "one_d", "n_signal": 2000, "n_bkg": 6000, "epochs": 25, "n_cats": [3, 4],
        "snapshot_interval": 10}
BUNDLE = "results-dl-bundle.data"
BUNDLE_MESSAGE = "results-dl-bundle-message.children"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from gato_dash import results_section

    data_dir = tmp_path_factory.mktemp("data")
    app = create_app(data_dir)
    store = runtime.store()
    run_id = store.create_run(TINY, name="exports")
    assert run_training(store.location, run_id, data_dir / "events",
                        datasets_dir=data_dir / "datasets") == "finished"
    return app, results_section, run_id


def click_bundle(app, run_id, button: str, n_cats) -> tuple[int, dict]:
    """The run page's bundle button ``button`` clicked with K ``n_cats`` selected; Dash
    itself tells the callback which button it was."""
    return post_callback(app, BUNDLE, {"results-k.value": n_cats, "results-run-id.data": run_id,
                                       f"{button}.n_clicks": 1},
                         [f"{button}.n_clicks"])


def unzip(download: dict) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(base64.b64decode(download["content"])))


def test_bundle_of_one_k_and_of_every_k(trained):
    app, _, run_id = trained
    status, answer = click_bundle(app, run_id, "results-dl-bundle-k-btn", 4)
    assert status == 200 and answer[BUNDLE_MESSAGE] is None
    download = answer[BUNDLE]
    assert download["filename"].endswith("-K4-analysis.zip")
    names = unzip(download).namelist()
    assert "README.md" in names and "K4/workspace.json" in names and "K3/yields.csv" not in names
    categoriser = json.loads(unzip(download).read("K4/categoriser.json"))
    # 1-D: plain cuts, one fewer than the categories (a Gaussian that never wins makes none)
    assert categoriser["rule"] == "cuts" and 2 <= categoriser["n_categories"] <= 4
    assert len(categoriser["cuts"]) == categoriser["n_categories"] - 1

    # the other button, same K selected: every K, whatever the selection
    status, answer = click_bundle(app, run_id, "results-dl-bundle-btn", 4)
    assert status == 200 and answer[BUNDLE]["filename"].endswith("-analysis.zip")
    assert "-K4-" not in answer[BUNDLE]["filename"]
    assert {"K3/datacard.txt", "K4/datacard.txt"} <= set(unzip(answer[BUNDLE]).namelist())


def test_a_bundle_that_cannot_be_made_is_a_message(trained):
    app, _, run_id = trained
    status, answer = click_bundle(app, run_id, "results-dl-bundle-k-btn", 7)  # never trained
    assert status == 200
    assert BUNDLE not in answer  # no download at all, not an empty one
    message = json.dumps(answer[BUNDLE_MESSAGE])
    assert "No bundle" in message and "7" in message
    # a run id the page never sends: refused where callback values are checked, no bundle
    status, answer = click_bundle(app, {"a": 1}, "results-dl-bundle-btn", None)
    assert status == 400 and answer == {}


def test_statistical_model_panel_shows_pyhf_numbers(trained):
    _, section, run_id = trained
    (result, _) = runtime.store().results(run_id)
    model = result["statistical_model"]
    panel = str(section.statistical_model_panel(result))
    # pyhf with MC-stat uncertainty can only lose significance
    assert model["pyhf_z_mc_stat"]["signal"] <= model["pyhf_z"]["signal"] + 1e-9
    assert f"{model['pyhf_z']['signal']:.4f}"[:5] in panel
    old = {k: v for k, v in result.items() if k != "statistical_model"}
    assert "No statistical model" in str(section.statistical_model_panel(old))


def test_the_report_lists_the_statistical_model(trained):
    from gato_dash.report import build_report

    _, _, run_id = trained
    store = runtime.store()
    results = store.results(run_id)
    report = build_report(store.get_run(run_id), store.epochs(run_id), results)
    assert "<h2>Statistical model</h2>" in report
    z = results[0]["statistical_model"]["pyhf_z"]["signal"]
    assert f"{z:.4g}"[:4] in report.split("<h2>Statistical model</h2>")[1]
