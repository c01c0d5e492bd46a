"""The standalone HTML report: self-contained, complete, and safe with user-typed text."""
from __future__ import annotations

import re

import plotly.offline
import pytest

from helpers import records as rf
from gato_dash.report import build_report, offline_plotlyjs, report_figures

EVIL_NAME = "<script>alert(1)</script>"
EVIL_NOTE = 'see <img src=x onerror="alert(2)"> & "quotes"'


@pytest.fixture(scope="module")
def bump_report():
    run, epochs, results = rf.run_record("bump_hunt", n_cats=(5, 8), name=EVIL_NAME,
                                         note=EVIL_NOTE)
    run["tags"] = ["<i>tag</i>"]
    run["message"] = "<b>msg</b>"
    return run, epochs, results, build_report(run, epochs, results)


@pytest.fixture(scope="module")
def one_d_report():
    run, epochs, results = rf.run_record("one_d", n_cats=(5, 10), epochs=60)
    return run, epochs, results, build_report(run, epochs, results)


def split_library(document: str) -> tuple[str, str]:
    """(the inlined plotly.js, everything else) — plotly.js must appear exactly once."""
    library = offline_plotlyjs()
    assert len(library) > 1_000_000  # the real bundle, not a stub
    assert document.count(library) == 1
    return library, document.replace(library, "")


def test_plotly_js_inlined_once_and_nothing_loaded_from_outside(bump_report):
    *_, document = bump_report
    _, rest = split_library(document)
    # No script/link/img may point anywhere: every script is inline, no stylesheets.
    assert not re.search(r"<script[^>]*\bsrc\s*=", rest, re.I)
    assert not re.search(r"<link\b", rest, re.I)
    assert not re.search(r"""\b(src|href)\s*=\s*["']?\s*(https?:)?//""", document, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", document, re.I)
    assert "@import" not in rest
    # Not a single URL anywhere, plotly.js included (its unused map-tile and licence
    # strings are written with "\/" escapes; see report.offline_plotlyjs).
    assert "http://" not in document and "https://" not in document
    assert not re.search(r"\b(ftp|wss?|file)://", document)
    assert '"displaylogo": false' in rest  # no plotly.com link in the mode bar


def test_report_inlines_the_cartesian_plotlyjs(bump_report, one_d_report):
    """The app's cartesian bundle, not plotly's full one: a bump-hunt report was 6.9 MB
    with the full bundle and is ~3.5 MB now."""
    from gato_dash import plotlyjs

    library, _ = split_library(bump_report[-1])
    assert library == plotlyjs.cartesian_bundle().replace("://", ":\\/\\/")
    assert len(library) < len(plotly.offline.get_plotlyjs()) / 2
    assert len(bump_report[-1].encode()) < 4_500_000
    assert len(one_d_report[-1].encode()) < 2_500_000


def test_every_figure_is_in_the_report(bump_report):
    run, epochs, results, document = bump_report
    expected = report_figures(run, epochs, results)
    keys = [key for key, _, _ in expected]
    assert len(keys) == len(set(keys))
    assert keys[:2] == ["significance_comparison", "inclusive_mass"]
    for k in (5, 8):
        for name in ("category_map", "components", "mass_spectra", "category_statistics",
                     "bias_history"):
            assert f"{name}-k{k}" in keys
    for key in keys:
        assert f'id="fig-{key}"' in document
    assert document.count("Plotly.newPlot(") == len(keys)
    # The animations carry their frames (41 snapshots per K) and do not autoplay.
    assert document.count("Plotly.addFrames(") == 2
    assert "Plotly.animate(" not in document


def test_user_text_is_escaped(bump_report):
    *_, document = bump_report
    assert EVIL_NAME not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    assert "<img src=x" not in document
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt; &amp; &quot;quotes&quot;" in document
    assert "<i>tag</i>" not in document and "&lt;i&gt;tag&lt;/i&gt;" in document
    assert "<b>msg</b>" not in document
    # The name is the page title and heading, as text.
    assert "<title>GATO report: &lt;script&gt;" in document
    assert "<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>" in document
    # The only <script> tags are plotly.js and the figure scripts.
    _, rest = split_library(document)
    assert rest.count("<script") == 1 + document.count("Plotly.newPlot(")


def test_significance_and_config_tables(bump_report):
    run, _, results, document = bump_report
    for key in run["config"]:
        assert f"<td class='text'>{key}</td>" in document
    sig_table = document.split("<h2>Significance</h2>", 1)[1].split("</table>", 1)[0]
    assert sig_table.count("<tr>") == 1 + 5  # header + 3 baselines + 2 trained K
    assert f"{results[1]['significance']['signal1']:.4g}" in sig_table
    assert "baseline (argmax + equidistant)" in sig_table


def test_one_d_report(one_d_report):
    run, epochs, results, document = one_d_report
    keys = [key for key, _, _ in report_figures(run, epochs, results)]
    assert "inclusive_mass" not in keys and "category_map-k5" not in keys
    assert {"boundary_history-k5", "stacked_histogram-k10", "components-k10"} <= set(keys)
    assert document.count("Plotly.newPlot(") == len(keys)
    assert "exact optimum" in document
    _, rest = split_library(document)
    assert "http://" not in rest and "https://" not in rest


def test_store_timestamps_are_readable(bump_report):
    run, epochs, results, _ = bump_report
    document = build_report(dict(run, created=1_795_000_000.0, finished=None), epochs[:0],
                            results)
    assert re.search(r"created \d{4}-\d\d-\d\d \d\d:\d\d:\d\d · finished –", document)


def test_report_without_results_or_run_info_still_renders():
    run, _, _ = rf.run_record("bump_hunt", n_cats=(5,), epochs=20)
    run = dict(run, run_info=None)
    document = build_report(run, [], [])
    assert document.startswith("<!doctype html>") and document.rstrip().endswith("</html>")
    # one figure (the significance panel, saying why it is empty), empty tables
    assert document.count("Plotly.newPlot(") == 1
    assert "No significance values yet." in document
    assert document.count("<p class='meta'>none</p>") == 2  # significance, trained K



def test_the_report_says_which_sample_its_statistical_model_is_on():
    """#22: every Z names its sample; the report's statistical model is on the training one."""
    run, epochs, results = rf.run_record("one_d", n_cats=(5,), epochs=20)
    results[0]["statistical_model"] = {
        "signals": ["signal"], "asimov_z": {"signal": 1.61}, "pyhf_z": {"signal": 1.6},
        "pyhf_z_mc_stat": {"signal": 1.5}, "flags": []}
    document = build_report(run, epochs, results)
    headings = re.findall(r"<th[^>]*>([^<]*)</th>", document)
    assert {"Asimov Z, training", "pyhf Z, training (no MC stat)",
            "pyhf Z, training (MC stat)"} <= set(headings), headings
    assert "1.61" in document
