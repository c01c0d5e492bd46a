"""Runs table and compare view in headless Chromium, against a real `python app.py`.

Three quick runs are trained with the real engine through the same job function the app
uses (in this test process, to save the clicks), then everything else goes through the UI:
select them in the runs table, compare, reload the compare URL in a fresh browser profile,
toggle differences-only, find the view in the URL (and again from it), export CSV, delete a
run.
"""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

#: Small enough to train in a few seconds each (like conftest's quick config).
QUICK_CONFIG = {"scenario": "one_d", "n_signal": 1000, "n_bkg": 3000, "epochs": 20,
                "n_cats": [3], "snapshot_interval": 5}

RUNS = [
    ("alpha", {"lr_initial": 0.1}),
    ("<b>beta</b>", {"lr_initial": 0.05}),  # user text must show as text
    ("gamma", {"lr_initial": 0.1, "n_cats": [3, 5]}),
]


def train_runs(server) -> dict[str, str]:
    from gato_dash.runtime import configure_tensorflow

    # The app's XLA compilation cache, so the second and third run skip most compiling.
    configure_tensorflow(server.data_dir)
    from gato_dash.runtime.jobs import run_training

    store = server.store()
    ids = {}
    for name, overrides in RUNS:
        run_id = store.create_run({**QUICK_CONFIG, **overrides}, name=name)
        status = run_training(server.data_dir / "runs.sqlite", run_id)
        assert status == "finished", (name, status, store.get_run(run_id)["message"])
        ids[name] = run_id
    return ids


def select_row(page, run_name: str):
    row = page.locator("#runs-table tr", has_text=run_name)
    row.locator("input[type=checkbox]").check()


def table_text(page) -> list[str]:
    return page.locator("#compare-table tr").all_inner_texts()


def test_select_compare_reload_diff_only_delete(fresh_server, page, browser):
    server = fresh_server
    ids = train_runs(server)

    # ----- runs table: every run, user text as text, select three, compare
    page.goto(f"{server.url}/runs")
    for name in ids:
        page.locator("#runs-table td", has_text=name).first.wait_for()
    assert page.locator("#runs-table b").count() == 0  # "<b>beta</b>" did not become markup
    compare_button = page.locator("#runs-compare")
    assert compare_button.get_attribute("aria-disabled") == "true" or compare_button.is_disabled()
    for name in ids:
        select_row(page, name)
    page.locator("#runs-selection-text", has_text="3 runs selected").wait_for()
    compare_button.click()
    page.wait_for_url(re.compile(r"/compare\?runs="))
    url = page.url
    assert sorted(url.split("runs=")[1].split(",")) == sorted(ids.values())

    # ----- the compare view
    page.locator("#compare-view").wait_for()
    assert page.locator(".compare-run-chip").count() == 3
    header = page.locator("#compare-table th").all_inner_texts()
    assert set(ids) <= {h.strip() for h in header}
    page.locator("#compare-history-graph .main-svg").first.wait_for()
    # the other panels are tabs, drawn when picked
    assert page.locator("#compare-significance-graph").count() == 0
    page.locator("#compare-tab-significance").click()
    page.locator("#compare-significance-graph .main-svg").first.wait_for()
    page.locator("#compare-tab-categories").click()
    page.locator("#compare-categories-graph .main-svg").first.wait_for()
    assert page.evaluate("""() => document.querySelector('#compare-categories-graph .js-plotly-plot')
                                      .data.filter(t => t.type === 'heatmap' || t.type === 'bar')
                                      .length""") > 0
    full_table = table_text(page)
    assert any(row.startswith("setting\tlr_initial") for row in full_table)
    assert any(row.startswith("setting\tepochs") for row in full_table)

    # ----- the URL alone reproduces the view (fresh profile: nothing cached or stored)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        fresh = context.new_page()
        fresh.set_default_timeout(15_000)
        fresh.goto(url)
        fresh.locator("#compare-view").wait_for()
        fresh.locator("#compare-history-graph .main-svg").first.wait_for()
        assert table_text(fresh) == full_table
        assert fresh.locator(".compare-run-chip").all_inner_texts() == \
            page.locator(".compare-run-chip").all_inner_texts()
    finally:
        context.close()

    # ----- differences only: identical settings go, differing ones and results stay
    page.locator("#compare-diff-only").check()
    page.wait_for_function(
        "n => document.querySelectorAll('#compare-table tr').length < n", arg=len(full_table))
    diff_table = table_text(page)
    assert any(row.startswith("setting\tlr_initial") for row in diff_table)
    assert any(row.startswith("setting\tn_cats") for row in diff_table)
    assert not any(row.startswith("setting\tepochs") for row in diff_table)
    assert any(row.startswith("result\tfinal Z(signal), K=3") for row in diff_table)

    # ----- the view is in the address bar: a fresh profile opening it sees the same
    page.locator("#compare-tab-categories").click()  # the tab shown when diff was set
    page.wait_for_function("() => location.search.includes('tab=categories')"
                           " && location.search.includes('diff=1')")
    view_url = page.url
    assert sorted(view_url.split("runs=")[1].split("&")[0].split(",")) == sorted(ids.values())
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        fresh = context.new_page()
        fresh.set_default_timeout(15_000)
        fresh.goto(view_url)
        fresh.locator("#compare-categories-graph .main-svg").first.wait_for()
        assert "tab--selected" in fresh.locator("#compare-tab-categories").get_attribute("class")
        assert fresh.locator("#compare-diff-only").is_checked()
        assert table_text(fresh) == diff_table
        assert fresh.locator("#compare-view .alert-warning").count() == 0
    finally:
        context.close()
    page.locator("#compare-tab-histories").click()
    page.wait_for_function("() => !location.search.includes('tab=')")

    # ----- CSV export of the table as shown
    with page.expect_download() as download_info:
        page.locator("#compare-csv-button").click()
    csv_text = open(download_info.value.path(), encoding="utf-8").read()
    lines = csv_text.splitlines()
    assert lines[0].startswith("section,parameter,")
    assert all(run_id in lines[0] for run_id in ids.values())
    assert len(lines) == len(diff_table)  # header row + the same rows as the table

    # ----- delete a run, with confirmation
    page.goto(f"{server.url}/runs")
    page.locator("#runs-table td", has_text="gamma").first.wait_for()
    select_row(page, "gamma")
    page.locator("#runs-delete").click()
    page.locator("#runs-delete-body", has_text="gamma").wait_for()
    page.locator("#runs-delete-confirm").click()
    page.locator("#runs-table td", has_text="gamma").wait_for(state="detached")
    assert server.store().get_run(ids["gamma"]) is None
    assert page.locator("#runs-table td", has_text="alpha").count() == 1

    # the old link still opens: the deleted run is named, the other two are compared
    page.goto(url)
    page.locator("#compare-view").wait_for()
    assert page.locator(".compare-run-chip").count() == 2
    assert ids["gamma"] in page.locator("#compare-view .alert-warning").inner_text()


def test_bad_compare_links_get_a_message(server, page):
    for query in ("", "?runs=", "?runs=%3Cscript%3E,..%2F..", "?runs=nosuch1,nosuch2",
                  "?runs=" + ",".join(f"r{i}" for i in range(9))):
        response = page.goto(f"{server.url}/compare{query}")
        assert response.status == 200
        message = page.locator("#compare-message")
        message.wait_for()
        assert "runs table" in message.inner_text()
