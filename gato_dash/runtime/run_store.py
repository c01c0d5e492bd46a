"""The run store: every run's config, live epochs, results and status in one database.

``RunStore`` is what callers use: create, list, read and edit runs; a job's claim, its
records, heartbeat and end; cancel and delete. Each of its ideas has a module of its own:

- ``databases``: the two databases, an SQLite file in the data folder (the default,
  nothing to install) or a PostgreSQL server (``postgresql://...``) that web processes
  and training workers on several machines share; every method here writes its SQL once;
- ``liveness``: heartbeats, runs whose job went away (-> "interrupted"), and fencing (a
  job writes its run only while its claim holds, else ``FencedOut``);
- ``store_retry``: a lost connection is retried for ``STORE_RETRY_S``, then
  ``StoreUnreachable``;
- ``stored_records``: records as JSON text and back (``DamagedRecord``);
- ``run_fields``: the statuses and the text limits.

The web process, the training job processes and the test process all open the same
database, so every operation borrows a connection of its own process and thread and keeps
its transaction short. Status lifecycle: queued -> running (atomic ``claim``) ->
finished | cancelled | diverged | failed, or interrupted (``liveness``).

Times are unix seconds (float). Configs and records are the engine's ``to_dict()`` forms.
"""
from __future__ import annotations

import functools
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from . import liveness
from .databases import is_database_url, open_database
from .run_fields import (MAX_NAME_CHARS, MAX_NOTE_CHARS, MAX_TAG_CHARS, MAX_TAGS, STATUSES,
                         TERMINAL, TextTooLong, checked_text)
from .databases.schema import LIGHT_RUN_COLUMNS
from .store_retry import STORE_RETRY_S, retrying
from .stored_records import DamagedRecord, decoded, dumps, json_value, run_dict


def _retried(doing: str):
    """Run the method again while its database connection fails (``store_retry``); the
    whole method is retried, so a transaction is never half-applied."""
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            return self._retrying(doing, lambda attempt: method(self, *args, **kwargs))
        return wrapper
    return decorate


