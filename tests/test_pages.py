"""Page layouts built on the server, without a browser: the run page of an ended run and the
compare view's parameter table.

The page modules register themselves with Dash Pages, so a bare app with ``use_pages`` is
made once; the run store is the app's (``gato_dash.runtime``), pointed at a temporary
folder.
"""
from __future__ import annotations

import json
import sys

import dash
import plotly.utils
import pytest

from helpers import records as rf
from gato_dash import runtime
from gato_dash.app import PACKAGE
from gato_dash import live
from helpers.compared import make_run


@pytest.fixture(scope="module")
def pages():
    dash.Dash("gato_dash", use_pages=True, pages_folder=str(PACKAGE / "pages"),
              suppress_callback_exceptions=True)
    return sys.modules["gato_dash.pages.run"], sys.modules["gato_dash.pages.compare"]


@pytest.fixture
def store(tmp_path, monkeypatch):
    runtime.configure(tmp_path)
    store = runtime.store()
    from gato_dash import results_section as section_module
    section_module.clear_cache()
    return store


def finished_bump_hunt(store) -> tuple[str, list, list]:
    return rf.store_finished_run(store, "bump_hunt", n_cats=(5, 8), name="<b>bump</b>")


def components(layout) -> dict:
    """id (as Dash writes it) -> component, for every component in the tree."""
    found = {}

    def walk(node):
        if isinstance(node, (list, tuple)):
            for child in node:
                walk(child)
            return
        if not hasattr(node, "to_plotly_json"):
            return
        node_id = getattr(node, "id", None)
        if node_id is not None:
            key = node_id if isinstance(node_id, str) else json.dumps(node_id, sort_keys=True)
            found[key] = node
        for prop in ("children",):
            walk(getattr(node, prop, None))
    walk(layout)
    return found


def k_figure_id(kind: str, name: str) -> str:
    return json.dumps({"name": name, "type": f"results-{kind}"}, sort_keys=True)


def test_ended_run_page_is_complete_in_its_first_response(pages, store):
    run_page, _ = pages
    run_id, epochs, results = finished_bump_hunt(store)
    found = components(run_page.layout(run_id=run_id))

    # histories: the K shown (largest, 8) with every one of its 400 epochs, no poll needed
    significance = found["run-fig-significance"].figure
    significance = significance.to_plotly_json() if hasattr(significance, "to_plotly_json") \
        else significance
    assert list(significance["data"][0]["x"]) == list(range(400))
    assert found["run-k"].value == 8
    assert found["run-poll"].max_intervals == 0
    state = found["run-state"].data
    assert state["k"] == 8 and state["n_results"] == 2 and state["status"] == "finished"
    assert found["run-cancel"].disabled is True

    # results: the first tab's figures are in the layout, drawn without asking again;
    # the hidden tabs' figures come from their callbacks while plotly.js loads
    assert found["results-prefilled"].data is True
    category_map = found[k_figure_id("kfig", "category_map")].figure
    assert len(category_map["frames"]) == 41
    assert "K = 8" in category_map["layout"]["title"]["text"]
    assert found[k_figure_id("kfig", "components")].figure["data"]
    assert found[k_figure_id("logfig", "mass_spectra")].figure == {}
    assert found["results-significance"].figure == {}
    # tabs: the results first; the training curves are the last tab, not above them
    assert found["results-tabs"].value == "categories"
    assert [t.value for t in found["results-tabs"].children] == \
        ["categories", "spectra", "baselines", "numbers", "training"]
    assert found["results-tab-training"].children.id == "run-histories"
    page_ids = [getattr(c, "id", None) for c in found["run-page"].children]
    assert "run-histories" not in page_ids

    # the page's first poll then finds nothing new: no figure, no extension, no results
    update = live.poll(store, state)
    assert update.figures is None and update.extends == {}
    assert not update.results_changed and update.done


