"""The two databases the run store runs on, behind one small interface.

An SQLite file (``sqlite.SQLite``) or a PostgreSQL server (``postgres.Postgres``); the store
writes each statement once (``connection.Connection``) and asks the database only for what
differs: how to connect, begin a transaction, lock one run, set up the tables
(``schema``), and which errors mean a lost connection.
"""
from __future__ import annotations

from pathlib import Path

from .postgres import Postgres
from .sqlite import SQLite


def is_database_url(location) -> bool:
    """True for a PostgreSQL URL, False for an SQLite file path."""
    return str(location).startswith(("postgresql://", "postgres://"))


def open_database(location) -> SQLite | Postgres:
    """The database at ``location`` (a PostgreSQL URL or an SQLite file path; the file's
    folder is created). Connects only when first used."""
    if is_database_url(location):
        return Postgres(str(location))
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SQLite(path)
