"""Figures of a finished (or partly finished) run, built from plain record dicts.

Every function here is pure: it takes the JSON-safe dicts that the engine yields and the
run store keeps (``RunInfo``, ``EpochRecord``, ``TrainingResult``; see
``gato_core/records.py`` and docs/CONTRACTS.md) and returns a ``plotly.graph_objects.Figure``
(or plain rows for a table). No Dash, no store: the run page and the standalone report
both call these, and tests call them without a server.

Conventions
- Epochs are shown as the records number them (0-based), like the live history figures
  on the same page, so "epoch 120" means the same point everywhere.
- Categories are shown by their display number (1 = first entry of
  ``result["categories"]``, which is the most significant one for 2-D scenarios); model
  components are mapped to it through ``result["order"]`` so that a category keeps its
  colour in every animation frame.
- Dict keys that were ints in Python arrive as strings after a JSON round trip
  (``baselines``, ``optimum_1d``); every reader here accepts both.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# --------------------------------------------------------------------------------------
# Colours and shared styling
# --------------------------------------------------------------------------------------

#: Enough distinct colours for the engine's maximum of 50 categories, without repeats.
CATEGORY_COLOURS: tuple[str, ...] = tuple(
    dict.fromkeys(
        plotly.colors.qualitative.Plotly
        + plotly.colors.qualitative.D3
        + plotly.colors.qualitative.Dark24
        + plotly.colors.qualitative.Light24
        + plotly.colors.qualitative.Alphabet
    )
)

#: Process colours that stay the same in every figure (backgrounds muted, signals strong).
PROCESS_COLOURS = {
    "bkg1": "#9ecae1",
    "bkg2": "#a1d99b",
    "bkg3": "#fdd0a2",
    "bkg4": "#dadaeb",
    "bkg5": "#fcbba1",
    "signal": "#d62728",
    "signal1": "#d62728",
    "signal2": "#1f3fbf",
}
_FALLBACK_PROCESS_COLOURS = plotly.colors.qualitative.Pastel

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

#: Outside-the-simplex cells: drawn fully transparent (value 0 in the display grid).
_OUTSIDE = "rgba(0,0,0,0)"

#: Heatmap grids larger than this are thinned before sending (payload: grid**2 per frame).
MAX_MAP_GRID = 120


def category_colour(display_index: int) -> str:
    """Colour of displayed category ``display_index`` (0-based)."""
    return CATEGORY_COLOURS[display_index % len(CATEGORY_COLOURS)]


def process_colour(name: str, position: int = 0) -> str:
    return PROCESS_COLOURS.get(
        name, _FALLBACK_PROCESS_COLOURS[position % len(_FALLBACK_PROCESS_COLOURS)]
    )


def category_label(display_index: int) -> str:
    return f"Cat {display_index + 1}"


def _base_layout(fig: go.Figure, title: str, **layout) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=dict(text=title, x=0.02), **layout)
    return fig


def message_figure(title: str, message: str) -> go.Figure:
    """An empty figure that says why there is nothing to draw (instead of blank axes)."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper",
                       yref="paper", font=dict(size=14, color="#666"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _base_layout(fig, title, height=300)


def _int_keyed(mapping: dict | None) -> dict[int, float]:
    """``{"5": 1.2}`` or ``{5: 1.2}`` -> ``{5: 1.2}``, sorted, non-finite values dropped."""
    out = {}
    for key, value in (mapping or {}).items():
        if _finite(value):
            out[int(key)] = float(value)
    return dict(sorted(out.items()))


def compact(values, digits: int = 4) -> list:
    """Numbers as a plain list rounded to ``digits`` significant digits (None for NaN).

    Smaller on the wire than plotly's base64 float64 (8 bytes -> ~11 characters per value)
    for the short series drawn here, and precise far beyond what a plot can show.
    """
    out = []
    for v in np.asarray(values, dtype=float).ravel():
        out.append(float(f"{v:.{digits}g}") if math.isfinite(v) else None)
    return out


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def nice_scale(ratio: float) -> int:
    """Largest of 1, 2, 5, 10, 20, 50, ... not above ``ratio`` (at least 1).

    Used to scale a small signal up to the background's size with a round factor that
    reads well in a legend ("signal1 x 50").
    """
    if not _finite(ratio) or ratio <= 1:
        return 1
    exponent = math.floor(math.log10(ratio))
    best = 1
    for mantissa in (1, 2, 5):
        candidate = mantissa * 10**exponent
        if candidate <= ratio:
            best = candidate
    return int(best)


def _scaled_name(name: str, scale: float) -> str:
    return name if scale == 1 else f"{name} x {scale:g}"


def _signal_names(result_or_info: dict) -> list[str]:
    names = result_or_info.get("signal_names") or result_or_info.get("signals")
    if names:
        return list(names)
    first = (result_or_info.get("categories") or [{}])[0]
    return list((first.get("signal") or {}).keys())


# --------------------------------------------------------------------------------------
# Snapshots
# --------------------------------------------------------------------------------------

def snapshots_of(epochs: Iterable[dict], result: dict | None = None,
                 n_cats: int | None = None) -> list[dict]:
    """The snapshot layouts of one K in epoch order: from its EpochRecords, then the final one.

    ``epochs`` may hold records of several K; only those of ``n_cats`` (default: the
    result's K) are used. The result's final snapshot replaces an epoch snapshot of the
    same epoch (the engine snapshots the last epoch too), so each epoch appears once.
    """
    if n_cats is None and result is not None:
        n_cats = result.get("n_cats")
    by_epoch: dict[int, dict] = {}
    for record in epochs:
        if n_cats is not None and record.get("n_cats") != n_cats:
            continue
        snap = record.get("snapshot")
        if snap:
            by_epoch[int(snap.get("epoch", record.get("epoch", 0)))] = snap
    final = (result or {}).get("snapshot")
    if final:
        by_epoch[int(final.get("epoch", max(by_epoch, default=0)))] = final
    return [by_epoch[e] for e in sorted(by_epoch)]


def _display_grid(snapshot: dict, order: Sequence[int]) -> np.ndarray:
    """Snapshot grid -> [n, n] uint8 array of display category number (1-based), 0 outside.

    ``order[component]`` is the 0-based display index; components missing from ``order``
    (should not happen) keep their own index rather than vanishing.

    Why 1-based with 0 outside (not -1): plotly sends uint8 arrays as base64, and its JSON
    writer escapes "/" as a six-character sequence. A byte 0xFF (-1) encodes to "////";
    bytes up to 50 never produce "/" or "+" in base64, so the payload stays 19 KB per
    120 x 120 frame instead of tripling. It also makes the hover text read "category 3".
    """
    n = int(snapshot["grid"])
    comps = np.asarray(snapshot["categories"], dtype=np.int16).reshape(n, n)  # [iy, ix]
    lookup = np.arange(max(int(comps.max(initial=0)) + 1, len(order)), dtype=np.int16)
    lookup[: len(order)] = np.asarray(order, dtype=np.int16)
    display = np.where(comps >= 0, lookup[np.clip(comps, 0, None)] + 1, 0)
    if n > MAX_MAP_GRID:
        # Nearest-cell thinning keeps category values exact (no blending of labels).
        step = math.ceil(n / MAX_MAP_GRID)
        display = display[step // 2 :: step, step // 2 :: step]
    return display.astype(np.uint8)


def _discrete_colourscale(n_categories: int) -> list:
    """Colourscale for z in [0, K] (use zmin=-0.5, zmax=K+0.5): one flat band per integer
    value, 0 (outside the simplex) transparent."""
    colours = [_OUTSIDE] + [category_colour(k) for k in range(n_categories)]
    bands = len(colours)
    scale = []
    for i, colour in enumerate(colours):
        scale.append([i / bands, colour])
        scale.append([(i + 1) / bands, colour])
    return scale


def _category_labels(display: np.ndarray) -> list[dict]:
    """Annotations with each category's number, placed on one of its own cells.

    The label sits on the category's cell nearest its centroid, so it stays inside
    non-convex or split regions.
    """
    n = display.shape[0]
    iy, ix = np.nonzero(display > 0)
    values = display[iy, ix]
    labels = []
    for value in np.unique(values):
        sel = values == value
        cx, cy = ix[sel].mean(), iy[sel].mean()
        nearest = np.argmin((ix[sel] - cx) ** 2 + (iy[sel] - cy) ** 2)
        labels.append(dict(
            x=(ix[sel][nearest] + 0.5) / n, y=(iy[sel][nearest] + 0.5) / n,
            text=str(int(value)), showarrow=False,
            font=dict(size=13, color="black"), bgcolor="rgba(255,255,255,0.6)",
        ))
    return labels


def _frame_title(n_cats: int, snapshot: dict, total_epochs: int | None) -> str:
    epoch = int(snapshot.get("epoch", 0))
    # 0-based like every epoch axis on the page; say when it is the last one.
    last = " (last)" if total_epochs and epoch == total_epochs - 1 else ""
    temperature = snapshot.get("temperature")
    t_text = f"  ·  T = {temperature:.3g}" if _finite(temperature) else ""
    return f"Categories, K = {n_cats}: epoch {epoch}{last}{t_text}"


def _density_contours(run_info: dict | None, visible) -> list[go.Contour]:
    """Contour lines of each signal's and the total background's density on (p1, p2)."""
    density = ((run_info or {}).get("inclusive") or {}).get("score_density")
    if not density:
        return []
    n = int(density["grid"])
    counts = density["counts"]
    signals = _signal_names(run_info)
    centres = (np.arange(n) + 0.5) / n
    groups = [(s, [s]) for s in signals if s in counts]
    backgrounds = [p for p in counts if p not in signals]
    if backgrounds:
        groups.append(("background", backgrounds))
    traces = []
    for label, members in groups:
        z = np.sum([np.asarray(counts[p], dtype=float) for p in members], axis=0).reshape(n, n)
        peak = z.max()
        if not peak > 0:
            continue
        # Relative to the peak so that every process gets the same, readable levels.
        z = np.where(z > 0, z / peak, np.nan)
        colour = "#333333" if label == "background" else process_colour(label)
        traces.append(go.Contour(
            x=compact(centres), y=compact(centres), z=[compact(row, 3) for row in z],
            name=f"{label} density", visible=visible,
            showscale=False, contours=dict(coloring="none", start=0.1, end=0.9, size=0.2),
            line=dict(color=colour, width=1.5), hoverinfo="skip", showlegend=True,
        ))
    return traces


def category_map_animation(epochs: Iterable[dict], result: dict,
                           run_info: dict | None = None, show_density: bool = False,
                           frame_ms: int = 200) -> go.Figure:
    """Animated hard category map of a 2-D run over the (p1, p2) simplex.

    One frame per snapshot (epoch snapshots of this K plus the final one), play/pause
    buttons and an epoch slider; the figure opens on the final categorisation. Cells
    outside the simplex are blank. Signal and background density contours (from
    ``run_info["inclusive"]["score_density"]``) are in the legend; ``show_density`` makes
    them visible from the start, otherwise one click on the legend shows them.
    """
    n_cats = int(result["n_cats"])
    snaps = [s for s in snapshots_of(epochs, result) if "grid" in s]
    title = f"Categories, K = {n_cats}"
    if not snaps:
        return message_figure(title, "No 2-D category snapshots recorded for this K.")
    order = list(result.get("order") or range(n_cats))
    total_epochs = _total_epochs(epochs, n_cats) or result.get("epochs_done")
    grids = [_display_grid(s, order) for s in snaps]
    colourscale = _discrete_colourscale(n_cats)

    def heatmap(grid: np.ndarray) -> go.Heatmap:
        # x0/dx instead of coordinate arrays, uint8 z: plotly sends it as base64 bytes,
        # ~19 KB per 120x120 frame, which keeps 41 frames under a megabyte.
        return go.Heatmap(
            z=grid, x0=0.5 / grid.shape[1], dx=1 / grid.shape[1],
            y0=0.5 / grid.shape[0], dy=1 / grid.shape[0],
            zmin=-0.5, zmax=n_cats + 0.5, colorscale=colourscale, showscale=False,
            hovertemplate="p1=%{x:.3f}<br>p2=%{y:.3f}<br>category %{z}<extra></extra>",
            name="categories", showlegend=False,
        )

    signals = _signal_names(run_info or {}) or ["signal1", "signal2"]
    frame_names = [str(int(s.get("epoch", i))) for i, s in enumerate(snaps)]
    # Frames carry only the new z: plotly merges frame data into trace 0, so the
    # colourscale, hover template and geometry are sent once, not 41 times. They are
    # given as plain dicts to the constructor: plotly then checks them once (building
    # go.Frame objects and assigning them checks and copies everything twice, ~2x slower).
    frames = [
        dict(name=name, data=[dict(type="heatmap", z=grid)], traces=[0],
             layout=dict(title=dict(text=_frame_title(n_cats, snap, total_epochs)),
                         annotations=_category_labels(grid)))
        for name, snap, grid in zip(frame_names, snaps, grids)
    ]
    traces = [heatmap(grids[-1])]
    traces += _density_contours(run_info, True if show_density else "legendonly")
    # Legend swatches: a heatmap has no legend entries of its own, and a colourbar would
    # also show the transparent "outside" band.
    traces += [
        go.Scatter(x=[None], y=[None], mode="markers", name=category_label(k),
                   marker=dict(symbol="square", size=12, color=category_colour(k)),
                   legendgroup="categories", hoverinfo="skip")
        for k in range(n_cats)
    ]
    fig = go.Figure(data=traces, frames=frames)

    still = {"frame": {"duration": 0, "redraw": True}, "mode": "immediate",
             "transition": {"duration": 0}}
    slider_steps = [
        dict(method="animate", args=[[name], still], label=name)
        for name in frame_names
    ]
    fig.update_layout(
        template=TEMPLATE,
        title=dict(text=_frame_title(n_cats, snaps[-1], total_epochs), x=0.02),
        annotations=_category_labels(grids[-1]),
        xaxis=dict(title=f"p({signals[0]})", range=[0, 1], constrain="domain"),
        yaxis=dict(title=f"p({signals[1] if len(signals) > 1 else 'signal2'})",
                   range=[0, 1], scaleanchor="x", scaleratio=1, constrain="domain"),
        shapes=[dict(type="line", x0=0, y0=1, x1=1, y1=0,
                     line=dict(color="#444", width=1))],
        height=560,
        margin=dict(l=60, r=20, t=60, b=110),
        legend=dict(x=1.02, y=1, xanchor="left"),
        updatemenus=[dict(
            type="buttons", direction="left", showactive=False,
            x=0, y=-0.12, xanchor="left", yanchor="top", pad=dict(t=0, r=10),
            buttons=[
                dict(label="▶ Play", method="animate",
                     args=[None, {"frame": {"duration": frame_ms, "redraw": True},
                                  "fromcurrent": False, "transition": {"duration": 0},
                                  "mode": "immediate"}]),
                dict(label="❚❚ Pause", method="animate", args=[[None], still]),
            ],
        )],
        sliders=[dict(
            active=len(frame_names) - 1, steps=slider_steps,
            x=0.18, y=-0.08, len=0.82, xanchor="left", yanchor="top",
            currentvalue=dict(prefix="epoch ", visible=True), pad=dict(t=0),
        )],
    )
    return fig


def _total_epochs(epochs: Iterable[dict], n_cats: int) -> int | None:
    for record in epochs:
        if record.get("n_cats") == n_cats and record.get("epochs"):
            return int(record["epochs"])
    return None


def _by_display(components: Sequence[dict], order: Sequence[int]) -> list[tuple[int, dict]]:
    """(display index, component) pairs; legends then list categories in number order."""
    pairs = []
    for comp in components:
        k = int(comp["component"])
        pairs.append((order[k] if k < len(order) else k, comp))
    return pairs


def gaussian_components_2d(result: dict, run_info: dict | None = None) -> go.Figure:
    """Learned Gaussians of a 2-D run as 1- and 2-sigma ellipses over the final map."""
    title = f"Learned Gaussian components, K = {result['n_cats']}"
    components = result.get("components") or []
    if not components:
        return message_figure(title, "This model has no Gaussian components.")
    order = list(result.get("order") or range(len(components)))
    fig = go.Figure()
    final = result.get("snapshot") or {}
    if "grid" in final:
        grid = _display_grid(final, order)
        fig.add_trace(go.Heatmap(
            z=grid, x0=0.5 / grid.shape[1], dx=1 / grid.shape[1], y0=0.5 / grid.shape[0],
            dy=1 / grid.shape[0], zmin=-0.5, zmax=result["n_cats"] + 0.5,
            colorscale=_discrete_colourscale(result["n_cats"]), showscale=False,
            opacity=0.35, hoverinfo="skip", showlegend=False,
        ))
    angle = np.linspace(0, 2 * np.pi, 73)
    circle = np.stack([np.cos(angle), np.sin(angle)])
    for display, comp in sorted(_by_display(components, order), key=lambda pair: pair[0]):
        mean = np.asarray(comp["mean"], dtype=float)
        cov = np.asarray(comp["cov"], dtype=float)
        # Ellipse = mean + L @ circle with L the Cholesky factor of the covariance.
        try:
            chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            continue
        for n_sigma, dash in ((1, "solid"), (2, "dot")):
            pts = mean[:, None] + n_sigma * chol @ circle
            fig.add_trace(go.Scatter(
                x=compact(pts[0]), y=compact(pts[1]), mode="lines",
                line=dict(color=category_colour(display), dash=dash, width=2),
                name=f"{category_label(display)} ({n_sigma}σ)",
                legendgroup=str(display), showlegend=n_sigma == 1,
                hovertemplate=f"{category_label(display)}, weight {comp.get('weight', 0):.3f}"
                              "<extra></extra>",
            ))
        fig.add_trace(go.Scatter(
            x=[mean[0]], y=[mean[1]], mode="markers", legendgroup=str(display),
            marker=dict(symbol="x", size=9, color=category_colour(display)),
            showlegend=False, hoverinfo="skip",
        ))
    signals = _signal_names(run_info or {}) or ["signal1", "signal2"]
    return _base_layout(
        fig, title, height=520,
        xaxis=dict(title=f"p({signals[0]})", range=[0, 1], constrain="domain"),
        yaxis=dict(title=f"p({signals[-1]})", range=[0, 1], scaleanchor="x",
                   constrain="domain"),
        shapes=[dict(type="line", x0=0, y0=1, x1=1, y1=0, line=dict(color="#444", width=1))],
    )


# --------------------------------------------------------------------------------------
# 1-D
# --------------------------------------------------------------------------------------

def boundary_history_1d(epochs: Iterable[dict], result: dict) -> go.Figure:
    """Position of every cut between adjacent bins against epoch (1-D runs)."""
    n_cats = int(result["n_cats"])
    title = f"Bin boundaries against epoch, K = {n_cats}"
    snaps = [s for s in snapshots_of(epochs, result) if "boundaries" in s]
    if not snaps:
        return message_figure(title, "No 1-D boundary snapshots recorded for this K.")
    n_cuts = max(len(s["boundaries"]) for s in snaps)
    x = [int(s.get("epoch", 0)) for s in snaps]
    fig = go.Figure()
    for cut in range(n_cuts):
        # A boundary that the model merged away is absent (None) rather than faked.
        y = [s["boundaries"][cut] if cut < len(s["boundaries"]) else None for s in snaps]
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="lines+markers", marker=dict(size=4),
            line=dict(color=category_colour(cut), width=2),
            name=f"cut {cut + 1}|{cut + 2}",
            hovertemplate="epoch %{x}: %{y:.4f}<extra>cut " + f"{cut + 1}|{cut + 2}</extra>",
        ))
    return _base_layout(fig, title, xaxis_title="epoch", yaxis_title="discriminant",
                        yaxis_range=[0, 1], height=420)


