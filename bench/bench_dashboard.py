"""Dashboard speed: Run click -> first epoch drawn, streaming update size, Quick demo end to end.

    python bench/bench_dashboard.py [--runs 3] [--scenario one_d] [--keep DIR]

Starts `python app.py` on a free port with a fresh data folder, drives headless Chromium
(/usr/bin/chromium) through the new-run page with the "Quick demo" preset, and prints, per
run: seconds from the Run click to the first epoch drawn, bytes of every streaming update
of the run page (median / max), seconds from the click to "Finished". The first run after
a server start pays for XLA compilation of new shapes; later runs show the warm path.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("GATO_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
POINTS_JS = """() => {
  const g = document.querySelector('#run-fig-significance .js-plotly-plot');
  return g && g.data && g.data.length ? g.data[0].x.length : -1;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(data_dir / "server.log", "ab")
    proc = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--port", str(port),
                             "--data-dir", str(data_dir)], cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120:
        try:
            urllib.request.urlopen(url + "/", timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def one_run(browser, url: str, scenario: str) -> dict:
    page = browser.new_page()
    sizes = []

    def on_response(response):
        if "_dash-update-component" in response.url:
            try:
                if "run-state" in json.loads(response.request.post_data)["output"]:
                    sizes.append(len(response.body()))
            except Exception:
                pass

    page.on("response", on_response)
    page.goto(f"{url}/new?scenario={scenario}")
    page.wait_for_selector("#new-preview .main-svg")
    page.click("#preset-quick")
    page.wait_for_function("() => location.search.includes('n_signal=5000')")
    page.wait_for_selector("#new-run-button:not([disabled])")
    t_click = time.monotonic()
    page.click("#new-run-button")
    page.wait_for_url("**/runs/*")
    page.wait_for_function(f"() => ({POINTS_JS})() > 0", timeout=120_000, polling=50)
    t_first = time.monotonic()
    page.wait_for_selector("#run-status:text-matches('^(Finished|Failed|Diverged)')",
                           timeout=300_000)
    t_done = time.monotonic()
    status = page.inner_text("#run-status")
    run_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    page.close()
    return {"first_epoch_s": t_first - t_click, "end_to_end_s": t_done - t_click,
            "update_bytes": sizes, "status": status, "run_id": run_id}


def breakdown(data_dir: Path, run_id: str) -> str:
    """Where the click -> first epoch time goes, from the run store's timestamps."""
    sys.path.insert(0, str(REPO))
    from gato_dash.runtime.run_store import RunStore

    store = RunStore(data_dir / "runs.sqlite")
    run = store.get_run(run_id)
    first = store.epochs(run_id, limit=1, snapshots=False)
    if not run or not first or not run.get("started"):
        return ""
    info = run.get("run_info") or {}
    return (f"    store: Run click -> job claimed {run['started'] - run['created']:.2f} s; "
            f"events {info.get('data_seconds', float('nan')):.2f} s; "
            f"first epoch done {first[0]['elapsed_s']:.2f} s after its K started "
            f"(model build + XLA compile + step)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", default="one_d")
    parser.add_argument("--keep", help="use (and keep) this data folder")
    args = parser.parse_args()
    data_dir = Path(args.keep or tempfile.mkdtemp(prefix="gato-bench-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    proc, url = start_server(data_dir)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            for i in range(args.runs):
                r = one_run(browser, url, args.scenario)
                sizes = r["update_bytes"] or [0]
                print(f"run {i + 1} ({args.scenario}, Quick demo): "
                      f"click -> first epoch drawn {r['first_epoch_s']:.2f} s | "
                      f"end to end {r['end_to_end_s']:.2f} s | "
                      f"updates {len(sizes)}, bytes median {statistics.median(sizes):.0f} "
                      f"max {max(sizes)} | {r['status']}", flush=True)
                print(breakdown(data_dir, r["run_id"]), flush=True)
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    try:
        print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
