"""Writing a run's records into the run store: the one loop that the training job and the
importer both use, and what the stored results amount to (the run's final status).

Records are the engine's plain dicts (``RunInfo`` / ``EpochRecord`` / ``TrainingResult``
``.to_dict()``, or the same read back from a CLI's ``records.jsonl``), in the order the
engine yields them: the run info, then per K its epochs and its result. No Dash import:
the training job runs this in its own process.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

from .run_store import RunStore
from .stored_records import as_stored

log = logging.getLogger(__name__)


def store_records(store: RunStore, run_id: str, records: Iterable[dict],
                  on_result: Callable[[RunStore, str, dict, list[dict]], None] | None = None,
                  ) -> list[dict] | None:
    """Store ``records`` in order; returns the results stored (as the store hands them
    back), or None when the run was deleted meanwhile (the rest is then not read).

    ``on_result(store, run_id, result, results so far)`` runs before each result is stored:
    an import in the web process builds the result's figures there
    (gato_dash.figure_cache.prebuild_figures), so a page that learns of the result finds
    them ready. The training job passes nothing: a training process imports no Plotly.
    """
    results: list[dict] = []
    for record in records:
        kind = record.get("kind")
        if kind == "epoch":
            if store.append_epoch(run_id, record) is None:
                return None
        elif kind == "run_info":
            store.set_run_info(run_id, record)
        elif kind == "result":
            result = as_stored(record)
            if on_result is not None:
                on_result(store, run_id, result, results + [result])
            store.put_result(run_id, result)
            results.append(result)
    return results


def final_status(results: list[dict], cancel_requested: bool) -> tuple[str, str]:
    """(status, message) of a whole run from its per-K results."""
    for result in results:
        if result.get("status") == "cancelled":
            return "cancelled", _with_k(result,
                                        f"cancelled at epoch {result.get('epochs_done', 0)}")
    diverged = [r for r in results if r.get("status") == "diverged"]
    if diverged:
        return "diverged", "; ".join(_with_k(r, r.get("message") or "diverged")
                                     for r in diverged)
    if cancel_requested:
        # Cancelled before the first K produced a result (e.g. during data generation).
        return "cancelled", "cancelled at epoch 0 (before training started)"
    return "finished", ""


def _with_k(result: dict, message: str) -> str:
    return f"{message} (K={result.get('n_cats')})"
