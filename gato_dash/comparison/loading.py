"""The compared runs, loaded from the run store and lightened for the web process, with a
small cache of loaded runs kept between requests."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable

from ..runtime import run_facts

#: Epoch-record fields the compare view reads (a run stays cached: nothing more); snapshots (category maps) are dropped on load
#: because they dominate a record's size and the histories never need them.
HISTORY_FIELDS = ("n_cats", "epoch", "epochs", "loss", "significance", "hard_significance",
                  "temperature", "learning_rate", "mean_abs_bias")


@dataclass
class ComparedRun:
    """One run with what the compare view needs, lightened for the web process."""

    run: dict
    results: list[dict]  # TrainingResult dicts ordered by n_cats, without "parameters"
    histories: dict[int, list[dict]]  # K -> epoch records (HISTORY_FIELDS only)
    #: What the run is about, as gato_dash.runtime.run_facts says when it is loaded (a
    #: dataset run's may come from its manifest): the compare figures are drawn from
    #: these and read nothing themselves. ``dim``: 1, 2 or 3 score dimensions;
    #: ``named_signals``: recorded, the scenario's or the dataset's, never empty.
    dim: int
    named_signals: list[str]

    @property
    def id(self) -> str:
        return self.run["id"]

    @property
    def name(self) -> str:
        return self.run.get("name") or self.run["id"]

    @property
    def scenario(self) -> str:
        return self.run.get("scenario") or (self.run.get("config") or {}).get("scenario", "")

    @property
    def data_key(self) -> str:
        """What the run's numbers are about: its scenario, or for a dataset run that dataset
        (significances of two different datasets measure different things)."""
        dataset = (self.run.get("config") or {}).get("dataset")
        return f"{self.scenario}:{dataset}" if dataset else self.scenario

    @property
    def signals(self) -> list[str]:
        info = self.run.get("run_info") or {}
        if info.get("signal_names"):
            return list(info["signal_names"])
        for result in self.results:
            if result.get("significance"):
                return list(result["significance"])
        return []

    def result_for(self, n_cats: int) -> dict | None:
        return next((r for r in self.results if int(r["n_cats"]) == int(n_cats)), None)

    @property
    def trained_ks(self) -> list[int]:
        return sorted({int(r["n_cats"]) for r in self.results} | set(self.histories))


def lighten_epoch(record: dict) -> dict:
    return {k: record.get(k) for k in HISTORY_FIELDS}


def lighten_result(result: dict) -> dict:
    # Parameters are only for restoring the model; the compare view never draws them.
    return {k: v for k, v in result.items() if k != "parameters"}


def load_compared_run(store, run_id: str) -> ComparedRun | None:
    run = store.get_run(run_id)
    if run is None:
        return None
    histories: dict[int, list[dict]] = {}
    for record in store.epochs(run_id, snapshots=False):
        histories.setdefault(int(record["n_cats"]), []).append(lighten_epoch(record))
    results = sorted((lighten_result(r) for r in store.results(run_id)),
                     key=lambda r: int(r["n_cats"]))
    return ComparedRun(run=run, results=results, histories=histories,
                       dim=run_facts.dim_of(run), named_signals=run_facts.signals_of(run))


class RunCache:
    """Loaded runs kept between requests, least recently used dropped first.

    Keyed by (id, status, finished, epochs done): a run that is still training gets a new
    key with every epoch, so a cached entry is never stale.
    """

    def __init__(self, size: int = 24):
        self.size = size
        self._entries: OrderedDict[tuple, ComparedRun] = OrderedDict()

    def load(self, store, run_id: str) -> ComparedRun | None:
        status = store.run_status(run_id)
        if status is None:
            return None
        key = (run_id, status["status"], status["finished"], status["epochs_done"])
        loaded = self._entries.get(key)
        if loaded is None:
            loaded = load_compared_run(store, run_id)
            if loaded is None:  # deleted between the two reads
                return None
            self._entries[key] = loaded
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        # Names, notes and tags are edited without changing the key: take them fresh.
        loaded.run.update(name=status.get("name"), note=status.get("note"),
                          tags=status.get("tags"))
        return loaded


def load_comparison(store, run_ids: Iterable[str],
                    cache: RunCache | None = None) -> tuple[list[ComparedRun], list[str]]:
    """The runs that exist, in the order asked, and one message per id that does not."""
    runs, missing = [], []
    for run_id in run_ids:
        loaded = cache.load(store, run_id) if cache else load_compared_run(store, run_id)
        if loaded is None:
            missing.append(f"no run with id {run_id!r} (deleted, or never stored here)")
        else:
            runs.append(loaded)
    return runs, missing


def default_k(runs: list[ComparedRun]) -> int | None:
    """A K every run trained if there is one (the largest), else the most common one."""
    per_run = [set(r.trained_ks) for r in runs if r.trained_ks]
    if not per_run:
        return None
    common = set.intersection(*per_run)
    if common:
        return max(common)
    counts: dict[int, int] = {}
    for ks in per_run:
        for k in ks:
            counts[k] = counts.get(k, 0) + 1
    return max(counts, key=lambda k: (counts[k], k))

