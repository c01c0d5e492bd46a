"""Yields table: per category and process, sum of weights, sum of squared weights and raw
MC event count (inside the mass window where there is one). The common input of the pyhf
workspace, the Combine datacard and the statistical-model summary (numpy only)."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from .scenarios import EventSample

CSV_COLUMNS = ("category", "process", "role", "sum_w", "sum_w2", "n_events", "sample")


@dataclass
class YieldsTable:
    """Arrays are [K, P]: category (display order) x process (``processes`` order)."""

    processes: list[str]
    signals: list[str]
    sum_w: np.ndarray
    sum_w2: np.ndarray
    n_events: np.ndarray
    #: [low, high] GeV where the bump hunt counts events; None without a mass
    mass_window: list[float] | None = None

    @property
    def n_categories(self) -> int:
        return int(self.sum_w.shape[0])

    @property
    def backgrounds(self) -> list[str]:
        return [p for p in self.processes if p not in self.signals]

    def _columns(self, names) -> list[int]:
        return [self.processes.index(p) for p in names]

    def signal(self) -> np.ndarray:
        """[S, K] signal yields."""
        return self.sum_w[:, self._columns(self.signals)].T

    def background(self) -> np.ndarray:
        """[K] total background yield."""
        return self.sum_w[:, self._columns(self.backgrounds)].sum(axis=1)

    def background_sum_w2(self) -> np.ndarray:
        """[K] background sum of squared weights (MC statistical variance)."""
        return self.sum_w2[:, self._columns(self.backgrounds)].sum(axis=1)

    def to_dict(self) -> dict:
        return {
            "processes": list(self.processes), "signals": list(self.signals),
            "sum_w": self.sum_w.tolist(), "sum_w2": self.sum_w2.tolist(),
            "n_events": self.n_events.astype(int).tolist(), "mass_window": self.mass_window,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "YieldsTable":
        return cls(list(d["processes"]), list(d["signals"]),
                   np.asarray(d["sum_w"], dtype=np.float64),
                   np.asarray(d["sum_w2"], dtype=np.float64),
                   np.asarray(d["n_events"], dtype=np.int64), d.get("mass_window"))

    def to_csv(self, sample: str = "full") -> str:
        """One row per (category, process); floats written with repr (exact round trip).
        ``sample`` says which events the numbers are on ("full", "held_out")."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for k in range(self.n_categories):
            for j, p in enumerate(self.processes):
                writer.writerow([k, p, "signal" if p in self.signals else "background",
                                 repr(float(self.sum_w[k, j])), repr(float(self.sum_w2[k, j])),
                                 int(self.n_events[k, j]), sample])
        return out.getvalue()


def process_sums(events: EventSample, category: np.ndarray, n_cats: int,
                 use_window: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[K, P] sum w, sum w^2 and event counts by hard category and process; events with
    category < 0 (and, for the bump hunt, outside the mass window) are left out."""
    keep = np.asarray(category) >= 0
    if use_window:
        keep &= events.in_window()
    n_proc = len(events.process_names)
    flat = np.asarray(category)[keep].astype(np.int64) * n_proc + events.process[keep]
    w = events.weight[keep].astype(np.float64)
    size = n_cats * n_proc
    sums = [np.bincount(flat, weights=v, minlength=size).reshape(n_cats, n_proc)
            for v in (w, w * w)]
    count = np.bincount(flat, minlength=size).reshape(n_cats, n_proc)
    return sums[0], sums[1], count


def yields_table(events: EventSample, category: np.ndarray, n_cats: int) -> YieldsTable:
    """The table for events already assigned to categories 0..n_cats-1 (display numbers)."""
    sum_w, sum_w2, count = process_sums(events, category, n_cats)
    window = [float(v) for v in events.signal_window] if events.mass is not None else None
    return YieldsTable(list(events.process_names), list(events.signal_names), sum_w, sum_w2,
                       count, window)


def table_from_categories(categories: list[dict], processes, signals,
                          mass_window_=None) -> YieldsTable | None:
    """The table from ``TrainingResult.categories`` (display order) when they carry the
    per-process sums (runs trained since the export existed); None for older runs."""
    needed = ("process_yields", "process_sum_w2", "process_counts")
    if not categories or not all(all(k in c for k in needed) for c in categories):
        return None
    rows = sorted(categories, key=lambda c: c["index"])
    return YieldsTable(
        list(processes), list(signals),
        np.array([[c["process_yields"][p] for p in processes] for c in rows], dtype=np.float64),
        np.array([[c["process_sum_w2"][p] for p in processes] for c in rows], dtype=np.float64),
        np.array([[c["process_counts"][p] for p in processes] for c in rows], dtype=np.int64),
        list(mass_window_) if mass_window_ is not None else None)
