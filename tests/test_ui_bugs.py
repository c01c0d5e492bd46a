"""Issue #22's web UI bugs, checked on the objects the pages are built from: the training
curves' axes, the process colours, byte sizes and the score-column choices."""
from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gato_dash import formatting, runtime
from gato_dash.app import create_app
from gato_dash.figures import history
from gato_dash.figures.spectra import category_mass_spectra, stacked_histogram_1d

REPO = Path(__file__).resolve().parents[1]


# ----- CIELAB colour distance, written out here (not the app's code) -----------------------
def _lab(colour: str) -> tuple[float, float, float]:
    """sRGB "#rrggbb" or "rgb(r, g, b)" -> CIELAB (D65), the textbook formulas."""
    if colour.startswith("rgb"):
        rgb = [int(v) / 255 for v in colour[colour.index("(") + 1:-1].split(",")]
    else:
        rgb = [int(colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = [u / 12.92 if u <= 0.04045 else ((u + 0.055) / 1.055) ** 2.4 for u in rgb]
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t):
        return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def delta_e(a: str, b: str) -> float:
    """CIE76 colour difference: about 2 is just noticeable, above 20 clearly different."""
    return float(np.linalg.norm(np.subtract(_lab(a), _lab(b))))


def test_delta_e_helper_on_known_pairs():
    assert delta_e("#ffffff", "#000000") == pytest.approx(100, abs=0.1)
    assert delta_e("#d62728", "#d62728") == 0


# ----- 1. learning-rate axis labels --------------------------------------------------------
def _epochs(n=40):
    return [{"epoch": i, "learning_rate": 2e-3 * 0.9 ** i, "loss": -1.0 - i / n,
             "total_loss": -1.0, "penalty_yield": 0.0, "penalty_unc": 0.0,
             "significance": {"signal": 1.0 + i / n}, "temperature": 1.0 / (1 + i)}
            for i in range(n)]


@pytest.mark.parametrize("kind", history.FIGURES)
def test_history_axes_make_room_for_their_tick_labels(kind):
    """Fixed margins cut off wide tick labels (the learning rate's "0.0005"): every y axis
    must grow the margin to fit its labels."""
    fig = history.history_figure(kind, _epochs(), ["signal"], total_epochs=40, n_cats=3)
    layout = fig.layout.to_plotly_json()
    axes = [name for name in ("yaxis", "yaxis2") if name in layout]
    assert "yaxis" in axes
    for name in axes:
        assert layout[name].get("automargin") is True, f"{kind}: {name} keeps a fixed margin"


def test_learning_rate_ticks_are_powers_of_ten():
    fig = history.history_figure("lr", _epochs(), ["signal"])
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.yaxis.exponentformat == "power"


# ----- 3. one colour map, clearly distinct colours ------------------------------------------
def test_palettes_are_clearly_distinct_from_each_other():
    from gato_dash.figures.colours import BACKGROUND_COLOURS, SIGNAL_COLOURS

    every = list(SIGNAL_COLOURS) + list(BACKGROUND_COLOURS)
    worst = min(itertools.combinations(every, 2), key=lambda pair: delta_e(*pair))
    assert delta_e(*worst) > 20, worst


@pytest.mark.parametrize("processes, signals", [
    (["ggH", "VBF", "ttH_bkg", "diphoton", "gjet"], ["ggH", "VBF"]),  # a dataset's names
    (["signal1", "signal2", "bkg1", "bkg2", "bkg3"], ["signal1", "signal2"]),  # a toy's
    (["sig", "b1", "b2", "b3", "b4", "b5", "b6", "b7"], ["sig"]),
])
def test_processes_drawn_together_have_clearly_distinct_colours(processes, signals):
    from gato_dash.figures.colours import process_colours

    colours = process_colours(processes, signals)
    assert set(colours) == set(processes)
    for a, b in itertools.combinations(processes, 2):
        assert delta_e(colours[a], colours[b]) > 20, (a, colours[a], b, colours[b])


def test_two_signals_of_a_dataset_are_drawn_in_distinct_colours_in_the_spectra():
    """The bug: signals without a colour of their own all took the first fallback colour
    (a teal) in the histogram and the mass spectra."""
    cats = [{"range": [i / 3, (i + 1) / 3],
             "process_yields": {"ggH": 1.0 + i, "VBF": 0.5 + i, "gjet": 10.0}}
            for i in range(3)]
    fig = stacked_histogram_1d({"n_cats": 3, "categories": cats},
                               {"signal_names": ["ggH", "VBF"]})
    lines = {t.name.split(" x ")[0]: t.line.color for t in fig.data if t.type == "scatter"}
    assert set(lines) == {"ggH", "VBF"}
    assert delta_e(lines["ggH"], lines["VBF"]) > 20

    edges = list(np.linspace(100, 180, 9))
    counts = {p: [1.0] * 8 for p in ("ggH", "VBF", "gjet", "diphoton")}
    mass = {"n_cats": 1, "signal_names": ["ggH", "VBF"], "mass_histograms": {
        "edges": edges, "processes": list(counts), "signals": ["ggH", "VBF"],
        "window": [120, 130], "counts": [[counts[p] for p in counts]], "fits": [None]}}
    fig = category_mass_spectra(mass)
    colours = {t.legendgroup: t.line.color for t in fig.data if t.legendgroup in counts}
    assert len(colours) == 4
    for a, b in itertools.combinations(colours, 2):
        assert delta_e(colours[a], colours[b]) > 20, (a, b)


def test_a_signal_has_the_same_colour_in_the_history_and_the_results():
    from gato_dash.figures.colours import process_colours

    colours = process_colours(["gjet", "ggH", "VBF"], ["ggH", "VBF"])
    fig = history.history_figure("significance", _epochs(), ["ggH", "VBF"])
    by_name = {t.name: t.line.color for t in fig.data}
    assert by_name["Z ggH (soft)"] == colours["ggH"]
    assert by_name["Z VBF (soft)"] == colours["VBF"]


# ----- 4. byte sizes in GiB, one formatter --------------------------------------------------
def test_byte_sizes_are_binary_units():
    assert formatting.byte_size(4 * 1024 ** 3) == "4 GiB"
    assert formatting.byte_size(int(1.5 * 1024 ** 3)) == "1.5 GiB"
    assert formatting.byte_size(512 * 1024 ** 2) == "512 MiB"
    assert formatting.byte_size(1023 * 1024 ** 2) == "1023 MiB"
    assert formatting.byte_size(2048) == "2 KiB"
    assert formatting.byte_size(730) == "730 bytes"
    assert formatting.byte_size(int(4.3e9), 4) == "4.005 GiB"
    for absent in (None, -1, float("nan"), "4"):
        assert formatting.byte_size(absent) == formatting.MISSING


def test_the_upload_limit_reads_the_same_on_the_page_the_flag_and_the_readme(tmp_path):
    create_app(tmp_path / "data", runtime.Settings(max_upload_bytes=4 * 1024 ** 3))
    page = sys.modules["gato_dash.pages.datasets"]
    text = str(page.layout())
    assert "files up to 4 GiB" in text
    assert "GB" not in text.replace("GiB", "")

    usage = subprocess.run([sys.executable, str(REPO / "app.py"), "--help"], cwd=REPO,
                           capture_output=True, text=True, timeout=60).stdout
    assert "--max-upload-gib" in usage and "default 4 GiB" in " ".join(usage.split())
    readme = (REPO / "README.md").read_text()
    assert "`--max-upload-gib` GiB" in readme and "default 4 GiB" in readme


def test_a_server_path_over_the_limit_is_refused_in_gib(tmp_path):
    from gato_core.readers import DatasetError

    create_app(tmp_path / "data", runtime.Settings(allow_server_paths=True,
                                                   max_upload_bytes=1024 ** 2))
    page = sys.modules["gato_dash.pages.datasets"]
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * (1024 ** 2 + 300 * 1024))
    with pytest.raises(DatasetError, match=r"has 1\.293 MiB; this server takes files up to "
                                           r"1 MiB \(--max-upload-gib\)"):
        page.resolve_sources([{"kind": "path", "path": str(big)}])


