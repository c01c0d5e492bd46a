"""The first page of a visit arrives inside the app's initial layout, prepared while the
browser starts.

Dash Pages sends every address the same empty page container. Only once dash-renderer has
started (about 0.4 s on this 2-core machine) does dcc.Location report the address, in a
callback, and a second request brings the page's layout: two round trips in a row, with the
server idle while the browser boots and the browser idle while the server builds the page.

Here the page request itself (the HTML) starts building that page's layout on a worker
thread; the browser's request for the initial layout (``/_dash-layout``, which names the
page in its ``Referer``) picks it up, so the page comes in the first answer and no routing
callback is needed. The dcc.Location is given the address the page was built for, so on
mounting it reports nothing (see ``container``); later navigation goes through Dash's router
as before.

Anything unexpected (no Referer, a page whose layout fails, a Dash without these internals)
falls back to the plain container and Dash's own routing, which is what ran before.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urlsplit

import dash
from dash import dcc, html

log = logging.getLogger(__name__)

#: A page built for an HTML request and never asked for (the address was fetched without a
#: browser, or the browser gave up) is dropped after this long.
UNCLAIMED_S = 30.0
#: How long the initial layout waits for a page being built; then Dash's router builds it.
WAIT_S = 30.0
#: Pages kept waiting at most (a burst of requests without browsers must not pile up).
MAX_PENDING = 16

try:  # Dash Pages internals: the ids of page_container and the router's page lookup
    from dash._pages import _parse_query_string, _path_to_page
    from dash.dash import _ID_CONTENT, _ID_DUMMY, _ID_LOCATION, _ID_STORE
except ImportError:  # another Dash: routing stays Dash's own
    _path_to_page = None


def supported() -> bool:
    return _path_to_page is not None


def build_page(app: dash.Dash, pathname: str, search: str):
    """(layout, title) of the page at pathname?search, as Dash's router callback makes it."""
    page, path_variables = _path_to_page(app.strip_relative_path(pathname))
    if not page:
        return None  # Dash's router draws its 404 page
    layout, title = page.get("layout", ""), page["title"]
    if callable(layout):
        layout = layout(**{**(path_variables or {}), **_parse_query_string(search)})
    if callable(title):
        title = title(**(path_variables or {}))
    return layout, title


def container(built=None, pathname: str = "", search: str = "", href: str = "") -> html.Div:
    """dash.page_container, or, when the page is known, its twin holding ``built`` =
    (layout, title).

    dcc.Location reports window.location on mounting only for props it was not given, so
    with pathname, search, hash and href all set it stays quiet and the router callback
    does not run: the page is already there.
    """
    if built is None:
        return dash.page_container  # Dash's own: its router fills it
    layout, title = built
    return html.Div([
        dcc.Location(id=_ID_LOCATION, refresh="callback-nav", pathname=pathname,
                     search=search, hash="", href=href),
        html.Div(layout, id=_ID_CONTENT, disable_n_clicks=True),
        dcc.Store(id=_ID_STORE, data={"title": title}),
        html.Div(id=_ID_DUMMY, disable_n_clicks=True),
    ])


class FirstPages:
    """Pages being built for HTML requests, claimed by the initial-layout request after."""

    def __init__(self, app: dash.Dash, workers: int = 2):
        self.app = app
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="first-page")
        self._lock = threading.Lock()
        self._pending: dict[str, list[tuple[float, Future]]] = {}

    # ----- the HTML request ------------------------------------------------------------
    def start(self, key: str, pathname: str, search: str) -> bool:
        """Build the page at pathname?search for the browser that asked for ``key``."""
        if not _path_to_page(self.app.strip_relative_path(pathname))[0]:
            return False  # not a page (a favicon, a typo): nothing worth building ahead
        with self._lock:
            self._drop_unclaimed()
            if sum(len(waiting) for waiting in self._pending.values()) >= MAX_PENDING:
                return False
            future = self._pool.submit(self._build_in_context, pathname, search)
            self._pending.setdefault(key, []).append((time.monotonic(), future))
        return True

    def _build_in_context(self, pathname: str, search: str):
        # Page layouts may use Flask's or Dash's request helpers, as in the router callback.
        with self.app.server.test_request_context(pathname + search):
            return build_page(self.app, pathname, search)

    def _drop_unclaimed(self) -> None:
        limit = time.monotonic() - UNCLAIMED_S
        for key in list(self._pending):
            kept = [(t, f) for t, f in self._pending[key] if t > limit]
            if kept:
                self._pending[key] = kept
            else:
                del self._pending[key]

    # ----- the initial-layout request ----------------------------------------------------
    def claim(self, key: str) -> Future | None:
        with self._lock:
            self._drop_unclaimed()
            waiting = self._pending.get(key)
            if not waiting:
                return None
            _, future = waiting.pop(0)  # one page load, one claim (the run page's token)
            if not waiting:
                del self._pending[key]
            return future

    def container_for(self, referrer: str | None) -> html.Div:
        """The page container for a browser whose page is at ``referrer``."""
        if not referrer:
            return container()
        parts = urlsplit(referrer)
        pathname, search = parts.path or "/", f"?{parts.query}" if parts.query else ""
        try:
            future = self.claim(pathname + search)
            built = (future.result(timeout=WAIT_S) if future is not None
                     else self._build_in_context(pathname, search))
        except Exception:  # Dash's router builds it again and reports the problem as before
            log.exception("building the first page for %s failed", pathname + search)
            return container()
        if built is None:
            return container()
        return container(built, pathname, search, href=referrer)


def install(app: dash.Dash):
    """Start building pages on HTML requests; returns the page container function for the
    app's layout (Dash calls the layout for ``/_dash-layout``)."""
    from flask import has_request_context, request

    if not supported():
        return container
    pages = FirstPages(app)
    prefix = app.config.routes_pathname_prefix
    index_endpoints = {prefix, prefix + "<path:path>"}  # Dash's index and catch-all routes
    layout_path = prefix + "_dash-layout"

    @app.server.before_request
    def build_first_page():
        if (request.method != "GET" or request.endpoint not in index_endpoints
                or not request.accept_mimetypes.accept_html):
            return
        # The address as the browser wrote it, which is what its Referer will carry.
        raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
        parts = urlsplit(raw) if raw else None
        if parts is None or not parts.path:
            return
        search = f"?{parts.query}" if parts.query else ""
        try:
            pages.start(parts.path + search, parts.path, search)
        except Exception:  # the page is still built when the browser asks for it
            log.exception("starting the first page for %s failed", raw)

    @app.server.after_request
    def never_cache_the_layout(response):
        # The initial layout now depends on the page asking (its Referer).
        if request.path == layout_path:
            response.headers["Cache-Control"] = "no-store"
            response.vary.add("Referer")
        return response

    def page_container():
        if has_request_context() and request.path == layout_path:
            return pages.container_for(request.referrer)
        return container()

    return page_container
