"""Live training-history figures: pure functions from EpochRecord dicts to Plotly figures.

Each figure has a fixed list of traces (``series``), so the run page can first draw a
figure from the epochs it has and afterwards send only new points with ``extend_data``
(dcc.Graph.extendData): the same series definitions serve both, which keeps the trace
indices of a full figure and of its extensions in step.

Figures: "significance" (soft Z per signal per epoch, hard Z at snapshot epochs as
markers), "loss" (loss, total loss; penalties on a second axis), "bias" (mean |bias| at
snapshot epochs, temperature on a second axis), "lr" (learning rate, log axis).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import plotly.graph_objects as go

# The app's small template, not plotly's default "plotly_white": that one is ~8 KB of JSON
# per figure, deep-copied on every build (0.3 s of a finished run's page response) and
# parsed again by the browser for each graph.
from .colours import process_colours
from .style import TEMPLATE, compact_value

FIGURES = ("significance", "loss", "bias", "lr")
TITLES = {
    # the epochs' Z are on the events the categories are trained on (held-out: results)
    "significance": "Significance per epoch, training sample",
    "loss": "Loss and penalties",
    "bias": "Mean |bias| and temperature",
    "lr": "Learning rate",
}
FIGURE_HEIGHT = 300


@dataclass(frozen=True)
class Series:
    """One trace: how to read its y value from an epoch record (None = no point)."""

    name: str
    value: Callable[[dict], float | None]
    sparse: bool = False  # only some epochs have a value (snapshot epochs): draw markers
    secondary: bool = False  # plotted against the second y-axis
    colour: str | None = None
    dash: str | None = None


def _get(key: str, sub: str | None = None):
    def read(rec: dict):
        value = rec.get(key)
        if sub is not None:
            value = value.get(sub) if isinstance(value, dict) else None
        return value

    return read


def series(kind: str, signals) -> list[Series]:
    """The traces of figure ``kind`` in order (their indices are the extendData indices)."""
    signals = list(signals)
    if kind == "significance":
        colours = process_colours(signals, signals)
        soft = [Series(f"Z {s} (soft)", _get("significance", s), colour=colours[s])
                for s in signals]
        hard = [Series(f"Z {s} (hard)", _get("hard_significance", s), sparse=True,
                       colour=colours[s])
                for s in signals]
        return soft + hard
    if kind == "loss":
        return [
            Series("loss", _get("loss"), colour="#1f77b4"),
            Series("total loss", _get("total_loss"), colour="#17becf", dash="dot"),
            Series("penalty: low background", _get("penalty_yield"), secondary=True,
                   colour="#ff7f0e"),
            Series("penalty: MC uncertainty", _get("penalty_unc"), secondary=True,
                   colour="#8c564b"),
        ]
    if kind == "bias":
        return [
            Series("mean |bias|", _get("mean_abs_bias"), sparse=True, colour="#9467bd"),
            Series("temperature", _get("temperature"), secondary=True, colour="#7f7f7f"),
        ]
    if kind == "lr":
        return [Series("learning rate", _get("learning_rate"), colour="#2ca02c")]
    raise ValueError(f"unknown history figure {kind!r}")


def _points(s: Series, epochs: list[dict]) -> tuple[list, list]:
    xs, ys = [], []
    for rec in epochs:
        y = s.value(rec)
        if s.sparse and y is None:
            continue
        xs.append(int(rec["epoch"]))
        ys.append(compact_value(y, 6))
    return xs, ys


def history_figure(kind: str, epochs: list[dict], signals, total_epochs: int | None = None,
                   n_cats: int | None = None, references: dict[str, float] | None = None
                   ) -> go.Figure:
    """Figure ``kind`` drawn from ``epochs`` (EpochRecord dicts of one K, in order).

    ``total_epochs`` fixes the x-range so the curve grows into a stable frame;
    ``references`` (significance only) draws labelled horizontal lines, e.g. the baseline
    and the 1-D optimum for this K.
    """
    fig = go.Figure()
    has_secondary = False
    for s in series(kind, signals):
        xs, ys = _points(s, epochs)
        has_secondary |= s.secondary
        fig.add_trace(go.Scatter(
            x=xs, y=ys, name=s.name,
            mode="markers" if s.sparse and kind == "significance" else
                 ("lines+markers" if s.sparse else "lines"),
            line={"color": s.colour, "dash": s.dash} if s.colour else None,
            marker={"size": 7, "symbol": "diamond"} if s.sparse else None,
            yaxis="y2" if s.secondary else "y",
            connectgaps=s.sparse,
        ))
    title = TITLES[kind] + (f" (K = {n_cats})" if n_cats else "")
    layout = dict(
        title={"text": title, "font": {"size": 14}},
        height=FIGURE_HEIGHT,
        margin={"l": 55, "r": 55 if has_secondary else 15, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.25, "font": {"size": 10}},
        xaxis={"title": {"text": "epoch"}},
        template=TEMPLATE,
        # keep the user's zoom/legend choices while points stream in
        uirevision=f"{kind}-{n_cats}",
    )
    if total_epochs:
        layout["xaxis"]["range"] = [-0.5, max(total_epochs - 0.5, 1)]
    if kind == "significance":
        layout["yaxis"] = {"title": {"text": "Z"}}
    elif kind == "loss":
        layout["yaxis"] = {"title": {"text": "loss"}}
        layout["yaxis2"] = {"title": {"text": "penalty"}, "overlaying": "y", "side": "right",
                            "showgrid": False, "rangemode": "tozero"}
    elif kind == "bias":
        layout["yaxis"] = {"title": {"text": "mean |bias|"}, "rangemode": "tozero"}
        layout["yaxis2"] = {"title": {"text": "temperature"}, "overlaying": "y",
                            "side": "right", "showgrid": False, "rangemode": "tozero"}
    elif kind == "lr":
        # A log axis over small rates: powers of ten ("10⁻³") read shorter than "0.001".
        layout["yaxis"] = {"title": {"text": "learning rate"}, "type": "log",
                           "exponentformat": "power"}
    # The fixed left/right margins are a minimum: tick labels wider than they are (a log
    # axis of rates, a penalty of 10⁴) push the plot area in instead of being cut off.
    for axis in ("yaxis", "yaxis2"):
        if axis in layout:
            layout[axis]["automargin"] = True
    fig.update_layout(**layout)
    for label, value in (references or {}).items():
        if value is not None and math.isfinite(value):
            fig.add_hline(y=value, line={"dash": "dash", "color": "#999", "width": 1},
                          annotation={"text": label, "font": {"size": 10}},
                          annotation_position="bottom right")
    return fig


def history_figures(epochs: list[dict], signals, total_epochs: int | None = None,
                    n_cats: int | None = None, references=None) -> dict[str, go.Figure]:
    return {kind: history_figure(kind, epochs, signals, total_epochs, n_cats,
                                 references if kind == "significance" else None)
            for kind in FIGURES}


def extend_data(kind: str, new_epochs: list[dict], signals):
    """dcc.Graph ``extendData`` adding ``new_epochs`` to figure ``kind``, or None if none.

    Form: ``[{"x": [[...], ...], "y": [[...], ...]}, [trace indices]]``; traces with no new
    point (sparse series between snapshots) are left out.
    """
    xs, ys, indices = [], [], []
    for index, s in enumerate(series(kind, signals)):
        x, y = _points(s, new_epochs)
        if x:
            xs.append(x)
            ys.append(y)
            indices.append(index)
    if not indices:
        return None
    return [{"x": xs, "y": ys}, indices]


def significance_references(run_info: dict | None, n_cats: int) -> dict[str, float]:
    """Reference lines for the significance plot of K = ``n_cats`` from a RunInfo dict."""
    # Only for one signal: with two, the baselines are geometric means, not per-signal Z.
    if not run_info or len(run_info.get("signal_names") or []) != 1:
        return {}
    refs = {}
    optimum = (run_info.get("optimum_1d") or {})
    value = optimum.get(str(n_cats), optimum.get(n_cats))
    if value is not None:
        refs[f"1-D optimum (K={n_cats})"] = float(value)
    baseline = run_info.get("baseline_objective") or {}
    value = baseline.get(str(n_cats), baseline.get(n_cats))
    if value is not None:
        refs[f"equidistant baseline ({n_cats} bins)"] = float(value)
    return refs
