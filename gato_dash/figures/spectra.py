"""Event yields per category: the 1-D stacked histogram in the optimised bins and the
bump hunt's mass spectra, inclusive and per category (the "Mass spectra" / "Histogram" tab)."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .colours import process_colours
from .style import (base_layout, category_label, compact, finite, message_figure, nice_scale,
                    scaled_name, set_log, signal_names)


def stacked_histogram_1d(result: dict, run_info: dict | None = None, log: bool = False,
                         signal_scale: float | None = None) -> go.Figure:
    """Final yields per process in the optimised bins of a 1-D run (stacked backgrounds).

    Bars span each category's score range; signals are step lines scaled by a round factor
    (``signal_scale`` or automatic) that the legend states.
    """
    n_cats = int(result["n_cats"])
    title = f"Yields in the optimised bins, K = {n_cats} (training sample)"
    cats = result.get("categories") or []
    if not cats or any(not c.get("range") or not c.get("process_yields") for c in cats):
        return message_figure(title, "No per-process yields with bin ranges in this result.")
    signals = signal_names(run_info or {}) or signal_names(result)
    processes = list(cats[0]["process_yields"])
    backgrounds = [p for p in processes if p not in signals]
    lo = np.array([c["range"][0] for c in cats], dtype=float)
    hi = np.array([c["range"][1] for c in cats], dtype=float)
    yields = {p: np.array([c["process_yields"].get(p, 0.0) for c in cats]) for p in processes}
    total_bkg = np.sum([yields[p] for p in backgrounds], axis=0) if backgrounds else np.zeros(len(cats))

    colours = process_colours(processes, signals)
    fig = go.Figure()
    for proc in backgrounds:
        fig.add_trace(go.Bar(
            x=compact((lo + hi) / 2, 6), width=compact(hi - lo, 6), y=compact(yields[proc]),
            name=proc,
            marker=dict(color=colours[proc], line=dict(width=0.5, color="#555")),
            hovertemplate=proc + ": %{y:.4g}<extra></extra>",
        ))
    for proc in signals:
        if proc not in yields:
            continue
        scale = signal_scale or nice_scale(total_bkg.max() / max(yields[proc].max(), 1e-30))
        # Step outline over the bin edges: [lo0, hi0=lo1, hi1, ...] with "hv" steps.
        edges = np.append(lo, hi[-1])
        fig.add_trace(go.Scatter(
            x=compact(edges, 6), y=compact(np.append(yields[proc], yields[proc][-1]) * scale),
            mode="lines",
            line=dict(shape="hv", color=colours[proc], width=2.5),
            name=scaled_name(proc, scale),
            hovertemplate=scaled_name(proc, scale) + ": %{y:.4g}<extra></extra>",
        ))
    for cut in hi[:-1]:
        fig.add_vline(x=float(cut), line=dict(color="#333", width=1, dash="dash"))
    fig.update_layout(barmode="stack", bargap=0)
    fig.update_xaxes(title="discriminant", range=[float(lo.min()), float(hi.max())])
    set_log(fig, log, "events per bin")
    return base_layout(fig, title, height=420)


def _mass_panel(subplot: int, edges, counts: dict[str, np.ndarray], signals, window,
                scales: dict[str, float], show_legend: bool, fit=None
                ) -> tuple[list, list[dict]]:
    """Traces and shapes of one stacked mass spectrum on subplot number ``subplot`` (1-based).

    Backgrounds as stacked filled step histograms, scaled signals as step lines, the fit
    curve, the window band. Filled steps (one path per process) rather than bars (one
    rectangle per bin): the same picture, but a page of 8 panels x 5 processes x 80 bins
    drew in ~1.7 s as bars and ~0.4 s as steps in headless Chromium here.
    Returned rather than added so that the caller adds all panels in one call: adding
    traces and shapes panel by panel (``add_vrect(row=, col=)``) costs ~10x more time.
    """
    axis = "" if subplot == 1 else str(subplot)
    on_axes = dict(xaxis=f"x{axis}", yaxis=f"y{axis}")
    traces = []
    widths = np.diff(edges)
    backgrounds = [p for p in counts if p not in signals]
    colours = process_colours(counts, signals)
    step_x = compact(edges)
    for proc in backgrounds:
        y = np.asarray(counts[proc], dtype=float)
        # "hv" steps over the edges; the last value repeated closes the last bin.
        traces.append(go.Scatter(
            x=step_x, y=compact(np.append(y, y[-1])), mode="lines", **on_axes,
            line=dict(shape="hv", width=0.5, color=colours[proc]),
            fillcolor=colours[proc], stackgroup=f"panel{subplot}",
            name=proc, legendgroup=proc, showlegend=show_legend,
            hovertemplate=proc + " %{x:.1f} GeV: %{y:.4g}<extra></extra>",
        ))
    for proc in signals:
        if proc not in counts:
            continue
        scale = scales.get(proc, 1)
        y = np.asarray(counts[proc], dtype=float) * scale
        traces.append(go.Scatter(
            x=step_x, y=compact(np.append(y, y[-1])), mode="lines", **on_axes,
            line=dict(shape="hv", color=colours[proc], width=2),
            name=scaled_name(proc, scale), legendgroup=proc, showlegend=show_legend,
            hovertemplate=scaled_name(proc, scale) + " %{x:.1f} GeV: %{y:.4g}<extra></extra>",
        ))
    if fit and finite(fit.get("A")) and finite(fit.get("B")):
        # The fit is a density per GeV; a bin of width w holds A exp(B m) w events.
        m = np.linspace(edges[0], edges[-1], 81)
        traces.append(go.Scatter(
            x=compact(m), y=compact(fit["A"] * np.exp(fit["B"] * m) * float(np.mean(widths))),
            mode="lines", line=dict(color="black", dash="dash", width=1.5), **on_axes,
            name="bkg fit A·exp(B·m)", legendgroup="fit", showlegend=show_legend,
            hovertemplate=f"fit: A={fit['A']:.3g}, B={fit['B']:.4f}<extra></extra>",
        ))
    shapes = []
    if window:
        # Above the filled stack (below it would be hidden exactly where it matters),
        # light enough to leave the stack readable.
        shapes.append(dict(type="rect", x0=window[0], x1=window[1], y0=0, y1=1,
                           xref=f"x{axis}", yref=f"y{axis} domain", fillcolor="#e8b600",
                           opacity=0.2, line=dict(width=1, color="#c99a00", dash="dot"),
                           layer="above"))
    return traces, shapes


def _auto_signal_scales(signals, bkg_totals: np.ndarray, signal_peaks: dict) -> dict:
    """One round scale per signal so that its peak reaches the background's scale."""
    top = float(np.max(bkg_totals)) if np.size(bkg_totals) else 0.0
    return {s: nice_scale(top / max(signal_peaks.get(s, 0.0), 1e-30)) if top > 0 else 1
            for s in signals}


