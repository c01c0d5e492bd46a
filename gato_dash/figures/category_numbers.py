"""The numbers of each category of one result: background yield and MC uncertainty against
the penalty thresholds, and the per-category rows of the table, the CSV and the report
(the "Category numbers" tab)."""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .colours import category_colour
from .style import base_layout, category_label, finite, message_figure, set_log


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
    if finite(thresholds.get("thr_yield")):
        fig.add_hline(y=thresholds["thr_yield"], line=dict(color="#d62728", dash="dash"),
                      annotation_text="yield threshold", row=1, col=1)
    if finite(thresholds.get("thr_unc")):
        fig.add_hline(y=thresholds["thr_unc"], line=dict(color="#d62728", dash="dash"),
                      annotation_text="uncertainty threshold", row=2, col=1)
    set_log(fig, log)
    fig.update_yaxes(title="background yield", row=1, col=1)
    fig.update_yaxes(title="relative MC unc.", row=2, col=1)
    return base_layout(fig, title, height=480)