def test_run_link_with_a_view_opens_that_view(pages, store):
    run_page, _ = pages
    run_id, _, _ = finished_bump_hunt(store)
    found = components(run_page.layout(run_id=run_id, k="5", tab="spectra", log="1",
                                       density="1"))
    assert (found["results-k"].value, found["results-tabs"].value, found["results-log"].value,
            found["results-density"].value) == (5, "spectra", True, True)
    assert "results-view-problems" not in found
    # the prefilled first-tab figures are K = 5's, with the density contours shown
    category_map = found[k_figure_id("kfig", "category_map")].figure
    assert "K = 5" in category_map["layout"]["title"]["text"]
    contours = [t for t in category_map["data"] if t["type"] == "contour"]
    assert contours and all(t["visible"] is True for t in contours)
    assert found["results-k-heading"].children == "K = 5 categories"

    # what a link cannot mean is named on the page and the default view shown instead
    found = components(run_page.layout(run_id=run_id, k="6", tab="<b>x</b>", log="2"))
    assert (found["results-k"].value, found["results-tabs"].value,
            found["results-log"].value) == (8, "categories", False)
    problems = json.dumps(found["results-view-problems"].to_plotly_json(),
                          cls=plotly.utils.PlotlyJSONEncoder)
    assert "ignored k='6'" in problems and "K = 5, 8" in problems
    assert "ignored tab='<b>x</b>'" in problems and "ignored log='2'" in problems

    # a 1-D run has no density contours
    one_d, _, _ = rf.store_finished_run(store, "one_d", n_cats=(5, 10))
    found = components(run_page.layout(run_id=one_d, density="1", tab="training"))
    assert found["results-density"].value is False and found["results-tabs"].value == "training"
    assert "density contours are drawn for 2-D runs only" in json.dumps(
        found["results-view-problems"].to_plotly_json(), cls=plotly.utils.PlotlyJSONEncoder)


def test_results_arriving_by_poll_show_the_pages_view(pages, store):
    """A live run's page opened from a view link: the section the poll brings (and rebuilds
    for each new K) shows the link's view, then whatever the controls were set to."""
    run_page, _ = pages
    run_id, _, _ = finished_bump_hunt(store)
    assert components(run_page.layout(run_id=run_id, k="5", tab="spectra"))[
        "run-view"].data == {"k": "5", "tab": "spectra"}

    def section_for(view):
        update = live.poll(store, live.initial_state(run_id), None)
        assert update.results_changed
        outputs = run_page.render_update(update, 0, view)
        return components(outputs["results"])

    found = section_for({"k": "5", "tab": "spectra", "log": "1"})
    assert (found["results-k"].value, found["results-tabs"].value,
            found["results-log"].value) == (5, "spectra", True)
    # no view (or a tampered store): the default view
    for view in (None, {}, ["k", "5"]):
        found = section_for(view)
        assert (found["results-k"].value, found["results-tabs"].value) == (8, "categories")
    # a K the run has not trained (yet) is named, as for any link
    found = section_for({"k": "6"})
    assert found["results-k"].value == 8
    assert "ignored k='6'" in json.dumps(found["results-view-problems"].to_plotly_json(),
                                         cls=plotly.utils.PlotlyJSONEncoder)


def test_ended_run_with_a_long_history_keeps_polling_for_the_rest(pages, store, monkeypatch):
    run_page, _ = pages
    run_id, _, _ = finished_bump_hunt(store)
    monkeypatch.setattr(live, "MAX_EPOCHS_ENDED", 150)
    found = components(run_page.layout(run_id=run_id))
    assert found["run-poll"].max_intervals == 1  # one more tick: the rest comes in chunks
    # extensions must reach mounted graphs: the histories stay above the results
    assert "run-histories" in [getattr(c, "id", None) for c in found["run-page"].children]
    assert "results-tab-training" not in found
    assert found["results-prefilled"].data is True
    state = found["run-state"].data
    update = live.poll(store, state, max_epochs=300)
    sig = update.extends["significance"]
    assert sig[0]["x"][0][0] == 150 and sig[0]["x"][0][-1] == 399


