"""Payload sizes and build/draw times of the results figures for a finished bump-hunt run.

    python bench/bench_results.py            # figure JSON sizes and build times
    python bench/bench_results.py --browser  # + the run page in headless Chromium

The run is synthesized (tests/helpers/records.py) at the size the issue names: bump hunt,
two K (5 and 8), 400 epochs with a snapshot every 10 (41 snapshots per K) on the engine's
120 x 120 grid. No TensorFlow needed.

What is measured
- "page data": what the browser receives from the results callbacks when it opens the
  run page on the default K (the run-level figures, that K's figures, the log-able ones).
  Only the selected K travels; the other K costs the same again when selected.
- gzip sizes (the app compresses its responses).
- build: server CPU time to build the figures (before they are cached per run and K).
- --browser: the run page of the real app (python app.py) in headless Chromium with a
  fresh browser profile on disk per round, "drawn" = on the page's own clock, from
  navigation start until every graph on the page (the first results tab; the other tabs
  are timed from the click) has drawn, the animation with its frames. The runs' figures
  were built when each K finished, as the training job does, and the server has not shown
  the run yet, except where said. Cases: cold (fresh browser profile), first (the browser
  has the app's files: a user opening a run), unbuilt (as first, for a run stored by an
  older version: the server builds its figures), warm (the same run again, in a new tab:
  server memory) and link (a click on a run in the home page's list, the app's own
  navigation, timed from the click). The machine's load average is printed with it: the
  server and the browser share 2 cores, and this VM's speed drifts by 2x within minutes,
  so compare versions A/B-interleaved.
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import plotly.io as pio  # noqa: E402

from helpers import records as rf  # noqa: E402
from gato_dash.figures import baselines, categories, category_numbers, spectra  # noqa: E402

DATA_LIMIT_BYTES = 3_000_000


def kb(n: int) -> str:
    return f"{n / 1000:8.1f} KB"


def _timed(build):
    """(figure, CPU milliseconds to build it)."""
    t0 = time.process_time()
    fig = build()
    return fig, (time.process_time() - t0) * 1000


def figure_sizes() -> int:
    run, epochs, results = rf.run_record("bump_hunt", n_cats=(5, 8), epochs=400,
                                         snapshot_interval=10, grid=120)
    info = run["run_info"]
    snapshots = [sum(1 for e in epochs if e["n_cats"] == r["n_cats"] and e["snapshot"])
                 for r in results]
    print(f"synthetic bump-hunt run: K = {[r['n_cats'] for r in results]}, snapshots per K "
          f"= {snapshots}, grid 120 x 120, {len(epochs)} epoch records")
    print(f"{'figure':34s} {'JSON':>11s} {'gzip':>11s} {'build':>10s}")
    default_k = max(r["n_cats"] for r in results)

    rows = [("significance_comparison", None,
             lambda: baselines.significance_comparison(info, results)),
            ("inclusive_mass", None, lambda: spectra.inclusive_mass_spectrum(info["inclusive"]))]
    for result in results:
        k = result["n_cats"]
        rows += [
            ("category_map", k, lambda r=result: categories.category_map_animation(epochs, r, info)),
            ("components", k, lambda r=result: categories.gaussian_components_2d(r, info)),
            ("mass_spectra", k, lambda r=result: spectra.category_mass_spectra(r)),
            ("category_statistics", k,
             lambda r=result: category_numbers.category_statistics(r, thresholds=run["config"])),
            ("bias_history", k, lambda k=k: categories.bias_temperature_history(epochs, k)),
        ]
    page_json = page_gzip = 0
    for name, k, build in rows:
        fig, ms = _timed(build)
        text = pio.json.to_json_plotly(fig).encode()
        size, packed = len(text), len(gzip.compress(text))
        label = name if k is None else f"K={k} {name}"
        print(f"{label:34s} {kb(size)} {kb(packed)} {ms:7.0f} ms")
        if k in (None, default_k):
            page_json, page_gzip = page_json + size, page_gzip + packed
    print(f"\npage data, default K = {default_k} + run-level figures: {kb(page_json)} JSON, "
          f"{kb(page_gzip)} gzip   (issue limit {DATA_LIMIT_BYTES / 1e6:.0f} MB)")
    return page_json


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]


#: Every graph on the page has drawn its figure (the animation with its frames) and none
#: is waiting for a redraw.
DRAWN_JS = """() => {
    const graphs = [...document.querySelectorAll('.js-plotly-plot')];
    const map = document.querySelector(`[id='{"name":"category_map","type":"results-kfig"}'] .js-plotly-plot`);
    const drawn = graphs.length >= 3 && map && map._transitionData
        && map._transitionData._frames.length > 0
        && graphs.every(gd => gd._fullLayout && gd.data && gd.data.length > 0)
        && !document.querySelector('.dash-graph--pending');
    // the page's own clock: milliseconds since navigation start, when first seen drawn
    if (drawn && !window.__drawnAt) window.__drawnAt = performance.now();
    return drawn; }"""
#: The other tabs, each with the graph it shows last: time from the click to it drawn.
TABS = {"spectra": """[id='{"name":"mass_spectra","type":"results-logfig"}']""",
        "baselines": "#results-significance",
        "numbers": """[id='{"name":"category_statistics","type":"results-logfig"}']""",
        "training": "#run-fig-lr"}
TAB_DRAWN_JS = """sel => { const gd = document.querySelector(sel + ' .js-plotly-plot');
    return gd && gd._fullLayout && gd.data && gd.data.length
        && !document.querySelector('.dash-graph--pending') && performance.now(); }"""


def browser_timing(rounds: int = 3) -> None:
    """The real run page (python app.py) of the synthetic run, in headless Chromium.

    The cases are those of the module docstring, in that order, ``rounds`` times.
    """
    import statistics
    import tempfile

    sys.path[:0] = [str(REPO / "tests" / "browser")]
    from playwright.sync_api import sync_playwright

    from conftest import CHROMIUM, CHROMIUM_ARGS, GatoServer
    from test_results import _body_size, store_synthetic_run

    cases = {"cold": [], "first": [], "unbuilt": [], "warm": [], "link": []}
    tab_seconds: dict[str, list[float]] = {}

    def open_run(page, run_id: str, label: str) -> None:
        received = []
        page.on("response", lambda r: received.append(r)
                if "_dash-update-component" in r.url or "_dash-layout" in r.url else None)
        started = time.perf_counter()
        page.goto(f"{server.url}/runs/{run_id}")
        page.wait_for_function(DRAWN_JS, timeout=60_000)
        drawn = time.perf_counter() - started
        page_clock = page.evaluate("window.__drawnAt") / 1000
        page.wait_for_load_state("networkidle")
        data = sum(_body_size(r) for r in received if r.ok)
        wire = page.evaluate(
            "performance.getEntriesByType('resource').concat("
            "performance.getEntriesByType('navigation'))"
            ".reduce((n, e) => n + (e.transferSize || 0), 0)")
        cases[label].append((drawn, data, wire, page_clock))

    with tempfile.TemporaryDirectory() as tmp:
        server = GatoServer(Path(tmp) / "data").start()
        try:
            with sync_playwright() as pw:
                for _ in range(rounds):
                    # figures built when each K finished, as the training job does
                    first_run, _ = store_synthetic_run(server, "bench run", prebuild=True)
                    second_run, _ = store_synthetic_run(server, "bench run 2", prebuild=True)
                    third_run, _ = store_synthetic_run(server, "bench run 3", prebuild=True)
                    # stored by an older version: the server builds them on first view
                    unbuilt_run, _ = store_synthetic_run(server, "bench run 4")
                    # a browser profile on disk, as a user has (Playwright's default
                    # contexts are in-memory, where Chromium keeps no compiled code)
                    context = pw.chromium.launch_persistent_context(
                        tempfile.mkdtemp(dir=tmp), executable_path=CHROMIUM, headless=True,
                        args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
                    page = context.new_page()
                    open_run(page, first_run, "cold")
                    page.close()
                    # as a user gets there: from the new-run form (bundles and plotly.js
                    # cached) to a run the server has not drawn yet, then that run again
                    page = context.new_page()
                    page.goto(f"{server.url}/new")
                    page.locator(".js-plotly-plot .main-svg").first.wait_for()
                    open_run(page, second_run, "first")
                    page.close()
                    page = context.new_page()
                    open_run(page, unbuilt_run, "unbuilt")
                    page.close()
                    # the usual way in: the home page's list of runs, a click on the run
                    # (client-side navigation: no page load, only the page's content)
                    page = context.new_page()
                    page.goto(f"{server.url}/")
                    link = page.locator(f"a[href='/runs/{third_run}']")
                    link.wait_for()
                    clicked = page.evaluate("performance.now()")
                    link.click()
                    page.wait_for_function(DRAWN_JS, timeout=60_000)
                    drawn_at = page.evaluate("window.__drawnAt")
                    cases["link"].append((0.0, 0, 0, (drawn_at - clicked) / 1000))
                    page.close()
                    page = context.new_page()
                    open_run(page, second_run, "warm")
                    for tab, graph in TABS.items():
                        if page.locator(f"#results-tab-{tab}").count() == 0:
                            continue  # a page without tabs (A/B against an older version)
                        clicked = page.evaluate("performance.now()")
                        page.locator(f"#results-tab-{tab}").click()
                        done = page.wait_for_function(TAB_DRAWN_JS, arg=graph).json_value()
                        tab_seconds.setdefault(tab, []).append((done - clicked) / 1000)
                    page.close()
                    context.close()
        finally:
            server.stop()
    print(f"run page of a finished bump-hunt run (python app.py), {rounds} rounds, "
          f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for label, rows in cases.items():
        drawn = statistics.median(r[3] for r in rows)
        if label == "link":
            print(f"  link: a click on the run in the home page's list -> drawn {drawn:.2f} s "
                  f"(runs: {', '.join(f'{r[3]:.2f}' for r in rows)}; server had not drawn "
                  "the run yet)")
            continue
        print(f"  {label}: drawn {drawn:.2f} s after navigation start (target < 2 s: "
              f"{'ok' if drawn < 2 else 'MISSED'}; runs: "
              f"{', '.join(f'{r[3]:.2f}' for r in rows)}; measured from the driver, "
              f"with its round trips: {statistics.median(r[0] for r in rows):.2f} s)"
              f" | page data (initial layout + callbacks, uncompressed) "
              f"{kb(statistics.median(r[1] for r in rows))} | over the wire "
              f"{kb(statistics.median(r[2] for r in rows))} (target <= 3 MB)")
    for tab, seconds in tab_seconds.items():
        print(f"  tab '{tab}' picked -> drawn: median {statistics.median(seconds):.2f} s (warm)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browser", action="store_true",
                        help="also open the results section in headless Chromium")
    args = parser.parse_args(argv)
    total = figure_sizes()
    if args.browser:
        print()
        browser_timing()
    return 0 if total <= DATA_LIMIT_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
