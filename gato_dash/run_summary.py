"""Numbers that sum up one stored run, for the runs table and the compare view: its best
significance per signal over the trained K, and how long it ran."""
from __future__ import annotations

import math

from . import formatting as fmt


def best_significance(results: list[dict]) -> dict[str, tuple[float, int]]:
    """Signal -> (best hard Z over the trained K, the K that reached it)."""
    best: dict[str, tuple[float, int]] = {}
    for result in results:
        for signal, z in (result.get("significance") or {}).items():
            if z is None or not math.isfinite(z):
                continue
            if signal not in best or z > best[signal][0]:
                best[signal] = (float(z), int(result["n_cats"]))
    return best


def duration_seconds(run: dict) -> float | None:
    """Seconds from start to finish (or to the last heartbeat of a run still going)."""
    start = fmt.epoch_seconds(run.get("started"))
    end = fmt.epoch_seconds(run.get("finished")) or fmt.epoch_seconds(run.get("heartbeat"))
    if start is None or end is None or end < start:
        return None
    return end - start