def stacked_histogram_1d(result: dict, run_info: dict | None = None, log: bool = False,
                         signal_scale: float | None = None) -> go.Figure:
    """Final yields per process in the optimised bins of a 1-D run (stacked backgrounds).

    Bars span each category's score range; signals are step lines scaled by a round factor
    (``signal_scale`` or automatic) that the legend states.
    """
    n_cats = int(result["n_cats"])
    title = f"Yields in the optimised bins, K = {n_cats}"
    cats = result.get("categories") or []
    if not cats or any(not c.get("range") or not c.get("process_yields") for c in cats):
        return message_figure(title, "No per-process yields with bin ranges in this result.")
    signals = _signal_names(run_info or {}) or _signal_names(result)
    processes = list(cats[0]["process_yields"])
    backgrounds = [p for p in processes if p not in signals]
    lo = np.array([c["range"][0] for c in cats], dtype=float)
    hi = np.array([c["range"][1] for c in cats], dtype=float)
    yields = {p: np.array([c["process_yields"].get(p, 0.0) for c in cats]) for p in processes}
    total_bkg = np.sum([yields[p] for p in backgrounds], axis=0) if backgrounds else np.zeros(len(cats))

    fig = go.Figure()
    for i, proc in enumerate(backgrounds):
        fig.add_trace(go.Bar(
            x=compact((lo + hi) / 2, 6), width=compact(hi - lo, 6), y=compact(yields[proc]),
            name=proc,
            marker=dict(color=process_colour(proc, i), line=dict(width=0.5, color="#555")),
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
            line=dict(shape="hv", color=process_colour(proc), width=2.5),
            name=_scaled_name(proc, scale),
            hovertemplate=_scaled_name(proc, scale) + ": %{y:.4g}<extra></extra>",
        ))
    for cut in hi[:-1]:
        fig.add_vline(x=float(cut), line=dict(color="#333", width=1, dash="dash"))
    fig.update_layout(barmode="stack", bargap=0)
    fig.update_xaxes(title="discriminant", range=[float(lo.min()), float(hi.max())])
    _set_log(fig, log, "events per bin")
    return _base_layout(fig, title, height=420)


