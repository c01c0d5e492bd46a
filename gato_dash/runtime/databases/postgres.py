"""The run store in a PostgreSQL server, which web processes and training workers on
several machines share.

Connections come from a psycopg_pool pool per process (a new one after a fork: a pool's
connections and threads are its parent's), borrowed for one store operation each, so the
web server's short-lived request threads reuse a few connections instead of opening one
each (a round trip and a server process). Setting up the schema connects directly: a
setting to fix (no such database, a wrong password) is then reported as the server says
it, at once.
"""
from __future__ import annotations

import importlib.util
import os
import threading
from contextlib import contextmanager
from urllib.parse import urlsplit

from . import schema
from .connection import BUSY_TIMEOUT_S, Connection, Transaction

#: PostgreSQL ends a session that sits this long inside a transaction: a job frozen in the
#: middle of a write (SIGSTOP, a suspended machine) must not hold its run's row, and with
#: it every reader that would mark the run interrupted. Shorter than BUSY_TIMEOUT_S, the
#: longest a statement waits for a lock; the store's transactions take milliseconds.
IDLE_IN_TRANSACTION_S = 10.0
#: Most connections one process keeps (the web server's request threads share them)
MAX_CONNECTIONS = 10
#: How long an operation waits for a connection before it counts as a lost one (and the
#: store retries it, store_retry). Connections take milliseconds to make and to use:
#: waiting longer would only put off the next attempt while the server is away.
CONNECTION_WAIT_S = 0.25
#: The pool gives up re-making a lost connection in the background after this long (its
#: own backoff starts at 1 s); while the server is away, each retried operation that
#: finds no connection starts a new attempt, so the store's retry (50 ms doubling up to
#: 2 s) paces them and a job is back within a fraction of a second of a restart.
RECONNECT_S = 0.1
#: SQLSTATEs of a session the server ended: admin shutdown, crash shutdown, cannot
#: connect now, idle in a transaction too long (see IDLE_IN_TRANSACTION_S)
SERVER_GONE = frozenset({"57P01", "57P02", "57P03", "25P03"})