def category_mass_spectra(result: dict, log: bool = False,
                          signal_scales: dict[str, float] | None = None,
                          columns: int = 3) -> go.Figure:
    """Per-category diphoton mass spectra of a bump-hunt result as small multiples.

    Stacked backgrounds, scaled signals (one round factor per signal across all panels so
    that panels compare), the signal window shaded and the category's exponential
    background fit drawn.
    """
    n_cats = int(result["n_cats"])
    title = f"Mass spectra per category, K = {n_cats} (training sample, its Z per panel)"
    hists = result.get("mass_histograms")
    if not hists or not hists.get("counts"):
        return message_figure(title, "No mass histograms in this result.")
    edges = np.asarray(hists["edges"], dtype=float)
    processes = list(hists["processes"])
    signals = list(hists.get("signals") or [])
    per_cat = [{p: np.asarray(c[i], dtype=float) for i, p in enumerate(processes)}
               for c in hists["counts"]]
    fits = list(hists.get("fits") or [None] * len(per_cat))
    if signal_scales is None:
        bkg_peak = np.array([np.sum([c[p] for p in processes if p not in signals], axis=0).max()
                             for c in per_cat])
        sig_peak = {s: max(float(c[s].max()) for c in per_cat) for s in signals}
        # Per-panel ratio would give different factors per panel; use the median panel.
        signal_scales = _auto_signal_scales(signals, np.median(bkg_peak), sig_peak)

    n = len(per_cat)
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    z_text = []
    for i in range(n):
        cat = (result.get("categories") or [{}] * n)[i] if i < len(result.get("categories") or []) else {}
        z = cat.get("z") or {}
        z_text.append(", ".join(f"Z({s})={v:.2f}" for s, v in z.items() if finite(v)))
    fig = make_subplots(
        rows=rows, cols=cols,
        subplot_titles=[f"{category_label(i)}" + (f": {z_text[i]}" if z_text[i] else "")
                        for i in range(n)],
        vertical_spacing=min(0.12, 0.3 / max(rows - 1, 1)) if rows > 1 else 0.1,
        horizontal_spacing=0.06,
    )
    traces, shapes = [], []
    for i, counts in enumerate(per_cat):
        # make_subplots numbers axes row by row: panel i is on x{i+1}/y{i+1}.
        panel_traces, panel_shapes = _mass_panel(
            i + 1, edges, counts, signals, hists.get("window"), signal_scales,
            show_legend=i == 0, fit=fits[i] if i < len(fits) else None)
        traces += panel_traces
        shapes += panel_shapes
    fig.add_traces(traces)
    fig.update_layout(shapes=shapes)
    fig.update_xaxes(range=[float(edges[0]), float(edges[-1])])
    # Axis title under the lowest panel of each column (the last row may be incomplete).
    for col in range(1, cols + 1):
        lowest = max(r for r in range(1, rows + 1) if (r - 1) * cols + col <= n)
        fig.update_xaxes(title="m [GeV]", row=lowest, col=col)
    for annotation in fig.layout.annotations:
        annotation.font = dict(size=11)
    set_log(fig, log)
    fig.update_yaxes(title="events / bin", col=1)
    # Legend in one row between the title and the panels, clear of the axis titles.
    height = max(320, 250 * rows + 110)
    plot_height = height - 110 - 50
    return base_layout(fig, title, height=height, margin=dict(l=60, r=20, t=110, b=50),
                        legend=dict(orientation="h", x=0, y=1 + 24 / plot_height,
                                    yanchor="bottom"))


