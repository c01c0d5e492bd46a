"""Issue #22 in the browser: a ROOT file with one tree per process, a meta tree and a
systematic-variation tree. Without a choice the import is refused with the engine's
message; then trees are ticked and named, a cut, a luminosity, scale factors and a
systematic are set, and the import summary's numbers are checked against numpy on the
same file. No training (fast)."""
from __future__ import annotations

import json

import pytest

from helpers.dataset_files import analysis_root
from test_own_events import pick

pytestmark = pytest.mark.browser

CUT = "nn_score > 0.2 & njets >= 1"
LUMINOSITY = 138.0
SCALES = {"signal": 0.031, "bkg": 1.05}


def by_id(kind: str, index: int) -> str:
    """The CSS selector of a pattern-matching component (Dash writes the id as JSON)."""
    return "[id='" + json.dumps({"index": index, "type": kind}, separators=(",", ":")) + "']"


def number(text: str) -> float:
    return float(text.replace(",", "").strip())


def test_choose_trees_scale_cut_and_systematics_of_a_root_file(server, page, tmp_path):
    arrays = analysis_root(tmp_path / "analysis.root", seed=11, signal_events=3000,
                           background_events=12000)
    page.goto(server.url + "/datasets")
    page.set_input_files("#datasets-upload", str(tmp_path / "analysis.root"))
    page.wait_for_selector("#datasets-trees-table", timeout=30_000)
    table = page.inner_text("#datasets-trees-table")
    for tree, entries in (("signal", "3000"), ("bkg", "12,000"), ("bkg_JESup", "12,000"),
                          ("meta", "1")):
        assert tree in table and entries in table
    names = [page.locator(by_id("datasets-tree-process", i)).input_value() for i in range(4)]
    assert names == ["signal", "bkg", "bkg_JESup", "meta"]  # default: the tree's name

    pick(page, "datasets-scores", "nn_score")
    pick(page, "datasets-weight", "w")
    try:
        page.wait_for_selector(by_id("datasets-tree-columns", 3) + " :text('missing nn_score')")
    except Exception:
        raise AssertionError("the meta tree is not marked: "
                             + page.inner_text("#datasets-trees-table")) from None
    assert page.inner_text(by_id("datasets-tree-columns", 0)) == "all"

    # no tree chosen: the engine refuses the file because of the variation tree
    pick(page, "datasets-signals", "signal")
    page.click("#datasets-import")
    problem = page.wait_for_selector("#datasets-problem", timeout=60_000).inner_text()
    assert "bkg_JESup" in problem and "systematic variation" in problem

    page.check(by_id("datasets-tree-use", 0))
    page.check(by_id("datasets-tree-use", 1))
    for index, process in ((0, "hh"), (1, "ttbar")):
        box = page.locator(by_id("datasets-tree-process", index))
        box.fill(process)
        box.press("Enter")
    pick(page, "datasets-signals", "hh")

    page.fill("#datasets-selection", "nn_scroe > 0.2")  # misspelt: the engine names it
    page.wait_for_selector("#datasets-selection-feedback:text('nn_scroe')")
    page.fill("#datasets-selection", CUT)
    page.wait_for_selector("#datasets-selection:not(.is-invalid)")
    page.fill("#datasets-luminosity", f"{LUMINOSITY:g}")
    page.fill("#datasets-scales", f"hh={SCALES['signal']} ttbar={SCALES['bkg']}")
    page.fill("#datasets-systematics", "lumi:*=0.016 xs_tt:ttbar=0.05")
    page.fill("#datasets-name", "analysis")
    page.click("#datasets-import")
    page.wait_for_selector("#datasets-imported", timeout=60_000)
    page.wait_for_selector("#datasets-table :text('analysis')")
    # text_content: the summary may be under the loading overlay of a later callback
    text = page.text_content("#datasets-imported")

    kept_events, read_events, kept_weight = 0, 0, 0.0
    after = {}
    for tree, process in (("signal", "hh"), ("bkg", "ttbar")):
        a = arrays[tree]
        keep = (a["nn_score"] > 0.2) & (a["njets"] >= 1)
        read_events += keep.size
        kept_events += int(keep.sum())
        kept_weight += float(a["w"][keep].sum())
        after[process] = float(a["w"][keep].sum()) * LUMINOSITY * SCALES[tree]
    assert number(page.text_content("#datasets-cut-events-kept")) == kept_events
    assert f"of {read_events:,} events" in page.text_content("#datasets-imported-selection")
    assert number(page.text_content("#datasets-cut-weight-kept")) == pytest.approx(kept_weight,
                                                                                 rel=1e-3)
    rows = page.locator("#datasets-imported-scaling tbody tr")
    shown = {}
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td").all_text_contents()
        shown[cells[0]] = (number(cells[1]), number(cells[3]))
    assert set(shown) == {"hh", "ttbar"}
    for tree, process in (("signal", "hh"), ("bkg", "ttbar")):
        factor, yield_after = shown[process]
        assert factor == pytest.approx(SCALES[tree], rel=1e-3)  # the luminosity is said above
        assert yield_after == pytest.approx(after[process], rel=1e-3)
    assert "xs_tt" in page.text_content("#datasets-imported-systematics")
    assert "not imported (not chosen): bkg_JESup, meta" in text