def gaussian_components_1d(result: dict, score_range: tuple[float, float] = (0.0, 1.0),
                           points: int = 400) -> go.Figure:
    """Weighted pdfs of the learned Gaussians of a 1-D run, coloured by their bin."""
    title = f"Learned Gaussian components, K = {result['n_cats']}"
    components = result.get("components") or []
    if not components:
        return message_figure(title, "This model has no Gaussian components "
                                      "(sigmoid-cut model).")
    order = list(result.get("order") or range(len(components)))
    x = np.linspace(score_range[0], score_range[1], points)
    total = np.zeros_like(x)
    fig = go.Figure()
    for display, comp in sorted(_by_display(components, order), key=lambda pair: pair[0]):
        mean = float(np.ravel(comp["mean"])[0])
        sigma = math.sqrt(max(float(np.ravel(comp["cov"])[0]), 1e-18))
        pdf = float(comp.get("weight", 1.0)) * np.exp(-0.5 * ((x - mean) / sigma) ** 2) / (
            sigma * math.sqrt(2 * math.pi))
        total += pdf
        fig.add_trace(go.Scatter(
            x=compact(x), y=compact(pdf), mode="lines", name=category_label(display),
            line=dict(color=category_colour(display), width=2),
            hovertemplate=f"{category_label(display)}: μ={mean:.3f}, σ={sigma:.3f}"
                          "<extra></extra>",
        ))
    fig.add_trace(go.Scatter(x=compact(x), y=compact(total), mode="lines", name="sum",
                             line=dict(color="#333", dash="dot", width=1.5)))
    return _base_layout(fig, title, xaxis_title="discriminant",
                        yaxis_title="weight × density", height=400)


