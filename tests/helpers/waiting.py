"""Waiting on a condition instead of sleeping a guessed time (no tests in here)."""
from __future__ import annotations

import time


def wait_until(check, timeout_s: float, what: str, interval_s: float = 0.1):
    """Call ``check`` every ``interval_s`` until it returns something true, and return
    that; fail the test, saying ``what`` was awaited, if ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {timeout_s} s"
        time.sleep(interval_s)
