"""Run store: lifecycle, incremental reads, several processes at once, interrupted runs, delete.

Every test that takes ``store`` (or ``store_location``) runs twice: on SQLite and on
PostgreSQL (a throwaway server, tests/local_servers.py; skipped with the reason when it
cannot start)."""
from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from gato_dash.runtime import liveness
from gato_dash.runtime.databases import schema
from gato_dash.runtime.databases.connection import BUSY_TIMEOUT_S
from gato_dash.runtime.databases.sqlite import SQLite
from gato_dash.runtime.run_store import RunStore
from helpers.records import epoch_record

CONFIG = {"scenario": "one_d", "n_signal": 2000, "n_bkg": 6000, "epochs": 30, "n_cats": [3, 5]}



@pytest.fixture
def store(store_location):
    location, data_dir = store_location
    store = RunStore(location, data_dir)
    yield store
    store.close()


def raw_execute(store: RunStore, sql: str, args=()):
    """Change the database behind the store's back (e.g. age a heartbeat)."""
    with store._write() as conn:
        return conn.execute(sql, args).fetchall() if sql.lstrip().startswith("SELECT") \
            else conn.execute(sql, args).rowcount


def test_create_get_list(store):
    a = store.create_run(CONFIG, name="  first  ")
    b = store.create_run(CONFIG)  # same config: a separate run
    assert a != b
    run = store.get_run(a)
    assert run["status"] == "queued" and run["name"] == "first"
    assert run["config"] == CONFIG and run["scenario"] == "one_d"
    assert run["run_info"] is None and run["epochs_done"] == 0
    listed = store.list_runs()
    assert [r["id"] for r in listed] == [b, a]  # newest first
    assert "run_info" not in listed[0] and listed[0]["n_cats"] == [3, 5]
    assert store.get_run("nope") is None and store.run_status("nope") is None


