"""Faults of the several-machines mode, with real processes and real servers.

- The README's worker command, exactly as written, in a fresh checkout (no PYTHONPATH):
  its pool processes import the engine.
- A worker without its data folder or without an importable TensorFlow refuses to start.
- A dataset run on a worker whose data folder lacks the dataset says which folder and host.
- A job process frozen (SIGSTOP) past the heartbeat timeout, then resumed, leaves its run
  interrupted and writes nothing more.
- PostgreSQL restarted (``pg_ctl restart``) under a running job: the run finishes with all
  its epochs.

Servers are throwaway ones on loopback ports (tests/local_servers.py).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import local_servers
from gato_dash.runtime import backends, worker_setup
from gato_dash.runtime.jobs import run_training
from gato_dash.runtime.liveness import this_host
from gato_dash.runtime.run_store import RunStore
from helpers.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]
#: The README's command, word for word
README_WORKER_COMMAND = ["celery", "-A", "gato_dash.worker", "worker", "--concurrency", "1"]
SHORT = {"scenario": "one_d", "n_signal": 2000, "n_bkg": 6000, "n_cats": [3],
         "snapshot_interval": 50}
WAIT_S = 240  # a job's first epochs wait for TensorFlow's import and the step's compilation
#: A job started as its own process, as a worker's pool process runs it
JOB_SCRIPT = """\
import sys
from gato_dash.runtime.jobs import run_training
from gato_dash.runtime.run_store import RunStore
location, data_dir, run_id = sys.argv[1:4]
retry_s = float(sys.argv[4]) if len(sys.argv) > 4 else 30.0
print("job ended:", run_training(RunStore(location, data_dir, retry_s=retry_s), run_id,
                                 data_dir + "/events"), flush=True)
"""


def fresh_checkout(target: Path) -> Path:
    """The repository's files as a clone would have them, in ``target``: the files git
    tracks (plus new, not yet committed ones, so uncommitted work is what is tested), and
    nothing else (no caches, no data folders)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=REPO, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def worker_env(broker: str, store: str, data_dir: Path, pythonpath: str | None = None) -> dict:
    """A shell's environment with the README's three settings and no PYTHONPATH (an
    operator's shell has none: the checkout must be found without it)."""
    env = {k: v for k, v in os.environ.items()
           if k != "PYTHONPATH"}
    env.update({backends.BROKER_ENV: broker, backends.STORE_ENV: store,
                backends.DATA_DIR_ENV: str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "2"})
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return env


