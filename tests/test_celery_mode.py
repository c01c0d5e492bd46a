"""Several machines: training jobs on Celery workers (Redis), runs in a shared PostgreSQL store.

Throwaway Redis and PostgreSQL servers on loopback ports (tests/local_servers.py), and two
real workers started with the documented command (``celery -A gato_dash.worker worker
--concurrency 1``). Jobs are sent the way Dash sends them: through the CeleryManager and
the Celery task that the training callback registered (gato_dash.training_callback), so a
mismatch between what the web process sends and what the worker knows fails here. Runs use
the real engine on tiny samples. The last test kills a worker: keep it last.
"""
from __future__ import annotations

import importlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import local_servers

pytest.importorskip("celery", reason="the Celery mode needs dash[celery] (requirements.txt)")
pytest.importorskip("psycopg", reason="the shared run store needs psycopg (requirements.txt)")

from dash import CeleryManager  # noqa: E402
from dash.background_callback.managers import BaseBackgroundCallbackManager  # noqa: E402

from gato_dash import runtime  # noqa: E402
from gato_dash import live  # noqa: E402
from gato_dash.runtime import backends  # noqa: E402
from gato_dash.runtime import run_store as store_module  # noqa: E402
from gato_dash import training_callback  # noqa: E402,F401  (what the run page imports)
from gato_dash.runtime.jobs import start_training_job  # noqa: E402
from gato_dash.runtime.run_store import RunStore  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHORT = {"scenario": "one_d", "n_signal": 2000, "n_bkg": 6000, "epochs": 600, "n_cats": [3],
         "snapshot_interval": 50}
#: Long enough to be caught running; every test that starts one stops it.
LONG = {**SHORT, "epochs": 100000}
WAIT_S = 120  # a worker's first job imports TensorFlow and compiles the training step


class Workers:
    """Celery worker processes, each in its own process group (its pool children too)."""

    def __init__(self, env: dict, log_dir: Path):
        self.env, self.log_dir = env, log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> None:
        self.procs[name] = local_servers.start_worker(name, self.env,
                                                      self.log_dir / f"{name}.log", REPO)

    def wait_listening(self, app, names, timeout_s=60.0) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            listening = backends.listening_workers(app, timeout_s=0.5)
            if all(any(w.startswith(f"{n}@") for w in listening) for n in names):
                return listening
            for name, proc in self.procs.items():
                assert proc.poll() is None, f"worker {name} exited: {self.log(name)}"
        raise AssertionError(f"workers {names} did not answer within {timeout_s} s")

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]

    def kill_group_of(self, pid: int) -> None:
        os.killpg(os.getpgid(pid), signal.SIGKILL)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            local_servers.kill_worker(proc)