# ----- 5. a text score column is shown, greyed out, with a hint -----------------------------
def test_a_text_column_is_offered_disabled_with_a_hint(tmp_path):
    create_app(tmp_path / "data", runtime.Settings(allow_server_paths=True))
    page = sys.modules["gato_dash.pages.datasets"]
    path = tmp_path / "scores.parquet"
    pq.write_table(pa.table({"nn_score": ["0.1", "0.7", "n/a"], "mass": [120.0, 125.0, 130.0],
                             "process": ["ggH", "gjet", "gjet"]}), path)
    out = page.inspect([{"kind": "path", "path": str(path), "process": ""}])
    _preview, _keep, style, scores, weight, mass, process, hint = out
    assert style == {}
    by_value = {o["value"]: o for o in scores}
    assert by_value["mass"].get("disabled") is not True
    assert by_value["nn_score"]["disabled"] is True
    assert "text" in by_value["nn_score"]["label"]
    assert scores == weight == mass
    assert "nn_score (text)" in hint and "not a number" in hint
    assert [o["value"] for o in process] == ["nn_score", "mass", "process"]


def test_no_hint_when_every_column_is_a_number(tmp_path):
    create_app(tmp_path / "data", runtime.Settings(allow_server_paths=True))
    page = sys.modules["gato_dash.pages.datasets"]
    path = tmp_path / "scores.parquet"
    pq.write_table(pa.table({"score": [0.1, 0.2], "weight": [1.0, 1.0]}), path)
    *_, hint = page.inspect([{"kind": "path", "path": str(path), "process": "ggH"}])
    assert hint is None


