"""The New-run page's preview (gato_dash.figures.previews): one kind of figure per kind of
sample, and for a sample with a mass the very figure a run's results show."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gato_core.evaluation import inclusive_summary
from gato_core.scenarios import generate
from gato_dash.figures import catalogue, previews


def summary_of(scenario: str) -> dict:
    return inclusive_summary(generate(scenario, 300, 1500, seed=1))


def drawn(fig) -> dict:
    """What a figure draws, as the browser receives it (plotly's JSON)."""
    return json.loads(fig.to_json())


@pytest.mark.parametrize("log", [False, True])
def test_the_preview_of_a_mass_sample_is_the_results_inclusive_mass_figure(log):
    summary = summary_of("bump_hunt")
    run = {"id": "r", "scenario": "bump_hunt",
           "run_info": {"inclusive": summary, "signal_names": summary["signals"]}}
    on_results = catalogue.build(["inclusive_mass"],
                                 catalogue.Inputs(run, 2, log=log))["inclusive_mass"]
    preview = previews.inclusive_preview(summary, log=log)
    assert drawn(preview)["data"] == drawn(on_results)["data"]
    assert drawn(preview)["layout"]["shapes"] == drawn(on_results)["layout"]["shapes"]
    assert preview.layout.yaxis.type == ("log" if log else "linear")
    # only its frame is the preview's own
    assert preview.layout.height == previews.PREVIEW_HEIGHT != on_results.layout.height


def test_the_preview_of_a_one_d_sample_stacks_the_discriminant_per_process():
    summary = summary_of("one_d")
    fig = previews.inclusive_preview(summary, log=False)
    backgrounds = [p for p in summary["processes"] if p not in summary["signals"]]
    assert [t.name for t in fig.data] == backgrounds + summary["signals"]
    assert fig.layout.barmode == "stack" and fig.layout.yaxis.type == "linear"
    # the stack adds up to every weighted event of the sample
    total = sum(np.sum(t.y) for t in fig.data)
    expected = sum(np.sum(c) for c in summary["score_hist"]["counts"].values())
    assert total == pytest.approx(expected, rel=1e-4)
    assert fig.layout.title.text == "Inclusive discriminant, stacked"
    assert previews.inclusive_preview(summary, log=True).layout.yaxis.type == "log"


def test_the_preview_of_a_two_d_sample_maps_each_signal_and_the_backgrounds():
    summary = summary_of("three_class")
    fig = previews.inclusive_preview(summary, log=False)
    assert [t.name for t in fig.data] == summary["signals"] + ["background"]
    assert {t.type for t in fig.data} == {"heatmap"}
    z = np.asarray(fig.data[-1].z, dtype=float)
    logged = np.asarray(previews.inclusive_preview(summary, log=True).data[-1].z, float)
    assert logged[0, 0] == pytest.approx(np.log10(z[0, 0]), abs=1e-3)


def test_the_two_d_preview_leaves_the_cells_outside_the_simplex_empty():
    """Events fill every cell here, so only the simplex p1 + p2 <= 1 can empty them."""
    grid = 4
    summary = {"processes": ["s", "b"], "signals": ["s"],
               "score_density": {"grid": grid, "counts": {"s": [1.0] * grid ** 2,
                                                          "b": [2.0] * grid ** 2}}}
    z = np.asarray(previews.inclusive_preview(summary, log=False).data[-1].z, dtype=float)
    centres = (np.arange(grid) + 0.5) / grid
    inside = centres[None, :] + centres[:, None] <= 1.0
    assert np.all(z[inside] == 2.0) and np.all(np.isnan(z[~inside]))


def test_three_scores_have_no_preview_and_say_so():
    fig = previews.inclusive_preview({"processes": ["a", "b"], "signals": ["a"]})
    assert not fig.data and "No inclusive preview" in fig.layout.title.text
    assert fig.layout.height == previews.PREVIEW_HEIGHT