def start_readme_worker(cwd: Path, env: dict, log_path: Path) -> subprocess.Popen:
    if shutil.which("celery", path=env.get("PATH")) is None:
        pytest.fail("the `celery` command is not on PATH (pip install -r requirements.txt)")
    log = open(log_path, "ab")
    return subprocess.Popen(README_WORKER_COMMAND, cwd=cwd, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def worker_exit(env: dict, log_path: Path, timeout_s: float) -> tuple[int, str]:
    """Start the README worker on this checkout and wait for it to exit by itself: its exit
    code and log (a worker still running after ``timeout_s`` fails the test)."""
    worker = start_readme_worker(REPO, env, log_path)
    try:
        code = worker.wait(timeout_s)
    finally:
        stop_group(worker)
    return code, log_path.read_text(errors="replace")


def stop_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(30)


@pytest.fixture
def broker(redis_server):
    """A Redis database of its own (1..15), emptied: no messages of other tests."""
    import redis

    number = 1 + uuid.uuid4().int % 15
    url = redis_server.rsplit("/", 1)[0] + f"/{number}"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


# ----- item 1: the documented command, in a fresh checkout ---------------------------------------
def test_the_readme_worker_command_trains_a_run_from_its_checkout(broker, postgres_url,
                                                                   tmp_path):
    """Celery takes the current folder off sys.path after loading the app; the worker's
    job processes must still import gato_core (from this very checkout) and train."""
    checkout = fresh_checkout(tmp_path / "checkout")
    data_dir = tmp_path / "shared-data"
    data_dir.mkdir()
    store = RunStore(postgres_url, data_dir)
    run_id = store.create_run({**SHORT, "epochs": 20})
    worker = start_readme_worker(checkout, worker_env(broker, postgres_url, data_dir),
                                 tmp_path / "worker.log")
    try:
        backends.make_celery(broker).send_task(backends.TASK_NAME, args=[run_id])
        status = wait_until(
            lambda: (store.run_status(run_id)["status"]
                     not in ("queued", "running")) and store.run_status(run_id),
            WAIT_S, "the run's end")
    finally:
        stop_group(worker)
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert status["status"] == "finished", (status, log[-3000:])
    assert "No module named" not in log
    assert len(store.epochs(run_id)) == 20
    assert [r["n_cats"] for r in store.results(run_id)] == [3]


# ----- item 5: a worker that could not train refuses to start --------------------------------------
def test_a_worker_without_its_data_folder_exits_before_serving(broker, postgres_url, tmp_path):
    missing = tmp_path / "not-mounted" / "gato_data"
    code, log = worker_exit(worker_env(broker, postgres_url, missing), tmp_path / "worker.log",
                            timeout_s=120)
    assert code == worker_setup.EXIT_NOT_READY, log[-3000:]
    assert f"the data folder {missing} does not exist on {this_host()}" in log
    assert "refuses to serve" in log and not missing.exists()  # not created behind our back


def test_a_worker_that_cannot_import_tensorflow_exits_before_serving(broker, postgres_url,
                                                                     tmp_path):
    shadow = tmp_path / "broken-site"
    (shadow / "tensorflow").mkdir(parents=True)
    (shadow / "tensorflow" / "__init__.py").write_text(
        "raise ImportError('simulated broken TensorFlow install')\n")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    code, log = worker_exit(worker_env(broker, postgres_url, data_dir, str(shadow)),
                            tmp_path / "worker.log", timeout_s=180)
    assert code == worker_setup.EXIT_NOT_READY, log[-3000:]
    assert "cannot import tensorflow: ImportError: simulated broken TensorFlow install" in log


def test_the_import_check_names_what_does_not_import(tmp_path):
    shadow = tmp_path / "broken-site"
    (shadow / "tensorflow").mkdir(parents=True)
    (shadow / "tensorflow" / "__init__.py").write_text("raise ImportError('no libcudart')\n")
    problems = worker_setup.check_engine_imports(search_path=[str(shadow), *sys.path])
    assert problems[0] == "cannot import tensorflow: ImportError: no libcudart"
    assert any(p.startswith("cannot import gato_core.training: ") for p in problems)
    problems = worker_setup.check_engine_imports(modules=("gato_core.no_such_engine",))
    assert problems == ["cannot import gato_core.no_such_engine: ModuleNotFoundError: "
                        "No module named 'gato_core.no_such_engine'"]
    assert worker_setup.check_engine_imports() == []  # this environment can train


def _make_unwritable(folder: Path) -> None:
    """Root writes through file modes: make the folder immutable instead."""
    if os.geteuid() == 0:
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make a folder unwritable for root here: {done.stderr.strip()}")
    else:
        folder.chmod(0o555)


def test_the_data_folder_check_refuses_missing_and_unwritable_folders(tmp_path):
    host = this_host()
    missing = tmp_path / "missing"
    assert worker_setup.check_data_folder(missing) == [
        f"the data folder {missing} does not exist on {host}: mount the shared data folder "
        "there, or set GATO_DATA_DIR to where it is mounted"]
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert worker_setup.check_data_folder(a_file) == [
        f"the data folder {a_file} on {host} is not a folder"]
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    assert worker_setup.check_data_folder(read_only) == []
    _make_unwritable(read_only)
    try:
        problems = worker_setup.check_data_folder(read_only)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(read_only)], check=False)
        read_only.chmod(0o755)
    assert len(problems) == 1
    assert problems[0].startswith(f"the data folder {read_only} on {host} is not writable")
    assert list(read_only.iterdir()) == []  # the check leaves nothing behind


def test_a_dataset_run_without_its_dataset_names_the_folder_and_the_host(tmp_path):
    store = RunStore(tmp_path / "data" / "runs.sqlite")
    run_id = store.create_run({"scenario": "dataset", "dataset": "ds-on-the-web-machine",
                               "epochs": 5, "n_cats": [3]})
    datasets_dir = tmp_path / "data" / "datasets"
    status = run_training(store, run_id, tmp_path / "data" / "events",
                          datasets_dir=datasets_dir)
    run = store.get_run(run_id)
    assert status == "failed" and run["status"] == "failed"
    assert (f"dataset 'ds-on-the-web-machine' is not in the data folder {tmp_path / 'data'} "
            f"of worker host {this_host()}") in run["message"]
    assert store.epochs(run_id) == []


# ----- item 4: a frozen job is fenced out ---------------------------------------------------------
def start_job(location: str, data_dir: Path, run_id: str, log_path: Path,
              retry_s: float = 30.0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO),
                                                        os.environ.get("PYTHONPATH", "")]),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, "-c", JOB_SCRIPT, location, str(data_dir), run_id,
                             str(retry_s)], cwd=REPO, env=env, stdout=open(log_path, "ab"),
                            stderr=subprocess.STDOUT)


def wait_for_epochs(store: RunStore, run_id: str, n: int, job: subprocess.Popen,
                    log_path: Path) -> dict:
    """The run's status once it has ``n`` epochs; fails at once if the job ends first."""
    def check():
        run = store.run_status(run_id)
        assert job.poll() is None and run["status"] in ("queued", "running"), \
            f"{run['status']} {run['message']}: {log_path.read_text(errors='replace')[-3000:]}"
        return run["epochs_done"] >= n and run
    return wait_until(check, WAIT_S, f"{n} epochs")