# --------------------------------------------------------------------------------------
# Bump hunt: mass spectra
# --------------------------------------------------------------------------------------

def _set_log(fig: go.Figure, log: bool, title: str | None = None, **selector) -> None:
    fig.update_yaxes(type="log" if log else "linear", **selector)
    if title:
        fig.update_yaxes(title=title, **selector)


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
    step_x = compact(edges)
    for i, proc in enumerate(backgrounds):
        y = np.asarray(counts[proc], dtype=float)
        # "hv" steps over the edges; the last value repeated closes the last bin.
        traces.append(go.Scatter(
            x=step_x, y=compact(np.append(y, y[-1])), mode="lines", **on_axes,
            line=dict(shape="hv", width=0.5, color=process_colour(proc, i)),
            fillcolor=process_colour(proc, i), stackgroup=f"panel{subplot}",
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
            line=dict(shape="hv", color=process_colour(proc), width=2),
            name=_scaled_name(proc, scale), legendgroup=proc, showlegend=show_legend,
            hovertemplate=_scaled_name(proc, scale) + " %{x:.1f} GeV: %{y:.4g}<extra></extra>",
        ))
    if fit and _finite(fit.get("A")) and _finite(fit.get("B")):
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
    title = f"Mass spectra per category, K = {n_cats}"
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
        z_text.append(", ".join(f"Z({s})={v:.2f}" for s, v in z.items() if _finite(v)))
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
    _set_log(fig, log)
    fig.update_yaxes(title="events / bin", col=1)
    # Legend in one row between the title and the panels, clear of the axis titles.
    height = max(320, 250 * rows + 110)
    plot_height = height - 110 - 50
    return _base_layout(fig, title, height=height, margin=dict(l=60, r=20, t=110, b=50),
                        legend=dict(orientation="h", x=0, y=1 + 24 / plot_height,
                                    yanchor="bottom"))


