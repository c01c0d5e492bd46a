"""Layout and value helpers that every figure shares: the small template, the "nothing to
draw" figure, compact number lists for the wire, round signal scale factors."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go


#: A small template instead of plotly's default one: the default template is ~8 KB of JSON
#: in every figure, which adds up on a page with a dozen graphs.
TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font=dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=12),
        paper_bgcolor="white",
        plot_bgcolor="white",
        xaxis=dict(showline=True, linecolor="#444", mirror=True, ticks="outside",
                   gridcolor="#eee", zeroline=False),
        yaxis=dict(showline=True, linecolor="#444", mirror=True, ticks="outside",
                   gridcolor="#eee", zeroline=False),
        legend=dict(bgcolor="rgba(255,255,255,0.7)"),
        margin=dict(l=60, r=20, t=60, b=50),
        hovermode="closest",
    )
)


def category_label(display_index: int) -> str:
    return f"Cat {display_index + 1}"


def base_layout(fig: go.Figure, title: str, **layout) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=dict(text=title, x=0.02), **layout)
    return fig


def message_figure(title: str, message: str) -> go.Figure:
    """An empty figure that says why there is nothing to draw (instead of blank axes)."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper",
                       yref="paper", font=dict(size=14, color="#666"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return base_layout(fig, title, height=300)


def int_keyed(mapping: dict | None) -> dict[int, float]:
    """``{"5": 1.2}`` or ``{5: 1.2}`` -> ``{5: 1.2}``, sorted, non-finite values dropped."""
    out = {}
    for key, value in (mapping or {}).items():
        if finite(value):
            out[int(key)] = float(value)
    return dict(sorted(out.items()))


def compact_value(value, digits: int = 4) -> float | None:
    """One number rounded to ``digits`` significant digits; None (a gap in a line) for
    NaN, infinity and anything that is not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return float(f"{value:.{digits}g}") if math.isfinite(value) else None


def compact(values, digits: int = 4) -> list:
    """Numbers as a plain list rounded to ``digits`` significant digits (None for NaN).

    Smaller on the wire than plotly's base64 float64 (8 bytes -> ~11 characters per value)
    for the short series drawn here, and precise far beyond what a plot can show.
    """
    return [compact_value(v, digits) for v in np.asarray(values, dtype=float).ravel()]


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def nice_scale(ratio: float) -> int:
    """Largest of 1, 2, 5, 10, 20, 50, ... not above ``ratio`` (at least 1).

    Used to scale a small signal up to the background's size with a round factor that
    reads well in a legend ("signal1 x 50").
    """
    if not finite(ratio) or ratio <= 1:
        return 1
    exponent = math.floor(math.log10(ratio))
    best = 1
    for mantissa in (1, 2, 5):
        candidate = mantissa * 10**exponent
        if candidate <= ratio:
            best = candidate
    return int(best)


def scaled_name(name: str, scale: float) -> str:
    return name if scale == 1 else f"{name} x {scale:g}"


def signal_names(result_or_info: dict) -> list[str]:
    names = result_or_info.get("signal_names") or result_or_info.get("signals")
    if names:
        return list(names)
    first = (result_or_info.get("categories") or [{}])[0]
    return list((first.get("signal") or {}).keys())


def set_log(fig: go.Figure, log: bool, title: str | None = None, **selector) -> None:
    fig.update_yaxes(type="log" if log else "linear", **selector)
    if title:
        fig.update_yaxes(title=title, **selector)
