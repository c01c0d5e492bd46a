"""Comparing runs (gato_dash.comparison, gato_dash.runs_table) and the compare figures."""
from __future__ import annotations

import csv
import io
import math

import plotly.graph_objects as go
import pytest

from gato_core.config import RunConfig
from gato_dash.comparison import export, histories, loading, parameters, selection
from gato_dash import runs_table
from gato_dash.figures import compare as figs
from gato_dash.figures.colours import RUN_COLOURS
from gato_dash.runtime.run_store import RunStore
from helpers.compared import make_run


# ----- selection from the URL --------------------------------------------------------------
def test_parse_run_ids_rejects_malformed_and_deduplicates():
    chosen = selection.parse_run_ids("abc123, abc123,<script>,../etc,def456,")
    assert chosen.ids == ["abc123", "def456"]
    assert len(chosen.problems) == 2
    assert any("<script>" in p for p in chosen.problems)
    assert chosen.ok


def test_parse_run_ids_caps_at_six_and_needs_two():
    chosen = selection.parse_run_ids(",".join(f"r{i}" for i in range(8)))
    assert chosen.ids == [f"r{i}" for i in range(6)]
    assert any("at most 6" in p for p in chosen.problems)
    assert not selection.parse_run_ids("onlyone").ok
    assert not selection.parse_run_ids(None).ok


# ----- difference detection --------------------------------------------------------------
def test_view_state_from_a_link_and_back():
    defaults = selection.default_view(8)
    assert selection.parse_view_state({}, [5, 8], 8) == (defaults, [])
    query = {"tab": "categories", "diff": "1", "k": "5", "x": "fraction", "log": "true",
             "smooth": "0.35", "ck": ["8", "5"], "clog": "1"}  # repeated key: the last wins
    view, problems = selection.parse_view_state(query, [5, 8], 8)
    assert problems == []
    assert view == selection.ViewState(tab="categories", differences_only=True, history_k=5,
                                 x_mode="fraction", history_log=True, smoothing=0.35,
                                 categories_k=5, categories_log=True)
    text = selection.view_query(["a1", "b2"], view, defaults)
    assert text == ("runs=a1,b2&tab=categories&diff=1&k=5&x=fraction&log=1&smooth=0.35"
                    "&ck=5&clog=1")
    # the query string read back gives the same view
    again = dict(part.split("=", 1) for part in text.split("&"))
    assert selection.parse_view_state(again, [5, 8], 8) == (view, [])
    # the default view is just the runs: links made before views were kept still mean it
    assert selection.view_query(["a1", "b2"], defaults, defaults) == "runs=a1,b2"


def test_view_state_ignores_and_names_what_a_link_cannot_mean():
    query = {"tab": "<script>", "diff": "maybe", "k": "7", "x": "log", "smooth": "2",
             "ck": "abc", "clog": "", "log": "0", "unrelated": "x"}
    view, problems = selection.parse_view_state(query, [3, 5], 5)
    assert view == selection.default_view(5)
    assert len(problems) == 7
    assert "ignored tab='<script>' in the link: expected one of histories" in problems[0]
    assert any("k='7'" in p and "the trained category counts are K = 3, 5" in p
               for p in problems)
    assert any("smooth='2'" in p and "0 to 0.95" in p for p in problems)
    assert any("smooth" in p for p in problems) and not any("unrelated" in p for p in problems)
    long_value = selection.parse_view_state({"x": "y" * 500}, [3], 3)[1][0]
    assert len(long_value) < 120


def test_identical_configs_have_no_differences():
    a = RunConfig.defaults("one_d").to_dict()
    b = RunConfig.from_dict({**a, "n_cats": "5 10 20"}).to_dict()  # list from a form string
    assert parameters.differing_parameters([a, b]) == []


def test_float_noise_is_not_a_difference_but_a_real_change_is():
    a = RunConfig.defaults("one_d").to_dict()
    b = dict(a, lr_initial=0.1 + 1e-17, t_final=0.05 * (1 + 1e-14))
    assert parameters.differing_parameters([a, b]) == []
    c = dict(a, lr_initial=0.1001, n_cats=[5, 10])
    assert parameters.differing_parameters([a, b, c]) == ["n_cats", "lr_initial"]