def inclusive_mass_spectrum(run_info: dict, log: bool = False,
                            signal_scales: dict[str, float] | None = None) -> go.Figure:
    """Inclusive diphoton mass spectrum (before categorisation) of a bump-hunt run."""
    title = "Inclusive mass spectrum"
    hist = ((run_info or {}).get("inclusive") or {}).get("mass_hist")
    if not hist:
        return message_figure(title, "No inclusive mass histogram (not a bump-hunt run).")
    edges = np.asarray(hist["edges"], dtype=float)
    counts = {p: np.asarray(v, dtype=float) for p, v in hist["counts"].items()}
    signals = [s for s in _signal_names(run_info) if s in counts]
    if signal_scales is None:
        bkg = np.sum([v for p, v in counts.items() if p not in signals], axis=0)
        signal_scales = _auto_signal_scales(
            signals, np.asarray([bkg.max()]), {s: float(counts[s].max()) for s in signals})
    traces, shapes = _mass_panel(1, edges, counts, signals, hist.get("window"),
                                 signal_scales, True)
    fig = go.Figure(data=traces)
    fig.update_layout(shapes=shapes)
    fig.update_xaxes(title="m [GeV]", range=[float(edges[0]), float(edges[-1])])
    _set_log(fig, log, "events / bin")
    return _base_layout(fig, title, height=420)


