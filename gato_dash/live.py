"""What the run page sends on each poll: status text, progress, and only the new epochs.

Kept free of Dash so it can be unit-tested: ``poll(store, state, selected_k)`` reads the
run store and returns a ``LiveUpdate``; pages/run.py maps it onto component properties.

The store is the source of truth. The page remembers the last epoch ``seq`` it has drawn
for the K it shows and asks only for newer ones, at most ``MAX_EPOCHS_PER_UPDATE`` at a
time, so a page that opens late (or a slow poll) catches up in bounded chunks and no
epoch is ever skipped.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field


from . import formatting
from .runtime import run_facts
from .figures import history
from .runtime.run_fields import ACTIVE, TERMINAL
from .runtime.run_store import RunStore

#: Bounds one update to ~40 KB of JSON (about 130 bytes per epoch across the 4 figures).
MAX_EPOCHS_PER_UPDATE = 300
#: The whole history of an ended run in its page response, up to ~650 KB of JSON; longer
#: ones arrive in the usual chunks after it.
MAX_EPOCHS_ENDED = 5000


@dataclass
class LiveUpdate:
    state: dict
    status: str  # the run's status word
    status_text: str
    progress: float  # 0..100
    progress_label: str
    #: full figures when the K shown changed (or on the first poll), else None
    figures: dict | None = None
    #: kind -> extendData for the new epochs (only when ``figures`` is None)
    extends: dict = field(default_factory=dict)
    k_options: list = field(default_factory=list)
    k_value: int | None = None
    #: True when nothing more will arrive: the page can stop polling
    done: bool = False
    results_changed: bool = False
    cancellable: bool = False
    missing: bool = False  # the run was deleted


def initial_state(run_id: str) -> dict:
    return {"run": run_id, "k": None, "seq": 0, "follow": True, "n_results": -1,
            "status": None, "done": False}


#: Bounds of the integers a page's state may hold (SQLite integers are 64-bit)
MAX_STATE_INT = 2**53


def clean_state(state) -> dict | None:
    """The page's state as the browser sent it, or None when it is not one this module
    wrote (a crafted request): every value the store is asked about is checked here."""
    if not isinstance(state, dict):
        return None
    run_id = state.get("run")
    if not isinstance(run_id, str) or not 0 < len(run_id) <= 64:
        return None
    clean = initial_state(run_id)
    for key in ("k", "seq", "n_results", "refs_for", "answered"):
        value = state.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) \
                or not -1 <= value <= MAX_STATE_INT:
            return None
        clean[key] = value
    for key in ("follow", "done"):
        if key in state:
            clean[key] = bool(state[key])
    if isinstance(state.get("status"), str) or state.get("status") is None:
        clean["status"] = state.get("status")
    return clean


def _k_index(run: dict) -> int:
    ks = run.get("n_cats") or []
    return ks.index(run["current_k"]) if run.get("current_k") in ks else 0


def epochs_total(run: dict) -> int:
    return int(run["config"].get("epochs") or 0)


def progress(run: dict) -> tuple[float, str]:
    """Percent of all epochs of all K trained, and a short label."""
    ks = run.get("n_cats") or []
    per_k = epochs_total(run)
    total = max(per_k * len(ks), 1)
    if run["status"] == "finished":
        return 100.0, "100 %"
    if run.get("current_k") is None:
        return 0.0, ""
    done = _k_index(run) * per_k + int(run.get("epochs_done") or 0)
    pct = min(100.0, 100.0 * done / total)
    return pct, f"{pct:.0f} %"


def eta_seconds(run: dict) -> float | None:
    """Remaining time from the current K's pace (its elapsed time includes compilation,
    so the estimate starts pessimistic and settles)."""
    done = int(run.get("epochs_done") or 0)
    elapsed = run.get("k_elapsed")
    if not done or elapsed is None:
        return None
    per_epoch = elapsed / done
    ks = run.get("n_cats") or []
    remaining = (epochs_total(run) - done) + (len(ks) - _k_index(run) - 1) * epochs_total(run)
    return max(remaining, 0) * per_epoch


def status_text(run: dict, now: float | None = None) -> str:
    now = time.time() if now is None else now
    status = run["status"]
    ks = run.get("n_cats") or []
    if status == "queued":
        return "Queued: waiting for the training process to start…"
    if status == "running":
        elapsed = formatting.clock(now - run["started"]) if run.get("started") else "–"
        if run.get("cancel_requested"):
            return f"Cancelling… (elapsed {elapsed})"
        if run.get("current_k") is None:
            return f"Preparing the data and compiling the model… (elapsed {elapsed})"
        return (f"Training K = {run['current_k']} ({_k_index(run) + 1} of {len(ks)}) · "
                f"epoch {run['epochs_done']} / {epochs_total(run)} · elapsed {elapsed} · "
                f"ETA {formatting.clock(eta_seconds(run))}")
    took = ""
    if run.get("started") and run.get("finished"):
        took = f" after {formatting.clock(run['finished'] - run['started'])}"
    if status == "finished":
        return f"Finished{took} · K = {', '.join(str(k) for k in ks)}"
    label = {"cancelled": "Cancelled", "diverged": "Diverged", "failed": "Failed",
             "interrupted": "Interrupted"}.get(status, status.capitalize())
    message = run.get("message") or ""
    return f"{label}{took}: {message}" if message else f"{label}{took}"


def k_options(run: dict, finished_ks: set[int]) -> list[dict]:
    """Radio options: finished Ks and the one in training can be picked, later ones not."""
    out = []
    for k in run.get("n_cats") or []:
        if k in finished_ks:
            label, disabled = f"K = {k} ✓", False
        elif k == run.get("current_k"):
            label = f"K = {k} (training)" if run["status"] == "running" else f"K = {k}"
            disabled = False
        else:
            label, disabled = f"K = {k}", True
        out.append({"label": label, "value": k, "disabled": disabled})
    return out


def poll(store: RunStore, state: dict, selected_k: int | None = None,
         now: float | None = None, max_epochs: int = MAX_EPOCHS_PER_UPDATE) -> LiveUpdate:
    """One poll of the run page. ``selected_k`` is the K the user picked (None: follow).

    ``max_epochs`` bounds the epochs one update carries; the page of a run that has ended
    is drawn with a larger bound (``MAX_EPOCHS_ENDED``) so it needs no second poll."""
    state = dict(state)
    run_id = state["run"]
    run = store.run_status(run_id)
    if run is not None and selected_k not in (run.get("n_cats") or []):
        selected_k = None  # only a K of this run can be picked
    if run is None:
        state["done"] = True
        return LiveUpdate(state=state, status="missing", status_text="This run was deleted.",
                          progress=0.0, progress_label="", done=True, missing=True)
    signals = run_facts.signals_of(run)
    active = run["status"] in ACTIVE
    finished_ks = store.result_ks(run_id)
    current = run.get("current_k")

    # Which K to show, and whether its figures start over.
    reset = False
    k = state.get("k")
    if selected_k is not None and selected_k != k:
        k, reset = selected_k, True
        state["follow"] = active and selected_k == current
    elif state.get("follow") and current is not None and current != k:
        k, reset = current, True
    elif k is None:
        k, reset = (current if current is not None else (run["n_cats"] or [None])[0]), True
    if reset:
        state["seq"] = 0
        state["refs_for"] = None

    # 1-D runs get reference lines (baseline, exact optimum) from RunInfo, which lands just
    # before the first epoch: redraw once when it is there.
    refs = None
    if len(signals) == 1 and k is not None and state.get("refs_for") != k:
        full = store.get_run(run_id)
        refs = history.significance_references(full and full.get("run_info"), k)
        if refs:
            state["refs_for"] = k
            state["seq"] = 0
            reset = True

    new = store.epochs(run_id, n_cats=k, after_seq=state["seq"], snapshots=False,
                       limit=max_epochs) if k is not None else []
    caught_up = len(new) < max_epochs
    if new:
        state["seq"] = new[-1]["seq"]

    pct, label = progress(run)
    update = LiveUpdate(
        state=state, status=run["status"], status_text=status_text(run, now),
        progress=pct, progress_label=label,
        k_options=k_options(run, set(finished_ks)), k_value=k,
        cancellable=active and not run.get("cancel_requested"),
    )
    if reset:
        update.figures = {kind: fig.to_plotly_json() for kind, fig in history.history_figures(
            new, signals, epochs_total(run), k, refs).items()}
    else:
        for kind in history.FIGURES:
            ext = history.extend_data(kind, new, signals)
            if ext is not None:
                update.extends[kind] = ext

    update.results_changed = len(finished_ks) != state.get("n_results") or (
        run["status"] != state.get("status") and run["status"] in TERMINAL)
    state["n_results"] = len(finished_ks)
    state["status"] = run["status"]
    state["k"] = k
    update.done = (not active) and caught_up
    state["done"] = update.done
    return update