def test_a_parameter_missing_from_one_run_differs():
    a = {"scenario": "one_d", "epochs": 10, "extra": 1}
    b = {"scenario": "one_d", "epochs": 10}
    assert parameters.differing_parameters([a, b]) == ["extra"]
    assert parameters.differing_parameters([a, dict(b, extra=1)]) == []


def test_differences_only_keeps_results_and_name_drops_identical_settings():
    runs = [make_run("r1", seed=1), make_run("r2", seed=2, z_offset=0.1)]
    rows = parameters.comparison_rows(runs)
    shown = {r.key for r in parameters.visible_rows(rows, differences_only=True)}
    assert {"name", "config.seed"} <= shown
    assert "config.epochs" not in shown and "config.scenario" not in shown
    assert {r.key for r in rows if r.section == "result"} <= shown
    assert len(parameters.visible_rows(rows, differences_only=False)) == len(rows)


def test_best_final_significance_is_marked_on_the_better_run():
    runs = [make_run("r1"), make_run("r2", z_offset=0.2), make_run("r3", z_offset=0.1)]
    rows = {r.key: r for r in parameters.comparison_rows(runs)}
    assert rows["best.signal"].best_index == 1
    assert rows["final.5.signal"].best_index == 1
    assert rows["best_k.signal"].values == [5, 5, 5]
    # runs that agree get no winner
    same = {r.key: r for r in parameters.comparison_rows([make_run("a"), make_run("b")])}
    assert same["final.5.signal"].best_index is None


# ----- histories of different lengths -----------------------------------------------------
def test_align_histories_pads_shorter_runs_without_shifting_values():
    short = ([0, 1, 2], [1.0, 2.0, 3.0])
    long = ([0, 1, 2, 3, 4], [10.0, 11.0, 12.0, 13.0, 14.0])
    grid, aligned = histories.align_histories({"short": short, "long": long})
    assert grid == [0, 1, 2, 3, 4]
    assert aligned["long"] == long[1]
    assert aligned["short"][:3] == [1.0, 2.0, 3.0]
    assert all(math.isnan(v) for v in aligned["short"][3:])


def test_align_histories_keeps_gaps_of_snapshot_only_metrics():
    run_a = make_run("a", epochs=10)
    run_b = make_run("b", epochs=25)
    series = {r.id: histories.history_series(r.histories[5], "mean_abs_bias") for r in (run_a, run_b)}
    grid, aligned = histories.align_histories(series)
    # a snapshots at 4, 9; b at 4, 9, 14, 19, 24: union grid, no interpolation
    assert grid == [4, 9, 14, 19, 24]
    assert aligned["a"][0] == pytest.approx(0.1) and math.isnan(aligned["a"][2])
    assert aligned["b"][4] == pytest.approx(0.5 / 25)


def test_fraction_axis_puts_the_ends_of_different_lengths_together():
    xs_short, _ = histories.history_series(make_run("a", epochs=10).histories[3], "loss", "fraction")
    xs_long, _ = histories.history_series(make_run("b", epochs=40).histories[3], "loss", "fraction")
    assert xs_short[-1] == xs_long[-1] == 1.0
    assert len(xs_short) == 10 and len(xs_long) == 40


def test_smoothing_keeps_constants_and_gaps():
    assert histories.smooth([3.0, 3.0, 3.0], 0.9) == pytest.approx([3.0, 3.0, 3.0])
    out = histories.smooth([1.0, math.nan, 1.0, 5.0], 0.5)
    assert out[0] == pytest.approx(1.0) and math.isnan(out[1]) and out[2] == pytest.approx(1.0)
    # debiased EMA = weighted mean of the values seen, weights 0.5 ** age: (1, 1, 5)
    assert out[3] == pytest.approx((0.25 * 1 + 0.5 * 1 + 1 * 5) / (0.25 + 0.5 + 1))
    assert histories.smooth([1.0, 2.0], 0.0) == [1.0, 2.0]
    with pytest.raises(ValueError):
        histories.smooth([1.0], 1.0)


