"""The run store: every run's config, live epochs, results and status in one database.

Two databases, one code path: an SQLite file in the data folder (the default, nothing to
install) or a PostgreSQL server (``postgresql://...``) that web processes and training
workers on several machines share. Every method writes its SQL once, with ``?``
placeholders; the few places the two dialects differ are in ``_SQLite`` / ``_Postgres``.

The web process, the training job processes and the test process all open the same
database, so every method opens (or reuses, per process and thread) its own connection and
keeps transactions short. SQLite waits on a busy timeout instead of failing, and WAL mode
lets readers (the browser's polling) proceed while a job writes.

Status lifecycle: queued -> running (atomic ``claim``) -> finished | cancelled | diverged |
failed. A running run whose job stopped sending heartbeats (server restart, killed
process, lost machine) is turned into "interrupted" the next time anyone reads it, and
stays so. A job on *this* machine whose process is gone is noticed at once; a job on
another machine only by its heartbeat, within HEARTBEAT_TIMEOUT_S.

Fencing: ``claim`` gives the run a fresh claim token, kept by the store object that
claimed it. That object's writes to the run (epochs, results, run info, status, heartbeat)
apply only while the run is still "running" under that token; otherwise they raise
``FencedOut`` and change nothing. So a job that was frozen past the heartbeat timeout (a
stopped process, a suspended machine) and then resumes cannot turn an interrupted run back
into a finished one: a run marked interrupted stays interrupted.

A lost database connection (PostgreSQL restarting, a network blip) is retried for
``STORE_RETRY_S`` with backoff before an operation gives up with ``StoreUnreachable``,
which says how long the store was unreachable. The backoff is capped at RETRY_MAX_DELAY_S
so that a job is back within seconds of its store: an outage much shorter than the
heartbeat timeout (a restart takes about a second) costs a job nothing.

Times are unix seconds (float). Configs and records are the engine's ``to_dict()`` forms.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import shutil
import socket
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from .run_fields import (DAMAGED, MAX_NAME_CHARS, MAX_NOTE_CHARS, MAX_TAG_CHARS, MAX_TAGS,
                         STATUSES, TERMINAL, TextTooLong, checked_text)

log = logging.getLogger(__name__)

#: A running run without a heartbeat for this long has lost its job process.
HEARTBEAT_TIMEOUT_S = 15.0
BUSY_TIMEOUT_S = 15.0
#: A store operation whose database connection fails is retried for this long (a
#: PostgreSQL restart takes about a second), waiting RETRY_FIRST_DELAY_S, then twice as
#: long each time up to RETRY_MAX_DELAY_S; then it raises StoreUnreachable.
STORE_RETRY_S = 30.0
RETRY_FIRST_DELAY_S = 0.05
RETRY_MAX_DELAY_S = 2.0
#: PostgreSQL ends a session that sits this long inside a transaction: a job frozen in the
#: middle of a write (SIGSTOP, a suspended machine) must not hold its run's row, and with
#: it every reader that would mark the run interrupted. Shorter than BUSY_TIMEOUT_S, the
#: longest a statement waits for a lock; the store's transactions take milliseconds.
IDLE_IN_TRANSACTION_S = 10.0


class DamagedRecord(ValueError):
    """A stored record that is not valid JSON; the message names the run and the record."""


class FencedOut(RuntimeError):
    """A job's write to a run that is no longer running under the job's claim (marked
    interrupted meanwhile, or claimed again): nothing was written, the job must end."""

    def __init__(self, run_id: str, status: str):
        super().__init__(f"run {run_id} is {status} and no longer this job's: its writes "
                         "are refused")
        self.run_id, self.status = run_id, status


class StoreUnreachable(ConnectionError):
    """The database could not be reached for ``seconds`` (at least STORE_RETRY_S)."""

    def __init__(self, store: str, seconds: float, doing: str, cause: Exception):
        first_line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        super().__init__(f"the run store {store} was unreachable for {seconds:.0f} s "
                         f"(while {doing}): {first_line}")
        self.seconds = seconds


def _retried(doing: str):
    """Run the method again while its database connection fails, for up to the store's
    retry bound; the whole method is retried, so a transaction is never half-applied."""
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            return self._retrying(doing, lambda attempt: method(self, *args, **kwargs))
        return wrapper
    return decorate



# {real}: a float8 (PostgreSQL's REAL is single precision: unix times would lose seconds);
# {serial}: an auto-incrementing integer key, in training order.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT,
    note TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]',
    scenario TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL,
    created {real} NOT NULL,
    started {real},
    finished {real},
    heartbeat {real},
    run_info TEXT,
    current_k INTEGER,
    epochs_done INTEGER NOT NULL DEFAULT 0,
    k_elapsed {real},
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    job_pid INTEGER,
    job_host TEXT,
    claim_token TEXT
);
CREATE TABLE IF NOT EXISTS epochs (
    seq {serial},
    run_id TEXT NOT NULL,
    n_cats INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    record TEXT NOT NULL,
    snapshot TEXT
);
CREATE INDEX IF NOT EXISTS epochs_by_run_k ON epochs(run_id, n_cats, seq);
CREATE INDEX IF NOT EXISTS epochs_by_run ON epochs(run_id, seq);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL,
    n_cats INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, n_cats)
);
"""

