"""Fixtures for the browser tests: a real `python app.py` server and headless Chromium.

Fixtures other test modules can use:

- ``server``       one server for the whole session (its own temporary data folder).
                   ``server.url``, ``server.data_dir``, ``server.store()`` (a RunStore on the
                   same SQLite file), ``server.restart()`` (same port, same data folder),
                   ``server.log()`` (its stdout/stderr so far, for assertion messages).
- ``fresh_server`` the same, but a new server and data folder for one test.
- ``browser``      one headless Chromium (Debian's /usr/bin/chromium) for the session.
- ``page``         a new browser context + page per test; default timeout 15 s.
- ``run_quick``    ``run_quick(page, server, name=None, **config_overrides) -> run_id``:
                   stores a small one_d run, opens its page (the server trains it) and
                   waits until it has finished. Use it to get a finished run to look at.
- ``quick_config`` a copy of that small config; ``wait_status`` the store-polling helper
                   ``wait_status(server, run_id, statuses, timeout_s) -> run dict``.

The server trains every queued run, whether or not a page shows it; a run that the test
stores itself (``server.store().create_run(config)``, another process) is taken after
about 3-4 s (FOREIGN_GRACE_S in gato_dash.runtime.dispatch).

Every test in tests/browser is marked ``browser`` automatically (``-m "not browser"``
deselects them); marking them explicitly as well is fine.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("GATO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
#: Small enough to train in a few seconds on a shared 2-core machine.
QUICK_CONFIG = {
    "scenario": "one_d",
    "n_signal": 2000,
    "n_bkg": 6000,
    "epochs": 30,
    "n_cats": [3],
    "snapshot_interval": 10,
}
SERVER_START_TIMEOUT_S = 90


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GatoServer:
    """`python app.py` in its own process group (so its job processes stop with it)."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self._log_path = self.data_dir / "server.log"
        self._log_file = None

    # ----- lifecycle ---------------------------------------------------------------
    def start(self) -> "GatoServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self._log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "app.py"), "--port", str(self.port),
             "--data-dir", str(self.data_dir)],
            cwd=REPO, env=env, stdout=self._log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_until_up()
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # The process group holds the server and the training jobs it forked.
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        try:  # job processes that outlived the server's exit
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc = None
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    def restart(self) -> "GatoServer":
        """Stop and start again on the same port and data folder (like a server reboot)."""
        self.stop()
        return self.start()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"app.py did not answer within {SERVER_START_TIMEOUT_S} s:\n{self.log()}")

    # ----- helpers -----------------------------------------------------------------
    def store(self):
        from gato_dash.runtime.run_store import RunStore

        return RunStore(self.data_dir / "runs.sqlite")

    def log(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return ""


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = GatoServer(tmp_path_factory.mktemp("gato_data")).start()
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server(tmp_path):
    srv = GatoServer(tmp_path / "gato_data").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set GATO_CHROMIUM)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    # A new context per test = a fresh profile (no cookies, cache or local storage shared).
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def wait_for_status(server: GatoServer, run_id: str, statuses, timeout_s: float = 60.0) -> dict:
    """Poll the store until the run's status is one of ``statuses``; return the run."""
    statuses = {statuses} if isinstance(statuses, str) else set(statuses)
    store = server.store()
    deadline = time.monotonic() + timeout_s
    run = None
    while time.monotonic() < deadline:
        run = store.get_run(run_id)
        if run and run["status"] in statuses:
            return run
        time.sleep(0.2)
    raise AssertionError(
        f"run {run_id} did not reach {sorted(statuses)} within {timeout_s} s "
        f"(last: {run and run['status']!r} {run and run['message']!r})\n{server.log()}"
    )


@pytest.fixture
def run_quick():
    def _run(page, server: GatoServer, name: str | None = None, timeout_s: float = 90.0,
             **overrides) -> str:
        run_id = server.store().create_run({**QUICK_CONFIG, **overrides}, name=name)
        page.goto(f"{server.url}/runs/{run_id}")
        wait_for_status(server, run_id, {"finished", "cancelled", "diverged", "failed"}, timeout_s)
        return run_id

    return _run


@pytest.fixture
def quick_config() -> dict:
    """A copy of QUICK_CONFIG (one_d, 2000/6000 events, 30 epochs, K=3)."""
    return dict(QUICK_CONFIG)


@pytest.fixture
def wait_status():
    """``wait_status(server, run_id, statuses, timeout_s=60) -> run dict`` (see wait_for_status)."""
    return wait_for_status