@pytest.fixture(scope="module")
def cluster(redis_server, postgres_server, tmp_path_factory):
    """Redis, a shared PostgreSQL store, a shared data folder and two workers."""
    db_name = f"celery_{uuid.uuid4().hex[:8]}"
    store_url = local_servers.create_database(postgres_server, db_name)
    data_dir = tmp_path_factory.mktemp("shared-data")
    env = {**os.environ, backends.BROKER_ENV: redis_server, backends.STORE_ENV: store_url,
           backends.DATA_DIR_ENV: str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop(backends.RESULT_BACKEND_ENV, None)
    workers = Workers(env, tmp_path_factory.mktemp("worker-logs"))
    # the web process's side: its own Celery app and manager, as create_app builds them
    app = backends.make_celery(redis_server)
    manager = CeleryManager(app)
    store = RunStore(store_url, data_dir)
    try:
        workers.start("w1")
        workers.start("w2")
        workers.wait_listening(app, ["w1", "w2"])
        yield type("Cluster", (), dict(app=app, manager=manager, store=store, workers=workers,
                                        broker=redis_server, store_url=store_url,
                                        data_dir=data_dir))
    finally:
        workers.stop_all()
        store.close()
        local_servers.drop_database(postgres_server, db_name)


def send_job(manager, run_id: str) -> tuple[str, str]:
    """What Dash does when the run page's job store fires: (cache key, task id)."""
    key = next(k for k, fn, _ in BaseBackgroundCallbackManager.functions
               if fn is start_training_job)
    args = [{"run": run_id, "load": uuid.uuid4().hex}]
    cache_key = manager.build_cache_key(start_training_job, args, [], None)
    return cache_key, manager.call_job_fn(cache_key, manager.func_registry[key], args, {})


def wait_result(manager, cache_key: str, task_id: str, timeout_s: float = WAIT_S):
    deadline = time.monotonic() + timeout_s
    while not manager.result_ready(cache_key):
        assert time.monotonic() < deadline, "the job's result did not arrive"
        time.sleep(0.1)
    return manager.get_result(cache_key, task_id)


def wait_until(check, timeout_s: float = WAIT_S, what: str = "condition", interval=0.05):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {timeout_s} s"
        time.sleep(interval)


# ----- backend selection, no servers needed ----------------------------------------------------------
def test_backends_choose_embedded_unless_a_broker_is_given(tmp_path, monkeypatch):
    for name in (backends.BROKER_ENV, backends.STORE_ENV):
        monkeypatch.delenv(name, raising=False)
    assert backends.resolve_broker() is None
    assert runtime.resolve_store(tmp_path) == str(tmp_path / "runs.sqlite")
    monkeypatch.setenv(backends.BROKER_ENV, "redis://queue:6379/0")
    monkeypatch.setenv(backends.STORE_ENV, "postgresql://gato@db:5432/gato")
    assert backends.resolve_broker() == "redis://queue:6379/0"
    assert backends.resolve_broker("redis://other:6379/1") == "redis://other:6379/1"  # flag wins
    assert runtime.resolve_store(tmp_path) == "postgresql://gato@db:5432/gato"
    with pytest.raises(backends.BackendError, match="give a Redis URL"):
        backends.resolve_broker("amqp://guest@rabbit//")
    with pytest.raises(backends.BackendError, match="postgresql://USER@HOST"):
        runtime.resolve_store(tmp_path, "postgre://gato@db/gato")


def test_bad_broker_flag_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "app.py", "--data-dir", str(tmp_path),
                           "--broker", "amqp://guest@rabbit//"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "give a Redis URL" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_worker_module_needs_a_broker_and_imports_no_pages_or_tensorflow(tmp_path):
    check = ("import sys, gato_dash.worker as w; "
             "print(sorted(m for m in sys.modules if m == 'tensorflow' or "
             "m.startswith('gato_dash.pages')), type(w.app).__name__)")
    env = {**os.environ, "PYTHONPATH": str(REPO), backends.DATA_DIR_ENV: str(tmp_path)}
    env.pop(backends.BROKER_ENV, None)
    refused = subprocess.run([sys.executable, "-c", check], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and f"${backends.BROKER_ENV}" in refused.stderr
    env[backends.BROKER_ENV] = "redis://127.0.0.1:1/0"  # never contacted on import
    ok = subprocess.run([sys.executable, "-c", check], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["[]", "Celery"]


# ----- with Redis, PostgreSQL and two workers --------------------------------------------------
def test_no_worker_listening_is_said_plainly(redis_server):
    """A queue nobody consumes (another Redis database): no names, and the message says
    how to start a worker; an unreachable broker is said so instead of raising."""
    lonely = backends.make_celery(redis_server.rsplit("/", 1)[0] + "/7")
    assert backends.listening_workers(lonely, timeout_s=0.3) == []
    message = backends.queue_message(lonely)
    assert message.startswith("No worker is listening") and backends.WORKER_COMMAND in message
    unreachable = backends.make_celery("redis://127.0.0.1:1/0")
    unreachable.conf.broker_connection_timeout = 0.5
    unreachable.conf.broker_connection_max_retries = 0
    assert "cannot be reached" in backends.queue_message(unreachable)


def test_workers_are_seen(cluster):
    listening = backends.listening_workers(cluster.app)
    assert sorted(name.split("@")[0] for name in listening) == ["w1", "w2"]
    assert "2 listening" in backends.queue_message(cluster.app)


def test_run_trains_on_a_worker_and_streams(cluster):
    store = cluster.store
    run_id = store.create_run(SHORT)
    cache_key, task_id = send_job(cluster.manager, run_id)
    # streaming: the store shows epochs while the run is still running
    seen = wait_until(lambda: (lambda r: r if r["status"] == "running" and
                               0 < r["epochs_done"] < SHORT["epochs"] else None)(
                          store.run_status(run_id)), what="a partly trained run")
    assert len(store.epochs(run_id, snapshots=False)) >= seen["epochs_done"] - 1
    # a restarted web process (new Celery app and manager, new store connection) loses
    # nothing: it reads the job's result and the run
    manager = CeleryManager(backends.make_celery(cluster.broker))
    assert wait_result(manager, cache_key, task_id) == "finished"
    fresh = RunStore(cluster.store_url, cluster.data_dir)
    run = fresh.get_run(run_id)
    assert run["status"] == "finished" and run["message"] == ""
    epochs = fresh.epochs(run_id)
    assert [r["epoch"] for r in epochs] == list(range(SHORT["epochs"]))
    assert [r["epoch"] for r in epochs if r["snapshot"]] == list(range(0, 600, 50)) + [599]
    (result,) = fresh.results(run_id)
    assert result["status"] == "finished" and result["significance"]["signal"] > 0
    # the worker cached its event sample in the shared data folder
    assert any((cluster.data_dir / "events").iterdir())
    fresh.close()


def test_web_app_sends_the_run_page_job_to_a_worker(cluster, monkeypatch):
    """The whole web path: an app built with --broker/--store answers the run page's
    background-callback request as Dash's renderer makes it, a worker trains the run, and
    the renderer's follow-up requests get the job's result."""
    from gato_dash.app import create_app

    for name in (backends.STORE_ENV, backends.DATA_DIR_ENV):
        monkeypatch.setenv(name, "restored after the test")  # create_app exports its own
    # the web process's Celery app is process-wide: later tests must not inherit it
    monkeypatch.setattr(backends, "_celery_app", None)
    monkeypatch.setattr(backends, "_ping_cache", None)
    monkeypatch.setattr(runtime._State, "store", None)
    monkeypatch.setattr(runtime._State, "data_dir", None)
    # Dash moves callbacks registered at import into the first app that starts in a
    # process; in a pytest process other apps came first, so register the job again.
    importlib.reload(training_callback)
    app = create_app(cluster.data_dir, broker=cluster.broker, store=cluster.store_url)
    assert isinstance(app._background_manager, CeleryManager)
    assert backends.celery_app() is not None
    client = app.server.test_client()
    page = client.get("/").get_data(as_text=True)
    end_id = json.loads(re.search(r'<script id="_dash-config" type="application/json">'
                                  r'(.*?)</script>', page, re.S).group(1))["end_id"]
    (output,) = [k for k in app.callback_map if training_callback.JOB_OUTPUT in k]
    run_id = cluster.store.create_run({**SHORT, "epochs": 50})
    job = {"run": run_id, "load": uuid.uuid4().hex}
    body = {"output": output,
            "outputs": {"id": {"type": training_callback.JOB_OUTPUT, **job}, "property": "data"},
            "inputs": [{"id": {"type": training_callback.JOB_INPUT, **job}, "property": "data",
                        "value": job}],
            "changedPropIds": [json.dumps({"type": training_callback.JOB_INPUT, **job},
                                          sort_keys=True, separators=(",", ":")) + ".data"],
            "state": []}
    first = client.post("/_dash-update-component", query_string={"endId": end_id}, json=body)
    assert first.status_code == 200, first.get_data(as_text=True)
    handles = first.get_json()
    assert {"cacheKey", "job"} <= set(handles)
    deadline = time.monotonic() + WAIT_S
    while True:  # the renderer asks "done?" every `interval`
        answer = client.post("/_dash-update-component", json=body, query_string={
            "endId": end_id, "cacheKey": handles["cacheKey"], "job": handles["job"]})
        data = answer.get_json() if answer.status_code == 200 else None
        if data and "response" in data:
            break
        assert time.monotonic() < deadline, "the worker's result never reached the web app"
        time.sleep(0.2)
    (value,) = [props["data"] for props in data["response"].values()]
    assert value == "finished"
    assert cluster.store.get_run(run_id)["status"] == "finished"
    assert len(cluster.store.epochs(run_id, snapshots=False)) == 50

    # a run that waits in the queue: its page says which workers listen
    queued = cluster.store.create_run(SHORT)
    run_page = sys.modules["gato_dash.pages.run"]
    status_text = run_page.render_update(
        live.poll(cluster.store, live.initial_state(queued)))["status"]
    assert status_text.startswith("Queued") and "2 listening: w1@" in status_text


def test_two_workers_train_two_runs_at_once_and_cancel_from_the_store(cluster):
    store = cluster.store
    runs = [store.create_run(LONG), store.create_run(LONG)]
    for run_id in runs:
        send_job(cluster.manager, run_id)

    def both_training():
        status = [store.run_status(r) for r in runs]
        return all(s["status"] == "running" and s["epochs_done"] > 0 for s in status)

    wait_until(both_training, what="two runs training at the same time")
    pids = {row[0] for row in _raw(store, "SELECT job_pid FROM runs WHERE id IN (?, ?)", runs)}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes
    # cancel from another "web process": a flag in the shared store, no signal
    other_web = RunStore(cluster.store_url, cluster.data_dir)
    assert all(other_web.request_cancel(r) for r in runs)
    for run_id in runs:
        # The store, not Dash's result, is what the page shows: on a loaded machine the
        # job's cancel watchdog may end the worker's pool process (gato_dash.runtime.jobs), and
        # then no result comes back, but the run is marked cancelled all the same.
        run = wait_until(lambda: (lambda r: r if r["status"] != "running" else None)(
            store.get_run(run_id)), timeout_s=60, what="the cancelled run to end")
        assert run["status"] == "cancelled" and run["message"].startswith("cancelled ")
        kept = store.epochs(run_id, snapshots=False)
        assert len(kept) == run["epochs_done"] > 0  # the epochs so far are kept
    other_web.close()


def test_killed_worker_leaves_the_run_interrupted(cluster, monkeypatch):
    """kill -9 of a worker (and its pool process) mid-run: the web side, which cannot see
    that machine's processes, marks the run interrupted once the heartbeat is older than
    the timeout, with the epochs so far kept. The timeout is shortened to keep this quick."""
    store = cluster.store
    run_id = store.create_run(LONG)
    send_job(cluster.manager, run_id)
    wait_until(lambda: store.run_status(run_id)["epochs_done"] >= 3, what="a training run")
    (job_pid,), = _raw(store, "SELECT job_pid FROM runs WHERE id = ?", [run_id])
    # judge as a web process on another machine would: by the heartbeat alone
    monkeypatch.setattr(store_module, "this_host", lambda: "the-web-machine")
    monkeypatch.setattr(store_module, "HEARTBEAT_TIMEOUT_S", 4.0)
    cluster.workers.kill_group_of(job_pid)
    killed = time.monotonic()
    assert store.run_status(run_id)["status"] == "running"  # the heartbeat is still fresh
    done_at_kill = len(store.epochs(run_id, snapshots=False))
    run = wait_until(lambda: (lambda r: r if r["status"] == "interrupted" else None)(
        store.get_run(run_id)), timeout_s=4.0 + 10, what="interrupted")
    assert time.monotonic() - killed >= 4.0 - 2.0  # by the heartbeat, not earlier
    assert run["message"].startswith(f"interrupted at epoch {run['epochs_done']} of K=3")
    assert len(store.epochs(run_id, snapshots=False)) == run["epochs_done"] >= done_at_kill


def _raw(store, sql, args):
    with store._write() as conn:
        return conn.execute(sql, args).fetchall()
