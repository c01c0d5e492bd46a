"""plotly.js comes from its content-hashed URL, cached for a year (assets/plotly_url.js):
pages draw with it, a second tab gets it from the browser cache without asking the server,
and the fixed name Dash would use still answers (for a page without the script)."""
from __future__ import annotations

import hashlib
import urllib.request

import pytest

from gato_dash.app import PLOTLYJS_BUNDLE, PLOTLYJS_PATH
from test_results import graph_selector, store_synthetic_run, wait_drawn

pytestmark = pytest.mark.browser

PLOTLY_REQUESTS = """() => performance.getEntriesByType('resource')
    .filter(e => e.name.includes('plotly') && e.name.endsWith('.js'))
    .map(e => [new URL(e.name).pathname, e.transferSize])"""


def test_graphs_load_plotlyjs_from_its_hashed_url_once(server, browser):
    run_id, _ = store_synthetic_run(server, "hashed plotly.js")
    digest = hashlib.sha1(PLOTLYJS_BUNDLE.read_bytes()).hexdigest()[:16]
    hashed = f"/_gato/plotly-{digest}.min.js"
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{server.url}/runs/{run_id}")
        wait_drawn(page, graph_selector("kfig", "category_map"))
        loaded = page.evaluate(PLOTLY_REQUESTS)
        assert [path for path, _ in loaded] == [hashed]
        assert page.evaluate("window.Plotly.version") in PLOTLYJS_BUNDLE.name

        # another tab: the browser's cache answers (0 bytes transferred, not even a 304)
        second = context.new_page()
        second.goto(f"{server.url}/runs/{run_id}")
        wait_drawn(second, graph_selector("kfig", "category_map"))
        assert second.evaluate(PLOTLY_REQUESTS) == [[hashed, 0]]
    finally:
        context.close()

    with urllib.request.urlopen(server.url + hashed) as response:
        assert "immutable" in response.headers["Cache-Control"]
        assert hashlib.sha1(response.read()).hexdigest()[:16] == digest
    with urllib.request.urlopen(f"{server.url}/{PLOTLYJS_PATH}") as response:
        assert hashlib.sha1(response.read()).hexdigest()[:16] == digest
