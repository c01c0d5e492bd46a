"""The New-run page's preview: what a scenario's or a dataset's events look like before any
training, drawn from their inclusive summary (gato_core.evaluation.inclusive_summary).

A sample with a diphoton mass is shown as its inclusive mass spectrum, the same figure a
run's results show (``spectra.inclusive_mass_spectrum``); otherwise the stacked 1-D
discriminant, or the 2-D score densities per process. The preview sits in a column beside
the form, so every kind gets the same lower frame (``PREVIEW_HEIGHT``).
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .colours import process_colours
from .spectra import inclusive_mass_spectrum

PREVIEW_HEIGHT = 330


def inclusive_preview(summary: dict, log: bool = True) -> go.Figure:
    """The preview of the sample ``summary`` describes, with a log or linear y axis."""
    title = None  # the mass spectrum brings its own
    if "mass_hist" in summary:
        fig = inclusive_mass_spectrum(summary, log=log)
    elif "score_hist" in summary:
        fig = stacked_scores(summary["score_hist"], summary, "discriminant", log)
        title = "Inclusive discriminant, stacked"
    elif "score_density" in summary:  # 2-D: a score density instead of a histogram
        fig = score_densities(summary, log)
        title = "Score density on the (p1, p2) plane"
    else:  # three scores: nothing flat to draw
        fig = go.Figure(layout={"template": "plotly_white"})
        title = "No inclusive preview for three score columns"
    if title is not None:
        fig.update_layout(title={"text": title})
    fig.update_layout(height=PREVIEW_HEIGHT, margin={"l": 55, "r": 15, "t": 40, "b": 45},
                      title_font_size=14, legend_font_size=10)
    return fig


def stacked_scores(hist: dict, summary: dict, xlabel: str, log: bool) -> go.Figure:
    """Weighted events per bin of one score, stacked by process (signals on top)."""
    edges = np.asarray(hist["edges"])
    centres = 0.5 * (edges[1:] + edges[:-1])
    widths = np.diff(edges)
    fig = go.Figure()
    # backgrounds first (bottom of the stack), signals on top
    order = [p for p in summary["processes"] if p not in summary["signals"]] + summary["signals"]
    colours = process_colours(summary["processes"], summary["signals"])
    for process in order:
        fig.add_trace(go.Bar(x=centres, y=np.round(hist["counts"][process], 4), width=widths,
                             name=process, marker_color=colours[process],
                             marker_line_width=0))
    fig.update_layout(barmode="stack", bargap=0, xaxis_title=xlabel, yaxis_title="events",
                      yaxis_type="log" if log else "linear", template="plotly_white")
    return fig


def score_densities(summary: dict, log: bool) -> go.Figure:
    """One heat map per signal and one of the summed backgrounds on the (p1, p2) simplex."""
    density = summary["score_density"]
    n = density["grid"]
    centres = (np.arange(n) + 0.5) / n
    inside = centres[None, :] + centres[:, None] <= 1.0  # [iy, ix]: the simplex
    panels = [(s, np.asarray(density["counts"][s], float)) for s in summary["signals"]]
    bkg = sum(np.asarray(density["counts"][p], float) for p in summary["processes"]
              if p not in summary["signals"])
    panels.append(("background", bkg))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p for p, _ in panels],
                        horizontal_spacing=0.06)
    for col, (name, counts) in enumerate(panels, start=1):
        z = counts.reshape(n, n)
        z = np.where(inside & (z > 0), z, np.nan)
        if log:
            z = np.log10(z)
        fig.add_trace(go.Heatmap(x=centres, y=centres, z=np.round(z, 4), showscale=False,
                                 colorscale="Viridis", name=name,
                                 hovertemplate="p1 %{x:.2f}, p2 %{y:.2f}: %{z:.3g}<extra>"
                                               + name + "</extra>"), row=1, col=col)
        fig.update_xaxes(title_text="p1", range=[0, 1], row=1, col=col)
        fig.update_yaxes(range=[0, 1], row=1, col=col, scaleanchor=f"x{col if col > 1 else ''}")
    fig.update_yaxes(title_text="p2", row=1, col=1)
    fig.update_layout(template="plotly_white")
    return fig
