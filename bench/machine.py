"""How fast this machine is right now, printed next to wall-clock figures.

The benches share a 2-core virtual machine whose speed drifts: the same pure-Python loop
has taken 0.87 s and 1.70 s on it within 15 minutes, with nothing else running. Wall-clock
page timings move with it, so each bench prints this probe beside them; compare figures
taken at similar probe values (or A/B-interleave the versions being compared).
"""
from __future__ import annotations

import os
import time

#: The probe on this machine class when it is quiet (seconds).
QUIET_PROBE_S = 0.87


def speed_probe(iterations: int = 10_000_000) -> float:
    """Seconds for a fixed single-threaded Python loop (lower is faster)."""
    started = time.perf_counter()
    total = 0
    for i in range(iterations):
        total += i
    return time.perf_counter() - started


def describe() -> str:
    probe = speed_probe()
    return (f"machine: speed probe {probe:.2f} s (quiet: ~{QUIET_PROBE_S:.2f} s, so wall-clock "
            f"figures here are ~{probe / QUIET_PROBE_S:.1f}x a quiet run's), load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
