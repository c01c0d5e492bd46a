"""The Datasets page's analysis steps (issue #22): trees ticked and named per tree, a
selection cut, luminosity and per-process scale factors, lnN systematics. The page only
collects them; the engine (gato_core.import_steps) checks and applies them, and the
numbers of the import summary are checked here against numpy on the same file."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from gato_core import datasets as catalogue
from gato_dash import runtime
from gato_dash.app import create_app
from helpers.dataset_files import analysis_root, finished_upload


@pytest.fixture
def page(tmp_path):
    create_app(tmp_path / "data", runtime.Settings())
    return sys.modules["gato_dash.pages.datasets"]


def run_import(page, source, trees, used, processes, signals, selection=None, luminosity=None,
               scales=None, systematics=None):
    return page.import_dataset(
        1, [source], ["nn_score"], "w", None, signals, None, None, None, None, None, False,
        "analysis", 0, selection, luminosity, scales, systematics, trees, used, processes)


def test_the_trees_of_a_root_file_are_listed_with_their_entries(page, tmp_path):
    analysis_root(tmp_path / "analysis.root")
    source = finished_upload(tmp_path / "analysis.root")
    trees, view = page.list_root_trees([source])
    assert [(t["tree"], t["entries"]) for t in trees] == [
        ("signal", 400), ("bkg", 1600), ("bkg_JESup", 1600), ("meta", 1)]
    assert "nn_score" in trees[0]["branches"] and "nn_score" not in trees[3]["branches"]
    assert "datasets-trees-table" in str(view)


def test_without_a_choice_the_variation_tree_is_refused_with_the_engines_message(page,
                                                                                 tmp_path):
    analysis_root(tmp_path / "analysis.root")
    source = finished_upload(tmp_path / "analysis.root")
    trees, _ = page.list_root_trees([source])
    message, refresh, _ = run_import(page, source, trees, [False] * 4,
                                     [t["tree"] for t in trees], ["signal"])
    assert "Nothing was imported" in str(message)
    assert "bkg_JESup" in str(message) and "systematic variation" in str(message)
    assert refresh is page.no_update and catalogue.list_datasets(page.datasets_dir()) == []


def test_ticked_trees_named_scaled_cut_and_with_systematics_match_numpy(page, tmp_path):
    arrays = analysis_root(tmp_path / "analysis.root")
    source = finished_upload(tmp_path / "analysis.root")
    trees, _ = page.list_root_trees([source])
    used = [t["tree"] in ("signal", "bkg") for t in trees]
    processes = [{"signal": "hh", "bkg": "ttbar"}.get(t["tree"], t["tree"]) for t in trees]
    message, refresh, sources = run_import(
        page, source, trees, used, processes, ["hh"], selection="nn_score > 0.2 & njets >= 1",
        luminosity="138", scales="hh=0.031 ttbar=1.05",
        systematics="lumi:*=0.016 xs_tt:ttbar=0.05")
    assert refresh == 1 and sources == [], str(message)
    (manifest,) = catalogue.list_datasets(page.datasets_dir())
    assert manifest.processes == ["hh", "ttbar"]
    assert manifest.mapping["systematics"] == {"lumi": {"*": 0.016}, "xs_tt": {"ttbar": 0.05}}

    factors = {"signal": 138 * 0.031, "bkg": 138 * 1.05}
    kept_events, read_events, kept_weight, before, after = 0, 0, 0.0, {}, {}
    for tree, process in (("signal", "hh"), ("bkg", "ttbar")):
        a = arrays[tree]
        keep = (a["nn_score"] > 0.2) & (a["njets"] >= 1)
        read_events += len(keep)
        kept_events += int(keep.sum())
        kept_weight += float(a["w"][keep].sum())
        # the engine stores weights in single precision
        before[process] = float(a["w"][keep].astype(np.float32).sum(dtype=np.float64))
        after[process] = before[process] * factors[tree]
    report = manifest.report
    assert report["selection"]["events_kept"] == kept_events
    assert report["selection"]["events_read"] == read_events
    assert report["scaling"]["yields_after"] == pytest.approx(after, rel=1e-5)
    text = str(message)
    assert f"{kept_events:,}" in text or str(kept_events) in text
    for process in ("hh", "ttbar"):
        assert f"{after[process]:.4g}" in text and f"{before[process]:.4g}" in text
    assert f"{kept_weight:.4g}" in text
    assert "lumi" in text and "xs_tt" in text and "ttbar 5 %" in text
    assert "not imported (not chosen): bkg_JESup, meta" in text


def test_a_tree_name_in_two_files_with_two_process_names_is_refused(page):
    trees = [{"source": "a.root", "tree": "bkg", "entries": 1, "branches": []},
             {"source": "b.root", "tree": "bkg", "entries": 1, "branches": []}]
    with pytest.raises(page.DatasetError, match="different process names"):
        page.chosen_trees(trees, [True, True], ["tt", "wjets"])
    assert page.chosen_trees(trees, [True, True], ["tt", " tt "]) == {"bkg": "tt"}
    assert page.chosen_trees(trees, [False, False], ["tt", "tt"]) is None
    with pytest.raises(page.DatasetError, match="out of date"):
        page.chosen_trees(trees, [True], ["tt"])


@pytest.mark.parametrize("field, value, expected", [
    ("selection", "__import__('os').system('x')", "is not"),
    ("selection", "nn_scroe > 0.1", "no column 'nn_scroe'"),
    ("luminosity", "-3", "above 0"),
    ("process_scales", "ttbar", "PROCESS=NUMBER"),
    ("systematics", "lumi:*=5", "at most 2"),
    ("systematics", "lumi=0.02", "NAME:PROCESS=U"),
])
def test_a_bad_analysis_step_shows_the_engines_message_by_its_field(page, field, value,
                                                                    expected):
    inspection = [{"columns": [{"name": "nn_score", "kind": "number"},
                               {"name": "njets", "kind": "number"}],
                   "process": None, "source": "a.root"}]
    order = ["selection", "luminosity", "process_scales", "systematics"]
    values = ["nn_score > 0.1 & njets >= 2", "138", "tt=1.05", "lumi:*=0.016"]
    values[order.index(field)] = value
    result = page.check_steps(*values, inspection)
    invalid, messages = result[:4], result[4:]
    assert invalid == tuple(f == field for f in order)
    assert expected in messages[order.index(field)]
    assert all(m is None for f, m in zip(order, messages) if f != field)
