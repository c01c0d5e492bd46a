"""The run store's three tables, in either database.

``runs`` holds one row per run (its config and status); ``epochs`` the training history,
one row per stored epoch; ``results`` one row per trained category count. Records are the
engine's dicts as JSON text (gato_dash.runtime.stored_records).
"""
from __future__ import annotations

# {real}: a float8 (PostgreSQL's REAL is single precision: unix times would lose seconds);
# {serial}: an auto-incrementing integer key, in training order.
SCHEMA = """
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
ADDED_RUN_COLUMNS = {"job_host": "TEXT", "claim_token": "TEXT"}

#: Columns of the light run dicts (list_runs, run_status): everything but run_info.
LIGHT_RUN_COLUMNS = ("id, name, note, tags, scenario, status, message, config, created, "
                     "started, finished, heartbeat, current_k, epochs_done, k_elapsed, "
                     "cancel_requested, job_pid")


def statements(real: str, serial: str) -> list[str]:
    """The schema's statements in one database's column types."""
    text = SCHEMA.format(real=real, serial=serial)
    return [s.strip() for s in text.split(";") if s.strip()]
