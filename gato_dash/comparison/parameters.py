"""The compare view's parameter table: one row per run field, configuration field and
result, one value per run, which values differ, and which run is best in a result row."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from gato_core.config import RunConfig

from .. import formatting as fmt
from ..run_summary import best_significance, duration_seconds
from .loading import ComparedRun


#: Floats that agree to this many significant digits count as equal (JSON round trips,
#: form coercion) so the differences-only view does not flag 0.1 vs 0.1000000000000001.
_SIGNIFICANT_DIGITS = 12


def _comparable(value):
    """A hashable, tolerance-normalised form of a parameter value for equality tests."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return repr(value)
        if value == 0:
            return 0.0
        return float(f"{float(value):.{_SIGNIFICANT_DIGITS - 1}e}")
    if isinstance(value, (list, tuple)):
        return tuple(_comparable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _comparable(v)) for k, v in value.items()))
    return str(value)


ABSENT = object()


def values_differ(values: Iterable) -> bool:
    """True when the runs disagree; a parameter absent from some runs but not all differs."""
    normalised = {(ABSENT if v is ABSENT else _comparable(v)) for v in values}
    return len(normalised) > 1


def differing_parameters(configs: list[dict]) -> list[str]:
    """Config keys whose values are not the same in every config, in display order."""
    return [key for key in config_keys(configs)
            if values_differ([c.get(key, ABSENT) for c in configs])]


def config_keys(configs: list[dict]) -> list[str]:
    """Union of the configs' keys: RunConfig's field order first, unknown keys after."""
    known = list(RunConfig.__dataclass_fields__)
    present = {k for c in configs for k in c}
    return [k for k in known if k in present] + sorted(present - set(known))




def best_snapshot_significance(history: list[dict]) -> dict[str, float]:
    """Signal -> highest hard Z seen at any snapshot epoch of one K (None-safe)."""
    best: dict[str, float] = {}
    for record in history:
        for signal, z in (record.get("hard_significance") or {}).items():
            if z is not None and math.isfinite(z) and z > best.get(signal, -math.inf):
                best[signal] = float(z)
    return best


@dataclass
class ParameterRow:
    key: str  # stable id (for highlighting and tests)
    section: str  # "run", "config" or "result"
    label: str
    values: list  # raw value per run, ``ABSENT`` where a run does not have it
    #: index of the run with the best value (results only), for highlighting
    best_index: int | None = None

    @property
    def differs(self) -> bool:
        return values_differ(self.values)

    def texts(self) -> list[str]:
        # six digits: parameters that differ in the fifth digit must not look equal
        return [fmt.MISSING if v is ABSENT else fmt.number(v, 6) for v in self.values]


def comparison_rows(runs: list[ComparedRun]) -> list[ParameterRow]:
    """The parameter table of the compare view, one value per run in each row."""
    rows: list[ParameterRow] = []

    def add(key, section, label, values, higher_is_better=False):
        row = ParameterRow(key, section, label, list(values))
        if section == "result" and all(v is ABSENT for v in row.values):
            return  # e.g. a K or signal that only runs of another scenario have
        if higher_is_better:
            numbers = [(float(v), i) for i, v in enumerate(row.values)
                       if isinstance(v, (int, float)) and math.isfinite(v)]
            top = max(numbers, default=(None, None))[0]
            winners = [i for v, i in numbers if _comparable(v) == _comparable(top)]
            # A winner only when there is a contest and a single best run.
            if len(numbers) >= 2 and len(winners) == 1:
                row.best_index = winners[0]
        rows.append(row)

    add("name", "run", "name", [r.name for r in runs])
    add("id", "run", "id", [r.id for r in runs])
    add("status", "run", "status", [r.run.get("status") for r in runs])
    add("created", "run", "created", [fmt.timestamp(r.run.get("created")) for r in runs])
    add("duration", "run", "duration",
        [fmt.duration(duration_seconds(r.run)) for r in runs])

    configs = [r.run.get("config") or {} for r in runs]
    for key in config_keys(configs):
        add(f"config.{key}", "config", key, [c.get(key, ABSENT) for c in configs])

    signals = _ordered_union(s for r in runs for s in r.signals)
    ks = sorted({k for r in runs for k in r.trained_ks})
    for signal in signals:
        best = [best_significance(r.results).get(signal) for r in runs]
        add(f"best.{signal}", "result", f"best Z({signal}) over K",
            [b[0] if b else ABSENT for b in best], higher_is_better=True)
        add(f"best_k.{signal}", "result", f"K of best Z({signal})",
            [b[1] if b else ABSENT for b in best])
    for k in ks:
        for signal in signals:
            finals, peaks = [], []
            for r in runs:
                result = r.result_for(k)
                finals.append(((result or {}).get("significance") or {}).get(signal, ABSENT))
                peaks.append(best_snapshot_significance(r.histories.get(k, [])).get(signal,
                                                                                      ABSENT))
            add(f"final.{k}.{signal}", "result", f"final Z({signal}), K={k}", finals,
                higher_is_better=True)
            held_out = [((r.result_for(k) or {}).get("heldout_significance") or {})
                        .get(signal, ABSENT) for r in runs]
            if any(v is not ABSENT for v in held_out):
                add(f"heldout.{k}.{signal}", "result",
                    f"held-out Z({signal}), K={k} (categories on unseen events)", held_out,
                    higher_is_better=True)
            add(f"peak.{k}.{signal}", "result", f"best snapshot Z({signal}), K={k}", peaks,
                higher_is_better=True)
        add(f"epochs_done.{k}", "result", f"epochs trained, K={k}",
            [(r.result_for(k) or {}).get("epochs_done", ABSENT) for r in runs])
        add(f"epoch_ms.{k}", "result", f"median ms/epoch, K={k}",
            [(r.result_for(k) or {}).get("epoch_ms_median", ABSENT) for r in runs])
    return rows


def visible_rows(rows: list[ParameterRow], differences_only: bool) -> list[ParameterRow]:
    """With differences only, identical run/config rows go; the name and results always stay."""
    if not differences_only:
        return rows
    return [r for r in rows if r.section == "result" or r.key == "name" or r.differs]


def _ordered_union(items: Iterable[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out