# ----- 6. "Your dataset" starts on a stored dataset -----------------------------------------
def _import_toy(data_dir, name: str, seed: int) -> str:
    from gato_core import datasets as catalogue
    from gato_core.readers import Source

    rng = np.random.default_rng(seed)
    path = data_dir / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"score": rng.random(400),
                             "process": np.where(rng.random(400) < 0.3, "sig", "bkg")}), path)
    return catalogue.import_dataset([Source(str(path))], {
        "score_columns": ["score"], "process_column": "process", "signals": ["sig"]},
        catalogue.datasets_folder(data_dir), name=name).id


def test_a_dataset_run_starts_on_the_newest_or_the_named_dataset(tmp_path):
    data_dir = tmp_path / "data"
    create_app(data_dir, runtime.Settings())
    page = sys.modules["gato_dash.pages.new_run"]

    # none stored yet: the form says what to do, not that an id is malformed
    _scenario, values, _name, _notices = page.values_from_query({"scenario": "dataset"})
    assert values["dataset"] == ""
    assert page.validate("dataset", values)[1] == {"dataset": page.NO_DATASET_YET}

    older = _import_toy(data_dir, "older", 1)
    newer = _import_toy(data_dir, "newer", 2)
    _scenario, values, _name, _notices = page.values_from_query({"scenario": "dataset"})
    assert values["dataset"] == newer
    config, problems = page.validate("dataset", values)
    assert problems == {} and config.dataset == newer
    _scenario, values, _name, _notices = page.values_from_query(
        {"scenario": "dataset", "dataset": older})
    assert values["dataset"] == older
    # a link naming a dataset that is not here keeps it, and says so
    _scenario, values, _name, _notices = page.values_from_query(
        {"scenario": "dataset", "dataset": "gone"})
    assert values["dataset"] == "gone"
    assert "no such dataset" in page.validate("dataset", values)[1]["dataset"]
    # a toy scenario is left alone
    assert page.values_from_query({"scenario": "one_d"})[1]["dataset"] == ""


# ----- 7. every Z says which sample it is on -------------------------------------------------
SPLIT = {"signal_names": ["ggH"], "held_out": {"kind": "split", "fraction": 0.3}}


def _result(k, z, held, status="finished"):
    return {"n_cats": k, "status": status, "significance": {"ggH": z}, "objective": z,
            "heldout_significance": {"ggH": held} if held is not None else None}


