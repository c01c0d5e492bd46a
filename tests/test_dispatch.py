"""Runs start on the server when they are created, with no browser at all (embedded mode).

The app is built with ``create_app`` in this process; its job runner (a thread) starts
each queued run in a process from the fork server, with the real engine on tiny samples.
No page is ever opened: the run page only reads the store.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest

from gato_dash import live, runtime
from gato_dash.app import create_app
from gato_dash.runtime import dispatch
from gato_dash.runtime.run_store import RunStore
from helpers.waiting import wait_until

TINY = {"scenario": "one_d", "n_signal": 2000, "n_bkg": 6000, "epochs": 20, "n_cats": [3],
        "snapshot_interval": 10}
#: Long enough to be caught running; every test that starts one cancels it.
LONG = {**TINY, "epochs": 100000}
WAIT_S = 150  # the first job of the session starts the fork server (imports TensorFlow)


@pytest.fixture(autouse=True)
def no_dispatcher_left_behind():
    """The dispatcher is process-wide: other test modules must not inherit a runner."""
    yield
    dispatch.configure(dispatch.NoDispatch())


def ended(store, run_id):
    run = store.get_run(run_id)
    return run if run and run["status"] not in live.ACTIVE else None


def new_run_form(config: dict, name: str):
    """The New-run form's callback, as the browser's click calls it: (redirect, problems)."""
    page = sys.modules["gato_dash.pages.new_run"]
    values = {k: ",".join(map(str, v)) if isinstance(v, list) else str(v)
              for k, v in config.items() if k != "scenario"}
    ids = [{"type": "cfg", "name": k} for k in values]
    return page.start_run(1, list(values.values()), ids, config["scenario"], name)


def test_a_run_created_on_the_form_trains_with_no_browser(tmp_path):
    create_app(tmp_path / "data")
    href, _ = new_run_form(TINY, "nobody looks")
    run_id = href.rsplit("/", 1)[-1]
    store = runtime.store()
    run = wait_until(lambda: ended(store, run_id), WAIT_S, "the run to end")
    assert run["status"] == "finished", run["message"]
    assert run["name"] == "nobody looks"
    assert [r["epoch"] for r in store.epochs(run_id)] == list(range(20))
    assert store.result_ks(run_id) == [3]


def test_runs_left_queued_start_in_order_one_at_a_time_when_the_app_starts(tmp_path):
    """Queued before the server (re)started: taken at start-up, oldest first, and with the
    default --max-jobs 1 the second starts only once the first has ended."""
    data_dir = tmp_path / "data"
    before = RunStore(data_dir / "runs.sqlite", data_dir)
    first, second = before.create_run(TINY, name="first"), before.create_run(TINY, name="2nd")
    before.close()
    create_app(data_dir)
    store = runtime.store()
    runs = [wait_until(lambda r=r: ended(store, r), WAIT_S, f"run {r} to end")
            for r in (first, second)]
    assert [r["status"] for r in runs] == ["finished", "finished"]
    assert runs[0]["started"] < runs[1]["started"]
    assert runs[1]["started"] >= runs[0]["finished"] - 0.01  # never two at once


def test_the_bound_on_jobs_holds_and_a_freed_slot_goes_to_the_next_run(tmp_path):
    create_app(tmp_path / "data", max_jobs=2)
    store = runtime.store()
    runs = [new_run_form(LONG, f"long {i}")[0].rsplit("/", 1)[-1] for i in range(3)]
    try:
        def statuses():
            return [store.run_status(r)["status"] for r in runs]

        wait_until(lambda: statuses()[:2] == ["running", "running"], WAIT_S, "two runs running")
        for _ in range(20):  # 2 s of scans: the third waits for a free slot
            assert statuses()[2] == "queued"
            time.sleep(0.1)
        queued_page = sys.modules["gato_dash.pages.run"].render_update(
            live.poll(store, live.initial_state(runs[2])))["status"]
        assert "Waiting for a free job slot (2 of 2 in use" in str(queued_page)
        store.request_cancel(runs[0])
        wait_until(lambda: store.run_status(runs[2])["status"] == "running",
                   WAIT_S, "the third run to take the freed slot")
        assert store.run_status(runs[0])["status"] == "cancelled"
    finally:
        for run_id in runs:
            store.request_cancel(run_id)
        for run_id in runs:
            wait_until(lambda r=run_id: ended(store, r), timeout_s=30, what="cancelled")


def test_a_job_process_that_dies_leaves_its_run_interrupted_and_the_next_one_starts(tmp_path):
    create_app(tmp_path / "data")
    store = runtime.store()
    doomed = new_run_form(LONG, "killed")[0].rsplit("/", 1)[-1]
    after = new_run_form(TINY, "after")[0].rsplit("/", 1)[-1]
    wait_until(lambda: store.run_status(doomed)["epochs_done"] >= 3, WAIT_S, "a training run")
    assert store.run_status(after)["status"] == "queued"
    job_pid = dispatch.current().jobs[doomed].pid
    os.kill(job_pid, signal.SIGKILL)
    run = wait_until(lambda: ended(store, doomed), timeout_s=10, what="the killed run to end")
    assert run["status"] == "interrupted"
    assert wait_until(lambda: ended(store, after), WAIT_S, "the next run")["status"] == "finished"


def test_viewer_mode_starts_nothing_not_even_by_a_crafted_request(tmp_path):
    """--viewer: a queued run stays queued; the training callback that the run page once
    carried is gone, so a crafted request for it trains nothing."""
    data_dir = tmp_path / "data"
    store = RunStore(data_dir / "runs.sqlite", data_dir)
    run_id = store.create_run(TINY)
    app = create_app(data_dir, runtime.Settings(read_only=True))
    client = app.server.test_client()
    client.get("/")
    job = {"run": run_id, "load": "crafted"}
    body = {"output": '{"load":"crafted","run":"%s","type":"run-job-result"}.data' % run_id,
            "outputs": {"id": {"type": "run-job-result", **job}, "property": "data"},
            "inputs": [{"id": {"type": "run-job", **job}, "property": "data", "value": job}],
            "changedPropIds": [json.dumps({"type": "run-job", **job}) + ".data"],
            "state": []}
    response = client.post("/_dash-update-component", json=body)
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)[:300]
    assert not any("run-job" in key for key in app.callback_map)
    with pytest.raises(runtime.ReadOnlyError):  # the New-run form's write guard
        new_run_form(TINY, "refused")
    time.sleep(dispatch.FOREIGN_GRACE_S + 2 * dispatch.SCAN_S)
    assert store.get_run(run_id)["status"] == "queued"
    assert [r["id"] for r in store.list_runs()] == [run_id]