# --------------------------------------------------------------------------------------
# Baseline comparison
# --------------------------------------------------------------------------------------

def _trained_points(results: Iterable[dict], signal: str) -> dict[int, tuple[float, str]]:
    points = {}
    for res in results:
        z = (res.get("significance") or {}).get(signal)
        if _finite(z):
            points[int(res["n_cats"])] = (float(z), res.get("status", "finished"))
    return dict(sorted(points.items()))


def significance_comparison(run_info: dict | None, results: Sequence[dict]) -> go.Figure:
    """Significance against number of categories, one panel per signal.

    Baselines (equidistant bins; for 2-D scenarios argmax + equidistant, counted as 2n+1
    categories), every trained K of the run, and for 1-D the exact optimum (the ceiling).
    """
    info = run_info or {}
    signals = _signal_names(info) or sorted(
        {s for r in results for s in (r.get("significance") or {})})
    title = "Significance against number of categories"
    if not signals:
        return message_figure(title, "No significance values yet.")
    two_d = len(signals) > 1
    fig = make_subplots(rows=1, cols=len(signals), subplot_titles=signals,
                        horizontal_spacing=0.08)
    baseline_name = "argmax + equidistant (2n+1)" if two_d else "equidistant bins"
    for col, signal in enumerate(signals, start=1):
        first = col == 1
        baseline = _int_keyed((info.get("baselines") or {}).get(signal))
        if baseline:
            fig.add_trace(go.Scatter(
                x=list(baseline), y=list(baseline.values()), mode="lines+markers",
                name=baseline_name, legendgroup="baseline", showlegend=first,
                line=dict(color="#7f7f7f", dash="dash"), marker=dict(symbol="square", size=8),
                hovertemplate="baseline, %{x} categories: Z=%{y:.3f}<extra></extra>",
            ), row=1, col=col)
        optimum = _int_keyed(info.get("optimum_1d")) if not two_d else {}
        if optimum:
            fig.add_trace(go.Scatter(
                x=list(optimum), y=list(optimum.values()), mode="lines+markers",
                name="exact optimum (ceiling)", legendgroup="optimum", showlegend=first,
                line=dict(color="#2ca02c", dash="dot"), marker=dict(symbol="diamond", size=8),
                hovertemplate="optimum, K=%{x}: Z=%{y:.3f}<extra></extra>",
            ), row=1, col=col)
        trained = _trained_points(results, signal)
        if trained:
            statuses = [status for _, status in trained.values()]
            fig.add_trace(go.Scatter(
                x=list(trained), y=[z for z, _ in trained.values()], mode="lines+markers",
                name="GATO (this run)", legendgroup="gato", showlegend=first,
                line=dict(color=process_colour(signal), width=2.5),
                marker=dict(size=11, symbol=["circle" if s == "finished" else "circle-open"
                                             for s in statuses]),
                customdata=statuses,
                hovertemplate="GATO, K=%{x} (%{customdata}): Z=%{y:.3f}<extra></extra>",
            ), row=1, col=col)
    fig.update_xaxes(title="number of categories", rangemode="tozero")
    fig.update_yaxes(title="Z (Asimov)", col=1)
    return _base_layout(fig, title, height=420, legend=dict(orientation="h", y=-0.2))