def test_the_headline_names_the_sample_of_each_z():
    from gato_dash import run_summary

    results = [_result(3, 1.2345, 1.1), _result(5, 1.5, 1.4449), _result(8, 9.9, 9.9,
                                                                          "cancelled")]
    assert run_summary.headline(results, SPLIT) == (
        "K = 5 · Z(ggH) 1.500 on the training sample, 1.445 on the held-out 30 % of the "
        "dataset")
    toy = {"signal_names": ["signal1", "signal2"], "held_out": {"kind": "independent"}}
    two = [{"n_cats": 3, "status": "finished", "significance": {"signal1": 1.0, "signal2": 2.0},
            "heldout_significance": {"signal1": 0.9, "signal2": 1.9}}]
    assert run_summary.headline(two, toy) == (
        "K = 3 · Z(signal1) 1.000 on the training sample, 0.900 on the held-out independent "
        "sample · Z(signal2) 2.000 on the training sample, 1.900 on the held-out independent "
        "sample")
    assert run_summary.headline([_result(3, 1.2, None)], {"signal_names": ["ggH"]}) == \
        "K = 3 · Z(ggH) 1.200 on the training sample"
    assert run_summary.headline([_result(3, 1.2, 1.0, "cancelled")], SPLIT) is None
    assert run_summary.headline([], SPLIT) is None


def test_results_labels_say_training_or_held_out():
    from gato_dash.figures.baselines import significance_comparison, significance_table_rows

    results = [_result(3, 1.2, 1.1)]
    methods = [r["method"] for r in significance_table_rows(SPLIT, results)]
    assert methods == ["GATO (training sample)", "GATO on the held-out 30 % of the dataset"]
    names = [t.name for t in significance_comparison(SPLIT, results).data]
    assert names == ["GATO on the training sample", "GATO on the held-out 30 % of the dataset"]
    fig = history.history_figure("significance", _epochs(), ["signal"], n_cats=3)
    assert "training sample" in fig.layout.title.text


def _texts_of(component, type_name: str) -> list[str]:
    """The text children of every ``type_name`` component inside ``component``."""
    found = []
    if isinstance(component, (list, tuple)):
        for child in component:
            found += _texts_of(child, type_name)
        return found
    children = getattr(component, "children", None)
    if type(component).__name__ == type_name and isinstance(children, str):
        found.append(children)
    if children is not None and not isinstance(children, str):
        found += _texts_of(children, type_name)
    return found


def test_the_category_table_headings_say_training():
    from gato_dash import results_section

    result = {"n_cats": 2, "categories": [
        {"signal": {"ggH": 1.0}, "background": 4.0, "rel_unc": 0.1, "z": {"ggH": 0.5}},
        {"signal": {"ggH": 2.0}, "background": 9.0, "rel_unc": 0.1, "z": {"ggH": 0.6}}],
        "statistical_model": {"signals": ["ggH"], "asimov_z": {"ggH": 0.78},
                              "pyhf_z": {"ggH": 0.78}, "pyhf_z_mc_stat": {"ggH": 0.7},
                              "flags": [], "thresholds": {}}}
    numbers = results_section._numbers(result)
    text = str(numbers)
    headings = _texts_of(numbers, "Th")
    z_headings = [h for h in headings if "Z" in h]
    assert len(z_headings) == 4 and all("training" in h for h in z_headings), headings
    assert "Statistical model (training sample)" in text


def test_the_import_summary_lists_weighted_yields(tmp_path):
    # a page module registers itself with the app, so one must exist (alone, this test
    # would otherwise meet dash's PageError: the importorskip here never skipped for that)
    from gato_dash.app import create_app

    create_app(tmp_path)
    from gato_dash.pages import datasets as page_module

    table = page_module.process_yields_table({
        "ggH": {"events": 1500, "weight_sum": 6.0123, "signal": True},
        "gjet": {"events": 30000, "weight_sum": 2701.5, "signal": False}})
    text = str(table)
    assert "weighted yield" in text
    assert "'ggH'" in text and "'signal'" in text and "'1500'" in text and "'6.012'" in text
    assert "'gjet'" in text and "'background'" in text and "'30,000'" in text
    assert "'2702'" in text


def test_the_compare_view_says_its_z_is_the_training_samples():
    from gato_dash.comparison.loading import ComparedRun
    from gato_dash.figures.compare import significance_vs_categories_figure

    run = {"id": "r1", "name": "one", "scenario": "one_d", "status": "finished",
           "config": {"scenario": "one_d"}, "run_info": SPLIT}
    figure = significance_vs_categories_figure(
        [ComparedRun(run=run, results=[_result(3, 1.2, 1.1)], histories={}, dim=1,
                     named_signals=["signal"])])
    assert "training sample" in figure["layout"]["yaxis"]["title"]["text"]
