"""Pages opened by their address: Dash Pages routes every address, however long.

The first page of a visit used to be chosen from the Referer header, which browsers cut
at about 4 KB, so a long address opened Home instead of its page.
"""
from __future__ import annotations

from urllib.parse import urlencode

import pytest

from test_results import store_synthetic_run, wait_drawn

pytestmark = pytest.mark.browser


def test_a_long_compare_address_opens_the_compare_view(server, page):
    ids = [store_synthetic_run(server, f"long address {i}")[0] for i in range(2)]
    # a view the compare page understands, and more than 6 KB of query it ignores
    query = urlencode({"runs": ",".join(ids), "tab": "history",
                       "padding": "x" * 6200})
    url = f"{server.url}/compare?{query}"
    assert len(url) > 6000
    page.goto(url)
    wait_drawn(page, "#compare-history-graph")
    assert "long address 1" in page.locator("#compare-table").inner_text()
    assert page.title() == "Compare runs · GATO"


def test_pages_open_by_address_and_back_works(server, page):
    run_id = store_synthetic_run(server, "by address")[0]
    page.goto(f"{server.url}/runs/{run_id}")
    page.locator("#results-section").wait_for()
    page.wait_for_function("() => document.title === 'by address · finished · GATO'")

    page.locator(".navbar a", has_text="Runs").click()
    page.locator("#runs-table").wait_for()
    assert page.url == f"{server.url}/runs"
    page.go_back()
    page.locator("#results-section").wait_for()
    assert page.url == f"{server.url}/runs/{run_id}"
