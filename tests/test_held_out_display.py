"""Held-out significance is shown wherever the training-sample one is: the baselines tab
(figure and table), the compare table and the report, labelled with its sample."""
from __future__ import annotations

from gato_dash.comparison.loading import ComparedRun
from gato_dash.comparison.parameters import comparison_rows
from gato_dash.figures.baselines import significance_comparison, significance_table_rows
from gato_dash.report import build_report

RUN_INFO = {"signal_names": ["signal"], "baselines": {"signal": {"5": 1.0}},
            "baseline_objective": {"5": 1.0}, "optimum_1d": {"5": 1.6},
            "held_out": {"kind": "split", "fraction": 0.5, "n_events": 100}}
RESULT = {"n_cats": 5, "status": "finished", "significance": {"signal": 1.58},
          "objective": 1.58, "heldout_significance": {"signal": 1.41},
          "heldout_objective": 1.41, "epochs_done": 10}


def test_baselines_tab_shows_the_held_out_numbers_beside_the_training_ones():
    rows = significance_table_rows(RUN_INFO, [RESULT])
    by_method = {row["method"]: row for row in rows}
    held_out = by_method["GATO on the held-out 50 % of the dataset"]
    assert held_out["signal"] == 1.41 and held_out["objective"] == 1.41
    assert by_method["GATO (training sample)"]["signal"] == 1.58
    figure = significance_comparison(RUN_INFO, [RESULT])
    traces = {trace.name: trace for trace in figure.data}
    assert list(traces["GATO on the held-out 50 % of the dataset"].y) == [1.41]
    toy = significance_table_rows({**RUN_INFO, "held_out": {"kind": "independent"}}, [RESULT])
    assert any(row["method"] == "GATO on the held-out independent sample" for row in toy)


def test_no_held_out_row_for_runs_without_one():
    result = {k: v for k, v in RESULT.items() if not k.startswith("heldout")}
    assert [row["method"] for row in significance_table_rows(RUN_INFO, [result])
            if row["n_categories"] == 5] == ["baseline (equidistant)", "exact optimum",
                                                     "GATO (training sample)"]


def test_compare_table_and_report_carry_the_held_out_significance():
    run = {"id": "r1", "name": "one", "scenario": "one_d", "status": "finished",
           "config": {"scenario": "one_d"}, "run_info": RUN_INFO}
    compared = ComparedRun(run=run, results=[RESULT], histories={}, dim=1,
                           named_signals=["signal"])
    rows = {row.key: row for row in comparison_rows([compared])}
    assert rows["heldout.5.signal"].values == [1.41]
    report = build_report(run, [], [RESULT])
    assert "held-out 50 % of the dataset" in report and "1.41" in report
