"""Trained significance against the references: equidistant-bin baselines and, for 1-D
runs, the exact optimum (the "Baselines" tab: figure and table rows)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..run_summary import held_out_label
from .colours import process_colours
from .style import base_layout, finite, int_keyed, message_figure, signal_names

#: What the trained categories' own numbers are measured on (beside held_out_label's)
TRAINING_LABEL = "training sample"


def _trained_points(results: Iterable[dict], signal: str,
                    field: str = "significance") -> dict[int, tuple[float, str]]:
    points = {}
    for res in results:
        z = (res.get(field) or {}).get(signal)
        if finite(z):
            points[int(res["n_cats"])] = (float(z), res.get("status", "finished"))
    return dict(sorted(points.items()))


def significance_comparison(run_info: dict | None, results: Sequence[dict]) -> go.Figure:
    """Significance against number of categories, one panel per signal.

    Baselines (equidistant bins; for 2-D scenarios argmax + equidistant, counted as 2n+1
    categories), every trained K of the run, and for 1-D the exact optimum (the ceiling).
    """
    info = run_info or {}
    signals = signal_names(info) or sorted(
        {s for r in results for s in (r.get("significance") or {})})
    title = "Significance against number of categories"
    if not signals:
        return message_figure(title, "No significance values yet.")
    two_d = len(signals) > 1
    colours = process_colours(signals, signals)
    fig = make_subplots(rows=1, cols=len(signals), subplot_titles=signals,
                        horizontal_spacing=0.08)
    baseline_name = "argmax + equidistant (2n+1)" if two_d else "equidistant bins"
    for col, signal in enumerate(signals, start=1):
        first = col == 1
        baseline = int_keyed((info.get("baselines") or {}).get(signal))
        if baseline:
            fig.add_trace(go.Scatter(
                x=list(baseline), y=list(baseline.values()), mode="lines+markers",
                name=baseline_name, legendgroup="baseline", showlegend=first,
                line=dict(color="#7f7f7f", dash="dash"), marker=dict(symbol="square", size=8),
                hovertemplate="baseline, %{x} categories: Z=%{y:.3f}<extra></extra>",
            ), row=1, col=col)
        optimum = int_keyed(info.get("optimum_1d")) if not two_d else {}
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
                name=f"GATO on the {TRAINING_LABEL}", legendgroup="gato", showlegend=first,
                line=dict(color=colours[signal], width=2.5),
                marker=dict(size=11, symbol=["circle" if s == "finished" else "circle-open"
                                             for s in statuses]),
                customdata=statuses,
                hovertemplate=f"GATO on the {TRAINING_LABEL}, K=%{{x}} (%{{customdata}}): "
                              "Z=%{y:.3f}<extra></extra>",
            ), row=1, col=col)
        held_out = _trained_points(results, signal, "heldout_significance")
        if held_out:
            # the same categories on events they were not trained on: a gap to the line
            # above is overtraining, not gain
            label = held_out_label(info)
            fig.add_trace(go.Scatter(
                x=list(held_out), y=[z for z, _ in held_out.values()], mode="lines+markers",
                name=f"GATO on the {label}", legendgroup="heldout", showlegend=first,
                line=dict(color=colours[signal], width=1.5, dash="dashdot"),
                marker=dict(size=9, symbol="x"),
                hovertemplate=f"GATO on the {label}, K=%{{x}}: Z=%{{y:.3f}}<extra></extra>",
            ), row=1, col=col)
    fig.update_xaxes(title="number of categories", rangemode="tozero")
    fig.update_yaxes(title="Z (Asimov)", col=1)
    return base_layout(fig, title, height=420, legend=dict(orientation="h", y=-0.2))


def significance_table_rows(run_info: dict | None, results: Sequence[dict]) -> list[dict]:
    """Rows ``{"method", "n_categories", <signal>: Z, ..., "objective"}`` for the table.

    Sorted by number of categories, baseline before optimum before GATO at equal counts,
    so that each trained K sits right after the references it competes with. Missing
    values are None.
    """
    info = run_info or {}
    signals = signal_names(info) or sorted(
        {s for r in results for s in (r.get("significance") or {})})
    two_d = len(signals) > 1
    rows = []
    baselines = {s: int_keyed((info.get("baselines") or {}).get(s)) for s in signals}
    objective = int_keyed(info.get("baseline_objective"))
    for n in sorted(set().union(*[set(b) for b in baselines.values()], objective)):
        row = {"method": "baseline (argmax + equidistant)" if two_d else "baseline (equidistant)",
               "n_categories": n}
        row.update({s: baselines[s].get(n) for s in signals})
        row["objective"] = objective.get(n)
        rows.append(row)
    if not two_d:
        for n, z in int_keyed(info.get("optimum_1d")).items():
            rows.append({"method": "exact optimum", "n_categories": n,
                         **{s: z for s in signals}, "objective": z})
    for res in results:
        sig = res.get("significance") or {}
        status = res.get("status", "finished")
        rows.append({
            "method": f"GATO ({TRAINING_LABEL})" if status == "finished"
                      else f"GATO ({TRAINING_LABEL}, {status})",
            "n_categories": int(res["n_cats"]),
            **{s: float(sig[s]) if finite(sig.get(s)) else None for s in signals},
            "objective": float(res["objective"]) if finite(res.get("objective")) else None,
        })
        held_out = res.get("heldout_significance") or {}
        if held_out:
            rows.append({
                "method": f"GATO on the {held_out_label(info)}",
                "n_categories": int(res["n_cats"]),
                **{s: float(held_out[s]) if finite(held_out.get(s)) else None for s in signals},
                "objective": float(res["heldout_objective"])
                if finite(res.get("heldout_objective")) else None,
            })
    rank = {"baseline": 0, "exact": 1, "GATO": 2}
    rows.sort(key=lambda r: (r["n_categories"], rank[r["method"].split(" ")[0]]))
    return rows
