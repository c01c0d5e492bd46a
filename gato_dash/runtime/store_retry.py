"""A lost database connection is retried, for a bounded time, before the store gives up.

PostgreSQL restarting or a network blip must cost a training job nothing: the operation
runs again with backoff for up to ``STORE_RETRY_S``, then ``StoreUnreachable`` says how
long the store was away. The backoff is capped at RETRY_MAX_DELAY_S so that a job is back
within seconds of its store: an outage much shorter than the heartbeat timeout (a restart
takes about a second) costs nothing. Only connection errors are retried; a failed
statement is raised at once.
"""
from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

#: A store operation whose database connection fails is retried for this long (a
#: PostgreSQL restart takes about a second), waiting RETRY_FIRST_DELAY_S, then twice as
#: long each time up to RETRY_MAX_DELAY_S; then it raises StoreUnreachable.
STORE_RETRY_S = 30.0
RETRY_FIRST_DELAY_S = 0.05
RETRY_MAX_DELAY_S = 2.0


class StoreUnreachable(ConnectionError):
    """The database could not be reached for ``seconds`` (at least the retry bound)."""

    def __init__(self, store: str, seconds: float, doing: str, cause: Exception):
        first_line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        super().__init__(f"the run store {store} was unreachable for {seconds:.0f} s "
                         f"(while {doing}): {first_line}")
        self.seconds = seconds


def retrying(operation, database, doing: str, within_s: float):
    """``operation(attempt)`` (attempt 0, 1, ...), again while ``database`` says its error
    is a lost connection, for up to ``within_s``; other errors pass through at once.

    The whole operation runs again, so a transaction is never half-applied; an operation
    that may have committed before its connection died checks that on a retry."""
    started = time.monotonic()
    delay = RETRY_FIRST_DELAY_S
    attempt = 0
    cause = None
    while True:
        try:
            return operation(attempt)
        except Exception as exc:
            if not database.is_connection_error(exc):
                raise
            # the first error says what happened; "no connection within 2 s" afterwards
            # says only that it goes on
            cause = cause or exc
            database.after_connection_error()
            waited = time.monotonic() - started
            if waited >= within_s:
                raise StoreUnreachable(database.describe(), waited, doing, cause) from exc
            if attempt == 0:
                log.warning("run store %s unreachable while %s (%s): retrying for up to "
                            "%.0f s", database.describe(), doing, type(exc).__name__,
                            within_s)
            time.sleep(min(delay, within_s - waited))
            delay = min(2 * delay, RETRY_MAX_DELAY_S)
            attempt += 1
