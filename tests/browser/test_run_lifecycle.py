"""A run's life in the browser: configure, train live, cancel, survive a restart."""
from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout


pytestmark = pytest.mark.browser

POINTS_JS = """() => {
  const g = document.querySelector('#run-fig-significance .js-plotly-plot');
  return g && g.data && g.data.length ? g.data[0].x.length : -1;
}"""


def points(page) -> int:
    return page.evaluate(POINTS_JS)


#: Run in the page at every poll of wait_for_function: note the plotted point count when
#: it changes; true once the status line says ``until`` and the plot holds ``final`` points.
RECORD_POINTS_JS = """([until, final]) => {
  const seen = window.__gatoPoints = window.__gatoPoints || [];
  const g = document.querySelector('#run-fig-significance .js-plotly-plot');
  const n = g && g.data && g.data.length ? g.data[0].x.length : -1;
  if (seen[seen.length - 1] !== n) seen.push(n);
  const status = document.querySelector('#run-status');
  return !!status && status.innerText.startsWith(until) && n === final;
}"""


def watch_points(page, until_status: str, final_points: int, timeout_s: float) -> list[int]:
    """Every plotted significance point count the page showed (sampled in the page every
    50 ms) until the status line says ``until_status`` and all ``final_points`` are drawn."""
    try:
        page.wait_for_function(RECORD_POINTS_JS, arg=[until_status, final_points],
                               polling=50, timeout=timeout_s * 1000)
    except PlaywrightTimeout:
        raise AssertionError(f"status never became {until_status!r} with {final_points} "
                             f"points: {page.inner_text('#run-status')!r}; points "
                             f"{page.evaluate('window.__gatoPoints')[-5:]}") from None
    return page.evaluate("window.__gatoPoints")


def test_quick_demo_streams_live_and_finishes(server, page):
    external = []
    page.on("request", lambda r: external.append(r.url)
            if not r.url.startswith(server.url) and not r.url.startswith("data:") else None)
    page.goto(server.url + "/new")
    page.wait_for_selector("#new-preview .main-svg")
    page.click("#preset-quick")
    page.wait_for_function("() => location.search.includes('n_signal=5000')")
    # More epochs than the preset, so that the stream is long enough to watch it grow.
    epochs_box = page.locator("input[id*='\"name\":\"epochs\"']")
    epochs_box.fill("600")
    page.wait_for_function("() => location.search.includes('epochs=600')")
    assert parse_qs(urlparse(page.url).query)["n_cats"] == ["5"]
    page.click("#new-run-button:not([disabled])")
    page.wait_for_url("**/runs/*")
    run_id = page.url.rstrip("/").rsplit("/", 1)[-1]

    samples = watch_points(page, "Finished", final_points=600, timeout_s=180)
    growing = [n for n in samples if 0 < n < 600]
    assert samples == sorted(samples), "the curve lost points"
    assert len(set(growing)) >= 3, f"no live growth seen (stream stalled?): {samples}"
    assert samples[-1] == 600
    run = server.store().get_run(run_id)
    assert run["status"] == "finished" and run["config"]["n_signal"] == 5000
    page.wait_for_selector("#run-results :text('Results')")
    assert not external, f"requests left the machine: {external}"


def test_cancel_stops_within_two_seconds_and_keeps_the_work(server, page, quick_config,
                                                            wait_status):
    run_id = server.store().create_run({**quick_config, "epochs": 100000, "n_cats": [3, 5]})
    page.goto(f"{server.url}/runs/{run_id}")
    page.wait_for_function(f"() => ({POINTS_JS})() >= 5", timeout=90_000)
    clicked = time.time()
    page.click("#run-cancel")
    # the job stamps `finished` when it has stopped; measured from the click, without the
    # test's own polling interval
    stopped_s = wait_status(server, run_id, "cancelled", timeout_s=5.0)["finished"] - clicked
    alert = page.wait_for_selector("#run-alert-message:has-text('cancelled at epoch')", timeout=3000)
    run = server.store().get_run(run_id)
    n = run["epochs_done"]
    assert f"cancelled at epoch {n} (K=3)" in alert.inner_text()
    assert stopped_s < 2.0
    page.wait_for_function(f"() => ({POINTS_JS})() === {n}")  # every trained epoch is shown
    page.wait_for_selector("#run-badge:text-is('cancelled')")
    assert page.is_hidden("#run-cancel")  # nothing left to cancel
    assert server.store().result_ks(run_id) == [3]


RECORD_BADGES_JS = """() => {
  const seen = window.__gatoBadges = window.__gatoBadges || [];
  const badge = document.querySelector('#run-badge').textContent;
  const cancel = document.querySelector('#run-cancel');
  const visible = !!cancel && cancel.getClientRects().length > 0
    && getComputedStyle(cancel).visibility !== 'hidden';
  const last = seen[seen.length - 1];
  if (!last || last[0] !== badge) seen.push([badge, visible]);
  return badge === 'finished';
}"""


def test_badge_title_and_cancel_follow_the_run(server, page, quick_config):
    run_id = server.store().create_run({**quick_config, "epochs": 200}, name="badge")
    page.goto(f"{server.url}/runs/{run_id}")
    page.wait_for_selector("#run-badge")
    # every badge change, with whether Cancel was visible then, noted in the page itself
    page.wait_for_function(RECORD_BADGES_JS, polling=50, timeout=120_000)
    seen = page.evaluate("window.__gatoBadges")
    for badge, cancel_visible in seen:
        if badge == "running":
            assert cancel_visible, seen
    seen = [badge for badge, _ in seen]
    assert seen[-1] == "finished", seen
    assert "running" in seen and seen.index("running") < seen.index("finished"), seen
    page.wait_for_function("() => document.title === 'badge · finished · GATO'")
    page.wait_for_selector("#run-cancel", state="hidden")


