"""Issue #22 in the web UI beyond the Datasets page: the New-run form's objective choice
(validated by RunConfig) and the run page's statistical-model panel, which shows pyhf's
significance with the dataset's lnN systematics when the dataset has them."""
from __future__ import annotations

import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gato_core import datasets as catalogue
from gato_core import statmodel
from gato_core.yields import table_from_categories
from gato_dash import runtime
from gato_dash.app import create_app


@pytest.fixture
def app_modules(tmp_path):
    create_app(tmp_path / "data", runtime.Settings())
    section = sys.modules["gato_dash.results_section"]
    section.clear_cache()
    return sys.modules["gato_dash.pages.new_run"], section


# ----- New run: the objective ---------------------------------------------------------------
def test_the_form_offers_the_objective_and_the_background_uncertainty(app_modules):
    new_run, _ = app_modules
    assert {"objective", "bkg_rel_unc"} <= set(new_run.FORM_FIELDS)
    layout = json.dumps(new_run.layout(), default=lambda c: c.to_plotly_json())
    assert "Asimov Z with a background uncertainty" in layout
    assert '"value": "asimov_bkg_unc"' in layout


@pytest.mark.parametrize("objective, unc, field, words", [
    ("asimov_bkg_unc", "0", "bkg_rel_unc", "needs"),
    ("asimov", "0.1", "bkg_rel_unc", "only by the objective"),
    ("asimov_bkg_unc", "3", "bkg_rel_unc", "2"),
    ("sigma", "0.1", "objective", "must be one of"),
])
def test_objective_settings_are_marked_with_the_engines_message(app_modules, objective, unc,
                                                                 field, words):
    new_run, _ = app_modules
    values = new_run.form_values(new_run.scenario_defaults("one_d"))
    values.update(objective=objective, bkg_rel_unc=unc)
    ids = [{"type": "cfg", "name": n} for n in new_run.FORM_FIELDS]
    invalid, messages, run_disabled, other, *_ = new_run.check_form(
        [values[i["name"]] for i in ids], "one_d", "", ids)
    # marked by its own field (not only in the alert under the form), Run stays off
    at = new_run.FORM_FIELDS.index(field)
    assert invalid[at] and words in messages[at] and run_disabled and other is None


def test_a_valid_objective_reaches_the_run_config_and_the_link(app_modules):
    new_run, _ = app_modules
    values = new_run.form_values(new_run.scenario_defaults("one_d"))
    values.update(objective="asimov_bkg_unc", bkg_rel_unc="0.1")
    config, problems = new_run.validate("one_d", values)
    assert problems == {} and config.objective == "asimov_bkg_unc"
    assert config.bkg_rel_unc == 0.1
    query = new_run.query_string("one_d", values, "")
    assert "objective=asimov_bkg_unc" in query and "bkg_rel_unc=0.1" in query
    scenario, back, _, notices = new_run.values_from_query(
        {k: v for k, v in (item.split("=") for item in query.split("&"))})
    assert back["objective"] == "asimov_bkg_unc" and not notices


# ----- run page: the statistical model with systematics --------------------------------------
def small_dataset(tmp_path, systematics) -> str:
    rng = np.random.default_rng(5)
    n = 2000
    process = np.where(rng.random(n) < 0.2, "hh", "ttbar")
    score = np.clip(np.where(process == "hh", rng.normal(0.7, 0.2, n), rng.normal(0.3, 0.2, n)),
                    0, 1)
    path = tmp_path / "small.parquet"
    pq.write_table(pa.table({"score": score, "w": np.full(n, 0.5), "proc": process}), path)
    mapping = {"score_columns": ["score"], "signals": ["hh"], "weight_column": "w",
               "process_column": "proc", "systematics": systematics}
    manifest = catalogue.import_dataset(
        [str(path)], mapping, catalogue.datasets_folder(runtime.data_dir()), "small")
    return manifest.id


def dataset_run(dataset_id) -> tuple[dict, dict]:
    """A finished dataset run's stored result (3 categories, per-process sums as training
    stores them), without training."""
    signal = [2.0, 10.0, 40.0]
    background = [400.0, 60.0, 9.0]
    categories = [{"index": i, "signal": {"hh": s}, "background": b,
                   "process_yields": {"hh": s, "ttbar": b},
                   "process_sum_w2": {"hh": s * 0.5, "ttbar": b * 0.5},
                   "process_counts": {"hh": int(2 * s), "ttbar": int(2 * b)}}
                  for i, (s, b) in enumerate(zip(signal, background))]
    table = table_from_categories(categories, ["hh", "ttbar"], ["hh"])
    result = {"n_cats": 3, "status": "finished", "categories": categories,
              "statistical_model": statmodel.summary(table, sample="training")}
    config = {"scenario": "dataset", "dataset": dataset_id, "n_cats": [3]}
    run_id = runtime.store().create_run(config, name="on small")
    return {"id": run_id, "config": config}, result


def test_the_panel_shows_pyhf_z_with_the_datasets_systematics(app_modules, tmp_path):
    _, section = app_modules
    systematics = {"lumi": {"*": 0.016}, "xs_tt": {"ttbar": 0.2}}
    run, result = dataset_run(small_dataset(tmp_path, systematics))
    categories = result["categories"]
    expected = statmodel.summary(
        table_from_categories(categories, ["hh", "ttbar"], ["hh"]),
        {"lumi": {"hh": 0.016, "ttbar": 0.016}, "xs_tt": {"ttbar": 0.2}})["pyhf_z_syst"]["hh"]
    panel = json.dumps(section._numbers(result, run)[0],
                       default=lambda c: c.to_plotly_json())
    assert "MC stat + lnN systematics" in panel
    assert f"{expected:.4g}" in panel
    # the systematic lowers the significance: the number shown is not the stored one
    assert expected < result["statistical_model"]["pyhf_z_mc_stat"]["hh"] - 0.01
    assert "xs_tt: ttbar 20 %" in panel


def test_a_run_on_a_dataset_without_systematics_shows_the_stored_numbers_only(app_modules,
                                                                             tmp_path):
    _, section = app_modules
    run, result = dataset_run(small_dataset(tmp_path, None))
    panel = json.dumps(section._numbers(result, run)[0], default=lambda c: c.to_plotly_json())
    assert "systematics" not in panel
    assert f"{result['statistical_model']['pyhf_z_mc_stat']['hh']:.4g}" in panel
