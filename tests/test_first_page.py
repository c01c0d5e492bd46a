"""The first page of a visit built ahead and sent in the initial layout (gato_dash.first_page).

The page lookup and the page builder are replaced by counting fakes, so these tests see
exactly how many times a page was built and which build each initial layout received.
"""
from __future__ import annotations

import threading

import flask
import pytest

from gato_dash import first_page

PAGES = {"compare": {"path": "/compare"}, "runs/abc": {"path": "/runs/<run_id>"}}


class FakeApp:
    def __init__(self):
        self.server = flask.Flask("first_page_test")

    @staticmethod
    def strip_relative_path(path: str) -> str:
        return path.strip("/")


@pytest.fixture
def built(monkeypatch):
    """Every build_page call, in order; each build returns a new (layout, title)."""
    calls = []
    lock = threading.Lock()

    def fake_build(app, pathname, search):
        with lock:
            calls.append((pathname, search, flask.request.full_path))
            return f"layout #{len(calls)} of {pathname}{search}", f"title of {pathname}"

    monkeypatch.setattr(first_page, "_path_to_page",
                        lambda path: (PAGES.get(path, {}), None))
    monkeypatch.setattr(first_page, "build_page", fake_build)
    return calls


@pytest.fixture
def pages():
    return first_page.FirstPages(FakeApp())


def props(component) -> dict:
    return component.to_plotly_json()["props"]


def parts(container):
    location, content, store, _dummy = container.children
    return props(location), props(content), props(store)


def test_the_initial_layout_gets_the_page_built_for_its_html_request(pages, built):
    assert pages.start("/compare?runs=a,b", "/compare", "?runs=a,b")
    location, content, store = parts(
        pages.container_for("http://127.0.0.1:8050/compare?runs=a,b"))

    assert len(built) == 1
    # built inside a request for the page's own address, as Dash's router callback would be
    assert built[0] == ("/compare", "?runs=a,b", "/compare?runs=a,b")
    assert content["children"] == "layout #1 of /compare?runs=a,b"
    assert store["data"] == {"title": "title of /compare"}
    # dcc.Location gets every prop it would otherwise report on mounting (so it reports
    # nothing and the router callback does not run)
    assert location["pathname"] == "/compare"
    assert location["search"] == "?runs=a,b"
    assert location["hash"] == ""
    assert location["href"] == "http://127.0.0.1:8050/compare?runs=a,b"
    assert location["refresh"] == "callback-nav"


def test_each_built_page_serves_one_page_load(pages, built):
    # two tabs opened on the same address: two builds, one each (the run page's per-load
    # token must not be shared); a third load without an HTML request builds its own
    referrer = "http://127.0.0.1:8050/runs/abc"
    assert pages.start("/runs/abc", "/runs/abc", "")
    assert pages.start("/runs/abc", "/runs/abc", "")
    first = parts(pages.container_for(referrer))[1]["children"]
    second = parts(pages.container_for(referrer))[1]["children"]
    third = parts(pages.container_for(referrer))[1]["children"]
    assert sorted([first, second]) == ["layout #1 of /runs/abc", "layout #2 of /runs/abc"]
    assert third == "layout #3 of /runs/abc"
    assert len(built) == 3


def test_addresses_that_are_not_pages_are_not_built_ahead(pages, built):
    assert not pages.start("/favicon.ico", "/favicon.ico", "")
    assert pages.claim("/favicon.ico") is None
    assert built == []


def test_without_a_referrer_dash_routes_the_page_itself(pages, built):
    location, content, store = parts(pages.container_for(None))
    assert "pathname" not in location and "href" not in location
    assert content.get("children") is None and store.get("data") is None
    assert built == []


def test_an_unknown_address_is_left_to_dash_and_its_404_page(pages, monkeypatch):
    monkeypatch.setattr(first_page, "_path_to_page", lambda path: ({}, None))
    # the real builder: no page for the address means no layout
    assert first_page.build_page(FakeApp(), "/nowhere", "") is None
    monkeypatch.setattr(first_page, "build_page", lambda app, pathname, search: None)
    location, content, _ = parts(pages.container_for("http://127.0.0.1:8050/nowhere"))
    assert "pathname" not in location and content.get("children") is None


def test_a_page_that_fails_to_build_falls_back_to_dash_routing(pages, built, monkeypatch,
                                                              caplog):
    def broken(app, pathname, search):
        raise RuntimeError("store unreadable")

    monkeypatch.setattr(first_page, "build_page", broken)
    assert pages.start("/compare", "/compare", "")
    location, content, _ = parts(pages.container_for("http://127.0.0.1:8050/compare"))
    assert "pathname" not in location and content.get("children") is None
    assert "building the first page for /compare failed" in caplog.text


def test_pages_nobody_claims_are_dropped(pages, built, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(first_page.time, "monotonic", lambda: now[0])
    assert pages.start("/compare", "/compare", "")
    now[0] += first_page.UNCLAIMED_S + 1
    assert pages.claim("/compare") is None


def test_at_most_max_pending_pages_wait(pages, built, monkeypatch):
    monkeypatch.setattr(first_page, "MAX_PENDING", 3)
    started = [pages.start("/compare", "/compare", "") for _ in range(5)]
    assert started == [True, True, True, False, False]
    assert pages.claim("/compare") is not None
    assert pages.start("/compare", "/compare", "")  # a claim makes room again
