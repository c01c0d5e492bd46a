"""Compare view of 6 finished runs: transfer size and open time (targets: < 2 s, <= 5 MB).

Fills a scratch data folder with six finished runs of realistic size (hand-made records from
tests/helpers/records.py: bump hunt, K = 5 and 8, 400 epochs each, 120 x 120 category maps
every 10 epochs), starts `python app.py` on it, and opens /compare?runs=... in headless
Chromium (a new browser profile on disk per round). It prints, for a cold browser (nothing
cached) and a warm one (static files cached, as on any second visit):

- open time: on the page's own clock, navigation start until the parameter table and the
  first tab's graph (histories) are drawn (and, for reference, the same seen from the test
  driver, which adds its own round trips); then the time from picking each other tab
  (significance against K, final categories) to its graph drawn;
- transfer: bytes over the wire, split into the view's data (layout + callbacks) and the
  static files (Dash / Plotly JavaScript, CSS), which the browser caches.

Usage: python bench/bench_compare.py [--scenario bump_hunt|one_d|three_class] [--runs 6]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "browser"))

from conftest import CHROMIUM, CHROMIUM_ARGS, GatoServer  # noqa: E402
from helpers import records  # noqa: E402

#: Drawn when the view opens (the first tab); the other panels are tabs, timed on a click.
GRAPHS = ("#compare-history-graph",)
TABS = {"significance": "#compare-significance-graph", "categories": "#compare-categories-graph"}
#: The listed graphs and every other graph on the page have drawn (ms since navigation).
DRAWN_JS = """sels => sels.every(s => document.querySelector(s + ' .js-plotly-plot'))
              && [...document.querySelectorAll('.js-plotly-plot')].every(
                     gd => gd._fullLayout && gd.data && gd.data.length)
              && !document.querySelector('.dash-graph--pending') && performance.now()"""


def fill_store(store, scenario: str, n_runs: int) -> list[str]:
    ks = (5, 8) if scenario != "one_d" else (5, 10, 20)
    return [records.store_finished_run(store, scenario, n_cats=ks,
                                                name=f"bench run {i + 1}", seed=42 + i % 2,
                                                lr_initial=0.05 * (1 + i))[0]
            for i in range(n_runs)]


def _cpu_seconds_by_tree() -> dict[int, float]:
    """CPU seconds (user + system) used so far by each process, with parent links."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    return table


def tree_cpu(root: int, exclude: int | None = None) -> float:
    """CPU seconds of ``root`` and its descendants, leaving out the subtree of ``exclude``."""
    table = _cpu_seconds_by_tree()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        if pid == exclude or pid not in table:
            continue
        total += table[pid][1]
        stack.extend(children.get(pid, []))
    return total


def open_once(context, url: str, server_pid: int) -> dict:
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    urls, sizes = {}, {"data": 0, "static": 0}

    def on_response(event):
        urls[event["requestId"]] = event["response"]["url"]

    def on_finished(event):
        url_of = urls.get(event["requestId"], "")
        is_data = "/_dash-layout" in url_of or "/_dash-update-component" in url_of \
            or "/compare" in url_of.split("?")[0][-8:]
        sizes["data" if is_data else "static"] += event["encodedDataLength"]

    cdp.on("Network.responseReceived", on_response)
    cdp.on("Network.loadingFinished", on_finished)
    server_cpu0 = tree_cpu(server_pid)
    browser_cpu0 = tree_cpu(os.getpid(), exclude=server_pid)
    start = time.perf_counter()
    page.goto(url)
    page.locator("#compare-table tr").nth(3).wait_for()
    # the page's own clock (ms since navigation start) when every graph has drawn
    page_ms = page.wait_for_function(DRAWN_JS, arg=list(GRAPHS), timeout=60_000).json_value()
    elapsed = time.perf_counter() - start
    # CPU time spent on this open by the server and by the browser (+ its driver): unlike
    # the wall clock it does not grow when other work shares the machine, so it tells what
    # the open costs on an idle one.
    server_cpu = tree_cpu(server_pid) - server_cpu0
    browser_cpu = tree_cpu(os.getpid(), exclude=server_pid) - browser_cpu0
    page.wait_for_timeout(500)  # let late responses finish so they are counted
    tab_seconds = {}
    for tab, graph in TABS.items():
        if page.locator(f"#compare-tab-{tab}").count() == 0:
            continue  # a version of the view without tabs (A/B against an older one)
        clicked = page.evaluate("performance.now()")
        page.locator(f"#compare-tab-{tab}").click()
        drawn = page.wait_for_function(DRAWN_JS, arg=[graph], timeout=60_000).json_value()
        tab_seconds[tab] = (drawn - clicked) / 1000
    page.close()
    return {"seconds": page_ms / 1000, "driver_seconds": elapsed, "server_cpu": server_cpu,
            "browser_cpu": browser_cpu, "tabs": tab_seconds, **sizes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="bump_hunt",
                        choices=["bump_hunt", "three_class", "one_d"])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="gato_bench_compare_") as scratch:
        server = GatoServer(Path(scratch) / "data")
        server.data_dir.mkdir(parents=True)
        t0 = time.perf_counter()
        ids = fill_store(server.store(), args.scenario, args.runs)
        print(f"stored {args.runs} {args.scenario} runs in {time.perf_counter() - t0:.1f} s")
        server.start()
        try:
            url = f"{server.url}/compare?runs={','.join(ids)}"
            with sync_playwright() as pw:
                cold_runs, warm_runs = [], []
                for _ in range(args.repeat):
                    # a new browser profile on disk, as a user's browser has (Playwright's
                    # default contexts are in-memory: Chromium keeps no compiled code there)
                    context = pw.chromium.launch_persistent_context(
                        tempfile.mkdtemp(dir=scratch), executable_path=CHROMIUM,
                        headless=True, args=CHROMIUM_ARGS,
                        viewport={"width": 1400, "height": 1000})
                    # fresh profile: nothing cached; then the same again, static files cached
                    cold_runs.append(open_once(context, url, server.proc.pid))
                    warm_runs.append(open_once(context, url, server.proc.pid))
                    context.close()
        finally:
            server.stop()
    target_s, target_mb = 2.0, 5.0
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(wall-clock times grow with it)")
    for label, runs in (("cold browser", cold_runs), ("warm browser", warm_runs)):
        seconds = statistics.median(r["seconds"] for r in runs)
        data_mb = statistics.median(r["data"] for r in runs) / 1e6
        static_mb = statistics.median(r["static"] for r in runs) / 1e6
        total = data_mb + static_mb
        server_cpu = statistics.median(r["server_cpu"] for r in runs)
        browser_cpu = statistics.median(r["browser_cpu"] for r in runs)
        driver = statistics.median(r["driver_seconds"] for r in runs)
        print(f"{label}: open {seconds:.2f} s after navigation start, {driver:.2f} s from the "
              f"driver (target < {target_s:.0f} s: "
              f"{'ok' if seconds < target_s else 'MISSED'}), transfer {total:.2f} MB = "
              f"view data {data_mb:.2f} MB + static files {static_mb:.2f} MB "
              f"(target <= {target_mb:.0f} MB: {'ok' if total <= target_mb else 'MISSED'}); "
              f"CPU: server {server_cpu:.2f} s + browser {browser_cpu:.2f} s")
    for tab in TABS:
        seconds = [r["tabs"][tab] for r in warm_runs if tab in r["tabs"]]
        if seconds:
            print(f"tab '{tab}' picked -> drawn: median {statistics.median(seconds):.2f} s "
                  "(warm)")
    print("first open after server start (server cache cold): "
          f"{cold_runs[0]['seconds']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