#: Columns added to ``runs`` after the first release: an older store gains them in place.
_ADDED_RUN_COLUMNS = {"job_host": "TEXT", "claim_token": "TEXT"}

# Columns of the light run dicts (list_runs, run_status): everything but run_info.
_LIGHT = ("id, name, note, tags, scenario, status, message, config, created, started, "
          "finished, heartbeat, current_k, epochs_done, k_elapsed, cancel_requested, job_pid")


def is_database_url(location) -> bool:
    """True for a PostgreSQL URL, False for an SQLite file path."""
    return str(location).startswith(("postgresql://", "postgres://"))


class RunStore:
    """All access to the run database. Cheap to construct; safe from several processes
    (and, with PostgreSQL, several machines).

    ``location``: an SQLite file path, or a ``postgresql://user@host:port/db`` URL.
    ``data_dir``: the folder for run files (reports, figures); defaults to the SQLite
    file's folder and must be given with PostgreSQL (the same shared folder everywhere).
    ``heartbeat_timeout_s``: silence after which a running run counts as interrupted;
    ``retry_s``: how long a lost database connection is retried (see the module doc).

    The object that claims a run is that run's job: see "Fencing" in the module doc.
    """

    def __init__(self, location, data_dir=None, heartbeat_timeout_s: float | None = None,
                 retry_s: float = STORE_RETRY_S):
        #: None: the module's HEARTBEAT_TIMEOUT_S
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.retry_s = float(retry_s)
        #: run id -> claim token, for the runs this object claimed
        self._claims: dict[str, str] = {}
        if is_database_url(location):
            if data_dir is None:
                raise ValueError("a PostgreSQL run store needs the data folder (data_dir) "
                                 "where the runs' files live")
            self.location = str(location)
            self.path = None
            self._dialect = _Postgres(self.location)
        else:
            self.path = Path(location)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.location = str(self.path)
            self._dialect = _SQLite(self.path)
        self._data_dir = Path(data_dir) if data_dir is not None else self.path.parent
        self._local = threading.local()
        self._retrying("setting up the schema",
                       lambda attempt: self._dialect.create_schema(self._conn()))

    def __repr__(self):
        return f"RunStore({self._dialect.describe()!r})"

    # ----- connections -----------------------------------------------------------------
    def _conn(self) -> "_Connection":
        # A connection must never cross a fork: key the cached one by process id.
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid() or conn.closed():
            conn = _Connection(self._dialect, self._dialect.connect())
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def _write(self):
        return self._dialect.transaction(self._conn())

    def _retrying(self, doing: str, operation):
        """``operation(attempt)``, again while the database connection fails (see
        STORE_RETRY_S); other errors pass through at once."""
        started = time.monotonic()
        delay = RETRY_FIRST_DELAY_S
        attempt = 0
        while True:
            try:
                return operation(attempt)
            except Exception as exc:
                if not self._dialect.is_connection_error(exc):
                    raise
                self._drop_connection()
                waited = time.monotonic() - started
                if waited >= self.retry_s:
                    raise StoreUnreachable(self._dialect.describe(), waited, doing,
                                           exc) from exc
                if attempt == 0:
                    log.warning("run store %s unreachable while %s (%s): retrying for up to "
                                "%.0f s", self._dialect.describe(), doing,
                                type(exc).__name__, self.retry_s)
                time.sleep(min(delay, self.retry_s - waited))
                delay = min(2 * delay, RETRY_MAX_DELAY_S)
                attempt += 1

    def _drop_connection(self) -> None:
        """Forget this thread's connection (and idle ones: they died with it)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and conn.pid == os.getpid():
            conn.discard()
        self._dialect.forget_idle()

    def _fence(self, run_id: str) -> tuple[str, tuple]:
        """SQL condition (and its arguments) under which this object may write the run:
        none for a run it did not claim (the importer, user edits)."""
        token = self._claims.get(run_id)
        if token is None:
            return "", ()
        return " AND status = 'running' AND claim_token = ?", (token,)

    def _refuse_if_fenced(self, conn, run_id: str) -> None:
        """After a write to a claimed run changed nothing: FencedOut unless the run was
        deleted (then the write is dropped, as for every deleted run)."""
        if run_id not in self._claims:
            return
        row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is not None:
            raise FencedOut(run_id, row["status"])

    def close(self) -> None:
        """Close this thread's connection (PostgreSQL servers count them)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.raw.close()
        self._local.conn = None

    def data_dir(self) -> Path:
        return self._data_dir

    def run_dir(self, run_id: str) -> Path:
        """Folder for a run's files (reports, exports); removed by ``delete``."""
        return self.data_dir() / "runs" / _safe_id(run_id)

    # ----- creating and reading runs -------------------------------------------------
    @_retried("creating a run")
    def create_run(self, config: dict, name: str | None = None) -> str:
        """Store a new queued run; returns its new unique id."""
        scenario = str(config.get("scenario", "one_d"))
        name = checked_text("a run name", name, MAX_NAME_CHARS).strip() or None
        blob = _dumps(config)
        now = time.time()
        for _ in range(5):
            run_id = uuid.uuid4().hex[:10]
            with self._write() as conn:
                cur = conn.execute(
                    "INSERT INTO runs (id, name, scenario, status, config, created) "
                    "VALUES (?, ?, ?, 'queued', ?, ?) ON CONFLICT (id) DO NOTHING",
                    (run_id, name, scenario, blob, now),
                )
                if cur.rowcount == 1:
                    return run_id
            # id collision: draw another
        raise RuntimeError("could not allocate a run id")

    @_retried("reading a run")
    def get_run(self, run_id: str) -> dict | None:
        if not isinstance(run_id, str):  # an id from a crafted request: no such run
            return None
        self._mark_interrupted()
        row = self._conn().execute(
            f"SELECT {_LIGHT}, run_info FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        return _run_dict(row, heavy=True) if row else None

    @_retried("reading a run's status")
    def run_status(self, run_id: str) -> dict | None:
        """Like ``get_run`` without ``run_info``: cheap enough to poll twice a second."""
        if not isinstance(run_id, str):
            return None
        self._mark_interrupted()
        row = self._conn().execute(f"SELECT {_LIGHT} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _run_dict(row, heavy=False) if row else None

    @_retried("listing the runs")
    def list_runs(self) -> list[dict]:
        """Every run, newest first, without ``run_info``; ``n_cats`` added from the config."""
        self._mark_interrupted()
        rows = self._conn().execute(
            f"SELECT {_LIGHT} FROM runs ORDER BY created DESC, id DESC"
        ).fetchall()
        return [_run_dict(r, heavy=False) for r in rows]

    # ----- the job's side ----------------------------------------------------------------
    def claim(self, run_id: str, pid: int | None = None) -> bool:
        """queued -> running, atomically: True for exactly one caller per run (also across
        machines: the conditional UPDATE is one statement under the database's row lock).

        The winner's later writes to the run are fenced by a fresh claim token (see the
        module doc). A retry after a lost connection whose first try did commit finds its
        own token and still wins."""
        token = uuid.uuid4().hex
        now = time.time()

        def attempt(_):
            with self._write() as conn:
                cur = conn.execute(
                    "UPDATE runs SET status = 'running', started = ?, heartbeat = ?, "
                    "job_pid = ?, job_host = ?, message = '', claim_token = ? "
                    "WHERE id = ? AND ((status = 'queued' AND cancel_requested = 0) "
                    "OR (status = 'running' AND claim_token = ?))",
                    (now, now, pid or os.getpid(), this_host(), token, run_id, token),
                )
                return cur.rowcount == 1

        won = self._retrying("claiming a run", attempt)
        if won:
            self._claims[run_id] = token
        return won

    @_retried("listing runs")
    def run_ids(self, status: str = "queued", limit: int = 100) -> list[str]:
        """Ids of the runs with ``status``, oldest first (for "queued": the order in which
        they start)."""
        rows = self._conn().execute(
            "SELECT id FROM runs WHERE status = ? ORDER BY created, id LIMIT ?",
            (status, int(limit))).fetchall()
        return [r["id"] for r in rows]

    @_retried("sending a heartbeat")
    def heartbeat(self, run_id: str) -> None:
        fence, fence_args = self._fence(run_id)
        with self._write() as conn:
            cur = conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ? AND status = 'running'"
                               + fence, (time.time(), run_id, *fence_args))
            if cur.rowcount == 0:
                self._refuse_if_fenced(conn, run_id)

    @_retried("storing the run info")
    def set_run_info(self, run_id: str, info: dict) -> None:
        fence, fence_args = self._fence(run_id)
        with self._write() as conn:
            cur = conn.execute("UPDATE runs SET run_info = ?, heartbeat = ? WHERE id = ?" + fence,
                               (_dumps(info), time.time(), run_id, *fence_args))
            if cur.rowcount == 0:
                self._refuse_if_fenced(conn, run_id)

    def append_epoch(self, run_id: str, record: dict) -> int | None:
        """Store one EpochRecord dict; returns its seq (None if the run was deleted)."""
        record = dict(record)
        snapshot = record.pop("snapshot", None)
        record.pop("seq", None)
        k, epoch = int(record["n_cats"]), int(record["epoch"])
        record_text = _dumps(record)
        snapshot_text = None if snapshot is None else _dumps(snapshot)
        fence, fence_args = self._fence(run_id)

        def attempt(retry: int) -> int | None:
            now = time.time()
            with self._write() as conn:
                # PostgreSQL hands out seq before commit: two writers of one run could commit
                # seq 8 before seq 7, and a reader past 8 would never see 7. A per-run lock
                # held to commit keeps the orders equal (SQLite's write lock already does).
                self._dialect.lock_run(conn, run_id)
                if retry:
                    # The connection may have died after the first try's COMMIT went out:
                    # an identical last record of this run is that try's, not a new one.
                    last = conn.execute(
                        "SELECT seq, n_cats, epoch, record FROM epochs WHERE run_id = ? "
                        "ORDER BY seq DESC LIMIT 1", (run_id,)).fetchone()
                    if last is not None and (last["n_cats"], last["epoch"], last["record"]) \
                            == (k, epoch, record_text):
                        return int(last["seq"])
                # The run's row first: the UPDATE locks it to commit, so the fence holds
                # until the epoch is in (a run marked interrupted meanwhile waits for this
                # commit, or this UPDATE, re-checked after that one, matches nothing).
                cur = conn.execute(
                    "UPDATE runs SET current_k = ?, epochs_done = ?, k_elapsed = ?, "
                    "heartbeat = ? WHERE id = ?" + fence,
                    (k, epoch + 1, record.get("elapsed_s"), now, run_id, *fence_args),
                )
                if cur.rowcount == 0:
                    self._refuse_if_fenced(conn, run_id)
                    return None  # deleted
                # fetchall: SQLite finishes a RETURNING statement only when it is read out
                rows = conn.execute(
                    "INSERT INTO epochs (run_id, n_cats, epoch, record, snapshot) "
                    "VALUES (?, ?, ?, ?, ?) RETURNING seq",
                    (run_id, k, epoch, record_text, snapshot_text),
                ).fetchall()
                return int(rows[0][0])

        return self._retrying("storing an epoch", attempt)

    @_retried("reading epochs")
    def epochs(self, run_id: str, n_cats: int | None = None, after_seq: int = 0,
               snapshots: bool = True, limit: int | None = None) -> list[dict]:
        """EpochRecord dicts in training order, each with its ``seq``.

        ``after_seq`` returns only newer ones (incremental reads); ``snapshots=False`` leaves
        out the (large) snapshot layouts, ``limit`` caps how many are returned.

        Incremental reads never skip a record: appends to one run are serialised (see
        ``append_epoch``), so within a run the order of commits is the order of seq.
        """
        cols = "seq, record, snapshot" if snapshots else "seq, record"
        sql = f"SELECT {cols} FROM epochs WHERE run_id = ? AND seq > ?"
        args: list = [run_id, int(after_seq or 0)]
        if n_cats is not None:
            sql += " AND n_cats = ?"
            args.append(int(n_cats))
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        out = []
        for row in self._conn().execute(sql, args).fetchall():
            what = f"run {run_id}: the stored epoch {row['seq']}"
            rec = _decoded(row["record"], what, dict)
            rec["seq"] = int(row["seq"])
            if snapshots:
                rec["snapshot"] = (_decoded(row["snapshot"], f"{what} snapshot", dict)
                                   if row["snapshot"] else None)
            out.append(rec)
        return out

    @_retried("storing a result")
    def put_result(self, run_id: str, result: dict) -> None:
        fence, fence_args = self._fence(run_id)
        with self._write() as conn:
            # the run's row first, locked to commit: see append_epoch
            cur = conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?" + fence,
                               (time.time(), run_id, *fence_args))
            if cur.rowcount == 0:
                self._refuse_if_fenced(conn, run_id)
                return  # deleted
            conn.execute(
                "INSERT INTO results (run_id, n_cats, record) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id, n_cats) DO UPDATE SET record = excluded.record",
                (run_id, int(result["n_cats"]), _dumps(result)),
            )

    @_retried("reading results")
    def results(self, run_id: str) -> list[dict]:
        rows = self._conn().execute(
            "SELECT n_cats, record FROM results WHERE run_id = ? ORDER BY n_cats", (run_id,)
        ).fetchall()
        return [_decoded(r["record"], f"run {run_id}: the stored result for K={r['n_cats']}",
                         dict) for r in rows]

    @_retried("reading result summaries")
    def result_summaries(self) -> dict[str, list[dict]]:
        """Every run's results reduced to ``n_cats``, ``significance`` and ``objective``
        (what the runs table shows), ascending in K.

        The database's JSON functions pick the fields out of the records, so the large parts
        (category maps, histograms) are never parsed in Python: ~20 ms for 200 runs instead
        of ~1 s. A record the database cannot read (plain JSON has no NaN) is read in full.
        """
        try:
            rows = self._conn().execute(self._dialect.SUMMARY_SQL).fetchall()
        except self._dialect.no_json_errors:  # an SQLite without JSON functions
            rows = [(run_id, None, 0, None, None, record) for run_id, record in
                    self._conn().execute("SELECT run_id, record FROM results "
                                         "ORDER BY run_id, n_cats").fetchall()]
        summaries: dict[str, list[dict]] = {}
        for run_id, n_cats, ok, significance, objective, record in rows:
            if ok:
                summary = {"n_cats": int(n_cats),
                           "significance": _json_value(significance),
                           "objective": _json_value(objective)}
            else:
                try:
                    full = _decoded(record, f"the stored result for K={n_cats}", dict)
                except DamagedRecord as exc:  # shown as a damaged run, the others stay
                    summary = {"n_cats": n_cats, "damaged": str(exc)}
                else:
                    summary = {key: full.get(key)
                               for key in ("n_cats", "significance", "objective")}
            summaries.setdefault(run_id, []).append(summary)
        return summaries

    @_retried("reading a run's category counts")
    def result_ks(self, run_id: str) -> list[int]:
        """The category counts that have a result, ascending (cheap: no records read)."""
        rows = self._conn().execute(
            "SELECT n_cats FROM results WHERE run_id = ? ORDER BY n_cats", (run_id,)).fetchall()
        return [int(r[0]) for r in rows]

    @_retried("setting a run's status")
    def set_status(self, run_id: str, status: str, message: str = "") -> None:
        """Set the status; a terminal status also stamps ``finished`` (and ends this
        object's claim on the run)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = time.time()
        fence, fence_args = self._fence(run_id)
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE runs SET status = ?, message = ?, heartbeat = ?, "
                "finished = CASE WHEN ? = 1 THEN ? ELSE finished END WHERE id = ?" + fence,
                (status, message, now, int(status in TERMINAL), now, run_id, *fence_args),
            )
            if cur.rowcount == 0:
                self._refuse_if_fenced(conn, run_id)
        if status in TERMINAL:
            self._claims.pop(run_id, None)

    @_retried("recording why a job ended")
    def add_interruption_cause(self, run_id: str, cause: str) -> bool:
        """For a job fenced out because its run was marked interrupted while it could not
        reach the store: add what happened to the run's message. The status stays
        "interrupted"; only the job that held the claim may say it. True if added."""
        token = self._claims.get(run_id)
        if token is None:
            return False
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE runs SET message = message || ? WHERE id = ? AND status = 'interrupted' "
                "AND claim_token = ?", (f"; its job reported: {cause}", run_id, token))
            return cur.rowcount == 1

    @_retried("setting a run's training time")
    def set_training_time(self, run_id: str, seconds: float) -> None:
        """For a run trained elsewhere (imported): its duration is the training time its
        records report, ending when it was stored here."""
        with self._write() as conn:
            conn.execute("UPDATE runs SET started = finished - ? WHERE id = ?",
                         (max(float(seconds), 0.0), run_id))

    # ----- cancel --------------------------------------------------------------------------
    @_retried("asking a run to stop")
    def request_cancel(self, run_id: str) -> bool:
        """Ask the run's job to stop after the current epoch; a queued run is cancelled now.

        A flag in the store, not a signal: the job may run on another machine. Returns
        False when the run does not exist or has already ended.
        """
        now = time.time()
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE runs SET cancel_requested = 1 WHERE id = ? AND status IN "
                "('queued', 'running')", (run_id,))
            if cur.rowcount != 1:
                return False
            # Only if still queued: a job that claimed it meanwhile sees the flag instead.
            conn.execute(
                "UPDATE runs SET status = 'cancelled', message = 'cancelled before it "
                "started', finished = ? WHERE id = ? AND status = 'queued'", (now, run_id))
            return True

    @_retried("reading a run's cancel flag")
    def cancel_requested(self, run_id: str) -> bool:
        """True if cancel was asked for, or the run no longer exists (deleted mid-run)."""
        row = self._conn().execute(
            "SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return row is None or bool(row["cancel_requested"])

    # ----- user edits -------------------------------------------------------------------
    @_retried("renaming a run")
    def rename(self, run_id: str, name: str | None) -> None:
        name = checked_text("a run name", name, MAX_NAME_CHARS).strip() or None
        with self._write() as conn:
            conn.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id))

    @_retried("saving a note")
    def set_note(self, run_id: str, note: str) -> None:
        note = checked_text("a note", note, MAX_NOTE_CHARS)
        with self._write() as conn:
            conn.execute("UPDATE runs SET note = ? WHERE id = ?", (note, run_id))

    @_retried("saving tags")
    def set_tags(self, run_id: str, tags) -> None:
        clean = sorted({checked_text("a tag", t, MAX_TAG_CHARS).strip() for t in (tags or [])
                        if str(t).strip()})
        if len(clean) > MAX_TAGS:
            raise TextTooLong(f"a run may have at most {MAX_TAGS} tags, got {len(clean)}")
        with self._write() as conn:
            conn.execute("UPDATE runs SET tags = ? WHERE id = ?", (json.dumps(clean), run_id))

    def delete(self, run_id: str) -> bool:
        """Remove the run, its epochs, results and files; a running job stops by itself
        (its ``cancel_requested`` turns True and its writes are dropped)."""
        def attempt(_):
            with self._write() as conn:
                cur = conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
                deleted = cur.rowcount == 1
                conn.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
                conn.execute("DELETE FROM results WHERE run_id = ?", (run_id,))
            return deleted

        deleted = self._retrying("deleting a run", attempt)
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)
        return deleted

    # ----- interrupted runs -------------------------------------------------------------
    def _mark_interrupted(self) -> None:
        """Turn running runs whose job is gone into "interrupted" (persisted).

        Gone = no heartbeat for the heartbeat timeout, or, for a job on this machine, its
        process no longer exists (seen right after a server restart). A process id means
        nothing on another machine, so a job elsewhere is judged by its heartbeat alone.
        A cheap read first, so polling does not take the
        write lock when nothing is wrong.
        """
        now = time.time()
        host = this_host()
        rows = self._conn().execute(
            "SELECT id, heartbeat, job_pid, job_host, current_k, epochs_done FROM runs "
            "WHERE status = 'running'").fetchall()
        timeout = (HEARTBEAT_TIMEOUT_S if self.heartbeat_timeout_s is None
                   else self.heartbeat_timeout_s)
        silent_since = now - timeout
        lost = [r for r in rows
                if (r["heartbeat"] or 0) < silent_since
                or (r["job_host"] in (None, host) and not _pid_alive(r["job_pid"]))]
        for r in lost:
            where = (f" at epoch {r['epochs_done']} of K={r['current_k']}"
                     if r["current_k"] is not None else " before its first epoch")
            message = (f"interrupted{where}: the training process stopped or lost the run "
                       "store (server or worker restart?)")
            with self._write() as conn:
                # Re-check inside the transaction: the job may have just finished.
                # It ended at its last sign of life, not now: the downtime is no duration.
                conn.execute(
                    "UPDATE runs SET status = 'interrupted', message = ?, "
                    "finished = COALESCE(heartbeat, started, ?) "
                    "WHERE id = ? AND status = 'running' AND (heartbeat IS NULL OR heartbeat = ?)",
                    (message, now, r["id"], r["heartbeat"]),
                )


# ----- the two databases ---------------------------------------------------------------------
class _Row(tuple):
    """A result row readable by position and by column name (like sqlite3.Row)."""

    __slots__ = ()
    _index: dict = {}

    def __getitem__(self, key):
        if isinstance(key, str):
            key = self._index[key]
        return tuple.__getitem__(self, key)


class _Connection:
    """One database connection; ``execute`` takes the store's ``?`` placeholders."""

    def __init__(self, dialect, raw):
        self.dialect, self.raw = dialect, raw
        self.pid = os.getpid()

    def __del__(self):
        # The thread that owned it has ended (a web server starts one per request). A
        # connection inherited through fork is the parent's: leave it alone.
        if self.pid == os.getpid():
            try:
                self.dialect.release(self.raw)
            except Exception:
                pass

    def execute(self, sql: str, args=()):
        return self.raw.execute(self.dialect.translate(sql), tuple(args))

    def closed(self) -> bool:
        return self.dialect.is_closed(self.raw)

    def discard(self) -> None:
        """Close it for good (it failed): never handed to another thread."""
        self.pid = None  # so __del__ does not release it for reuse
        try:
            self.raw.close()
        except Exception:
            pass