class RunStore:
    """All access to the run database. Cheap to construct; safe from several processes
    (and, with PostgreSQL, several machines).

    ``location``: an SQLite file path, or a ``postgresql://user@host:port/db`` URL.
    ``data_dir``: the folder for run files (reports, figures); defaults to the SQLite
    file's folder and must be given with PostgreSQL (the same shared folder everywhere).
    ``heartbeat_timeout_s``: silence after which a running run counts as interrupted
    (None: liveness.HEARTBEAT_TIMEOUT_S); ``retry_s``: how long a lost database
    connection is retried (store_retry).

    The object that claims a run is that run's job: see "Fencing" in ``liveness``.
    """

    def __init__(self, location, data_dir=None, heartbeat_timeout_s: float | None = None,
                 retry_s: float = STORE_RETRY_S):
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.retry_s = float(retry_s)
        self._claims = liveness.Claims()
        if is_database_url(location) and data_dir is None:
            raise ValueError("a PostgreSQL run store needs the data folder (data_dir) "
                             "where the runs' files live")
        self._database = open_database(location)
        self.path = None if is_database_url(location) else Path(location)
        self.location = str(location) if self.path is None else str(self.path)
        self._data_dir = Path(data_dir) if data_dir is not None else self.path.parent
        self._retrying("setting up the schema", lambda attempt: self._database.create_schema())

    def __repr__(self):
        return f"RunStore({self._database.describe()!r})"

    # ----- connections -----------------------------------------------------------------
    @contextmanager
    def _connection(self):
        """A connection for one operation (this thread's with SQLite, one of this
        process's pool with PostgreSQL)."""
        with self._database.connection() as conn:
            yield conn

    @contextmanager
    def _write(self):
        """A write transaction: committed at the end of the block, rolled back on an error."""
        with self._database.connection() as conn, self._database.transaction(conn):
            yield conn

    def _read(self, sql: str, args=()) -> list:
        with self._connection() as conn:
            return conn.execute(sql, args).fetchall()

    def _retrying(self, doing: str, operation):
        return retrying(operation, self._database, doing, self.retry_s)

    def _mark_interrupted(self) -> None:
        liveness.mark_interrupted(self._connection, self._write, self.heartbeat_timeout_s)

    def close(self) -> None:
        """Close the store's connections (SQLite: this thread's; PostgreSQL: this
        process's pool). The store opens new ones if it is used again."""
        self._database.close()

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
        blob = dumps(config)
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
        rows = self._read(f"SELECT {LIGHT_RUN_COLUMNS}, run_info FROM runs WHERE id = ?",
                          (run_id,))
        return run_dict(rows[0], heavy=True) if rows else None

    @_retried("reading a run's status")
    def run_status(self, run_id: str) -> dict | None:
        """Like ``get_run`` without ``run_info``: cheap enough to poll twice a second."""
        if not isinstance(run_id, str):
            return None
        self._mark_interrupted()
        rows = self._read(f"SELECT {LIGHT_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return run_dict(rows[0], heavy=False) if rows else None

    @_retried("listing the runs")
    def list_runs(self) -> list[dict]:
        """Every run, newest first, without ``run_info``; ``n_cats`` added from the config."""
        self._mark_interrupted()
        rows = self._read(f"SELECT {LIGHT_RUN_COLUMNS} FROM runs ORDER BY created DESC, id DESC")
        return [run_dict(r, heavy=False) for r in rows]

    # ----- the job's side ----------------------------------------------------------------
    def claim(self, run_id: str, pid: int | None = None) -> bool:
        """queued -> running, atomically: True for exactly one caller per run (also across
        machines: the conditional UPDATE is one statement under the database's row lock).

        The winner's later writes to the run are fenced by a fresh claim token (see
        ``liveness``). A retry after a lost connection whose first try did commit finds its
        own token and still wins."""
        token = self._claims.new_token()
        now = time.time()

        def attempt(_):
            with self._write() as conn:
                cur = conn.execute(
                    "UPDATE runs SET status = 'running', started = ?, heartbeat = ?, "
                    "job_pid = ?, job_host = ?, message = '', claim_token = ? "
                    "WHERE id = ? AND ((status = 'queued' AND cancel_requested = 0) "
                    "OR (status = 'running' AND claim_token = ?))",
                    (now, now, pid or os.getpid(), liveness.this_host(), token, run_id, token),
                )
                return cur.rowcount == 1

        won = self._retrying("claiming a run", attempt)
        if won:
            self._claims.won(run_id, token)
        return won

    @_retried("listing runs")
    def run_ids(self, status: str = "queued", limit: int = 100) -> list[str]:
        """Ids of the runs with ``status``, oldest first (for "queued": the order in which
        they start)."""
        rows = self._read("SELECT id FROM runs WHERE status = ? ORDER BY created, id LIMIT ?",
                          (status, int(limit)))
        return [r["id"] for r in rows]

    @_retried("sending a heartbeat")
    def heartbeat(self, run_id: str) -> None:
        fence, fence_args = self._claims.guard(run_id)
        with self._write() as conn:
            cur = conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ? AND status = 'running'"
                               + fence, (time.time(), run_id, *fence_args))
            if cur.rowcount == 0:
                self._claims.refuse_if_fenced(conn, run_id)

    @_retried("storing the run info")
    def set_run_info(self, run_id: str, info: dict) -> None:
        fence, fence_args = self._claims.guard(run_id)
        with self._write() as conn:
            cur = conn.execute("UPDATE runs SET run_info = ?, heartbeat = ? WHERE id = ?" + fence,
                               (dumps(info), time.time(), run_id, *fence_args))
            if cur.rowcount == 0:
                self._claims.refuse_if_fenced(conn, run_id)

    def append_epoch(self, run_id: str, record: dict) -> int | None:
        """Store one EpochRecord dict; returns its seq (None if the run was deleted)."""
        record = dict(record)
        snapshot = record.pop("snapshot", None)
        record.pop("seq", None)
        k, epoch = int(record["n_cats"]), int(record["epoch"])
        record_text = dumps(record)
        snapshot_text = None if snapshot is None else dumps(snapshot)
        fence, fence_args = self._claims.guard(run_id)

        def attempt(retry: int) -> int | None:
            now = time.time()
            with self._write() as conn:
                # PostgreSQL hands out seq before commit: two writers of one run could commit
                # seq 8 before seq 7, and a reader past 8 would never see 7. A per-run lock
                # held to commit keeps the orders equal (SQLite's write lock already does).
                self._database.lock_run(conn, run_id)
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
                    self._claims.refuse_if_fenced(conn, run_id)
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
        for row in self._read(sql, args):
            what = f"run {run_id}: the stored epoch {row['seq']}"
            rec = decoded(row["record"], what, dict)
            rec["seq"] = int(row["seq"])
            if snapshots:
                rec["snapshot"] = (decoded(row["snapshot"], f"{what} snapshot", dict)
                                   if row["snapshot"] else None)
            out.append(rec)
        return out

    @_retried("storing a result")
    def put_result(self, run_id: str, result: dict) -> None:
        fence, fence_args = self._claims.guard(run_id)
        with self._write() as conn:
            # the run's row first, locked to commit: see append_epoch
            cur = conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?" + fence,
                               (time.time(), run_id, *fence_args))
            if cur.rowcount == 0:
                self._claims.refuse_if_fenced(conn, run_id)
                return  # deleted
            conn.execute(
                "INSERT INTO results (run_id, n_cats, record) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id, n_cats) DO UPDATE SET record = excluded.record",
                (run_id, int(result["n_cats"]), dumps(result)),
            )

    @_retried("reading results")
    def results(self, run_id: str) -> list[dict]:
        rows = self._read("SELECT n_cats, record FROM results WHERE run_id = ? ORDER BY n_cats",
                          (run_id,))
        return [decoded(r["record"], f"run {run_id}: the stored result for K={r['n_cats']}",
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
            rows = self._read(self._database.SUMMARY_SQL)
        except self._database.no_json_errors:  # an SQLite without JSON functions
            rows = [(run_id, None, 0, None, None, record) for run_id, record in
                    self._read("SELECT run_id, record FROM results ORDER BY run_id, n_cats")]
        summaries: dict[str, list[dict]] = {}
        for run_id, n_cats, ok, significance, objective, record in rows:
            if ok:
                summary = {"n_cats": int(n_cats),
                           "significance": json_value(significance),
                           "objective": json_value(objective)}
            else:
                try:
                    full = decoded(record, f"the stored result for K={n_cats}", dict)
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
        rows = self._read("SELECT n_cats FROM results WHERE run_id = ? ORDER BY n_cats",
                          (run_id,))
        return [int(r[0]) for r in rows]

    @_retried("setting a run's status")
    def set_status(self, run_id: str, status: str, message: str = "") -> None:
        """Set the status; a terminal status also stamps ``finished`` (and ends this
        object's claim on the run)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = time.time()
        fence, fence_args = self._claims.guard(run_id)
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE runs SET status = ?, message = ?, heartbeat = ?, "
                "finished = CASE WHEN ? = 1 THEN ? ELSE finished END WHERE id = ?" + fence,
                (status, message, now, int(status in TERMINAL), now, run_id, *fence_args),
            )
            if cur.rowcount == 0:
                self._claims.refuse_if_fenced(conn, run_id)
        if status in TERMINAL:
            self._claims.ended(run_id)

    @_retried("recording why a job ended")
    def add_interruption_cause(self, run_id: str, cause: str) -> bool:
        """For a job fenced out because its run was marked interrupted while it could not
        reach the store: add what happened to the run's message. The status stays
        "interrupted"; only the job that held the claim may say it. True if added."""
        token = self._claims.token(run_id)
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
        rows = self._read("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,))
        return not rows or bool(rows[0]["cancel_requested"])

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
            conn.execute("UPDATE runs SET tags = ? WHERE id = ?", (dumps(clean), run_id))

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


def _safe_id(run_id: str) -> str:
    # Run ids are ours (hex), but never let one escape the runs folder.
    return "".join(c for c in str(run_id) if c.isalnum() or c in "-_") or "_"