def test_the_page_survives_a_server_restart(server, page, quick_config, wait_status):
    """A poll that fails must not freeze the page: it says the connection is lost, keeps
    trying, and shows the true state once the server is back, without a reload."""
    run_id = server.store().create_run({**quick_config, "epochs": 100000}, name="restart")
    page.goto(f"{server.url}/runs/{run_id}")
    page.wait_for_function(f"() => ({POINTS_JS})() >= 5", timeout=90_000)
    server.stop()
    page.wait_for_selector("#run-connection:has-text('Connection lost')", timeout=20_000)
    server.start()
    page.wait_for_selector("#run-badge:text-is('interrupted')", timeout=60_000)
    assert page.inner_text("#run-status").startswith("Interrupted")
    page.wait_for_selector("#run-connection:empty", state="attached")
    run = server.store().get_run(run_id)
    assert run["status"] == "interrupted"
    # its duration ends at its last heartbeat, not when the server came back
    assert run["finished"] <= run["heartbeat"] + 1e-6


def test_two_tabs_two_runs_and_one_run_opened_twice(server, browser, quick_config, wait_status):
    store = server.store()
    a = store.create_run(quick_config, name="tab A")
    b = store.create_run(quick_config, name="tab B")  # identical config, separate run
    pages = [browser.new_page() for _ in range(3)]
    try:
        for pg, run_id in zip(pages, (a, b, a)):  # run A is opened in two tabs
            pg.goto(f"{server.url}/runs/{run_id}")
        for run_id in (a, b):
            wait_status(server, run_id, "finished", timeout_s=120)
        for run_id in (a, b):
            epochs = store.epochs(run_id)
            assert [r["epoch"] for r in epochs] == list(range(30)), "trained twice or partly"
            assert store.result_ks(run_id) == [3]
        for pg in pages:
            pg.wait_for_function(f"() => ({POINTS_JS})() === 30")
    finally:
        for pg in pages:
            pg.close()


def test_restart_keeps_the_finished_run(server, page, run_quick):
    run_id = run_quick(page, server, name="<b>kept</b>")
    before = server.store().get_run(run_id)
    assert before["status"] == "finished"
    server.restart()
    page.goto(server.url + "/")
    link = page.wait_for_selector(f"a[href='/runs/{run_id}']")
    assert link.inner_text() == "<b>kept</b>"  # user text shown as text, not HTML
    link.click()
    page.wait_for_selector("#run-status:has-text('Finished')")
    page.wait_for_selector("#run-results :text('Results')")
    # an ended run opens on its results; its training curves are the last tab
    assert points(page) == -1
    page.click("#results-tab-training")
    page.wait_for_function(f"() => ({POINTS_JS})() === 30")
    after = server.store().get_run(run_id)
    assert after["status"] == "finished" and after["finished"] == before["finished"]


def test_unknown_run_is_a_friendly_page(server, page):
    response = page.goto(server.url + "/runs/xyz")
    assert response.status == 200
    page.wait_for_selector("#run-not-found:has-text('No such run')")
    assert "Traceback" not in page.content()
    page.click("#run-not-found-home")
    page.wait_for_url(server.url + "/")


def test_bad_link_values_are_marked_not_fatal(server, page):
    page.goto(server.url + "/new?scenario=one_d&epochs=abc&n_cats=1&bogus=3")
    page.wait_for_selector("text=Ignored settings in the link that do not exist: bogus.")
    epochs_box = page.locator("input[id*='\"name\":\"epochs\"']")
    n_cats_box = page.locator("input[id*='\"name\":\"n_cats\"']")
    # The engine reports type errors first, then range errors: one marked field at a time.
    page.wait_for_selector(".invalid-feedback:has-text(\"epochs must be a whole number, got 'abc'\")")
    assert "is-invalid" in epochs_box.get_attribute("class")
    assert page.is_disabled("#new-run-button")
    epochs_box.fill("50")
    # Wait for the answer to this edit: the n_cats message may already be showing from the
    # link's own check, so its appearance alone does not mean the form was re-checked.
    page.wait_for_selector("input.is-invalid[id*='\"name\":\"epochs\"']", state="detached")
    page.wait_for_selector(".invalid-feedback:has-text('number of categories must be between 2')")
    assert "is-invalid" in n_cats_box.get_attribute("class")
    assert "is-invalid" not in epochs_box.get_attribute("class")
    assert page.is_disabled("#new-run-button")
    n_cats_box.fill("3, 5")
    page.wait_for_selector("#new-run-button:not([disabled])")
    assert page.locator("input.is-invalid").count() == 0
    assert "n_cats=3%2C+5" in page.url and "epochs=50" in page.url  # bookmarkable


def test_closing_the_browser_mid_run_does_not_stop_it(server, browser, quick_config, wait_status):
    store = server.store()
    run_id = store.create_run({**quick_config, "epochs": 200}, name="closed tab")
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(f"{server.url}/runs/{run_id}")
    tab.wait_for_function(f"() => ({POINTS_JS})() >= 3", timeout=90_000)
    context.close()  # the whole browser session goes away mid-run
    assert store.get_run(run_id)["status"] == "running"
    wait_status(server, run_id, "finished", timeout_s=120)
    assert [r["epoch"] for r in store.epochs(run_id)] == list(range(200))
    reopened = browser.new_page()
    try:
        reopened.goto(f"{server.url}/runs/{run_id}")
        reopened.wait_for_selector("#run-status:has-text('Finished')")
        reopened.click("#results-tab-training")
        reopened.wait_for_function(f"() => ({POINTS_JS})() === 200")
    finally:
        reopened.close()
