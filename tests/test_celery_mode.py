"""Several machines: training jobs on Celery workers (Redis), runs in a shared PostgreSQL store.

A throwaway Redis (restartable on its port) and PostgreSQL on loopback ports
(tests/local_servers.py), and two real workers started with the documented command
(``celery -A gato_dash.worker worker --concurrency 1``). Runs are sent the way the web app
sends them: ``submit`` of the Celery dispatcher (gato_dash.runtime.dispatch), a wake-up by
task name that the worker's task answers, so a mismatch between what the web process sends
and what the worker knows fails here. Runs use the real engine on tiny samples. The broker
restart comes late and the last test kills a worker: keep them in that order.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

import local_servers

# celery and psycopg are pinned (requirements.txt): no importorskip, so a broken install
# fails these tests (the Celery app and the PostgreSQL store import them) instead of skipping

from dash import html  # noqa: E402

from gato_dash import runtime  # noqa: E402
from gato_dash import live  # noqa: E402
from gato_dash.runtime import backends, dispatch, worker_setup  # noqa: E402
from gato_dash.runtime import liveness  # noqa: E402
from gato_dash.runtime.run_store import RunStore  # noqa: E402
from helpers.waiting import wait_until  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHORT = {"scenario": "one_d", "n_signal": 2000, "n_bkg": 6000, "epochs": 600, "n_cats": [3],
         "snapshot_interval": 50}
#: Long enough to be caught running; every test that starts one stops it.
LONG = {**SHORT, "epochs": 100000}
WAIT_S = 120  # a worker's first job imports TensorFlow and compiles the training step
#: The web side's sweeper re-sends wake-ups sooner than the default 10 s, to keep this quick.
RESEND_S = 3.0


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

    def owner_of(self, job_pid: int) -> str:
        """The worker whose job process ``job_pid`` is (a child of its fork server)."""
        by_pid = {proc.pid: name for name, proc in self.procs.items()}
        pid = job_pid
        while pid > 1 and pid not in by_pid:
            with open(f"/proc/{pid}/stat") as stat:
                pid = int(stat.read().rsplit(")", 1)[1].split()[1])
        return by_pid[pid]

    def kill_group_of(self, pid: int) -> None:
        os.killpg(os.getpgid(pid), signal.SIGKILL)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            local_servers.kill_worker(proc)


class RestartableRedis:
    """A throwaway redis-server that can be stopped and started again on the same port
    (without persistence, like a default install: a restart loses every queued message)."""

    def __init__(self):
        self.port = local_servers.free_port()
        self.folder = tempfile.mkdtemp(prefix="gato-redis-restart-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self) -> "RestartableRedis":
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (bash tools/setup.sh --dev)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.folder, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        def answers() -> bool:
            try:
                return redis.Redis.from_url(self.url).ping()
            except redis.exceptions.ConnectionError:
                return False

        wait_until(answers, 10, "redis-server to answer")
        return self

    def waiting_messages(self, queue: str) -> int:
        """How many messages wait in ``queue`` (kombu keeps a queue as a Redis list)."""
        import redis

        return redis.Redis.from_url(self.url).llen(queue)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(postgres_server, tmp_path_factory):
    """Redis, a shared PostgreSQL store, a shared data folder, two workers, and the web
    side's dispatcher (its sweeper re-sends after RESEND_S)."""
    broker = RestartableRedis().start()
    db_name = f"celery_{uuid.uuid4().hex[:8]}"
    store_url = local_servers.create_database(postgres_server, db_name)
    data_dir = tmp_path_factory.mktemp("shared-data")
    env = {**os.environ, backends.BROKER_ENV: broker.url, backends.STORE_ENV: store_url,
           backends.DATA_DIR_ENV: str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    workers = Workers(env, tmp_path_factory.mktemp("worker-logs"))
    # the web process's side: its own Celery app and dispatcher, as create_app builds them
    app = backends.make_celery(broker.url)
    store = RunStore(store_url, data_dir)
    web = dispatch.CeleryDispatch(app, RunStore(store_url, data_dir), resend_s=RESEND_S,
                                  sweep_s=0.5).start()
    try:
        workers.start("w1")
        workers.start("w2")
        workers.wait_listening(app, ["w1", "w2"])
        yield type("Cluster", (), dict(app=app, web=web, store=store, workers=workers,
                                        broker=broker, store_url=store_url,
                                        data_dir=data_dir))
    finally:
        web.close()
        workers.stop_all()
        store.close()
        broker.remove()
        local_servers.drop_database(postgres_server, db_name)


def status_of(store, run_id: str) -> str:
    return store.run_status(run_id)["status"]


def ended(store, run_id: str):
    run = store.get_run(run_id)
    return run if run["status"] not in live.ACTIVE else None


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


def test_worker_module_needs_a_broker_and_imports_no_dash_pages_or_tensorflow(tmp_path):
    """Dash stays out of the training processes: the worker knows two plain Celery tasks,
    the training wake-up and the operator's engine check."""
    check = ("import sys, gato_dash.worker as w; "
             "print(sorted(m for m in sys.modules if m in ('tensorflow', 'dash') or "
             "m.startswith(('gato_dash.pages', 'dash.'))), type(w.app).__name__, "
             "sorted(t for t in w.app.tasks if not t.startswith('celery.')))")
    env = {**os.environ, "PYTHONPATH": str(REPO), backends.DATA_DIR_ENV: str(tmp_path)}
    env.pop(backends.BROKER_ENV, None)
    refused = subprocess.run([sys.executable, "-c", check], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and f"${backends.BROKER_ENV}" in refused.stderr
    env[backends.BROKER_ENV] = "redis://127.0.0.1:1/0"  # never contacted on import
    ok = subprocess.run([sys.executable, "-c", check], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().split(maxsplit=2) == [
        "[]", "Celery", str(sorted([backends.TASK_NAME, worker_setup.ENGINE_CHECK_TASK]))]


# ----- with Redis, PostgreSQL and two workers --------------------------------------------------
def test_no_worker_listening_is_said_plainly_with_the_command_as_code(redis_server, tmp_path):
    """A queue nobody consumes (another Redis database): no names, and the page says how
    to start a worker, the command shown as code (no markdown backticks: the status line
    is not markdown); an unreachable broker is said so instead of raising."""
    lonely_url = redis_server.rsplit("/", 1)[0] + "/7"
    lonely = backends.make_celery(lonely_url)
    assert backends.listening_workers(lonely, timeout_s=0.3) == []
    from gato_dash.app import create_app

    # a read-only app starts no run, but its queued runs' pages say who would train them
    create_app(tmp_path, runtime.Settings(read_only=True), broker=lonely_url)
    run_page = sys.modules["gato_dash.pages.run"]
    try:
        note = dispatch.queue_message()
    finally:
        dispatch.configure(dispatch.NoDispatch())
    shown = run_page.queued_status("Queued.", note)
    assert note.text.startswith("No worker is listening")
    (code,) = [part for part in shown if isinstance(part, html.Code)]
    assert code.children == backends.WORKER_COMMAND
    texts = [part for part in shown if isinstance(part, str)]
    assert texts[0] == "Queued." and not any("`" in text for text in texts)
    assert "`" not in str(note) and backends.WORKER_COMMAND in str(note)  # the plain form
    unreachable = backends.make_celery("redis://127.0.0.1:1/0")
    unreachable.conf.broker_connection_timeout = 0.5
    unreachable.conf.broker_connection_max_retries = 0
    assert "cannot be reached" in backends.queue_message(unreachable).text


def test_workers_are_seen(cluster):
    listening = backends.listening_workers(cluster.app)
    assert sorted(name.split("@")[0] for name in listening) == ["w1", "w2"]
    assert "2 listening" in backends.queue_message(cluster.app).text


def test_run_trains_on_a_worker_and_streams(cluster):
    store = cluster.store
    run_id = store.create_run(SHORT)
    cluster.web.submit(run_id)
    # streaming: the store shows epochs while the run is still running
    seen = wait_until(lambda: (lambda r: r if r["status"] == "running" and
                               0 < r["epochs_done"] < SHORT["epochs"] else None)(
                          store.run_status(run_id)), WAIT_S, "a partly trained run")
    assert len(store.epochs(run_id, snapshots=False)) >= seen["epochs_done"] - 1
    wait_until(lambda: ended(store, run_id), WAIT_S, "the run to end")
    # a restarted web process (a new store connection) loses nothing
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


def test_web_app_has_a_worker_train_a_run_that_no_page_shows(cluster, monkeypatch):
    """The whole web path: an app built with --broker/--store, a run created on the
    New-run form and never opened in a browser: a worker trains it."""
    from gato_dash.app import create_app

    for name in (backends.STORE_ENV, backends.DATA_DIR_ENV):
        monkeypatch.setenv(name, "restored after the test")  # create_app exports its own
    monkeypatch.setattr(runtime._State, "store", None)
    monkeypatch.setattr(runtime._State, "data_dir", None)
    create_app(cluster.data_dir, broker=cluster.broker.url, store=cluster.store_url)
    try:
        assert isinstance(dispatch.current(), dispatch.CeleryDispatch)
        form = sys.modules["gato_dash.pages.new_run"]
        values = {"n_signal": "2000", "n_bkg": "6000", "epochs": "50", "n_cats": "3"}
        href, _ = form.start_run(1, list(values.values()),
                                 [{"type": "cfg", "name": k} for k in values], "one_d", "no page")
        run_id = href.rsplit("/", 1)[-1]
        run = wait_until(lambda: ended(cluster.store, run_id), WAIT_S, "the run to end")
        assert run["status"] == "finished" and run["name"] == "no page"
        assert len(cluster.store.epochs(run_id, snapshots=False)) == 50

        # a run stored by another process, not sent to anyone: while it waits, its page
        # says which workers listen ...
        queued = cluster.store.create_run(SHORT)
        run_page = sys.modules["gato_dash.pages.run"]
        update = live.poll(cluster.store, live.initial_state(queued))
        status_text = run_page.render_update(update)["status"]
        assert status_text[0].startswith("Queued") and "2 listening: w1@" in status_text[2]
    finally:
        dispatch.configure(dispatch.NoDispatch())
    # ... and a sweeper sends it to a worker, since both are idle
    wait_until(lambda: ended(cluster.store, queued), WAIT_S, "the unsent run to be trained")


def test_two_workers_train_two_runs_at_once_and_cancel_from_the_store(cluster):
    store = cluster.store
    runs = [store.create_run(LONG), store.create_run(LONG)]
    for run_id in runs:
        cluster.web.submit(run_id)

    def both_training():
        status = [store.run_status(r) for r in runs]
        return all(s["status"] == "running" and s["epochs_done"] > 0 for s in status)

    wait_until(both_training, WAIT_S, "two runs training at the same time")
    pids = {row[0] for row in _raw(store, "SELECT job_pid FROM runs WHERE id IN (?, ?)", runs)}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes
    # cancel from another "web process": a flag in the shared store, no signal
    other_web = RunStore(cluster.store_url, cluster.data_dir)
    assert all(other_web.request_cancel(r) for r in runs)
    for run_id in runs:
        # on a loaded machine the job's cancel watchdog may end the worker's pool process
        # (gato_dash.runtime.jobs), but the run is marked cancelled all the same.
        run = wait_until(lambda: (lambda r: r if r["status"] != "running" else None)(
            store.get_run(run_id)), timeout_s=60, what="the cancelled run to end")
        assert run["status"] == "cancelled" and run["message"].startswith("cancelled ")
        kept = store.epochs(run_id, snapshots=False)
        assert len(kept) == run["epochs_done"] > 0  # the epochs so far are kept
    other_web.close()


def job_worker(cluster, run_id: str) -> str:
    """The worker that trained ``run_id``: by its job process while that lives, else by the
    line the worker logs when the task ends (a short run's process may be gone already)."""
    (job_pid,), = _raw(cluster.store, "SELECT job_pid FROM runs WHERE id = ?", [run_id])
    try:
        return cluster.workers.owner_of(job_pid)
    except (FileNotFoundError, ProcessLookupError):
        pass
    ended_here = re.compile(rf"wake-up for run \S+: {re.escape(run_id)} ")

    def owners():  # the task logs after the run's end is stored: wait for the line
        return [name for name in cluster.workers.procs
                if ended_here.search((cluster.workers.log_dir / f"{name}.log").read_text(
                    errors="replace"))]

    found = wait_until(owners, timeout_s=30, what=f"a worker's log line for run {run_id}")
    assert len(found) == 1, f"run {run_id}: trained by {found}"
    return found[0]


def test_queued_runs_survive_a_broker_restart_and_go_to_the_idle_worker(cluster):
    """Redis down 12 s with both workers busy: a run queued before (its message is lost
    with Redis's memory) and one created during the outage (its message cannot be sent)
    both train once Redis is back, on the worker that became idle, never behind the busy
    one; afterwards both workers take work again."""
    store, web = cluster.store, cluster.web
    busy = [store.create_run(LONG), store.create_run(LONG)]
    for run_id in busy:
        web.submit(run_id)
    wait_until(lambda: all(store.run_status(r)["epochs_done"] > 0 for r in busy),
               WAIT_S, "both workers busy")
    owners = {run_id: job_worker(cluster, run_id) for run_id in busy}
    assert sorted(owners.values()) == ["w1", "w2"]
    before = store.create_run(SHORT)
    web.submit(before)  # its wake-up waits in Redis: every worker is busy
    wait_until(lambda: cluster.broker.waiting_messages(cluster.app.conf.task_default_queue),
               10, "the wake-up of the run queued before to wait in Redis")
    cluster.broker.stop()
    during = store.create_run(SHORT)
    web.submit(during)  # cannot be sent now
    time.sleep(12.0)  # the outage itself: the sweeper's retries meet no broker meanwhile
    cluster.broker.start()
    assert [status_of(store, r) for r in (before, during)] == ["queued", "queued"]
    # one worker becomes idle; the other stays busy with its long run
    store.request_cancel(busy[1])
    idle_one, busy_one = owners[busy[1]], owners[busy[0]]
    for run_id in (before, during):
        try:
            run = wait_until(lambda r=run_id: ended(store, r), timeout_s=WAIT_S,
                             what=f"run {run_id} to train after the restart")
        except AssertionError as exc:  # say what the workers did
            raise AssertionError(f"{exc}\n{idle_one}: {cluster.workers.log(idle_one)}\n"
                                 f"{busy_one}: {cluster.workers.log(busy_one)}") from None
        assert run["status"] == "finished", run["message"]
        assert job_worker(cluster, run_id) == idle_one, f"waited behind {busy_one}"
    assert status_of(store, busy[0]) == "running"
    store.request_cancel(busy[0])
    wait_until(lambda: ended(store, busy[0]), timeout_s=60, what="the long run to stop")
    # both workers take work again after the restart
    again = [store.create_run(LONG), store.create_run(LONG)]
    for run_id in again:
        web.submit(run_id)
    try:
        wait_until(lambda: all(store.run_status(r)["epochs_done"] > 0 for r in again),
                   WAIT_S, "both workers training again")
        assert sorted(job_worker(cluster, r) for r in again) == ["w1", "w2"]
    finally:
        for run_id in again:
            store.request_cancel(run_id)
        for run_id in again:
            wait_until(lambda r=run_id: ended(store, r), timeout_s=60, what="cancelled")


def test_killed_worker_leaves_the_run_interrupted(cluster, monkeypatch):
    """kill -9 of a worker (and its pool process) mid-run: the web side, which cannot see
    that machine's processes, marks the run interrupted once the heartbeat is older than
    the timeout, with the epochs so far kept. The timeout is shortened to keep this quick."""
    store = cluster.store
    run_id = store.create_run(LONG)
    cluster.web.submit(run_id)
    wait_until(lambda: store.run_status(run_id)["epochs_done"] >= 3, WAIT_S, "a training run")
    (job_pid,), = _raw(store, "SELECT job_pid FROM runs WHERE id = ?", [run_id])
    # judge as a web process on another machine would: by the heartbeat alone
    monkeypatch.setattr(liveness, "this_host", lambda: "the-web-machine")
    monkeypatch.setattr(liveness, "HEARTBEAT_TIMEOUT_S", 4.0)
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