def test_default_k_prefers_a_k_every_run_has():
    assert loading.default_k([make_run("a", ks=(3, 5)), make_run("b", ks=(5, 10))]) == 5
    # no K in common: the one most runs have; a tie goes to the larger K
    assert loading.default_k([make_run("a", ks=(3, 5)), make_run("b", ks=(3,)),
                              make_run("c", ks=(10,))]) == 3
    assert loading.default_k([make_run("a", ks=(3,)), make_run("b", ks=(10,))]) == 10
    untrained = loading.ComparedRun(run={"id": "q"}, results=[], histories={}, dim=1,
                                    named_signals=["signal"])
    assert loading.default_k([untrained]) is None


# ----- CSV -------------------------------------------------------------------------------
def test_comparison_csv_has_one_column_per_run_and_full_precision():
    runs = [make_run("r1", name="=HYPERLINK(\"x\")"), make_run("r2", ks=(5,), z_offset=1 / 3)]
    rows = parameters.comparison_rows(runs)
    table = list(csv.reader(io.StringIO(export.comparison_csv(runs, rows))))
    header, body = table[0], {row[1]: row for row in table[1:]}
    assert header[:2] == ["section", "parameter"] and len(header) == 4
    assert header[2].startswith("'=")  # a spreadsheet must not run a name as a formula
    assert header[3] == "r2 (r2)"
    assert body["final Z(signal), K=5"][2:] == [repr(1.45), repr(1.4 + 1 / 3 + 0.05)]
    assert body["final Z(signal), K=3"][2:] == [repr(1.43), ""]  # r2 has no K=3
    assert body["n_cats"][2:] == ["3 5", "5"]
    assert body["seed"][0] == "config"
    assert len(table) == len(rows) + 1


def test_history_csv_aligns_runs_on_one_x_column():
    runs = [make_run("r1", epochs=4), make_run("r2", epochs=6)]
    table = list(csv.reader(io.StringIO(export.history_csv(runs, 3, ("temperature", "loss")))))
    assert table[0] == ["epoch", "r1 (r1) temperature", "r2 (r2) temperature",
                        "r1 (r1) loss", "r2 (r2) loss"]
    assert len(table) == 1 + 6
    assert [row[0] for row in table[1:]] == ["0", "1", "2", "3", "4", "5"]
    assert table[-1][1] == "" and table[-1][2] != ""  # r1 ended after 4 epochs
    assert float(table[4][3]) == -(1.0 + 3 / 4)  # r1's loss at epoch 3, not shifted


# ----- runs table rows --------------------------------------------------------------------
def test_run_table_row_and_filters():
    run = make_run("r1", name="<b>bold</b>")
    row = runs_table.run_table_row(dict(run.run, tags=["baseline", "seed"]), run.results)
    assert row["name"] == "<b>bold</b>"  # kept as text; the table renders it verbatim
    assert row["best_z"] == "signal 1.450 (K=5)"
    assert row["duration"] == "30.0 s"
    assert row["tags"] == "baseline, seed"
    other = dict(row, id="r2", name="other", scenario="bump_hunt", status="failed", tags="")
    rows = [row, other]
    assert runs_table.filter_rows(rows, scenarios=["one_d"]) == [row]
    assert runs_table.filter_rows(rows, statuses=["failed"]) == [other]
    assert runs_table.filter_rows(rows, text="SEED") == [row]
    assert runs_table.filter_rows(rows, text="nothing") == []


def test_parse_tags():
    assert runs_table.parse_tags(" a, b ,,a, c ") == ["a", "b", "c"]
    assert runs_table.parse_tags("") == []