def test_epochs_incremental_and_results(store):
    run_id = store.create_run(CONFIG)
    assert store.claim(run_id)
    seqs = [store.append_epoch(run_id, epoch_record(3, e, snapshot=e % 10 == 0)) for e in range(12)]
    seqs += [store.append_epoch(run_id, epoch_record(5, e)) for e in range(4)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 16
    all_k3 = store.epochs(run_id, n_cats=3)
    assert [r["epoch"] for r in all_k3] == list(range(12))
    assert all_k3[0]["snapshot"]["boundaries"] == [0.2, 0.5]
    newer = store.epochs(run_id, n_cats=3, after_seq=all_k3[7]["seq"])
    assert [r["epoch"] for r in newer] == [8, 9, 10, 11]
    light = store.epochs(run_id, n_cats=3, snapshots=False, limit=5)
    assert len(light) == 5 and "snapshot" not in light[0]
    assert len(store.epochs(run_id)) == 16
    status = store.run_status(run_id)
    assert status["current_k"] == 5 and status["epochs_done"] == 4

    store.put_result(run_id, {"kind": "result", "n_cats": 5, "status": "finished"})
    store.put_result(run_id, {"kind": "result", "n_cats": 3, "status": "finished"})
    assert [r["n_cats"] for r in store.results(run_id)] == [3, 5]
    assert store.result_ks(run_id) == [3, 5]


def test_result_summaries_match_the_full_records(store):
    """The runs table's light read (SQLite picks the fields) agrees with json.loads of the
    whole records, also for a record SQLite's JSON cannot read (NaN)."""
    big = {"snapshot": {"grid": [[1, 2] * 60] * 120}, "mass_histograms": {"a": [0.5] * 800}}
    first = store.create_run({"scenario": "bump_hunt"})
    store.put_result(first, {"n_cats": 8, "significance": {"s1": 1.25, "s2": 0.5},
                             "objective": 0.79, **big})
    store.put_result(first, {"n_cats": 5, "significance": {"s1": 1.0, "s2": 0.25},
                             "objective": 0.5, **big})
    second = store.create_run({"scenario": "one_d"})
    store.put_result(second, {"n_cats": 3, "significance": {"signal": 2.0}, "objective": 2.0,
                              "bias": float("nan")})
    store.create_run({"scenario": "one_d"})  # no results yet

    summaries = store.result_summaries()
    assert set(summaries) == {first, second}
    for run_id, summary in summaries.items():
        assert summary == [{key: record.get(key) for key in ("n_cats", "significance",
                                                           "objective")}
                           for record in store.results(run_id)]
    assert [s["n_cats"] for s in summaries[first]] == [5, 8]
    assert summaries[second] == [{"n_cats": 3, "significance": {"signal": 2.0},
                                  "objective": 2.0}]


def test_claim_is_atomic(store):
    run_id = store.create_run(CONFIG)
    assert store.claim(run_id) is True
    assert store.claim(run_id) is False  # the run page opened twice: trains once
    assert store.get_run(run_id)["status"] == "running"


def test_cancel(store):
    queued = store.create_run(CONFIG)
    assert store.request_cancel(queued)
    run = store.get_run(queued)
    assert run["status"] == "cancelled" and not store.claim(queued)

    running = store.create_run(CONFIG)
    store.claim(running)
    assert not store.cancel_requested(running)
    assert store.request_cancel(running)
    assert store.cancel_requested(running)
    assert store.get_run(running)["status"] == "running"  # the job ends it
    before = time.time()
    store.set_status(running, "cancelled", "cancelled at epoch 4 (K=3)")
    assert not store.request_cancel(running)  # already over
    assert before <= store.get_run(running)["finished"] <= time.time()


def test_stale_heartbeat_becomes_interrupted(store, monkeypatch):
    run_id = store.create_run(CONFIG)
    store.claim(run_id, pid=None)  # our own (live) pid: only the heartbeat decides
    store.append_epoch(run_id, epoch_record(3, 0))
    assert store.get_run(run_id)["status"] == "running"
    last_heartbeat = time.time() - 20  # the job went silent 20 s ago
    raw_execute(store, "UPDATE runs SET heartbeat = ? WHERE id = ?", (last_heartbeat, run_id))
    run = store.get_run(run_id)
    assert run["status"] == "interrupted"
    # it ended at its last heartbeat: the 20 s of silence are not part of its duration
    assert run["finished"] == pytest.approx(last_heartbeat)
    assert "epoch 1" in run["message"] and "K=3" in run["message"]
    # persisted, not just reported
    assert raw_execute(store, "SELECT status FROM runs WHERE id = ?", (run_id,))[0][0] == \
        "interrupted"


def test_fresh_heartbeat_stays_running(store):
    run_id = store.create_run(CONFIG)
    store.claim(run_id)
    store.heartbeat(run_id)
    assert [r["status"] for r in store.list_runs()] == ["running"]


def test_dead_job_process_is_interrupted_at_once(store):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    dead_pid = int(finished.stdout)
    run_id = store.create_run(CONFIG)
    store.claim(run_id, pid=dead_pid)  # e.g. the server (and its jobs) restarted
    assert store.run_status(run_id)["status"] == "interrupted"
    assert "before its first epoch" in store.get_run(run_id)["message"]


def test_delete_removes_rows_and_files(store):
    run_id = store.create_run(CONFIG)
    other = store.create_run(CONFIG)
    store.claim(run_id)
    store.append_epoch(run_id, epoch_record(3, 0))
    store.append_epoch(other, epoch_record(3, 0))
    store.put_result(run_id, {"kind": "result", "n_cats": 3, "status": "finished"})
    folder = store.run_dir(run_id)
    folder.mkdir(parents=True)
    (folder / "report.html").write_text("x")
    assert store.delete(run_id)
    assert store.get_run(run_id) is None and not folder.exists()
    for table in ("epochs", "results"):
        n = raw_execute(store, f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (run_id,))[0][0]
        assert n == 0, table
    # a job still running for it stops and its late writes are dropped
    assert store.cancel_requested(run_id)
    assert store.append_epoch(run_id, epoch_record(3, 1)) is None
    store.put_result(run_id, {"kind": "result", "n_cats": 3})
    assert store.results(run_id) == []
    assert len(store.epochs(other)) == 1  # others untouched
    assert not store.delete(run_id)


def test_numpy_values_are_stored_as_numbers_and_lists(store):
    """The engine's records may hold numpy scalars and arrays (a strided view too); they
    come back as plain numbers and lists, integer keys as strings, and a number that is
    not finite as None (JSON has no NaN)."""
    import numpy as np

    run_id = store.create_run(CONFIG)
    assert store.claim(run_id)
    matrix = np.arange(6, dtype=np.float64).reshape(2, 3)
    store.set_run_info(run_id, {"kind": "run_info", "n_events": np.int64(8000),
                                "baselines": {"signal": {3: np.float32(1.25), 5: float("nan")}},
                                "column": matrix[:, 1], "weights": np.array([0.5, 2.0])})
    store.put_result(run_id, {"kind": "result", "n_cats": np.int64(3), "status": "finished",
                              "significance": {"signal": np.float64(1.5)},
                              "order": (2, 0, 1), "loss": float("inf")})
    info = store.get_run(run_id)["run_info"]
    assert info["n_events"] == 8000 and type(info["n_events"]) is int
    assert info["baselines"] == {"signal": {"3": 1.25, "5": None}}
    assert info["column"] == [1.0, 4.0] and info["weights"] == [0.5, 2.0]
    result, = store.results(run_id)
    assert result["n_cats"] == 3 and result["significance"] == {"signal": 1.5}
    assert result["order"] == [2, 0, 1] and result["loss"] is None
    assert store.result_summaries()[run_id] == [
        {"n_cats": 3, "significance": {"signal": 1.5}, "objective": None}]


def test_user_edits(store):
    run_id = store.create_run(CONFIG, name="a")
    store.rename(run_id, "<script>alert(1)</script>")
    store.set_note(run_id, "note")
    store.set_tags(run_id, ["b", "a", "b", " "])
    run = store.get_run(run_id)
    assert run["name"] == "<script>alert(1)</script>"  # stored verbatim; pages render as text
    assert run["note"] == "note" and run["tags"] == ["a", "b"]


# ----- several processes --------------------------------------------------------------------
def _writer(location, data_dir, run_id, k, n):
    s = RunStore(location, data_dir)
    for e in range(n):
        s.append_epoch(run_id, epoch_record(k, e))
        if e % 10 == 0:
            s.heartbeat(run_id)


def _claimer(location, data_dir, run_id, out):
    out.put(RunStore(location, data_dir).claim(run_id))


def test_two_processes_write_one_reads(store_location):
    store = RunStore(*store_location)
    a, b = store.create_run(CONFIG), store.create_run(CONFIG)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(*store_location, a, 3, 300)),
             ctx.Process(target=_writer, args=(*store_location, b, 3, 300)),
             ctx.Process(target=_writer, args=(*store_location, a, 5, 300))]
    for p in procs:
        p.start()
    seen = 0
    last_seq = 0
    while any(p.is_alive() for p in procs):  # read while they write, incrementally
        new = store.epochs(a, after_seq=last_seq, snapshots=False)
        if new:
            assert new[0]["seq"] > last_seq
            last_seq = new[-1]["seq"]
            seen += len(new)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    seen += len(store.epochs(a, after_seq=last_seq))
    assert seen == 600  # nothing lost, nothing twice
    assert len(store.epochs(b)) == 300
    assert [r["epoch"] for r in store.epochs(a, n_cats=5)] == list(range(300))