def inclusive_mass_spectrum(inclusive: dict | None, log: bool = False,
                            signal_scales: dict[str, float] | None = None) -> go.Figure:
    """Inclusive diphoton mass spectrum (before categorisation) of a bump-hunt sample.

    ``inclusive`` is an inclusive summary (gato_core.evaluation.inclusive_summary): a run's
    ``run_info["inclusive"]`` on its results, or the New-run preview's sample
    (figures/previews.py), so both pages draw this one figure.
    """
    title = "Inclusive mass spectrum"
    hist = (inclusive or {}).get("mass_hist")
    if not hist:
        return message_figure(title, "No inclusive mass histogram (not a bump-hunt run).")
    edges = np.asarray(hist["edges"], dtype=float)
    counts = {p: np.asarray(v, dtype=float) for p, v in hist["counts"].items()}
    signals = [s for s in signal_names(inclusive) if s in counts]
    if signal_scales is None:
        bkg = np.sum([v for p, v in counts.items() if p not in signals], axis=0)
        signal_scales = _auto_signal_scales(
            signals, np.asarray([bkg.max()]), {s: float(counts[s].max()) for s in signals})
    traces, shapes = _mass_panel(1, edges, counts, signals, hist.get("window"),
                                 signal_scales, True)
    fig = go.Figure(data=traces)
    fig.update_layout(shapes=shapes)
    fig.update_xaxes(title="m [GeV]", range=[float(edges[0]), float(edges[-1])])
    set_log(fig, log, "events / bin")
    return base_layout(fig, title, height=420)