class _SQLite:
    REAL, SERIAL = "REAL", "INTEGER PRIMARY KEY AUTOINCREMENT"
    SUMMARY_SQL = (
        "SELECT run_id, n_cats, ok, "
        "CASE WHEN ok THEN json_extract(record, '$.significance') END, "
        "CASE WHEN ok THEN json_extract(record, '$.objective') END, "
        "CASE WHEN ok THEN NULL ELSE record END "
        "FROM (SELECT run_id, n_cats, record, json_valid(record) AS ok FROM results) "
        "ORDER BY run_id, n_cats")
    no_json_errors = (sqlite3.OperationalError,)

    def __init__(self, path: Path):
        self.path = path

    def describe(self) -> str:
        return str(self.path)

    def connect(self):
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=True)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    @staticmethod
    def is_closed(raw) -> bool:
        return False

    @staticmethod
    def is_connection_error(exc: Exception) -> bool:
        return False  # a file: "locked" waits on the busy timeout, nothing to reconnect

    @staticmethod
    def forget_idle() -> None:
        pass

    @staticmethod
    def release(raw) -> None:
        pass  # closed when collected; opening an SQLite file costs next to nothing

    @staticmethod
    def translate(sql: str) -> str:
        return sql

    def transaction(self, conn):
        return _Transaction(conn, "BEGIN IMMEDIATE")

    @staticmethod
    def lock_run(conn, run_id: str) -> None:
        pass  # BEGIN IMMEDIATE holds the database's one write lock

    def create_schema(self, conn) -> None:
        # executescript() manages its own transaction; CREATE ... IF NOT EXISTS is safe to
        # run from several processes at once.
        conn.raw.executescript(_SCHEMA.format(real=self.REAL, serial=self.SERIAL))
        columns = {r[1] for r in conn.raw.execute("PRAGMA table_info(runs)")}
        for column, sql_type in _ADDED_RUN_COLUMNS.items():
            if column not in columns:  # a store of an older version
                try:
                    conn.raw.execute(f"ALTER TABLE runs ADD COLUMN {column} {sql_type}")
                except sqlite3.OperationalError:  # another process added it just now
                    pass