def test_claim_race_between_processes(store_location):
    run_id = RunStore(*store_location).create_run(CONFIG)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(*store_location, run_id, out))
             for _ in range(4)]
    for p in procs:
        p.start()
    wins = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(60)
    assert sorted(wins) == [False, False, False, True]


def test_heartbeat_timeout_is_about_15_s():
    assert 10 <= liveness.HEARTBEAT_TIMEOUT_S <= 20


def test_text_fields_have_limits_whatever_sends_them(store):
    from gato_dash.runtime.run_fields import MAX_NAME_CHARS, MAX_NOTE_CHARS, MAX_TAGS, TextTooLong

    with pytest.raises(TextTooLong, match="at most 120 characters, got 5000"):
        store.create_run(CONFIG, name="x" * 5000)
    assert store.list_runs() == []  # nothing half-stored
    run_id = store.create_run(CONFIG, name="n" * MAX_NAME_CHARS)
    with pytest.raises(TextTooLong):
        store.rename(run_id, "n" * (MAX_NAME_CHARS + 1))
    with pytest.raises(TextTooLong):
        store.set_note(run_id, "n" * (MAX_NOTE_CHARS + 1))
    with pytest.raises(TextTooLong):
        store.set_tags(run_id, ["t" * 41])
    with pytest.raises(TextTooLong):
        store.set_tags(run_id, [f"t{i}" for i in range(MAX_TAGS + 1)])
    run = store.get_run(run_id)
    assert run["name"] == "n" * MAX_NAME_CHARS and run["note"] == "" and run["tags"] == []


