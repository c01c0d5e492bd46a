"""The runs table (/runs): one row of plain text and numbers per run, the table's filters,
and the tags a user types. No Dash."""
from __future__ import annotations

from . import formatting as fmt
from .run_summary import best_significance, duration_seconds
from .runtime.run_fields import DAMAGED, MAX_TAG_CHARS, MAX_TAGS


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
        tag = tag.strip()[:MAX_TAG_CHARS]
        if tag and tag not in out:
            out.append(tag)
    return out[:MAX_TAGS]


def damage_of(run: dict, results: list[dict]) -> str | None:
    """Why a run cannot be shown as a normal row, or None: the store could not read its row
    (status "damaged") or a result, or a result's numbers are not numbers (a run imported
    before imports were checked). Such a run is still listed, so it can be deleted."""
    if run.get("status") == DAMAGED:
        return run.get("message") or "damaged"
    for result in results:
        k = result.get("n_cats")
        if result.get("damaged"):
            return f"damaged: {result['damaged']}"
        significance = result.get("significance")
        if significance is not None and (not isinstance(significance, dict) or not all(
                _is_number(z) for z in significance.values())):
            return f"damaged: the stored result for K={k} has a significance that is not numbers"
        objective = result.get("objective")
        if objective is not None and not _is_number(objective):
            return f"damaged: the stored result for K={k} has an objective that is not a number"
        if isinstance(k, bool) or not isinstance(k, int):
            return "damaged: a stored result has no whole-number K"
    return None


def _is_number(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def damaged_row(run: dict, reason: str) -> dict:
    """The row of a damaged run: its id, name and reason (in the best-Z column, which it
    cannot fill); ticking it and pressing Delete removes it."""
    row = {column: None for column in ("epochs", "best_objective", "created_sort",
                                       *KEY_HYPERPARAMETERS)}
    name = run.get("name")
    return {**row, "id": run["id"], "name": name if isinstance(name, str) else "",
            "scenario": str(run.get("scenario") or ""), "status": DAMAGED, "ks": "",
            "best_z": reason, "created": fmt.timestamp(run.get("created")), "duration": "",
            "note": str(run.get("note") or ""), "tags": ""}


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