class _Postgres:
    REAL, SERIAL = "DOUBLE PRECISION", "BIGSERIAL PRIMARY KEY"
    # A record with NaN in it is not JSON PostgreSQL can read: _gato_jsonb gives NULL
    # there instead of failing the whole query, and the record is read in full.
    SUMMARY_SQL = (
        "SELECT run_id, n_cats, doc IS NOT NULL, doc -> 'significance', doc -> 'objective', "
        "CASE WHEN doc IS NULL THEN record END "
        "FROM (SELECT run_id, n_cats, record, _gato_jsonb(record) AS doc FROM results) r "
        "ORDER BY run_id, n_cats")
    TRY_JSONB = (
        "CREATE OR REPLACE FUNCTION _gato_jsonb(t text) RETURNS jsonb AS $body$ "
        "BEGIN RETURN t::jsonb; EXCEPTION WHEN others THEN RETURN NULL; END; "
        "$body$ LANGUAGE plpgsql IMMUTABLE")
    no_json_errors = ()
    #: Any fixed number: serialises schema set-up between processes that start together.
    SCHEMA_LOCK = 0x6A70

    #: Connections kept for reuse by later threads of the same process.
    MAX_IDLE = 8

    def __init__(self, url: str):
        self.url = url
        self._idle: list = []
        self._idle_pid = os.getpid()
        if importlib.util.find_spec("psycopg") is None:
            raise RuntimeError("a PostgreSQL run store needs the psycopg package "
                               "(pip install -r requirements.txt)")

    def describe(self) -> str:
        # never show a password
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.username or ''}@{host}{port}{parts.path}"

    def connect(self):
        import psycopg

        if self._idle_pid == os.getpid():
            while self._idle:
                try:
                    conn = self._idle.pop()
                except IndexError:  # another thread took the last one
                    break
                if not self.is_closed(conn):
                    return conn
        conn = psycopg.connect(self.url, autocommit=True, row_factory=_pg_rows,
                               connect_timeout=int(BUSY_TIMEOUT_S))
        # like SQLite's busy timeout: wait for a lock this long, then fail
        conn.execute(f"SET lock_timeout = '{int(BUSY_TIMEOUT_S * 1000)}ms'")
        conn.execute("SET idle_in_transaction_session_timeout = "
                     f"'{int(IDLE_IN_TRANSACTION_S * 1000)}ms'")
        return conn

    @staticmethod
    def is_closed(raw) -> bool:
        return bool(raw.closed) or raw.broken

    #: SQLSTATEs of a session the server ended: admin shutdown, crash shutdown, cannot
    #: connect now, idle in a transaction too long (see IDLE_IN_TRANSACTION_S)
    SERVER_GONE = frozenset({"57P01", "57P02", "57P03", "25P03"})

    def is_connection_error(self, exc: Exception) -> bool:
        """A lost or refused connection (worth retrying), not a failed statement."""
        import psycopg

        if not isinstance(exc, psycopg.Error):
            return False
        state = getattr(exc, "sqlstate", None)
        if state is not None:
            return state.startswith("08") or state in self.SERVER_GONE
        if not isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            return False
        # No SQLSTATE: the client could not connect or lost the socket. A server that
        # answered FATAL refused us for good (no such database or role, wrong password),
        # unless it is starting up, shutting down or recovering: worth waiting for.
        text = str(exc)
        return "FATAL:" not in text or "the database system is" in text

    def forget_idle(self) -> None:
        while self._idle:
            try:
                raw = self._idle.pop()
            except IndexError:
                break
            try:
                raw.close()
            except Exception:
                pass

    def release(self, raw) -> None:
        """Keep the connection of a thread that ended for the next thread of this process:
        a new PostgreSQL connection costs a round trip and a server process."""
        import psycopg

        idle = (not self.is_closed(raw)
                and raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE)
        if idle and raw.pgconn.backend_pid and len(self._idle) < self.MAX_IDLE:
            if self._idle_pid != os.getpid():  # never hand a parent's connection to a child
                self._idle, self._idle_pid = [], os.getpid()
            self._idle.append(raw)
        elif not self.is_closed(raw):
            raw.close()

    @staticmethod
    def translate(sql: str, _cache: dict = {}) -> str:
        out = _cache.get(sql)
        if out is None:
            # none of the store's SQL has a literal ? or % in it
            out = _cache[sql] = sql.replace("?", "%s")
        return out

    def transaction(self, conn):
        return _Transaction(conn, "BEGIN")

    @staticmethod
    def lock_run(conn, run_id: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (run_id,)).fetchall()

    def create_schema(self, conn) -> None:
        with self.transaction(conn) as c:
            # CREATE ... IF NOT EXISTS is not safe against a concurrent twin in PostgreSQL
            c.execute(f"SELECT pg_advisory_xact_lock({self.SCHEMA_LOCK})")
            for statement in _SCHEMA.format(real=self.REAL, serial=self.SERIAL).split(";"):
                if statement.strip():
                    c.execute(statement)
            # A store of an older version gains the new columns. Checked first: ALTER TABLE
            # locks the table against every reader, even when it has nothing to add.
            present = {r[0] for r in c.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'runs' AND table_schema = current_schema()").fetchall()}
            for column, sql_type in _ADDED_RUN_COLUMNS.items():
                if column not in present:
                    c.execute(f"ALTER TABLE runs ADD COLUMN {column} {sql_type}")
            exists = c.execute("SELECT 1 FROM pg_proc WHERE proname = '_gato_jsonb'").fetchone()
            if exists is None:
                c.raw.execute(self.TRY_JSONB)


def _pg_rows(cursor):
    index = {d.name: i for i, d in enumerate(cursor.description or ())}
    row_class = type("Row", (_Row,), {"__slots__": (), "_index": index})
    return row_class


class _Transaction:
    """BEGIN ... COMMIT. SQLite's BEGIN IMMEDIATE takes the write lock up front so it never
    deadlocks; PostgreSQL locks rows as the statements reach them."""

    def __init__(self, conn: _Connection, begin: str):
        self.conn, self.begin = conn, begin

    def __enter__(self):
        self.conn.raw.execute(self.begin)
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.conn.raw.execute("COMMIT")
            return False
        try:
            self.conn.raw.execute("ROLLBACK")
        except Exception:
            if not self.conn.closed():
                raise
            # the connection died: the server dropped the transaction; the first error
            # (a connection error, retried) is the one to report
        return False


def this_host() -> str:
    """The machine a job runs on: its process id only means something there."""
    return socket.gethostname()


def _pid_alive(pid) -> bool:
    if not pid:
        return True  # unknown: rely on the heartbeat alone
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _json_value(value):
    # SQLite's json_extract gives objects as JSON text, PostgreSQL's -> gives them parsed
    return json.loads(value) if isinstance(value, str) else value


def _safe_id(run_id: str) -> str:
    # Run ids are ours (hex), but never let one escape the runs folder.
    return "".join(c for c in str(run_id) if c.isalnum() or c in "-_") or "_"


def as_stored(record: dict) -> dict:
    """``record`` as the store hands it back (numpy to lists, tuples to lists, JSON keys)."""
    return json.loads(_dumps(record))


def _dumps(obj) -> str:
    return json.dumps(obj, default=_json_default, separators=(",", ":"))


def _json_default(obj):
    # numpy scalars/arrays sneak in from the engine now and then
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot store {type(obj).__name__}")


def _decoded(text, what: str, kind: type):
    """``text`` read back as JSON of ``kind``, or DamagedRecord naming ``what``."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raise DamagedRecord(f"{what} is not valid JSON") from None
    if not isinstance(value, kind):
        raise DamagedRecord(f"{what} is not a JSON {'object' if kind is dict else 'list'}")
    return value


def _run_dict(row, heavy: bool) -> dict:
    """The run dict of a row; a row whose JSON cannot be read is a run with status
    "damaged" and a message saying which column, so one bad row never hides the others."""
    problems = []

    def column(name: str, kind: type, empty):
        text = row[name]
        if not text:
            return empty
        try:
            return _decoded(text, f"the stored {name}", kind)
        except DamagedRecord as exc:
            problems.append(str(exc))
            return empty

    config = column("config", dict, {})
    tags = column("tags", list, [])
    run_info = column("run_info", dict, None) if heavy else None
    n_cats = config.get("n_cats")
    out = {
        "id": row["id"],
        "name": row["name"],
        "note": row["note"],
        "tags": tags,
        "scenario": row["scenario"],
        "status": row["status"],
        "message": row["message"],
        "config": config,
        "n_cats": list(n_cats) if isinstance(n_cats, list) else [],
        "created": row["created"],
        "started": row["started"],
        "finished": row["finished"],
        "heartbeat": row["heartbeat"],
        "current_k": row["current_k"],
        "epochs_done": row["epochs_done"],
        "k_elapsed": row["k_elapsed"],
        "cancel_requested": bool(row["cancel_requested"]),
    }
    if heavy:
        out["run_info"] = run_info
    if problems:
        out["status"] = DAMAGED
        out["message"] = f"damaged: {'; '.join(problems)}; delete it, or restore the store " \
                         "from a backup"
    return out

