"""Is a running run's job still there? Heartbeats, interrupted runs, and fencing.

A job sends a heartbeat every few seconds. A running run whose job went away (server
restart, killed process, lost machine) is turned into "interrupted" the next time anyone
reads it, and stays so: a job on *this* machine whose process is gone is noticed at once,
a job on another machine only by its silence, after HEARTBEAT_TIMEOUT_S.

Fencing: ``claim`` gives the run a fresh claim token, kept by the store object that
claimed it (``Claims``). That object's writes to the run (epochs, results, run info,
status, heartbeat) apply only while the run is still "running" under that token;
otherwise they raise ``FencedOut`` and change nothing. So a job that was frozen past the
heartbeat timeout (a stopped process, a suspended machine) and then resumes cannot turn
an interrupted run back into a finished one.
"""
from __future__ import annotations

import os
import socket
import time
import uuid

#: A running run without a heartbeat for this long has lost its job process.
HEARTBEAT_TIMEOUT_S = 15.0


def this_host() -> str:
    """The machine a job runs on: its process id only means something there."""
    return socket.gethostname()


def pid_alive(pid) -> bool:
    if not pid:
        return True  # unknown: rely on the heartbeat alone
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ----- interrupted runs ----------------------------------------------------------------------
def mark_interrupted(connection, write, timeout_s: float | None = None) -> None:
    """Turn running runs whose job is gone into "interrupted" (persisted).

    Gone = no heartbeat for ``timeout_s`` (None: HEARTBEAT_TIMEOUT_S), or, for a job on
    this machine, its process no longer exists (seen right after a server restart).
    ``connection()`` and ``write()`` are the store's context managers for a read and for
    a write transaction. A cheap read first, so polling does not take the write lock when
    nothing is wrong.
    """
    now = time.time()
    timeout = HEARTBEAT_TIMEOUT_S if timeout_s is None else timeout_s
    with connection() as conn:
        rows = conn.execute(
            "SELECT id, heartbeat, job_pid, job_host, current_k, epochs_done FROM runs "
            "WHERE status = 'running'").fetchall()
    for row in _lost(rows, now - timeout):
        with write() as conn:
            # Re-check inside the transaction: the job may have just finished.
            # It ended at its last sign of life, not now: the downtime is no duration.
            conn.execute(
                "UPDATE runs SET status = 'interrupted', message = ?, "
                "finished = COALESCE(heartbeat, started, ?) "
                "WHERE id = ? AND status = 'running' AND (heartbeat IS NULL OR heartbeat = ?)",
                (_interrupted_message(row), now, row["id"], row["heartbeat"]),
            )


def _lost(rows, silent_since: float) -> list:
    """The running runs silent since before ``silent_since``, or whose job process on this
    machine is gone (a process id means nothing on another machine)."""
    host = this_host()
    return [r for r in rows
            if (r["heartbeat"] or 0) < silent_since
            or (r["job_host"] in (None, host) and not pid_alive(r["job_pid"]))]


def _interrupted_message(row) -> str:
    where = (f" at epoch {row['epochs_done']} of K={row['current_k']}"
             if row["current_k"] is not None else " before its first epoch")
    return (f"interrupted{where}: the training process stopped or lost the run store "
            "(server or worker restart?)")


# ----- fencing -------------------------------------------------------------------------------
class FencedOut(RuntimeError):
    """A job's write to a run that is no longer running under the job's claim (marked
    interrupted meanwhile, or claimed again): nothing was written, the job must end."""

    def __init__(self, run_id: str, status: str):
        super().__init__(f"run {run_id} is {status} and no longer this job's: its writes "
                         "are refused")
        self.run_id, self.status = run_id, status


class Claims:
    """The runs one store object claimed, each with its claim token."""

    def __init__(self):
        self._tokens: dict[str, str] = {}

    @staticmethod
    def new_token() -> str:
        return uuid.uuid4().hex

    def won(self, run_id: str, token: str) -> None:
        self._tokens[run_id] = token

    def ended(self, run_id: str) -> None:
        self._tokens.pop(run_id, None)

    def token(self, run_id: str) -> str | None:
        return self._tokens.get(run_id)

    def guard(self, run_id: str) -> tuple[str, tuple]:
        """SQL condition (and its arguments) to add to a write of the run: none for a run
        this object did not claim (the importer, user edits)."""
        token = self._tokens.get(run_id)
        if token is None:
            return "", ()
        return " AND status = 'running' AND claim_token = ?", (token,)

    def refuse_if_fenced(self, conn, run_id: str) -> None:
        """After a guarded write of the run changed nothing: FencedOut unless the run was
        deleted (then the write is dropped, as for every deleted run)."""
        if run_id not in self._tokens:
            return
        row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is not None:
            raise FencedOut(run_id, row["status"])
