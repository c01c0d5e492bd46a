"""CMS Combine counting-experiment datacard from a yields table (one bin per category).

Observation is the Asimov data s + b. Background MC statistics per bin either as one ``lnN``
nuisance per bin (kappa = 1 + sqrt(sum w^2)/sum w of the bin's total background, shared by
its background processes, like pyhf's per-bin staterror) or as ``gmN`` per bin and process
(N raw MC events, alpha = rate / N: exact for equal event weights within a process).
"""
from __future__ import annotations

import numpy as np

from .categoriser import ExportError
from .statmodel import channel_name
from .yields import YieldsTable

MC_STAT_FORMS = ("lnN", "gmN")


def _num(v: float) -> str:
    return format(float(v), ".12g")


def datacard(table: YieldsTable, mc_stat: str = "lnN", title: str = "",
             systematics: dict | None = None, sample: str = "") -> str:
    """The datacard text. ``systematics`` {nuisance: {process: u}} (``*`` expanded) adds one
    ``lnN`` row per nuisance with kappa = 1 + u where the process has a rate (the pyhf
    workspace's normsys uses hi = 1 + u, lo = 1/(1 + u): the same log-normal)."""
    lnn_rows = dict(systematics or {})  # the name ``systematics`` is the rows' list below
    if mc_stat not in MC_STAT_FORMS:
        raise ExportError(f"MC statistics must be one of {MC_STAT_FORMS}, got {mc_stat!r}")
    bins = [channel_name(k) for k in range(table.n_categories)]
    # Combine numbers signals <= 0 and backgrounds > 0
    signals = list(table.signals)
    backgrounds = table.backgrounds
    processes = signals + backgrounds
    index = {p: i - len(signals) + 1 for i, p in enumerate(processes)}
    cols = [(k, p) for k in range(table.n_categories) for p in processes]
    col_of = {p: table.processes.index(p) for p in processes}

    lines = [f"# GATO categorisation{': ' + title if title else ''}",
             "# counting experiment, one bin per category; observation = Asimov s + b",
             *([f"# yields on the {sample} sample"] if sample else []),
             f"imax {table.n_categories}", f"jmax {len(processes) - 1}", "kmax *", "-" * 40]
    obs = table.sum_w.sum(axis=1)
    rows = [["bin"] + bins, ["observation"] + [_num(v) for v in obs]]
    lines += _aligned(rows) + ["-" * 40]

    header = [["bin", ""] + [bins[k] for k, _ in cols],
              ["process", ""] + [p for _, p in cols],
              ["process", ""] + [str(index[p]) for _, p in cols],
              ["rate", ""] + [_num(table.sum_w[k, col_of[p]]) for k, p in cols]]
    systematics = []
    if mc_stat == "lnN":
        bkg_cols = [col_of[p] for p in backgrounds]
        for k in range(table.n_categories):
            b = table.sum_w[k, bkg_cols].sum()
            if b <= 0:
                continue
            kappa = 1.0 + np.sqrt(table.sum_w2[k, bkg_cols].sum()) / b
            systematics.append([f"mcstat_{bins[k]}", "lnN"] + [
                _num(kappa) if (kk == k and p in backgrounds and table.sum_w[k, col_of[p]] > 0)
                else "-" for kk, p in cols])
    else:
        for k in range(table.n_categories):
            for p in backgrounds:
                n = int(table.n_events[k, col_of[p]])
                if n <= 0:
                    continue
                alpha = table.sum_w[k, col_of[p]] / n
                systematics.append([f"mcstat_{bins[k]}_{p}", f"gmN {n}"] + [
                    _num(alpha) if (kk == k and pp == p) else "-" for kk, pp in cols])
    for name, per_process in lnn_rows.items():
        systematics.append([name, "lnN"] + [
            _num(1.0 + per_process[p]) if (p in per_process and table.sum_w[k, col_of[p]] > 0)
            else "-" for k, p in cols])
    block = _aligned(header + systematics)
    lines += block[:len(header)] + ["-" * 40] + block[len(header):]
    return "\n".join(lines) + "\n"


def _aligned(rows):
    """Space-padded columns (Combine splits on whitespace; alignment is for people)."""
    width = max(len(r) for r in rows)
    widths = [max(len(r[i]) for r in rows) for i in range(width)]
    out = []
    for r in rows:
        out.append(" ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())
    return out
