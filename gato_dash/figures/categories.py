"""How the events are categorised, and how that settled over the epochs of one K: the 2-D
category map, the 1-D bin boundaries, the learned Gaussian components, and the soft-vs-hard
bias with the temperature (the results section's "Categories" tab)."""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gato_core.evaluation import component_categories

from .colours import category_colour, category_colourscale, process_colours
from .style import (TEMPLATE, base_layout, category_label, compact, finite, message_figure,
                    signal_names)


#: Heatmap grids larger than this are thinned before sending (payload: grid**2 per frame).
MAX_MAP_GRID = 120


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


def display_grid(snapshot: dict, order: Sequence[int]) -> np.ndarray:
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
    t_text = f"  ·  T = {temperature:.3g}" if finite(temperature) else ""
    return f"Categories, K = {n_cats}: epoch {epoch}{last}{t_text}"


def _density_contours(run_info: dict | None, visible) -> list[go.Contour]:
    """Contour lines of each signal's and the total background's density on (p1, p2)."""
    density = ((run_info or {}).get("inclusive") or {}).get("score_density")
    if not density:
        return []
    n = int(density["grid"])
    counts = density["counts"]
    signals = signal_names(run_info)
    centres = (np.arange(n) + 0.5) / n
    groups = [(s, [s]) for s in signals if s in counts]
    backgrounds = [p for p in counts if p not in signals]
    if backgrounds:
        groups.append(("background", backgrounds))
    colours = process_colours(counts, signals)
    traces = []
    for label, members in groups:
        z = np.sum([np.asarray(counts[p], dtype=float) for p in members], axis=0).reshape(n, n)
        peak = z.max()
        if not peak > 0:
            continue
        # Relative to the peak so that every process gets the same, readable levels.
        z = np.where(z > 0, z / peak, np.nan)
        colour = "#333333" if label == "background" else colours[label]
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
    grids = [display_grid(s, order) for s in snaps]
    colourscale = category_colourscale(n_cats)

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

    signals = signal_names(run_info or {}) or ["signal1", "signal2"]
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
        grid = display_grid(final, order)
        fig.add_trace(go.Heatmap(
            z=grid, x0=0.5 / grid.shape[1], dx=1 / grid.shape[1], y0=0.5 / grid.shape[0],
            dy=1 / grid.shape[0], zmin=-0.5, zmax=result["n_cats"] + 0.5,
            colorscale=category_colourscale(result["n_cats"]), showscale=False,
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
    signals = signal_names(run_info or {}) or ["signal1", "signal2"]
    return base_layout(
        fig, title, height=520,
        xaxis=dict(title=f"p({signals[0]})", range=[0, 1], constrain="domain"),
        yaxis=dict(title=f"p({signals[-1]})", range=[0, 1], scaleanchor="x",
                   constrain="domain"),
        shapes=[dict(type="line", x0=0, y0=1, x1=1, y1=0, line=dict(color="#444", width=1))],
    )


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
    return base_layout(fig, title, xaxis_title="epoch", yaxis_title="discriminant",
                        yaxis_range=[0, 1], height=420)


def gaussian_components_1d(result: dict, score_range: tuple[float, float] = (0.0, 1.0),
                           points: int = 400) -> go.Figure:
    """Weighted pdfs of the learned Gaussians of a 1-D run, coloured by their bin."""
    title = f"Learned Gaussian components, K = {result['n_cats']}"
    components = result.get("components") or []
    if not components:
        return message_figure(title, "This model has no Gaussian components "
                                      "(sigmoid-cut model).")
    # categories are numbered left to right; a component is named by the categories it
    # wins (gato_core's one mapping), which is not its own index
    wins = component_categories(result)
    x = np.linspace(score_range[0], score_range[1], points)
    total = np.zeros_like(x)
    fig = go.Figure()
    ranked = sorted(components, key=lambda c: (wins.get(int(c["component"])) or [len(wins)])[0])
    for comp in ranked:
        displays = wins.get(int(comp["component"])) or []
        label = ("Cat " + ", ".join(str(d + 1) for d in displays) if displays
                 else f"component {int(comp['component'])} (wins no category)")
        colour = category_colour(displays[0]) if displays else "#999999"
        mean = float(np.ravel(comp["mean"])[0])
        sigma = math.sqrt(max(float(np.ravel(comp["cov"])[0]), 1e-18))
        pdf = float(comp.get("weight", 1.0)) * np.exp(-0.5 * ((x - mean) / sigma) ** 2) / (
            sigma * math.sqrt(2 * math.pi))
        total += pdf
        fig.add_trace(go.Scatter(
            x=compact(x), y=compact(pdf), mode="lines", name=label,
            line=dict(color=colour, width=2, dash="solid" if displays else "dot"),
            hovertemplate=f"{label}: μ={mean:.3f}, σ={sigma:.3f}<extra></extra>",
        ))
    fig.add_trace(go.Scatter(x=compact(x), y=compact(total), mode="lines", name="sum",
                             line=dict(color="#333", dash="dot", width=1.5)))
    return base_layout(fig, title, xaxis_title="discriminant",
                        yaxis_title="weight × density", height=400)


def bias_temperature_history(epochs: Iterable[dict], n_cats: int) -> go.Figure:
    """Mean |bias| of the soft yields at snapshot epochs, temperature on a second axis."""
    title = f"Soft-vs-hard bias and temperature, K = {n_cats}"
    records = [r for r in epochs if r.get("n_cats") == n_cats]
    biased = [r for r in records if finite(r.get("mean_abs_bias"))]
    if not biased:
        return message_figure(title, "No bias values recorded for this K.")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(
        x=[r["epoch"] for r in biased], y=[compact([r["mean_abs_bias"]])[0] for r in biased],
        mode="lines+markers", name="mean |bias|", line=dict(color="#1f77b4", width=2),
        hovertemplate="epoch %{x}: mean |bias| %{y:.3g}<extra></extra>",
    ), secondary_y=False)
    temps = [r for r in records if finite(r.get("temperature"))]
    fig.add_trace(go.Scatter(
        x=[r["epoch"] for r in temps], y=compact([r["temperature"] for r in temps]),
        mode="lines", name="temperature", line=dict(color="#ff7f0e", dash="dash"),
        hovertemplate="epoch %{x}: T = %{y:.3g}<extra></extra>",
    ), secondary_y=True)
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="mean |bias|", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title="temperature", secondary_y=True, showgrid=False,
                     rangemode="tozero")
    return base_layout(fig, title, height=380, legend=dict(orientation="h", y=1.12, x=1,
                                                            xanchor="right"))