def significance_table_rows(run_info: dict | None, results: Sequence[dict]) -> list[dict]:
    """Rows ``{"method", "n_categories", <signal>: Z, ..., "objective"}`` for the table.

    Sorted by number of categories, baseline before optimum before GATO at equal counts,
    so that each trained K sits right after the references it competes with. Missing
    values are None.
    """
    info = run_info or {}
    signals = _signal_names(info) or sorted(
        {s for r in results for s in (r.get("significance") or {})})
    two_d = len(signals) > 1
    rows = []
    baselines = {s: _int_keyed((info.get("baselines") or {}).get(s)) for s in signals}
    objective = _int_keyed(info.get("baseline_objective"))
    for n in sorted(set().union(*[set(b) for b in baselines.values()], objective)):
        row = {"method": "baseline (argmax + equidistant)" if two_d else "baseline (equidistant)",
               "n_categories": n}
        row.update({s: baselines[s].get(n) for s in signals})
        row["objective"] = objective.get(n)
        rows.append(row)
    if not two_d:
        for n, z in _int_keyed(info.get("optimum_1d")).items():
            rows.append({"method": "exact optimum", "n_categories": n,
                         **{s: z for s in signals}, "objective": z})
    for res in results:
        sig = res.get("significance") or {}
        status = res.get("status", "finished")
        rows.append({
            "method": "GATO" if status == "finished" else f"GATO ({status})",
            "n_categories": int(res["n_cats"]),
            **{s: float(sig[s]) if _finite(sig.get(s)) else None for s in signals},
            "objective": float(res["objective"]) if _finite(res.get("objective")) else None,
        })
    rank = {"baseline": 0, "exact": 1, "GATO": 2}
    rows.sort(key=lambda r: (r["n_categories"], rank[r["method"].split(" ")[0]]))
    return rows


def category_table_rows(result: dict) -> list[dict]:
    """Per-category numbers of one result (for the table and the CSV)."""
    rows = []
    for i, cat in enumerate(result.get("categories") or []):
        row = {"n_cats": int(result["n_cats"]), "category": i + 1,
               "component": cat.get("component")}
        for name, value in (cat.get("signal") or {}).items():
            row[f"s_{name}"] = value
        row["background"] = cat.get("background")
        row["bkg_sum_w2"] = cat.get("bkg_sum_w2")
        row["rel_unc"] = cat.get("rel_unc")
        for name, value in (cat.get("z") or {}).items():
            row[f"z_{name}"] = value
        if cat.get("range"):
            row["range_lo"], row["range_hi"] = cat["range"]
        for name, value in (cat.get("process_yields") or {}).items():
            row[f"yield_{name}"] = value
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------
# Category statistics and bias
# --------------------------------------------------------------------------------------

