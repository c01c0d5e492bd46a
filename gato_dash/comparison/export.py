"""The compare view's downloads: the parameter table and the aligned histories as CSV,
with user text made safe for spreadsheets."""
from __future__ import annotations

import csv
import io
import math

from .histories import HISTORY_METRICS, align_histories, history_series
from .loading import ComparedRun
from .parameters import ABSENT, ParameterRow


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(text: str) -> str:
    """Neutralise spreadsheet formulas in user text (CSV injection), leave numbers alone."""
    if text and text.startswith(_FORMULA_START):
        try:
            float(text)
            return text
        except ValueError:
            return "'" + text
    return text


def comparison_csv(runs: list[ComparedRun], rows: list[ParameterRow]) -> str:
    """The comparison table as CSV: section, parameter, then one column per run.

    Numbers are written in full precision (not the 6-digit display form) so the file is
    usable for further analysis.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "parameter"] + [_csv_safe(f"{r.name} ({r.id})") for r in runs])
    for row in rows:
        cells = []
        for value in row.values:
            if value is ABSENT or value is None:
                cells.append("")
            elif isinstance(value, float):
                cells.append(repr(value))
            elif isinstance(value, (list, tuple)):
                cells.append(" ".join(str(v) for v in value))
            else:
                cells.append(_csv_safe(str(value)))
        writer.writerow([row.section, row.label] + cells)
    return buffer.getvalue()


def history_csv(runs: list[ComparedRun], n_cats: int, metrics=tuple(HISTORY_METRICS),
                x_mode: str = "epoch") -> str:
    """The histories of one K, every run and metric aligned on one x column, as CSV.

    Runs of different lengths leave empty cells after their last epoch; snapshot-only
    metrics (mean |bias|) are empty between snapshot epochs.
    """
    series = {}
    for metric in metrics:
        for run in runs:
            records = run.histories.get(n_cats, [])
            signals = (run.signals or [None]) if metric == "significance" else [None]
            for signal in signals:
                label = f"{run.name} ({run.id}) {metric}" + (f" {signal}" if signal else "")
                series[label] = history_series(records, metric, x_mode, signal)
    grid, aligned = align_histories(series)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([x_mode] + [_csv_safe(label) for label in aligned])
    for i, x in enumerate(grid):
        writer.writerow([x] + ["" if math.isnan(v[i]) else repr(v[i]) for v in aligned.values()])
    return buffer.getvalue()
