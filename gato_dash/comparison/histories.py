"""Training histories of several runs on one axis: one metric's series per run, the
series aligned on the union of their x values, and TensorBoard-style smoothing."""
from __future__ import annotations

import math


#: History metrics the compare view overlays: epoch-record field -> axis label.
HISTORY_METRICS = {
    "significance": "soft significance Z",
    "loss": "loss (−Z or −√(Z₁Z₂))",
    "mean_abs_bias": "mean |bias|",
    "temperature": "temperature",
    "learning_rate": "learning rate",
}


def history_series(records: list[dict], metric: str, x_mode: str = "epoch",
                   signal: str | None = None) -> tuple[list[float], list[float]]:
    """(x, y) of one metric of one K's history; records without the metric are skipped.

    ``x_mode="fraction"`` puts runs of different lengths on a common 0..1 axis (epoch+1 over
    the run's epochs), so schedule phases line up.
    """
    xs, ys = [], []
    for record in records:
        value = record.get(metric)
        if isinstance(value, dict):
            value = value.get(signal) if signal is not None else None
        if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        epoch = int(record["epoch"])
        if x_mode == "fraction":
            total = int(record.get("epochs") or 0) or 1
            xs.append((epoch + 1) / total)
        else:
            xs.append(epoch)
        ys.append(float(value))
    return xs, ys


def align_histories(series: dict[str, tuple[list[float], list[float]]]):
    """Put several (x, y) series on the union of their x values.

    Returns ``(grid, {key: values})`` where each values list has one entry per grid point:
    the series' y there, or NaN where that series has no point (shorter run, snapshot-only
    metric). Nothing is truncated to the shortest run and no value is interpolated.
    """
    grid = sorted({x for xs, _ in series.values() for x in xs})
    index = {x: i for i, x in enumerate(grid)}
    aligned = {}
    for key, (xs, ys) in series.items():
        values = [math.nan] * len(grid)
        for x, y in zip(xs, ys):
            values[index[x]] = y
        aligned[key] = values
    return grid, aligned


def smooth(values: list[float], weight: float) -> list[float]:
    """TensorBoard-style exponential moving average with start-up debiasing.

    ``weight`` in [0, 1): 0 returns the values unchanged. NaN entries stay NaN and do not
    disturb the average (they are gaps, not zeros).
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    if weight == 0.0:
        return list(values)
    out = []
    average = 0.0
    n_seen = 0
    for value in values:
        if value is None or not math.isfinite(value):
            out.append(math.nan)
            continue
        n_seen += 1
        average = weight * average + (1.0 - weight) * value
        out.append(average / (1.0 - weight ** n_seen))
    return out