def test_a_job_frozen_past_the_heartbeat_timeout_stays_interrupted(postgres_url, tmp_path):
    """PostgreSQL, the several-machines store: the freeze may come in the middle of a write,
    and only a server can end the frozen session's transaction (IDLE_IN_TRANSACTION_S).
    (An embedded job frozen inside an SQLite write holds the file's one write lock.)"""
    location, data_dir = postgres_url, tmp_path / "data"
    reader = RunStore(location, data_dir)
    # judges heartbeats after 5 s instead of 15 (only once the job is frozen: while it
    # imports TensorFlow on a busy machine its heartbeat may well be 5 s late)
    impatient = RunStore(location, data_dir, heartbeat_timeout_s=5.0)
    run_id = reader.create_run({**SHORT, "epochs": 100000})
    log_path = tmp_path / "job.log"
    job = start_job(location, data_dir, run_id, log_path)
    try:
        run = wait_for_epochs(reader, run_id, 20, job, log_path)
        os.kill(job.pid, signal.SIGSTOP)  # the worker freezes (suspended VM, swap storm)
        run = wait_until(lambda: impatient.run_status(run_id)["status"] == "interrupted"
                         and impatient.run_status(run_id), 60, "the run marked interrupted")
        epochs_then = [r["seq"] for r in reader.epochs(run_id, snapshots=False)]
        os.kill(job.pid, signal.SIGCONT)
        job.wait(120)
    finally:
        if job.poll() is None:
            os.kill(job.pid, signal.SIGCONT)
            job.kill()
            job.wait(30)
    output = log_path.read_text(errors="replace")
    assert "job ended: fenced-out" in output, output[-3000:]
    after = reader.get_run(run_id)
    assert after["status"] == "interrupted" and after["message"] == run["message"]
    assert [r["seq"] for r in reader.epochs(run_id, snapshots=False)] == epochs_then
    assert reader.results(run_id) == []
    reader.close()
    impatient.close()


# ----- item 3: PostgreSQL restarts under a running job ----------------------------------------------
@pytest.fixture
def restartable_postgres():
    """A PostgreSQL server of this test's own (restarting the session's would cut the
    other tests' connections)."""
    try:
        server = local_servers.start_postgres()
    except local_servers.ServerUnavailable as exc:
        if os.environ.get("GATO_REQUIRE_SERVERS") == "1":
            pytest.fail(f"PostgreSQL could not start: {exc}")
        pytest.skip(f"PostgreSQL could not start: {exc}")
    yield server
    server.stop()


def test_a_postgresql_restart_mid_run_costs_the_job_nothing(restartable_postgres, tmp_path):
    url = local_servers.create_database(restartable_postgres.url, "gato")
    data_dir = tmp_path / "data"
    reader = RunStore(url, data_dir)
    epochs = 3000
    run_id = reader.create_run({**SHORT, "epochs": epochs})
    log_path = tmp_path / "job.log"
    job = start_job(url, data_dir, run_id, log_path)
    try:
        wait_for_epochs(reader, run_id, 10, job, log_path)
        reader.close()
        started = time.monotonic()
        restartable_postgres.restart()
        restart_s = time.monotonic() - started
        done_after_restart = reader.run_status(run_id)["epochs_done"]
        job.wait(WAIT_S)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait(30)
    output = log_path.read_text(errors="replace")
    assert "job ended: finished" in output, output[-3000:]
    assert done_after_restart < epochs, "the run ended before the restart: nothing was tested"
    run = reader.get_run(run_id)
    assert run["status"] == "finished" and run["message"] == ""
    assert [r["epoch"] for r in reader.epochs(run_id, n_cats=3, snapshots=False)] == \
        list(range(epochs))
    assert reader.result_ks(run_id) == [3]
    print(f"pg_ctl restart took {restart_s:.2f} s; {done_after_restart} of {epochs} epochs "
          "were stored when it was back")
    reader.close()


def test_a_store_away_longer_than_the_retry_bound_is_recorded_when_it_is_back(
        restartable_postgres, tmp_path):
    """The job gives up on its store (bound lowered to 3 s; the server is down 8 s): once
    the store answers again, the run is failed with the reason and the outage's length."""
    url = local_servers.create_database(restartable_postgres.url, "gato")
    data_dir = tmp_path / "data"
    reader = RunStore(url, data_dir)
    run_id = reader.create_run({**SHORT, "epochs": 100000})
    log_path = tmp_path / "job.log"
    job = start_job(url, data_dir, run_id, log_path, retry_s=3.0)
    try:
        wait_for_epochs(reader, run_id, 10, job, log_path)
        reader.close()
        restartable_postgres.restart(down_s=8.0)
        job.wait(120)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait(30)
    output = log_path.read_text(errors="replace")
    assert "job ended: failed" in output, output[-3000:]
    run = reader.get_run(run_id)
    assert run["status"] == "failed"
    assert re.match(r"training stopped: the run store postgresql://gato@127\.0\.0\.1:\d+/gato "
                    r"was unreachable for [3-9] s \(while [a-z' ]+\)", run["message"]), \
        run["message"]
    assert run["epochs_done"] == len(reader.epochs(run_id, snapshots=False)) >= 10
    reader.close()
