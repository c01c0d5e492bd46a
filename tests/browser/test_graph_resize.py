"""assets/plotly_resize.js: Plotly resizes that would not change a graph are skipped, real
ones (the window changes) still reach Plotly.

Without the patch dcc.Graph redraws every graph once or twice right after drawing it
(Plots.resize relayouts even at an unchanged size); a finished run page made 14 such
redraws. The test counts the relayouts Plotly really does.
"""
from __future__ import annotations

import pytest

from test_results import graph_selector, store_synthetic_run, wait_drawn

pytestmark = pytest.mark.browser

# Count every relayout Plotly performs on each graph (a resize that goes through is one).
COUNT_RELAYOUTS = """() => {
    window.__relayouts = 0;
    document.querySelectorAll('.js-plotly-plot').forEach(gd =>
        gd.on('plotly_relayout', () => { window.__relayouts += 1; }));
}"""
WIDTH = """sel => document.querySelector(sel).querySelector('.js-plotly-plot')._fullLayout.width"""
CONTAINER_WIDTH = """sel => document.querySelector(sel).querySelector('.js-plotly-plot')
                               .getBoundingClientRect().width"""


def test_no_redraw_at_the_same_size_but_window_resizes_still_follow(server, page):
    run_id, _ = store_synthetic_run(server, "resize check")
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{server.url}/runs/{run_id}")
    category_map = graph_selector("kfig", "category_map")
    wait_drawn(page, category_map, graph_selector("kfig", "components"),
               graph_selector("kfig", "bias_history"))
    assert page.evaluate("window.Plotly.Plots.resize.gatoPatched") is True

    page.evaluate(COUNT_RELAYOUTS)
    # what dcc.Graph does after each first draw: at the same size it must be a no-op
    page.evaluate("""() => Promise.all([...document.querySelectorAll('.js-plotly-plot')]
                                        .map(gd => window.Plotly.Plots.resize(gd)))""")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__relayouts") == 0

    wide = page.evaluate(WIDTH, category_map)
    assert abs(wide - page.evaluate(CONTAINER_WIDTH, category_map)) <= 1
    page.set_viewport_size({"width": 900, "height": 1000})
    page.wait_for_function(f"sel => ({WIDTH})(sel) < {wide - 100}", arg=category_map)
    assert abs(page.evaluate(WIDTH, category_map) - page.evaluate(CONTAINER_WIDTH, category_map)) <= 1
    assert page.evaluate("window.__relayouts") > 0