# ----- loading from the store -------------------------------------------------------------
def test_load_comparison_reports_unknown_ids_and_drops_snapshots(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    source = make_run("x", epochs=6, ks=(3,))
    run_id = store.create_run(source.run["config"], name="stored")
    for record in source.histories[3]:
        store.append_epoch(run_id, dict(record, snapshot={"big": list(range(100))}))
    store.put_result(run_id, dict(source.results[0], parameters={"model": "gmm"}))
    runs, missing = loading.load_comparison(store, selection.parse_run_ids(f"{run_id},nosuchrun").ids)
    assert [r.id for r in runs] == [run_id]
    assert missing and "nosuchrun" in missing[0]
    loaded = runs[0]
    assert len(loaded.histories[3]) == 6
    assert "snapshot" not in loaded.histories[3][0]
    assert "parameters" not in loaded.results[0]


def test_run_cache_reloads_when_a_run_changes_and_keeps_names_fresh(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    source = make_run("x", epochs=4, ks=(3,))
    run_id = store.create_run(source.run["config"], name="first")
    store.append_epoch(run_id, source.histories[3][0])
    cache = loading.RunCache(size=2)
    first = cache.load(store, run_id)
    assert cache.load(store, run_id) is first  # unchanged run: served from the cache
    store.rename(run_id, "renamed")
    assert cache.load(store, run_id).name == "renamed"
    store.append_epoch(run_id, source.histories[3][1])  # still training: new epoch
    again = cache.load(store, run_id)
    assert again is not first and len(again.histories[3]) == 2
    store.delete(run_id)
    assert cache.load(store, run_id) is None


# ----- figures ---------------------------------------------------------------------------
def assert_valid_figure(fig: dict) -> None:
    """Plotly's graph_objects accept every attribute (an unknown one raises ValueError) and
    keep every trace, in order: what the browser's plotly.js is sent is a figure it knows."""
    checked = go.Figure(fig)
    assert [t.type for t in checked.data] == [t.get("type", "scatter") for t in fig["data"]]
    assert [t.name for t in checked.data] == [t.get("name") for t in fig["data"]]


def test_history_figure_one_colour_per_run_across_panels():
    runs = [make_run("a", epochs=10), make_run("b", epochs=30), make_run("c", epochs=20)]
    fig = figs.history_figure(runs, 5)
    per_run_colour = {}
    for trace in fig["data"]:
        per_run_colour.setdefault(trace["legendgroup"], set()).add(trace["line"]["color"])
    assert per_run_colour == {"a": {RUN_COLOURS[0]}, "b": {RUN_COLOURS[1]},
                              "c": {RUN_COLOURS[2]}}
    assert len(fig["data"]) == 3 * len(figs.HISTORY_PANELS)
    assert sum(t["showlegend"] for t in fig["data"]) == 3
    # each run keeps its own epochs: the 10-epoch run ends at epoch 9, nothing is padded
    loss = {t["legendgroup"]: t for t in fig["data"] if t["yaxis"] == "y2"}
    assert loss["a"]["x"] == list(range(10)) and loss["b"]["x"] == list(range(30))
    assert loss["a"]["y"] == [-(1.0 + e / 10) for e in range(10)]
    bias = {t["legendgroup"]: t for t in fig["data"] if t["yaxis"] == "y3"}
    assert bias["a"]["x"] == [4, 9]  # snapshot epochs only
    assert_valid_figure(fig)


def test_history_figure_two_signals_log_and_smoothing():
    runs = [make_run("a", "three_class", ks=(3,)), make_run("b", "three_class", ks=(3,))]
    fig = figs.history_figure(runs, 3, log_y=True, smoothing=0.6,
                              metrics=("significance", "loss"))
    # 2 runs x 2 signals on the significance panel + 2 runs on loss, each raw + smoothed
    assert len(fig["data"]) == 2 * (4 + 2)
    assert fig["layout"]["yaxis"]["type"] == "log"
    assert "type" not in fig["layout"]["yaxis2"]  # loss is negative: stays linear
    assert "linear" in fig["layout"]["annotations"][1]["text"]
    raw, smoothed = fig["data"][0], fig["data"][1]
    assert raw["opacity"] < 1 and smoothed["y"] != raw["y"]
    assert_valid_figure(fig)


def test_history_figure_without_histories_says_why():
    with pytest.raises(figs.PanelNotApplicable, match="K=7"):
        figs.history_figure([make_run("a"), make_run("b")], 7)


def test_significance_figure_draws_shared_baseline_once():
    runs = [make_run("a", ks=(3, 5)), make_run("b", ks=(5, 10), z_offset=0.1)]
    fig = figs.significance_vs_categories_figure(runs)
    names = [t["name"] for t in fig["data"]]
    assert names.count("equidistant baseline") == 1
    assert names.count("exact optimum (1-D)") == 1
    optimum = next(t for t in fig["data"] if t["name"] == "exact optimum (1-D)")
    assert optimum["x"] == [3, 5, 10]  # both runs' K merged into one curve
    assert_valid_figure(fig)
    # different data (seed) -> one baseline per data set, labelled with its runs
    other = make_run("c", seed=7)
    fig = figs.significance_vs_categories_figure(runs + [other])
    assert sum("baseline" in t["name"] for t in fig["data"]) == 2


def test_significance_figure_refuses_mixed_scenarios():
    with pytest.raises(figs.PanelNotApplicable, match="scenarios"):
        figs.significance_vs_categories_figure([make_run("a"), make_run("b", "three_class")])


def test_category_figure_same_scale_and_missing_k():
    runs = [make_run("a", ks=(3, 5)), make_run("b", ks=(5,)), make_run("c", ks=(3,))]
    fig = figs.category_figure(runs, 5)
    bars = [t for t in fig["data"] if t["type"] == "bar"]
    assert len(bars) == 4  # background + signal for the two runs with K=5
    assert "not trained with K=5: c" in fig["layout"]["title"]["text"]  # and it says so
    assert fig["layout"]["yaxis2"]["matches"] == "y"
    assert fig["layout"]["xaxis"]["range"] == fig["layout"]["xaxis2"]["range"] == [0, 1]
    assert_valid_figure(fig)
    maps = figs.category_figure([make_run("d", "three_class", ks=(5,)),
                                 make_run("e", "three_class", ks=(5,))], 5)
    heatmaps = [t for t in maps["data"] if t["type"] == "heatmap"]
    assert len(heatmaps) == 2
    assert {(h["zmin"], h["zmax"]) for h in heatmaps} == {(-0.5, 5.5)}
    values = {v for h in heatmaps for row in h["z"] for v in row}
    assert values == {0, 1, 2, 3, 4, 5}  # 0 outside the simplex, 1..K via the result's order
    # the hand-made map puts component k in column band k; order reverses them
    assert heatmaps[0]["z"][0][0] == 5 and heatmaps[0]["z"][0][19] == 1
    assert heatmaps[0]["z"][19][19] == 0  # x + y > 1
    assert_valid_figure(maps)


def test_category_figure_refuses_mixed_dimensions():
    with pytest.raises(figs.PanelNotApplicable, match="1-D"):
        figs.category_figure([make_run("a"), make_run("b", "three_class")], 5)


def test_user_names_are_escaped_in_figures():
    runs = [make_run("a", name="<img src=x onerror=alert(1)>"), make_run("b")]
    fig = figs.history_figure(runs, 5)
    assert all("<img" not in t.get("name", "") for t in fig["data"])
    assert any("&lt;img" in t.get("name", "") for t in fig["data"])


def test_long_histories_are_thinned_for_the_browser():
    runs = [make_run("a", epochs=5000, ks=(3,)), make_run("b", epochs=100, ks=(3,))]
    fig = figs.history_figure(runs, 3, metrics=("loss",), smoothing=0.5)
    for trace in fig["data"]:
        assert len(trace["x"]) == len(trace["y"]) <= figs.MAX_HISTORY_POINTS
    assert fig["data"][0]["x"][0] == 0 and fig["data"][0]["x"][-1] == 4999
    # the short run beside it keeps every one of its points
    assert fig["data"][3]["x"] == list(range(100))
    # smoothing ran on all 5000 points before thinning: the curve ends near the raw value
    assert fig["data"][1]["y"][-1] == pytest.approx(fig["data"][0]["y"][-1], rel=1e-3)


def test_ties_get_no_winner_and_rows_nobody_has_are_dropped():
    runs = [make_run("a"), make_run("b"), make_run("c", "three_class", ks=(5,))]
    rows = {r.key: r for r in parameters.comparison_rows(runs)}
    assert rows["final.5.signal"].values[:2] == [1.45, 1.45]
    assert rows["final.5.signal"].best_index is None  # a and b tie: nobody is "best"
    assert "final.3.signal1" not in rows  # no run has signal1 at K=3
    assert "final.5.signal1" in rows


def test_history_figure_names_runs_without_that_k():
    runs = [make_run("a", ks=(3, 5)), make_run("b", ks=(3,), name="<b>bee</b>")]
    fig = figs.history_figure(runs, 5)
    assert {t["legendgroup"] for t in fig["data"]} == {"a"}
    assert fig["layout"]["title"]["text"] == "no history for K=5: &lt;b&gt;bee&lt;/b&gt;"
