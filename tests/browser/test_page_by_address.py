"""A page opened by its address arrives in the initial layout (gato_dash.first_page): no
routing callback runs for it, and navigating on from it still goes through Dash's router."""
from __future__ import annotations

import json
import urllib.request

import pytest

from test_results import store_synthetic_run, wait_drawn

pytestmark = pytest.mark.browser


def routing_requests(page) -> list:
    """Callback requests whose output is the page content (Dash Pages' router)."""
    seen = []

    def on_request(request):
        if "_dash-update-component" in request.url and "_pages_content" in (
                request.post_data or ""):
            seen.append(json.loads(request.post_data)["inputs"])

    page.on("request", on_request)
    return seen


def test_a_page_opened_by_its_address_needs_no_routing_round_trip(server, page):
    ids = [store_synthetic_run(server, f"first page {i}")[0] for i in range(2)]
    compare_url = f"{server.url}/compare?runs={','.join(ids)}"
    routed = routing_requests(page)

    page.goto(compare_url)
    wait_drawn(page, "#compare-history-graph")
    assert "first page 1" in page.locator("#compare-table").inner_text()
    assert routed == []
    assert page.title() == "Compare runs · GATO"

    # on from there, pages come through the router as before, and back works
    page.locator(".navbar a", has_text="Runs").click()
    page.locator("#runs-table").wait_for()
    assert page.url == f"{server.url}/runs"
    assert len(routed) == 1
    page.go_back()
    wait_drawn(page, "#compare-history-graph")
    assert page.url == compare_url
    assert "first page 0" in page.locator("#compare-table").inner_text()

    # a run page opened by its address: drawn from the initial layout too
    page.goto(f"{server.url}/runs/{ids[0]}")
    page.locator("#results-section").wait_for()
    assert page.title().startswith("Run")
    assert len(routed) == 2  # only the click above


def test_the_initial_layout_is_never_cached(server):
    request = urllib.request.Request(f"{server.url}/_dash-layout",
                                     headers={"Referer": f"{server.url}/runs"})
    with urllib.request.urlopen(request) as response:
        assert response.headers["Cache-Control"] == "no-store"
        assert "Referer" in response.headers["Vary"]
        layout = json.loads(response.read())
    # the runs page is in it, built for the address the Referer names
    assert '"runs-table"' in json.dumps(layout)