def test_running_run_page_is_left_to_the_poll(pages, store):
    run_page, _ = pages
    run_id = store.create_run({"scenario": "one_d", "epochs": 30, "n_cats": [3]})
    store.claim(run_id)
    found = components(run_page.layout(run_id=run_id))
    assert found["run-state"].data == live.initial_state(run_id)
    assert found["run-results"].children is None
    assert found["run-cancel"].disabled is False


def test_section_from_a_poll_has_no_figures(pages, store):
    from gato_dash import results_section as section_module

    run_id, _, _ = finished_bump_hunt(store)
    found = components(section_module.results_section(run_id))
    assert found["results-prefilled"].data is False
    assert found[k_figure_id("kfig", "category_map")].figure == {}
    # a live page's poll response stays small: the section's layout without its figures
    size = len(json.dumps(section_module.results_section(run_id),
                          cls=plotly.utils.PlotlyJSONEncoder))
    assert size < 30_000, size


def test_parameter_table_marks_results_differences_and_the_best_run(pages):
    _, compare_page = pages
    runs = [make_run("r1", name="<b>one</b>"), make_run("r2", z_offset=0.2, lr_initial=0.2)]
    table = compare_page.parameter_table_view(runs, differences_only=False)
    header = [th.children for th in table.children[0].children.children]
    assert header == ["", "parameter", "<b>one</b>", "r2"]  # text, never markup
    rows = {row.children[1].children: row for row in table.children[1].children}
    best = rows["best Z(signal) over K"]
    assert best.style == {"backgroundColor": compare_page.RESULT_ROW_COLOUR}
    assert best.children[3].style == compare_page.BEST_CELL_STYLE  # run r2 is better
    assert best.children[2].style is None
    assert rows["lr_initial"].style == compare_page.DIFFERS_STYLE
    assert rows["epochs"].style is None

    diff_only = compare_page.parameter_table_view(runs, differences_only=True)
    labels = [row.children[1].children for row in diff_only.children[1].children]
    assert "lr_initial" in labels and "epochs" not in labels and "best Z(signal) over K" in labels


def test_compare_view_opens_on_histories_with_the_other_panels_as_tabs(pages, store):
    _, compare_page = pages
    ids = [rf.store_finished_run(store, "bump_hunt", n_cats=(5, 8), name=f"run {seed}",
                                 seed=seed)[0] for seed in (1, 2)]
    found = components(compare_page.layout(runs=",".join(ids)))
    tabs = found["compare-tabs"]
    assert tabs.value == "histories"
    assert [t.value for t in tabs.children] == ["histories", "significance", "categories"]
    # every panel's figure is in the page already (drawn when its tab is picked)
    for graph in ("compare-history-graph", "compare-significance-graph",
                  "compare-categories-graph"):
        figure = found[graph].figure
        assert figure and figure["data"], graph
    maps = [t for t in found["compare-categories-graph"].figure["data"]
            if t["type"] == "heatmap"]
    assert len(maps) == 2 and maps[0]["z"].shape == (120, 120)


