"""Issue #22's web UI bugs as a physicist meets them, with events from a ROOT file of one
TTree per process written by uproot: the import summary's weighted yields, the datasets
table's headings, the New-run form's dataset choice, and a finished run's page saying which
sample each significance is measured on."""
from __future__ import annotations

import re

import numpy as np
import pytest

from gato_core import datasets as catalogue
from gato_core.readers import Source
from gato_dash import formatting

from test_own_events import pick

pytestmark = pytest.mark.browser

#: process -> (events, score distribution's Beta parameters, weight per event)
PROCESSES = {"ggH": (1500, (5.0, 2.0), 0.004), "gjet": (3000, (2.0, 5.0), 0.9),
             "diphoton": (2500, (2.0, 3.0), 0.5)}


def write_root(path, seed: int) -> dict[str, float]:
    """A ROOT file with one TTree per process (score and weight branches, 2 % negative
    weights in the backgrounds, as generators give them); returns each process's sum of
    weights, computed here with numpy."""
    import uproot

    rng = np.random.default_rng(seed)
    sums = {}
    with uproot.recreate(path) as out:
        for name, (n, (a, b), weight) in PROCESSES.items():
            score = rng.beta(a, b, n)
            weights = np.full(n, weight) * rng.uniform(0.8, 1.2, n)
            if name != "ggH":
                weights[rng.random(n) < 0.02] *= -1
            tree = out.mktree(name, {"nn_score": "float64", "weight": "float64"})
            tree.extend({"nn_score": score, "weight": weights})
            sums[name] = float(weights.sum())
    return sums


def import_directly(server, path, name: str) -> str:
    """Import ``path`` into the server's datasets folder with the engine (what the page's
    Import button calls); returns the dataset id."""
    manifest = catalogue.import_dataset(
        [Source(str(path))], {"score_columns": ["nn_score"], "weight_column": "weight",
                              "signals": ["ggH"]},
        catalogue.datasets_folder(server.data_dir), name=name)
    return manifest.id


HEADINGS_SPLIT_INSIDE_A_WORD = """(selector) => {
    // every word of every heading: a word laid out on two lines was split inside it
    const split = [];
    for (const th of document.querySelectorAll(selector)) {
        const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
            const node = walker.currentNode;
            for (const m of node.textContent.matchAll(/\\S+/g)) {
                const range = document.createRange();
                range.setStart(node, m.index);
                range.setEnd(node, m.index + m[0].length);
                const lines = new Set(Array.from(range.getClientRects(),
                                                 r => Math.round(r.top)));
                if (lines.size > 1) split.push(m[0]);
            }
        }
    }
    return split;
}"""


WATCH_SUMMARY_VISIBILITY = """() => {
    // counts animation frames in which the import summary exists but is not visible
    window.summaryHidden = 0;
    const watch = () => {
        const summary = document.querySelector('#datasets-imported-yields');
        if (summary && !summary.checkVisibility({visibilityProperty: true})) {
            window.summaryHidden += 1;
        }
        requestAnimationFrame(watch);
    };
    requestAnimationFrame(watch);
}"""


def test_root_import_shows_weighted_yields_and_headings_keep_their_words(server, page,
                                                                          tmp_path):
    sums = write_root(tmp_path / "ntuple.root", seed=11)
    page.goto(server.url + "/datasets")
    page.set_input_files("#datasets-upload", str(tmp_path / "ntuple.root"))
    page.wait_for_selector("#datasets-source-list :text('ntuple.root')")
    page.wait_for_selector("#datasets-preview-tables :text('1,500 rows')", timeout=30_000)
    pick(page, "datasets-scores", "nn_score")
    pick(page, "datasets-weight", "weight")
    pick(page, "datasets-signals", "ggH")
    page.fill("#datasets-name", "root ntuple")
    page.evaluate(WATCH_SUMMARY_VISIBILITY)
    page.click("#datasets-import")
    page.wait_for_selector("#datasets-imported", timeout=60_000)
    # the summary stays readable while the page settles (the source list empties and
    # its editor runs): a Loading wrapper once hid it for that quick callback
    page.wait_for_timeout(1_500)  # deliberate: watch the settling, there is no event for it
    hidden = page.evaluate("() => window.summaryHidden")
    assert hidden == 0, f"the import summary was hidden in {hidden} frames after it appeared"

    # the summary: events and weighted yield per process, as numpy sums them
    cells = page.evaluate("""() => Array.from(
        document.querySelectorAll('#datasets-imported-yields tbody tr'),
        row => Array.from(row.cells, cell => cell.textContent.trim()))""")
    shown = {name: rest for name, *rest in cells}
    assert set(shown) == set(PROCESSES)
    for name, (n, _, _) in PROCESSES.items():
        role, events, weighted = shown[name]
        assert role == ("signal" if name == "ggH" else "background")
        assert events == formatting.number(n)
        assert float(weighted) == pytest.approx(sums[name], rel=1e-3), name
    assert "weighted yield" in page.inner_text("#datasets-imported-yields thead")

    # the stored datasets' headings wrap between words only, also in a narrow window
    page.wait_for_selector("#datasets-table :text('root ntuple')")
    for width in (1400, 900, 640):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_function("width => window.innerWidth === width", arg=width)
        split = page.evaluate(HEADINGS_SPLIT_INSIDE_A_WORD, "#datasets-table th")
        assert split == [], f"headings split inside a word at {width} px: {split}"
    wrap = page.evaluate("getComputedStyle(document.querySelector('#datasets-table th'))"
                         ".overflowWrap")
    assert wrap != "anywhere"