def category_statistics(result: dict, log: bool = False,
                        thresholds: dict | None = None) -> go.Figure:
    """Background yield (top) and relative MC uncertainty (bottom) per category.

    ``thresholds`` (``{"thr_yield": .., "thr_unc": ..}``, e.g. the run config) draws the
    penalty thresholds as dashed lines, so a category that violates one stands out.
    """
    n_cats = int(result["n_cats"])
    title = f"Background yield and MC uncertainty per category, K = {n_cats}"
    cats = result.get("categories") or []
    if not cats:
        return message_figure(title, "No categories in this result.")
    labels = [category_label(i) for i in range(len(cats))]
    background = [c.get("background") for c in cats]
    rel_unc = [c.get("rel_unc") for c in cats]
    colours = [category_colour(i) for i in range(len(cats))]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    fig.add_trace(go.Bar(x=labels, y=background, marker_color=colours, name="background",
                         showlegend=False,
                         hovertemplate="%{x}: B = %{y:.4g}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=labels, y=rel_unc, marker_color=colours, name="rel. uncertainty",
                         showlegend=False, marker_pattern_shape="/",
                         hovertemplate="%{x}: σB/B = %{y:.3g}<extra></extra>"), row=2, col=1)
    thresholds = thresholds or {}
    if _finite(thresholds.get("thr_yield")):
        fig.add_hline(y=thresholds["thr_yield"], line=dict(color="#d62728", dash="dash"),
                      annotation_text="yield threshold", row=1, col=1)
    if _finite(thresholds.get("thr_unc")):
        fig.add_hline(y=thresholds["thr_unc"], line=dict(color="#d62728", dash="dash"),
                      annotation_text="uncertainty threshold", row=2, col=1)
    _set_log(fig, log)
    fig.update_yaxes(title="background yield", row=1, col=1)
    fig.update_yaxes(title="relative MC unc.", row=2, col=1)
    return _base_layout(fig, title, height=480)


def bias_temperature_history(epochs: Iterable[dict], n_cats: int) -> go.Figure:
    """Mean |bias| of the soft yields at snapshot epochs, temperature on a second axis."""
    title = f"Soft-vs-hard bias and temperature, K = {n_cats}"
    records = [r for r in epochs if r.get("n_cats") == n_cats]
    biased = [r for r in records if _finite(r.get("mean_abs_bias"))]
    if not biased:
        return message_figure(title, "No bias values recorded for this K.")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(
        x=[r["epoch"] for r in biased], y=[compact([r["mean_abs_bias"]])[0] for r in biased],
        mode="lines+markers", name="mean |bias|", line=dict(color="#1f77b4", width=2),
        hovertemplate="epoch %{x}: mean |bias| %{y:.3g}<extra></extra>",
    ), secondary_y=False)
    temps = [r for r in records if _finite(r.get("temperature"))]
    fig.add_trace(go.Scatter(
        x=[r["epoch"] for r in temps], y=compact([r["temperature"] for r in temps]),
        mode="lines", name="temperature", line=dict(color="#ff7f0e", dash="dash"),
        hovertemplate="epoch %{x}: T = %{y:.3g}<extra></extra>",
    ), secondary_y=True)
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="mean |bias|", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title="temperature", secondary_y=True, showgrid=False,
                     rangemode="tozero")
    return _base_layout(fig, title, height=380, legend=dict(orientation="h", y=1.12, x=1,
                                                            xanchor="right"))


# --------------------------------------------------------------------------------------
# Collections used by the page and the report
# --------------------------------------------------------------------------------------

#: Figures whose y axis follows the log toggle.
LOG_FIGURES = ("stacked_histogram", "mass_spectra", "inclusive_mass", "category_statistics")


def scenario_dim(run: dict) -> int:
    """1 or 2, from the run's scenario name (no engine import needed)."""
    scenario = run.get("scenario") or (run.get("config") or {}).get("scenario") \
        or (run.get("run_info") or {}).get("scenario")
    return 1 if scenario == "one_d" else 2


def result_figures(run: dict, epochs: Sequence[dict], result: dict, log: bool = False,
                   show_density: bool = False,
                   names: Iterable[str] | None = None) -> dict[str, go.Figure]:
    """The per-K figures of one result, keyed by a stable name, in reading order.

    ``names``: build only these (the page's first tab needs 3 of the 5, and the other two
    take ~0.2 s of a first open).
    """
    run_info = run.get("run_info") or {}
    n_cats = int(result["n_cats"])
    builders: dict = {}
    if scenario_dim(run) == 1:
        builders["boundary_history"] = lambda: boundary_history_1d(epochs, result)
        builders["stacked_histogram"] = lambda: stacked_histogram_1d(result, run_info, log=log)
        builders["components"] = lambda: gaussian_components_1d(result)
    else:
        builders["category_map"] = lambda: category_map_animation(
            epochs, result, run_info, show_density=show_density)
        builders["components"] = lambda: gaussian_components_2d(result, run_info)
        if result.get("mass_histograms"):
            builders["mass_spectra"] = lambda: category_mass_spectra(result, log=log)
    builders["category_statistics"] = lambda: category_statistics(
        result, log=log, thresholds=run.get("config"))
    builders["bias_history"] = lambda: bias_temperature_history(epochs, n_cats)
    wanted = None if names is None else set(names)
    return {name: build() for name, build in builders.items()
            if wanted is None or name in wanted}


def run_figures(run: dict, results: Sequence[dict], log: bool = False) -> dict[str, go.Figure]:
    """The run-level figures (independent of the selected K)."""
    run_info = run.get("run_info") or {}
    figures = {"significance_comparison": significance_comparison(run_info, results)}
    if ((run_info.get("inclusive") or {}).get("mass_hist")):
        figures["inclusive_mass"] = inclusive_mass_spectrum(run_info, log=log)
    return figures
