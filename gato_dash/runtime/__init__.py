"""The running app's shared state, without Dash: the data folder, the run store, the settings.

Pages, callbacks and the importer read the store and the settings from here, so none of them
imports the app factory (``gato_dash.app``) that imports them: the import graph points one
way, presentation -> runtime -> core. ``configure`` is called once per process, by
``create_app`` in the web process and by the importer's command line.

The data folder holds:

- ``runs.sqlite``  the run store (gato_dash.runtime.run_store), unless it is in PostgreSQL
- ``events/``      generated event samples, cached by the engine
- ``xla/``         TensorFlow's persistent XLA compilation cache (see configure_tensorflow)
- ``runs/<id>/``   files belonging to one run (removed with the run)
"""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .databases import is_database_url
from .run_store import RunStore

DEFAULT_DATA_DIR = "gato_data"
STORE_FILE = "runs.sqlite"
#: the run store when it is not the SQLite file of the data folder (see gato_dash.runtime.backends)
STORE_ENV = "GATO_STORE"


class BackendError(ValueError):
    """A broker or store setting that cannot work; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    """What this server allows. The defaults are the embedded single-user app."""

    #: show runs only: no new runs, no cancel, no delete, no rename, no imports
    read_only: bool = False
    #: imports may name a path on the server machine (off unless asked for)
    allow_server_paths: bool = False
    #: largest file the Datasets page accepts (upload or server path)
    max_upload_bytes: int = 4 * 1024 ** 3


class ReadOnlyError(PermissionError):
    """A write asked of a read-only (``--viewer``) dashboard; the message says what was
    refused. The web shell turns it into a 403 or a notice at one place (gato_dash.security)."""


def require_writable(action: str = "this changes stored runs or data") -> None:
    """Refuse a write when this server is read-only. Every path that writes the run store or
    the data folder on behalf of a request calls this first, so ``--viewer`` cannot be
    bypassed by a crafted request to a callback or route whose control the page hides."""
    if _State.settings.read_only:
        raise ReadOnlyError(f"This dashboard is read-only: {action}.")


class _State:
    data_dir: Path | None = None
    store: RunStore | None = None
    settings: Settings = Settings()


def configure(data_dir=None, settings: Settings | None = None, store=None) -> Path:
    """Point this process at a data folder (created if needed) and its run store: ``store``
    (a PostgreSQL URL or an SQLite path), else $GATO_STORE, else runs.sqlite in the folder."""
    folder = resolve_data_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    _State.data_dir = folder
    _State.store = open_store(folder, store)
    _State.settings = settings or Settings()
    return folder


def data_dir() -> Path:
    if _State.data_dir is None:
        raise RuntimeError("gato_dash.runtime.configure() has not been called in this process")
    return _State.data_dir


def store() -> RunStore:
    if _State.store is None:
        raise RuntimeError("gato_dash.runtime.configure() has not been called in this process")
    return _State.store


def settings() -> Settings:
    return _State.settings


def resolve_store(data_dir: Path, value=None) -> str:
    """--store, else $GATO_STORE, else the SQLite file in the data folder.

    A value that is not a PostgreSQL URL is an SQLite file path."""
    location = (str(value or "") or os.environ.get(STORE_ENV) or "").strip()
    if not location:
        return str(Path(data_dir) / STORE_FILE)
    if "://" in location and not is_database_url(location):  # a URL, but not one we know
        raise BackendError(f"store {location!r}: give postgresql://USER@HOST:PORT/DATABASE "
                           "or the path of an SQLite file")
    return location


def open_store(data_dir: Path, value=None) -> RunStore:
    """The run store, or BackendError saying which file is wrong and what to do."""
    location = resolve_store(data_dir, value)
    try:
        return RunStore(location, data_dir)
    except (sqlite3.DatabaseError, OSError) as exc:
        raise BackendError(_store_problem(location, exc)) from None


def _store_problem(location: str, exc: Exception) -> str:
    text = str(exc)
    if "readonly" in text or isinstance(exc, PermissionError):
        why = "it cannot be written (read-only file or folder)"
    elif isinstance(exc, sqlite3.OperationalError) or isinstance(exc, OSError):
        why = f"it cannot be opened ({text}; is it a folder?)"
    else:  # "file is not a database", "database disk image is malformed"
        why = f"it is not an SQLite database or it is damaged ({text})"
    return (f"the run store {location}: {why}. Move it away (a new empty store is made in "
            "its place), restore it from a backup, or give another --data-dir / --store")


def resolve_data_dir(value=None) -> Path:
    """--data-dir, else $GATO_DATA_DIR, else ./gato_data."""
    return Path(value or os.environ.get("GATO_DATA_DIR") or DEFAULT_DATA_DIR).resolve()


def configure_tensorflow(data_dir: Path) -> None:
    """Environment for the TensorFlow that training jobs will use (before it is imported).

    The persistent XLA cache lets a job reuse the compiled training step of an earlier run
    with the same shapes, which takes seconds off the click-to-first-epoch time.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    xla_dir = Path(data_dir) / "xla"
    xla_dir.mkdir(parents=True, exist_ok=True)
    flag = f"--tf_xla_persistent_cache_directory={xla_dir}"
    existing = os.environ.get("TF_XLA_FLAGS", "")
    if "tf_xla_persistent_cache_directory" not in existing:
        os.environ["TF_XLA_FLAGS"] = f"{existing} {flag}".strip()