def test_compare_link_with_a_view_opens_that_view(pages, store):
    _, compare_page = pages
    ids = [rf.store_finished_run(store, "bump_hunt", n_cats=(5, 8), name=f"run {seed}",
                                 seed=seed)[0] for seed in (1, 2)]
    found = components(compare_page.layout(
        runs=",".join(ids), tab="categories", diff="1", k="5", log="1", smooth="0.5",
        x="fraction", ck="5"))
    assert found["compare-tabs"].value == "categories"
    assert found["compare-diff-only"].value is True
    table_rows = found["compare-table"].children.children[1].children
    full_rows = compare_page.parameter_table_view(
        compare_page.load_runs(store, ids)[0], differences_only=False).children[1].children
    assert len(table_rows) < len(full_rows)
    assert (found["compare-history-k"].value, found["compare-history-x"].value,
            found["compare-history-log"].value, found["compare-history-smoothing"].value,
            found["compare-categories-k"].value) == (5, "fraction", True, 0.5, 5)
    # the panels drawn with those settings, not the defaults
    from gato_dash.figures import compare as compare_figs

    runs = compare_page.load_runs(store, ids)[0]

    def same(a, b) -> bool:
        return json.dumps(a, cls=plotly.utils.PlotlyJSONEncoder) == \
            json.dumps(b, cls=plotly.utils.PlotlyJSONEncoder)

    history = found["compare-history-graph"].figure
    assert same(history, compare_figs.history_figure(runs, 5, log_y=True, smoothing=0.5,
                                                     x_mode="fraction"))
    assert not same(history, compare_figs.history_figure(runs, 8))
    categories = found["compare-categories-graph"].figure
    assert same(categories, compare_figs.category_figure(runs, 5))
    assert not same(categories, compare_figs.category_figure(runs, 8))

    # a link with values the controls cannot have: the default view, and a note why
    found = components(compare_page.layout(runs=",".join(ids), tab="nope", k="99"))
    assert found["compare-tabs"].value == "histories"
    assert found["compare-history-k"].value == 8
    warning = json.dumps(compare_page.layout(runs=",".join(ids), tab="nope", k="99"),
                         cls=plotly.utils.PlotlyJSONEncoder)
    assert "ignored tab='nope' in the link" in warning and "ignored k='99'" in warning


def test_reference_preset_is_the_reference_optimiser(pages):
    from gato_core.config import RunConfig

    new_run = sys.modules["gato_dash.pages.new_run"]
    reference = new_run.preset_values("bump_hunt", "reference")
    expected = RunConfig.preset("reference", "bump_hunt")
    assert reference["init"] == expected.init == "random"
    assert reference["n_starts"] == str(expected.n_starts) == "1"
    default = new_run.preset_values("bump_hunt", "default")
    assert default["n_starts"] == str(RunConfig.defaults("bump_hunt").n_starts)


def test_a_new_scenario_brings_its_quick_demo_from_gato_core(pages, monkeypatch):
    """#23: a scenario is added in gato_core.scenarios only; the New-run page takes its
    "Quick demo" preset from there (it used to need an entry in new_run.py too)."""
    from dataclasses import replace

    from gato_core import scenarios

    new_run = sys.modules["gato_dash.pages.new_run"]
    copy = replace(scenarios.SCENARIOS["one_d"], key="one_d_copy",
                   quick_demo={"epochs": 7, "n_cats": (4,), "n_signal": 1000},
                   preview_events=(1000, 3000))
    monkeypatch.setitem(scenarios.SCENARIOS, "one_d_copy", copy)
    values = new_run.preset_values("one_d_copy", "quick")
    assert (values["epochs"], values["n_cats"], values["n_signal"]) == ("7", "4", "1000")
    assert new_run.preset_values("one_d", "quick")["epochs"] == "80"


def test_the_navigation_bar_lists_the_registered_pages_in_their_order(tmp_path, monkeypatch):
    """#23: navigation comes from dash.page_registry, not from a hand-kept list: a page
    registered with an address and an order appears in the bar, a run's template does not."""
    from gato_dash.app import page_shell, create_app, navigation

    create_app(tmp_path / "data")
    monkeypatch.setitem(dash.page_registry, "extra", {
        "name": "Extra", "path": "/extra", "order": 3.5, "path_template": None})
    bar = navigation()
    assert [name for name, _, _ in bar] == ["Home", "New run", "Runs", "Compare", "Extra",
                                            "Datasets"]
    assert ("Compare", "/compare", "partial") in bar
    assert not any(href.startswith("/runs/") for _, href, _ in bar)
    layout = json.dumps(page_shell(), cls=plotly.utils.PlotlyJSONEncoder)
    assert '"href": "/extra"' in layout