# ----- several machines -----------------------------------------------------------------------
def test_job_on_another_machine_is_judged_by_its_heartbeat(store, monkeypatch):
    """A process id means nothing on another machine: a job there whose pid happens not to
    exist here stays running while it beats, and is interrupted once it stops beating, with
    its epochs kept."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    run_id = store.create_run(CONFIG)
    monkeypatch.setattr(liveness, "this_host", lambda: "gpu-node-7")
    assert store.claim(run_id, pid=int(finished.stdout))  # a pid dead *here*
    monkeypatch.undo()
    store.append_epoch(run_id, epoch_record(3, 0))
    store.append_epoch(run_id, epoch_record(3, 1))
    assert store.run_status(run_id)["status"] == "running"
    raw_execute(store, "UPDATE runs SET heartbeat = ? WHERE id = ?",
                (time.time() - liveness.HEARTBEAT_TIMEOUT_S - 1, run_id))
    run = store.get_run(run_id)
    assert run["status"] == "interrupted" and "epoch 2 of K=3" in run["message"]
    assert [r["epoch"] for r in store.epochs(run_id)] == [0, 1]


def test_cancel_of_a_run_claimed_meanwhile_reaches_its_job(store):
    """The queued -> cancelled shortcut only applies to a run still queued: one that a
    worker claimed keeps running and its job sees the flag."""
    run_id = store.create_run(CONFIG)
    store.claim(run_id)
    assert store.request_cancel(run_id)
    assert store.get_run(run_id)["status"] == "running" and store.cancel_requested(run_id)


def test_postgresql_store_needs_the_data_folder():
    with pytest.raises(ValueError, match="data folder"):
        RunStore("postgresql://gato@127.0.0.1:1/x")


def test_sqlite_store_of_an_older_version_gains_the_host_column(tmp_path):
    path = tmp_path / "runs.sqlite"
    with sqlite3.connect(path) as raw:  # the schema before runs knew their machine
        raw.executescript(schema.SCHEMA.format(real="REAL", serial=SQLite.SERIAL)
                          .replace(",\n    job_host TEXT", ""))
        raw.execute("INSERT INTO runs (id, scenario, status, config, created) "
                    "VALUES ('old', 'one_d', 'queued', '{}', 1.0)")
    store = RunStore(path)
    assert store.claim("old") and store.get_run("old")["status"] == "running"
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT job_host FROM runs").fetchone()[0] == liveness.this_host()


def test_postgresql_connections_are_reused_by_later_threads(postgres_url, tmp_path):
    """The web server runs each request in a new thread: each must not open a new
    PostgreSQL connection (a round trip and a server process)."""
    store = RunStore(postgres_url, tmp_path)
    store.create_run(CONFIG)
    backends = []

    def request():
        with store._connection() as conn:
            backends.append(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
        assert len(store.list_runs()) == 1

    for _ in range(20):
        thread = threading.Thread(target=request)
        thread.start()
        thread.join()
    assert len(backends) == 20 and len(set(backends)) <= 2


def _use_in_forked_child(store: RunStore, out) -> None:
    with store._connection() as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    out.put((backend, len(store.list_runs()), store.create_run(CONFIG)))


def test_a_forked_child_opens_connections_of_its_own(postgres_url, tmp_path):
    """A pool's connections and threads are its parent's: a child of a process that used
    the store (as a job forked by a worker is) gets a pool of its own, and the parent's
    connections keep working."""
    store = RunStore(postgres_url, tmp_path)
    first = store.create_run(CONFIG)
    with store._connection() as conn:
        parent_backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_use_in_forked_child, args=(store, out))
    child.start()
    child_backend, listed, made = out.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0 and listed == 1
    assert child_backend != parent_backend  # never the parent's connection
    with store._connection() as conn:
        assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == parent_backend
    assert {r["id"] for r in store.list_runs()} == {first, made}
    store.close()


# ----- fencing: a job that lost its run writes nothing more ------------------------------------
def _all_job_writes_refused(job: RunStore, run_id: str) -> None:
    from gato_dash.runtime.liveness import FencedOut

    for write in (lambda: job.append_epoch(run_id, epoch_record(3, 7)),
                  lambda: job.put_result(run_id, {"kind": "result", "n_cats": 3,
                                                  "status": "finished"}),
                  lambda: job.set_run_info(run_id, {"kind": "run_info"}),
                  lambda: job.heartbeat(run_id),
                  lambda: job.set_status(run_id, "finished", "")):
        with pytest.raises(FencedOut, match=f"run {run_id} is"):
            write()


def test_a_job_whose_run_was_interrupted_cannot_write_it_again(store_location):
    """A frozen job resumes after its run was declared interrupted: every write it tries is
    refused, and the run stays interrupted with the epochs it had."""
    job = RunStore(*store_location)
    reader = RunStore(*store_location)
    run_id = job.create_run(CONFIG)
    assert job.claim(run_id, pid=None)
    job.append_epoch(run_id, epoch_record(3, 0))
    raw_execute(reader, "UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time() - 20, run_id))
    assert reader.get_run(run_id)["status"] == "interrupted"
    _all_job_writes_refused(job, run_id)
    run = reader.get_run(run_id)
    assert run["status"] == "interrupted" and "epoch 1 of K=3" in run["message"]
    assert [r["epoch"] for r in reader.epochs(run_id)] == [0] and reader.results(run_id) == []
    assert run["run_info"] is None
    job.close()
    reader.close()


def test_a_second_claim_fences_out_the_first(store_location):
    """Run put back in the queue by hand and claimed again: only the newer claim writes."""
    first, second = RunStore(*store_location), RunStore(*store_location)
    run_id = first.create_run(CONFIG)
    assert first.claim(run_id, pid=None)
    raw_execute(first, "UPDATE runs SET status = 'queued' WHERE id = ?", (run_id,))
    assert second.claim(run_id, pid=None)
    _all_job_writes_refused(first, run_id)
    second.append_epoch(run_id, epoch_record(3, 0))
    second.set_status(run_id, "finished", "")
    assert second.get_run(run_id)["status"] == "finished"
    assert [r["epoch"] for r in second.epochs(run_id)] == [0]
    first.close()
    second.close()


def _old_schema(sqlite_style: bool) -> str:
    """The schema before claims had tokens (and, for SQLite, before runs knew their host)."""
    text = schema.SCHEMA.format(
        real="REAL" if sqlite_style else "DOUBLE PRECISION",
        serial=SQLite.SERIAL if sqlite_style else "BIGSERIAL PRIMARY KEY")
    return text.replace(",\n    claim_token TEXT", "")


def test_a_store_of_an_older_version_gains_the_claim_token_in_place(store_location):
    location, data_dir = store_location
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as raw:
            for statement in _old_schema(False).split(";"):
                if statement.strip():
                    raw.execute(statement)
            raw.execute("INSERT INTO runs (id, scenario, status, config, created) "
                        "VALUES ('old', 'one_d', 'queued', '{}', 1.0)")
    else:
        data_dir.mkdir(parents=True)
        with sqlite3.connect(location) as raw:
            raw.executescript(_old_schema(True))
            raw.execute("INSERT INTO runs (id, scenario, status, config, created) "
                        "VALUES ('old', 'one_d', 'queued', '{}', 1.0)")
    job, reader = RunStore(location, data_dir), RunStore(location, data_dir)
    assert job.claim("old", pid=None)
    job.append_epoch("old", epoch_record(3, 0))
    raw_execute(reader, "UPDATE runs SET heartbeat = ? WHERE id = 'old'", (time.time() - 20,))
    assert reader.get_run("old")["status"] == "interrupted"
    _all_job_writes_refused(job, "old")
    assert reader.get_run("old")["status"] == "interrupted"
    job.close()
    reader.close()


# ----- a database that goes away for a moment ---------------------------------------------------
def test_a_lost_postgresql_connection_is_retried(postgres_url, tmp_path):
    """The server ends the store's connection (as a restart does): the next operations
    reconnect instead of failing."""
    import psycopg

    store = RunStore(postgres_url, tmp_path)
    run_id = store.create_run(CONFIG)
    assert store.claim(run_id, pid=None)
    store.append_epoch(run_id, epoch_record(3, 0))
    with store._connection() as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
    store.append_epoch(run_id, epoch_record(3, 1))
    store.set_status(run_id, "finished")
    run = store.get_run(run_id)
    assert run["status"] == "finished"
    assert [r["epoch"] for r in store.epochs(run_id)] == [0, 1]
    store.close()


def test_an_unreachable_store_gives_up_after_its_bound_and_says_for_how_long(postgres_url,
                                                                            tmp_path):
    import psycopg

    import local_servers
    from gato_dash.runtime.store_retry import StoreUnreachable

    url = f"postgresql://gato@127.0.0.1:{local_servers.free_port()}/nothing_listens_here"
    started = time.monotonic()
    with pytest.raises(StoreUnreachable, match=r"unreachable for \d+ s \(while setting up"):
        RunStore(url, tmp_path, retry_s=1.5)
    assert 1.4 <= time.monotonic() - started < 10
    # a server that refuses us for good (no such database) is a setting to fix: said at
    # once, not after the retry bound
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match='database "no_such_db" does not exist'):
        RunStore(postgres_url.rsplit("/", 1)[0] + "/no_such_db", tmp_path, retry_s=20)
    assert time.monotonic() - started < 5



def test_a_fenced_out_job_may_only_add_why_it_stopped(store_location):
    """A job that lost its store for longer than the heartbeat timeout finds its run
    interrupted when the store is back: it may add the cause to the message, nothing else,
    and no other writer may."""
    job, reader = RunStore(*store_location), RunStore(*store_location)
    run_id = job.create_run(CONFIG)
    assert job.claim(run_id, pid=None)
    raw_execute(reader, "UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time() - 20, run_id))
    before = reader.get_run(run_id)["message"]
    assert not reader.add_interruption_cause(run_id, "not the job")
    assert job.add_interruption_cause(run_id, "the run store was unreachable for 31 s")
    run = reader.get_run(run_id)
    assert run["status"] == "interrupted"
    assert run["message"] == before + "; its job reported: the run store was unreachable for 31 s"
    job.close()
    reader.close()


def test_a_job_frozen_inside_a_write_does_not_hold_its_run(postgres_url, tmp_path):
    """A job stopped in the middle of a transaction holds its run's row: the server ends
    that session after IDLE_IN_TRANSACTION_S, so a reader can still mark the run
    interrupted (instead of failing on its lock timeout), and the job's write is undone."""
    import psycopg

    job, reader = RunStore(postgres_url, tmp_path), RunStore(postgres_url, tmp_path)
    run_id = job.create_run(CONFIG)
    assert job.claim(run_id, pid=None)
    raw_execute(reader, "UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time() - 20, run_id))
    with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
        with job._write() as conn:  # the job freezes here, its run's row locked
            conn.execute("UPDATE runs SET epochs_done = 99 WHERE id = ?", (run_id,))
            started = time.monotonic()
            run = reader.get_run(run_id)
            waited = time.monotonic() - started
    assert run["status"] == "interrupted" and run["epochs_done"] == 0
    assert waited < BUSY_TIMEOUT_S
    assert reader.get_run(run_id)["epochs_done"] == 0
    job.close()
    reader.close()
