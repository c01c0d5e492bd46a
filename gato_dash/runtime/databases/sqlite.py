"""The run store in an SQLite file (the default: nothing to install).

Each thread of each process keeps its own connection (opening a file costs next to
nothing; a connection must never cross a thread or a fork). A writer waits on the busy
timeout instead of failing, and WAL mode lets readers (the browser's polling) proceed
while a job writes.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

from . import schema
from .connection import BUSY_TIMEOUT_S, Connection, Transaction


class SQLite:
    REAL, SERIAL = "REAL", "INTEGER PRIMARY KEY AUTOINCREMENT"
    #: (run id, K, readable, significance, objective, record if not readable) per result
    SUMMARY_SQL = (
        "SELECT run_id, n_cats, ok, "
        "CASE WHEN ok THEN json_extract(record, '$.significance') END, "
        "CASE WHEN ok THEN json_extract(record, '$.objective') END, "
        "CASE WHEN ok THEN NULL ELSE record END "
        "FROM (SELECT run_id, n_cats, record, json_valid(record) AS ok FROM results) "
        "ORDER BY run_id, n_cats")
    #: an SQLite built without its JSON functions fails SUMMARY_SQL with these
    no_json_errors = (sqlite3.OperationalError,)

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()

    def describe(self) -> str:
        return str(self.path)

    def _connect(self) -> sqlite3.Connection:
        raw = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                              check_same_thread=True)
        raw.row_factory = sqlite3.Row
        raw.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        raw.execute("PRAGMA journal_mode = WAL")
        raw.execute("PRAGMA synchronous = NORMAL")
        return raw

    def _thread_connection(self) -> sqlite3.Connection:
        # keyed by process id too: one inherited through fork is the parent's
        raw = getattr(self._local, "raw", None)
        if raw is None or self._local.pid != os.getpid():
            raw = self._local.raw = self._connect()
            self._local.pid = os.getpid()
        return raw

    @contextmanager
    def connection(self):
        yield Connection(self._thread_connection())

    def transaction(self, conn: Connection) -> Transaction:
        return Transaction(conn, "BEGIN IMMEDIATE", self.is_closed)

    @staticmethod
    def lock_run(conn: Connection, run_id: str) -> None:
        pass  # BEGIN IMMEDIATE holds the database's one write lock

    @staticmethod
    def is_closed(raw) -> bool:
        return False

    @staticmethod
    def is_connection_error(exc: Exception) -> bool:
        return False  # a file: "locked" waits on the busy timeout, nothing to reconnect

    def after_connection_error(self) -> None:
        pass

    def close(self) -> None:
        """Close this thread's connection."""
        raw = getattr(self._local, "raw", None)
        if raw is not None and self._local.pid == os.getpid():
            raw.close()
        self._local.raw = None

    def create_schema(self) -> None:
        raw = self._thread_connection()
        # executescript() manages its own transaction; CREATE ... IF NOT EXISTS is safe to
        # run from several processes at once.
        raw.executescript(schema.SCHEMA.format(real=self.REAL, serial=self.SERIAL))
        columns = {r[1] for r in raw.execute("PRAGMA table_info(runs)")}
        for column, sql_type in schema.ADDED_RUN_COLUMNS.items():
            if column not in columns:  # a store of an older version
                try:
                    raw.execute(f"ALTER TABLE runs ADD COLUMN {column} {sql_type}")
                except sqlite3.OperationalError:  # another process added it just now
                    pass
