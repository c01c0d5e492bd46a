"""What the two databases share: one way to run a statement and one transaction.

The store writes every statement once, with ``?`` placeholders; a ``Connection`` hands it
to the database in that database's placeholder style. Rows are read by position or by
column name in both.
"""
from __future__ import annotations

#: Longest a statement waits for a lock (SQLite: its busy timeout; PostgreSQL: its lock
#: timeout and how long a connection attempt may take) before it fails
BUSY_TIMEOUT_S = 15.0


class Connection:
    """One database connection, borrowed for one store operation."""

    def __init__(self, raw, translate=None):
        self.raw = raw
        self._translate = translate

    def execute(self, sql: str, args=()):
        if self._translate is not None:
            sql = self._translate(sql)
        return self.raw.execute(sql, tuple(args))


class Transaction:
    """BEGIN ... COMMIT, or ROLLBACK on an error. SQLite's BEGIN IMMEDIATE takes the write
    lock up front so it never deadlocks; PostgreSQL locks rows as the statements reach
    them."""

    def __init__(self, conn: Connection, begin: str, is_closed):
        self.conn, self.begin, self._is_closed = conn, begin, is_closed

    def __enter__(self) -> Connection:
        self.conn.raw.execute(self.begin)
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.conn.raw.execute("COMMIT")
            return False
        try:
            self.conn.raw.execute("ROLLBACK")
        except Exception:
            if not self._is_closed(self.conn.raw):
                raise
            # the connection died: the server dropped the transaction; the first error
            # (a connection error, retried) is the one to report
        return False
