"""The app's pages against a bare Dash page, in one run (target: each within 1.5x of it).

The app serves plain Dash: Dash Pages routing (``dash.page_container``) and the full
plotly.js bundle Dash ships. This tells whether that costs a real loss, by opening in
headless Chromium, in the same run and interleaved:

- bare:    a tiny Dash app started by this script, with the app's dependencies (dash,
           dash-bootstrap-components, the repository's Bootstrap CSS as its asset,
           serve_locally, compress) and one page holding one dcc.Graph with a small figure
           and a small table, so plotly.js is loaded as on the app's pages. Ready = the
           graph drawn and the table shown.
- pages:   (a reference, not held against the target) the same bare page served through
           Dash Pages routing (``dash.page_container``), as the app's pages are: what the
           routing alone costs.
- cartesian: (a reference) the bare page with plotly.js answered by the vendored
           cartesian bundle (1.5 MB instead of 4.8 MB), which the app served before it went
           back to Dash's own: what the smaller bundle would save.
- home:    ``/``, ready = the list of runs shown (every stored run in it); it has no
           graph, so plotly.js is not loaded.
- new:     ``/new``, ready = the scenario preview graph drawn (with its data).
- run:     ``/runs/<id>`` of a finished bump-hunt run (K = 5 and 8, 400 epochs, figures
           built when each K finished, as the training job does), ready = every graph of
           the results section drawn (bench/bench_results.py).
- compare: ``/compare?runs=a,b,c`` of finished runs, ready = the parameter table and the
           histories graph drawn (bench/bench_compare.py).

Times are on the page's own clock: navigation start until ready (the test driver's round
trips are not in them). Every page is first opened twice unmeasured (browser and server
caches filled; Chromium keeps a script's compiled code from its second load on). Then
``--rounds`` warm rounds, each page in a new tab of that one browser profile on disk, as
on any later visit (each round starts one page further in the list, so no page always
follows the same one); and ``--cold-rounds`` cold rounds (default 1), each page in a
fresh browser profile (nothing cached). Each page's time is divided by the bare page's
time of the same round (this machine's speed drifts between rounds; within one round
both see the same machine) and the median of those ratios is held against the target.

Where the time goes, per page (medians, seconds on the page's clock):
- boot:      until the renderer asks for the layout (HTML, Dash and component scripts,
             CSS loaded and run);
- data:      until the last callback answer that arrived before ready (layout,
             routing, the page's callbacks: server time plus round trips);
- draw:      from that answer until ready (the browser renders the components, loads
             plotly.js where a graph appears, and draws);
- plotly:    when plotly.js had loaded and run (pages with a graph; Dash loads it
             when the first graph appears), part of data + draw;
- callbacks: how many callback requests went out before ready.

Usage: python bench/bench_pages.py [--rounds 5] [--cold-rounds 1] [--compare-runs 3]
A benchmark, not a test: it always exits 0.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# tests/browser before tests: its conftest (the app server, Chromium) is the one imported
sys.path[:0] = [str(REPO / "tests" / "browser"), str(REPO / "bench"), str(REPO),
                str(REPO / "tests")]

from conftest import CHROMIUM, CHROMIUM_ARGS, GatoServer, free_port  # noqa: E402
import bench_compare  # noqa: E402
import bench_results  # noqa: E402
import results_fixtures  # noqa: E402
from gato_dash import plotlyjs  # noqa: E402

TARGET_RATIO = 1.5
#: Reference rows: shown with their ratio, not held against the target.
REFERENCES = ("bare", "pages", "cartesian")

#: The bare Dash app: the app's dependencies, one page with a small graph and table; in
#: mode "pages" the same page through Dash Pages routing (dash.page_container), as the app;
#: in mode "cartesian" the plain page with plotly.js answered by the smaller cartesian
#: bundle of gato_dash/vendor (the app served that one before; reports still inline it).
BARE_APP = '''
import sys
from pathlib import Path

import dash
import flask
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

port, assets, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
app = dash.Dash(__name__, assets_folder=assets, serve_locally=True, compress=True,
                title="bare Dash", update_title=None, use_pages=mode == "pages",
                pages_folder="")
xs = list(range(40))
figure = go.Figure(go.Scatter(x=xs, y=[(x % 9) ** 1.5 for x in xs], mode="lines+markers"),
                   layout={"height": 330, "template": "plotly_white"})
content = dbc.Container([
    html.H3("bare Dash"),
    dcc.Graph(id="bare-graph", figure=figure),
    dbc.Table([html.Thead(html.Tr([html.Th(h) for h in ("K", "Z", "yield")])),
               html.Tbody([html.Tr([html.Td(k), html.Td(f"{0.3 * k:.2f}"), html.Td(10 * k)])
                           for k in range(1, 6)])],
              id="bare-table", size="sm"),
], fluid=True)
if mode == "pages":
    dash.register_page("bare", path="/", layout=content)
    app.layout = html.Div(dash.page_container)
else:
    app.layout = content
if mode == "cartesian":
    bundle = Path(sys.argv[4]).read_text(encoding="utf-8")

    @app.server.before_request
    def cartesian_plotlyjs():
        # the URL Dash gives plotly.js (fingerprinted, cached for a year like Dash's own)
        if "/_dash-component-suites/plotly/package_data/plotly.min" in flask.request.path:
            return flask.Response(bundle, mimetype="application/javascript",
                                  headers={"Cache-Control": "public, max-age=31536000"})
app.run(host="127.0.0.1", port=port, debug=False)
'''

BARE_READY = """() => { const gd = document.querySelector('#bare-graph .js-plotly-plot');
    return !!(gd && gd._fullLayout && gd.data && gd.data.length
              && document.querySelectorAll('#bare-table tbody tr').length === 5); }"""
HOME_READY = """n => document.querySelectorAll('#home-runs-table tbody tr').length >= n"""
NEW_READY = """() => { const gd = document.querySelector('#new-preview .js-plotly-plot');
    return !!(gd && gd.querySelector('.main-svg') && gd._fullLayout && gd.data
              && gd.data.length && !document.querySelector('.dash-graph--pending')); }"""
RUN_READY = bench_results.DRAWN_JS
COMPARE_READY = (f"""sels => document.querySelectorAll('#compare-table tr').length > 3
                     && !!({bench_compare.DRAWN_JS})(sels)""")



def when_ready(ready_js: str) -> str:
    """A JS function (of ``ready_js``'s argument) giving the page's clock when ``ready_js``
    first holds, else false."""
    return f"""arg => {{
        if (window.Plotly && !window.__benchPlotlyAt) window.__benchPlotlyAt = performance.now();
        if (window.__benchReadyAt) return window.__benchReadyAt;
        if (!({ready_js})(arg)) return false;
        return (window.__benchReadyAt = performance.now()); }}"""


#: Where the time went until ``ready_ms`` (see the module docstring), from Resource Timing.
PHASES_JS = """readyMs => {
    const entries = performance.getEntriesByType('resource');
    const calls = entries.filter(e => e.name.includes('/_dash-update-component')
                                      && e.startTime < readyMs);
    const layout = entries.find(e => e.name.includes('/_dash-layout'));
    const answers = entries.filter(e => (e.name.includes('/_dash-update-component')
                                         || e.name.includes('/_dash-layout'))
                                        && e.responseEnd > 0 && e.responseEnd <= readyMs);
    const lastAnswer = Math.max(0, ...answers.map(e => e.responseEnd));
    const wire = entries.concat(performance.getEntriesByType('navigation'))
        .reduce((n, e) => n + (e.transferSize || 0), 0);
    return {boot: layout ? layout.startTime : readyMs, data: lastAnswer,
            draw: readyMs - lastAnswer, plotly: window.__benchPlotlyAt || null,
            callbacks: calls.length, wire: wire}; }"""


class BareDash:
    """The bare Dash app in its own process group, on a free loopback port."""

    def __init__(self, scratch: Path, mode: str = "plain"):
        self.mode = mode
        self.folder = scratch / f"bare_{mode}"
        (self.folder / "assets").mkdir(parents=True)
        shutil.copy(REPO / "assets" / "bootstrap.min.css", self.folder / "assets")
        (self.folder / "bare_app.py").write_text(BARE_APP)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "BareDash":
        self.proc = subprocess.Popen(
            [sys.executable, str(self.folder / "bare_app.py"), str(self.port),
             str(self.folder / "assets"), self.mode, str(plotlyjs.BUNDLE)],
            cwd=self.folder, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the bare Dash app exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError("the bare Dash app did not answer within 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None


def open_page(context, url: str, ready_js: str, arg=None) -> dict:
    """Open ``url`` in a new tab of ``context``; ms from navigation start until ready."""
    page = context.new_page()
    try:
        page.goto(url, wait_until="commit")
        ready_ms = page.wait_for_function(when_ready(ready_js), arg=arg,
                                          timeout=90_000).json_value()
        return {"ready": ready_ms, **page.evaluate(PHASES_JS, ready_ms)}
    finally:
        page.close()


def fresh_context(pw, scratch: Path):
    """A new browser profile on disk, as a user's browser has (Playwright's default contexts
    are in memory, where Chromium keeps no compiled code)."""
    return pw.chromium.launch_persistent_context(
        tempfile.mkdtemp(dir=scratch), executable_path=CHROMIUM, headless=True,
        args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})


def report(label: str, rounds: list[dict], show_wire: bool) -> list[str]:
    """Print one table (a row per page) for ``rounds`` ({page: measurement} each)."""
    print(f"\n{label}: {len(rounds)} round{'s' if len(rounds) > 1 else ''}, "
          f"times in s on the page's clock, ratio = page / bare page of the same round")
    header = (f"{'page':9s} {'ready':>6s} {'ratio':>6s} {'target':>7s}  {'boot':>5s} "
              f"{'data':>5s} {'draw':>5s} {'plotly':>6s} {'calls':>5s}  ratio per round")
    if show_wire:
        header += "  over the wire"
    print(header)
    misses = []
    for name in rounds[0]:
        rows = [r[name] for r in rounds]
        ratios = [r[name]["ready"] / r["bare"]["ready"] for r in rounds]
        ratio = statistics.median(ratios)
        verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
        if name not in REFERENCES and verdict == "MISS":
            misses.append(name)

        def med(key):
            values = [row[key] for row in rows if row[key] is not None]
            return statistics.median(values) if values else None

        plotly = "-" if med("plotly") is None else f"{med('plotly') / 1000:.2f}"

        line = (f"{name:9s} {med('ready') / 1000:6.2f} {ratio:6.2f} "
                f"{'ref' if name in REFERENCES else verdict:>7s}  {med('boot') / 1000:5.2f} "
                f"{med('data') / 1000:5.2f} {med('draw') / 1000:5.2f} {plotly:>6s} "
                f"{med('callbacks'):5.0f}"
                f"  {' '.join(f'{x:.2f}' for x in ratios)}")
        if show_wire:
            line += f"  {med('wire') / 1e6:.2f} MB"
        print(line)
    return misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="warm rounds (default 5)")
    parser.add_argument("--cold-rounds", type=int, default=1,
                        help="cold rounds, a fresh browser profile per page (default 1)")
    parser.add_argument("--compare-runs", type=int, default=3,
                        help="finished runs in the compare view (default 3)")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="gato_bench_pages_") as tmp:
        scratch = Path(tmp)
        server = GatoServer(scratch / "data")
        server.data_dir.mkdir(parents=True)
        store = server.store()
        t0 = time.perf_counter()
        compared = bench_compare.fill_store(store, "bump_hunt", args.compare_runs)
        run_id, _, _ = results_fixtures.store_finished_run(
            store, "bump_hunt", n_cats=(5, 8), name="bench run page", prebuild=True)
        n_runs = len(compared) + 1
        print(f"stored {n_runs} finished bump-hunt runs in {time.perf_counter() - t0:.1f} s")
        references = {mode: BareDash(scratch, mode) for mode in ("plain", "pages", "cartesian")
                      if mode != "cartesian" or plotlyjs.cartesian_bundle()}
        targets = {
            "bare": (references["plain"].url, BARE_READY, None),
            "pages": (references["pages"].url, BARE_READY, None),
            **({"cartesian": (references["cartesian"].url, BARE_READY, None)}
               if "cartesian" in references else {}),
            "home": (f"{server.url}/", HOME_READY, n_runs),
            "new": (f"{server.url}/new", NEW_READY, None),
            "run": (f"{server.url}/runs/{run_id}", RUN_READY, None),
            "compare": (f"{server.url}/compare?runs={','.join(compared)}", COMPARE_READY,
                        list(bench_compare.GRAPHS)),
        }
        warm_rounds, cold_rounds = [], []
        try:
            for reference in references.values():
                reference.start()
            server.start()
            with sync_playwright() as pw:
                context = fresh_context(pw, scratch)
                try:
                    # unmeasured: fill the caches. Twice: Chromium keeps a script's compiled
                    # code from its second load on, so the third load is a returning user's.
                    for _ in range(2):
                        for url, ready, arg in targets.values():
                            open_page(context, url, ready, arg)
                    names = list(targets)
                    for i in range(args.rounds):
                        # each round starts one page further: no page always follows the
                        # same one (a heavy page can leave the browser busy for the next)
                        order = names[i % len(names):] + names[:i % len(names)]
                        measured = {name: open_page(context, *targets[name]) for name in order}
                        warm_rounds.append({name: measured[name] for name in names})
                        print(f"  warm round {len(warm_rounds)} (in order): " + ", ".join(
                            f"{name} {measured[name]['ready'] / 1000:.2f} s"
                            for name in order), flush=True)
                finally:
                    context.close()
                for _ in range(args.cold_rounds):
                    cold_rounds.append({})
                    for name, target in targets.items():
                        context = fresh_context(pw, scratch)
                        try:
                            cold_rounds[-1][name] = open_page(context, *target)
                        finally:
                            context.close()
        finally:
            server.stop()
            for reference in references.values():
                reference.stop()

    print(f"\nload average after measuring: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores (times grow with it; ratios much less)")
    verdicts = []
    if warm_rounds:
        verdicts.append(("warm", report("warm browser (static files cached)", warm_rounds,
                                        show_wire=False)))
    if cold_rounds:
        verdicts.append(("cold", report("cold browser (fresh profile per page)", cold_rounds,
                                        show_wire=True)))
    print(f"\ntarget: every page ready within {TARGET_RATIO}x of the bare Dash page")
    for label, misses in verdicts:
        print(f"  {label}: " + (f"MISS {', '.join(misses)}" if misses else "all PASS"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
