"""The runs table (/runs): one row of plain text and numbers per run, the table's filters,
and the tags a user types. No Dash."""
from __future__ import annotations

from . import formatting as fmt
from .run_summary import best_significance, duration_seconds


#: Parameters shown in the runs table (the rest are in the compare view).
KEY_HYPERPARAMETERS = ("lr_initial", "t_final", "lam_yield", "lam_unc", "n_signal", "n_bkg")




def tags_text(tags) -> str:
    if not tags:
        return ""
    if isinstance(tags, str):
        return tags
    return ", ".join(str(t) for t in tags)


def parse_tags(text: str | None) -> list[str]:
    """Comma-separated tags, trimmed, de-duplicated, empty ones dropped."""
    out: list[str] = []
    for tag in (text or "").split(","):
        tag = tag.strip()[:40]
        if tag and tag not in out:
            out.append(tag)
    return out[:20]


def run_table_row(run: dict, results: list[dict]) -> dict:
    """One row of the runs table. Every value is plain text or a number (rendered as text)."""
    config = run.get("config") or {}
    best = best_significance(results)
    seconds = duration_seconds(run)
    row = {
        "id": run["id"],
        "name": run.get("name") or "",
        "scenario": run.get("scenario") or config.get("scenario", ""),
        "status": run.get("status", ""),
        "ks": fmt.number(config.get("n_cats")),
        "epochs": config.get("epochs"),
        "best_z": "; ".join(f"{sig} {fmt.z_value(z)} (K={k})"
                            for sig, (z, k) in best.items()) or fmt.MISSING,
        # A sortable number beside the text: Z, or the geometric mean for two signals.
        "best_objective": max((r["objective"] for r in results
                               if isinstance(r.get("objective"), (int, float))), default=None),
        "created": fmt.timestamp(run.get("created")),
        "created_sort": fmt.epoch_seconds(run.get("created")),
        "duration": fmt.duration(seconds),
        "note": run.get("note") or "",
        "tags": tags_text(run.get("tags")),
    }
    for key in KEY_HYPERPARAMETERS:
        row[key] = config.get(key)
    return row


def filter_rows(rows: list[dict], scenarios=None, statuses=None, text: str | None = None):
    """Rows matching every given filter; text matches name, id, note, tags (any case)."""
    needle = (text or "").strip().lower()
    out = []
    for row in rows:
        if scenarios and row["scenario"] not in scenarios:
            continue
        if statuses and row["status"] not in statuses:
            continue
        if needle and not any(needle in str(row.get(k, "")).lower()
                              for k in ("name", "id", "note", "tags", "scenario")):
            continue
        out.append(row)
    return out