def test_new_run_on_your_dataset_preselects_one_without_an_error(server, page, tmp_path):
    write_root(tmp_path / "older.root", seed=21)
    write_root(tmp_path / "newer.root", seed=22)
    older = import_directly(server, tmp_path / "older.root", "older ntuple")
    newer = import_directly(server, tmp_path / "newer.root", "newer ntuple")
    select = "[id='{\"name\":\"dataset\",\"type\":\"cfg\"}']"

    def settled():
        page.wait_for_selector("#new-run-button:not([disabled])", timeout=20_000)
        assert page.locator(".is-invalid").count() == 0
        assert page.locator("#new-problems .alert").count() == 0

    # a link without a dataset: the newest is picked, the form is valid on first render
    page.goto(server.url + "/new?scenario=dataset")
    settled()
    assert page.locator(select).input_value() == newer
    page.wait_for_function("() => location.search.includes('dataset=" + newer + "')")

    # a link naming one: that one
    page.goto(f"{server.url}/new?scenario=dataset&dataset={older}")
    settled()
    assert page.locator(select).input_value() == older

    # from a toy scenario, switching to "Your dataset"
    page.goto(server.url + "/new")
    page.wait_for_selector("#new-run-button:not([disabled])")
    page.locator("#new-scenario label:text-is('Your dataset')").click()
    page.wait_for_function(
        "(sel) => document.querySelector(sel).value === '" + newer + "'", arg=select)
    settled()


def _plot(page, selector: str, expression: str):
    return page.evaluate(
        f"(sel) => {{ const gd = document.querySelector(sel).querySelector('.js-plotly-plot');"
        f" return {expression}; }}", selector)


def test_a_finished_run_says_which_sample_each_z_is_on(server, page, tmp_path, wait_status):
    write_root(tmp_path / "run.root", seed=31)
    dataset = import_directly(server, tmp_path / "run.root", "run ntuple")
    run_id = server.store().create_run(
        {"scenario": "dataset", "dataset": dataset, "held_out_fraction": 0.3, "epochs": 30,
         "n_cats": [3], "snapshot_interval": 10}, name="which sample")
    page.goto(f"{server.url}/runs/{run_id}")
    wait_status(server, run_id, "finished", timeout_s=180)
    (result,) = server.store().results(run_id)
    training = formatting.z_value(result["significance"]["ggH"])
    held_out = formatting.z_value(result["heldout_significance"]["ggH"])

    # the live page fills the headline as the K finishes; a fresh page draws it at once
    page.wait_for_selector("#run-headline:has-text('training sample')", timeout=30_000)
    page.goto(f"{server.url}/runs/{run_id}")
    assert page.inner_text("#run-headline") == (
        f"K = 3 · Z(ggH) {training} on the training sample, {held_out} on the held-out "
        "30 % of the dataset")

    # the baselines tab: figure traces and table rows name their sample
    page.click("#results-tabs >> text=Baselines")
    page.wait_for_function(
        "() => { const gd = document.querySelector('#results-significance .js-plotly-plot');"
        " return gd && gd.data && gd.data.length > 0; }", timeout=30_000)
    names = _plot(page, "#results-significance", "gd.data.map(t => t.name)")
    gato = [n for n in names if n.startswith("GATO")]
    assert gato == ["GATO on the training sample", "GATO on the held-out 30 % of the dataset"]
    methods = page.locator("#results-significance-table tbody tr td:first-child").all_inner_texts()
    assert "GATO (training sample)" in methods
    assert "GATO on the held-out 30 % of the dataset" in methods

    # the category numbers: per-category Z and the statistical model say "training"
    page.click("#results-tabs >> text=Category numbers")
    page.wait_for_selector("#results-statmodel")
    headings = page.locator("#results-category-table th").all_inner_texts()
    z_headings = [h for h in headings if re.match(r"Z\b|Asimov Z|pyhf Z", h)]
    assert z_headings and all("training" in h for h in z_headings), z_headings
    assert "training sample" in page.inner_text("#results-statmodel h5")

    # the training history: its Z is the training sample's; the learning-rate axis labels
    # are inside the figure, not cut off at its left edge
    page.click("#results-tabs >> text=Training history")
    page.wait_for_function(
        "() => { const gd = document.querySelector('#run-fig-lr .js-plotly-plot');"
        " return gd && gd.querySelectorAll('.ytick text').length > 0; }", timeout=30_000)
    assert "training sample" in _plot(page, "#run-fig-significance", "gd.layout.title.text")
    cut = page.evaluate("""() => {
        const svg = document.querySelector('#run-fig-lr .main-svg').getBoundingClientRect();
        const labels = document.querySelectorAll('#run-fig-lr .ytick text, #run-fig-lr .ytitle');
        return Array.from(labels).filter(t => {
            const box = t.getBoundingClientRect();
            return box.left < svg.left - 0.5 || box.right > svg.right + 0.5;
        }).map(t => t.textContent);
    }""")
    assert cut == [], f"learning-rate labels cut off: {cut}"