class Postgres:
    REAL, SERIAL = "DOUBLE PRECISION", "BIGSERIAL PRIMARY KEY"
    # A record with NaN in it (stored before records were written by orjson) is not JSON
    # PostgreSQL can read: _gato_jsonb gives NULL there instead of failing the whole query,
    # and the record is read in full.
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

    def __init__(self, url: str):
        self.url = url
        if importlib.util.find_spec("psycopg_pool") is None:
            raise RuntimeError("a PostgreSQL run store needs the psycopg and psycopg-pool "
                               "packages (pip install -r requirements.txt)")
        self._pool = None
        self._pool_pid = None
        #: pools inherited through fork: the parent's, never used or collected here (their
        #: finaliser would wait on threads that do not exist in this process)
        self._inherited = []
        self._lock = threading.Lock()

    def describe(self) -> str:
        # never show a password
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.username or ''}@{host}{port}{parts.path}"

    # ----- connections ---------------------------------------------------------------------
    @staticmethod
    def _configure(raw) -> None:
        # like SQLite's busy timeout: wait for a lock this long, then fail
        raw.execute(f"SET lock_timeout = '{int(BUSY_TIMEOUT_S * 1000)}ms'")
        raw.execute("SET idle_in_transaction_session_timeout = "
                    f"'{int(IDLE_IN_TRANSACTION_S * 1000)}ms'")

    def _connect_options(self) -> dict:
        return {"autocommit": True, "row_factory": _rows, "connect_timeout": int(BUSY_TIMEOUT_S)}

    def _process_pool(self):
        with self._lock:
            if self._pool is not None and self._pool_pid == os.getpid():
                return self._pool
            from psycopg_pool import ConnectionPool

            if self._pool is not None:  # we are a child of the process that opened it
                self._inherited.append(self._pool)
            self._pool = ConnectionPool(
                self.url, kwargs=self._connect_options(), configure=self._configure,
                min_size=0, max_size=MAX_CONNECTIONS, timeout=CONNECTION_WAIT_S,
                reconnect_timeout=RECONNECT_S, name=f"run store {self.describe()}",
                open=True)
            self._pool_pid = os.getpid()
            return self._pool

    @contextmanager
    def connection(self):
        with self._process_pool().connection() as raw:
            yield Connection(raw, _placeholders)

    def transaction(self, conn: Connection) -> Transaction:
        return Transaction(conn, "BEGIN", self.is_closed)

    @staticmethod
    def lock_run(conn: Connection, run_id: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (run_id,)).fetchall()

    @staticmethod
    def is_closed(raw) -> bool:
        return bool(raw.closed) or raw.broken

    def is_connection_error(self, exc: Exception) -> bool:
        """A lost or refused connection (worth retrying), not a failed statement."""
        import psycopg
        from psycopg_pool import PoolClosed, PoolTimeout

        if isinstance(exc, (PoolTimeout, PoolClosed)):  # none to be had, or closed meanwhile
            return True
        if not isinstance(exc, psycopg.Error):
            return False
        state = getattr(exc, "sqlstate", None)
        if state is not None:
            return state.startswith("08") or state in SERVER_GONE
        if not isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            return False
        # No SQLSTATE: the client could not connect or lost the socket. A server that
        # answered FATAL refused us for good (no such database or role, wrong password),
        # unless it is starting up, shutting down or recovering: worth waiting for.
        text = str(exc)
        return "FATAL:" not in text or "the database system is" in text

    def after_connection_error(self) -> None:
        """The server went away: its other idle connections died with it. The pool tests
        them and replaces the dead ones, so the retry does not pick one up."""
        with self._lock:
            pool = self._pool if self._pool_pid == os.getpid() else None
        if pool is not None:
            pool.check()

    def close(self) -> None:
        """Close this process's connections (the next operation opens a new pool)."""
        with self._lock:
            pool, self._pool = self._pool, None
            mine = self._pool_pid == os.getpid()
        if pool is not None:
            if mine:
                pool.close()
            else:
                self._inherited.append(pool)

    # ----- schema --------------------------------------------------------------------------
    def create_schema(self) -> None:
        import psycopg

        with psycopg.connect(self.url, **self._connect_options()) as raw:
            self._configure(raw)
            conn = Connection(raw, _placeholders)
            with self.transaction(conn) as c:
                # CREATE ... IF NOT EXISTS is not safe against a concurrent twin here
                c.execute(f"SELECT pg_advisory_xact_lock({self.SCHEMA_LOCK})")
                for statement in schema.statements(self.REAL, self.SERIAL):
                    c.execute(statement)
                # A store of an older version gains the new columns. Checked first: ALTER
                # TABLE locks the table against every reader, even when it has nothing to add.
                present = {r[0] for r in c.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'runs' AND table_schema = current_schema()").fetchall()}
                for column, sql_type in schema.ADDED_RUN_COLUMNS.items():
                    if column not in present:
                        c.execute(f"ALTER TABLE runs ADD COLUMN {column} {sql_type}")
                exists = c.execute(
                    "SELECT 1 FROM pg_proc WHERE proname = '_gato_jsonb'").fetchone()
                if exists is None:
                    c.raw.execute(self.TRY_JSONB)


def _placeholders(sql: str, _cache: dict = {}) -> str:
    """The store's ``?`` placeholders as psycopg's ``%s``."""
    out = _cache.get(sql)
    if out is None:
        # none of the store's SQL has a literal ? or % in it
        out = _cache[sql] = sql.replace("?", "%s")
    return out


class _Row(tuple):
    """A result row readable by position and by column name (like sqlite3.Row)."""

    __slots__ = ()
    _index: dict = {}

    def __getitem__(self, key):
        if isinstance(key, str):
            key = self._index[key]
        return tuple.__getitem__(self, key)


def _rows(cursor):
    """psycopg row factory: rows as _Row, with this cursor's column names."""
    index = {d.name: i for i, d in enumerate(cursor.description or ())}
    return type("Row", (_Row,), {"__slots__": (), "_index": index})
