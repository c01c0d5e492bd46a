"""Numbers that sum up one stored run, for the runs table, the compare view and the run
page's header: its best significance per signal over the trained K, how long it ran, and
its headline significance with the sample each number is measured on."""
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


def held_out_label(run_info: dict | None) -> str:
    """What a run's held-out numbers were measured on, in a few words."""
    held_out = (run_info or {}).get("held_out") or {}
    if held_out.get("kind") == "split":
        return f"held-out {100 * float(held_out.get('fraction') or 0):.0f} % of the dataset"
    return "held-out independent sample"


def headline(results: list[dict], run_info: dict | None) -> str | None:
    """The run's significance in one line, each number with the sample it is measured on:
    the K the results open on (the largest finished one), its training-sample Z and its
    held-out Z per signal, e.g. "K = 5 · Z(ggH) 1.634 on the training sample, 1.601 on the
    held-out 30 % of the dataset". None before a K has finished."""
    finished = [r for r in results if r.get("status", "finished") == "finished"]
    if not finished:
        return None
    result = max(finished, key=lambda r: int(r["n_cats"]))
    training = result.get("significance") or {}
    held_out = result.get("heldout_significance") or {}
    parts = []
    for signal in (run_info or {}).get("signal_names") or list(training):
        text = f"Z({signal}) {fmt.z_value(training.get(signal))} on the training sample"
        if held_out:
            text += f", {fmt.z_value(held_out.get(signal))} on the {held_out_label(run_info)}"
        parts.append(text)
    return " · ".join([f"K = {int(result['n_cats'])}"] + parts)
