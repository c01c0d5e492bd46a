"""The mapping of a user's columns onto GATO's events, and the checks on the result.

A ``DatasetMapping`` says which columns are the classifier scores (1 to 3: the dimension
of the categorisation), the weight, the process label (or one process per file / tree),
which processes are signals, and optionally the mass with its signal window and the range
used for the sideband fit. ``build_events`` turns read tables into an ``EventSample`` and
an ``ImportReport`` of everything it noticed or changed (dropped rows, rescaled scores,
negative weights), or raises ``DatasetError`` with messages a physicist reads.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from . import import_steps
from .readers import DatasetError, Table, check_process_count
from .selection import parse_selection
from .scenarios import EventSample

MAX_SCORES = 3
#: Row sums of softmax outputs may miss 1 by float rounding.
SUM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class DatasetMapping:
    score_columns: tuple[str, ...]
    signals: tuple[str, ...]
    weight_column: str | None = None  # None: every event has weight 1
    process_column: str | None = None  # None: one process per file / tree
    #: per-source process names when there is no process column (default: tree or file stem)
    process_names: tuple[str, ...] | None = None
    mass_column: str | None = None
    mass_window: tuple[float, float] | None = None  # signal window [lo, hi]
    mass_range: tuple[float, float] | None = None  # fit range; sidebands = range - window
    drop_nonfinite: bool = False  # drop rows with NaN/inf instead of refusing the data
    # analysis steps at import (gato_core.import_steps, plain JSON values; None = not used)
    trees: dict | None = None  # {tree: process}: read only these trees of ROOT files
    selection: str | None = None  # cut on columns, e.g. "nn_score > 0.1 & njets >= 2"
    luminosity: float | None = None  # multiplies every weight
    process_scales: dict | None = None  # {process: cross-section x normalisation factor}
    systematics: dict | None = None  # {nuisance: {process: relative lnN uncertainty}}

    @classmethod
    def from_dict(cls, data: dict) -> "DatasetMapping":
        """From JSON/form values (lists for tuples); validated."""
        if not isinstance(data, dict):
            raise DatasetError({"mapping": "a mapping must be a set of named settings"})
        known = set(cls.__dataclass_fields__)
        unknown = [k for k in data if k not in known]
        if unknown:
            raise DatasetError({unknown[0]: f"unknown mapping setting {unknown[0]!r}"})

        def names(value):
            if value is None or value == "":
                return None
            if isinstance(value, str):
                return tuple(v for v in value.replace(",", " ").split() if v)
            return tuple(str(v) for v in value)

        def pair(key):
            value = data.get(key)
            if value is None or value == "" or value == []:
                return None
            try:
                lo, hi = (float(v) for v in value)
            except (TypeError, ValueError):
                raise DatasetError({key: f"{key} needs two numbers (low, high)"}) from None
            return lo, hi

        mapping = cls(
            score_columns=names(data.get("score_columns")) or (),
            signals=names(data.get("signals")) or (),
            weight_column=data.get("weight_column") or None,
            process_column=data.get("process_column") or None,
            process_names=names(data.get("process_names")),
            mass_column=data.get("mass_column") or None,
            mass_window=pair("mass_window"),
            mass_range=pair("mass_range"),
            drop_nonfinite=bool(data.get("drop_nonfinite", False)),
            trees=import_steps.clean_trees(data.get("trees")),
            selection=(str(data["selection"]).strip() or None) if data.get("selection") else None,
            luminosity=import_steps.clean_luminosity(data.get("luminosity")),
            process_scales=import_steps.clean_process_scales(data.get("process_scales")),
            systematics=import_steps.clean_systematics(data.get("systematics")),
        )
        return mapping.validated()

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("score_columns", "signals", "process_names", "mass_window", "mass_range"):
            if out[key] is not None:
                out[key] = list(out[key])
        return out

    def problems(self) -> dict[str, str]:
        p = {}
        if not 1 <= len(self.score_columns) <= MAX_SCORES:
            p["score_columns"] = (f"give 1 to {MAX_SCORES} score columns, "
                                  f"got {len(self.score_columns)}")
        elif len(set(self.score_columns)) != len(self.score_columns):
            p["score_columns"] = "each score column may appear only once"
        if not self.signals:
            p["signals"] = "name at least one signal process"
        elif len(set(self.signals)) != len(self.signals):
            p["signals"] = "each signal may appear only once"
        roles = [c for c in (self.weight_column, self.process_column, self.mass_column) if c]
        clash = [c for c in roles if c in self.score_columns]
        if clash or len(set(roles)) != len(roles):
            p["columns"] = f"column {(clash or roles)[0]!r} is used for two roles"
        if self.process_column and self.process_names:
            p["process_names"] = "give a process column or per-file process names, not both"
        if self.mass_column:
            if self.mass_window is None:
                p["mass_window"] = "a mass column needs a signal window (low, high)"
            if self.mass_range is None:
                p["mass_range"] = "a mass column needs a fit range (low, high) around the window"
            if self.mass_window and self.mass_range:
                (wlo, whi), (rlo, rhi) = self.mass_window, self.mass_range
                if not all(math.isfinite(v) for v in (wlo, whi, rlo, rhi)):
                    p["mass_window"] = "mass window and range must be finite numbers"
                elif not wlo < whi:
                    p["mass_window"] = f"the mass window needs low < high, got {wlo:g}, {whi:g}"
                elif not (rlo < wlo and whi < rhi):
                    p["mass_range"] = (f"the fit range {rlo:g}-{rhi:g} must contain the window "
                                       f"{wlo:g}-{whi:g} with sidebands on both sides")
        elif self.mass_window or self.mass_range:
            p["mass_column"] = "a mass window needs a mass column"
        if self.trees and self.process_names:
            p["trees"] = "name processes per chosen tree or per file, not both"
        if self.trees and self.process_column:
            p["trees"] = "a process column or per-tree process names, not both"
        if self.selection:
            try:
                parse_selection(self.selection)
            except DatasetError as err:
                p["selection"] = str(err)
        return p

    def validated(self) -> "DatasetMapping":
        problems = self.problems()
        if problems:
            raise DatasetError(problems)
        return self

    @property
    def numeric_columns(self) -> list[str]:
        mapped = [c for c in (*self.score_columns, self.weight_column, self.mass_column) if c]
        cut = parse_selection(self.selection).columns if self.selection else ()
        return mapped + [c for c in cut if c not in mapped and c != self.process_column]


@dataclass
class ImportReport:
    """What ``build_events`` noticed or changed, for the user to read."""

    n_rows_read: int = 0
    n_events: int = 0
    dropped_nonfinite: int = 0
    dropped_outside_mass_range: int = 0
    negative_weight_events: int = 0
    negative_weight_share: float = 0.0  # |sum of negative weights| / sum of |weights|
    rescaled: dict = field(default_factory=dict)  # column -> [min, max] before rescaling
    redundant_column: str | None = None
    mean_mode: str = "sigmoid"
    notes: list[str] = field(default_factory=list)
    #: import_steps.apply_selection counts: events and weighted yield read / kept
    selection: dict | None = None
    #: import_steps.apply_scales: factors and per-process yields before / after
    scaling: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def build_events(tables: list[Table], mapping: DatasetMapping,
                 name: str = "dataset") -> tuple[EventSample, ImportReport]:
    """Events in GATO's flat layout from read tables, checked; see the module doc.

    Works column by column on contiguous 1-D arrays (fast, and no [N, D] temporaries) and
    consumes the tables' columns as it goes, so peak memory stays near the read data plus
    one copy of the result.
    """
    mapping = mapping.validated()
    report = ImportReport()
    if not tables:
        raise DatasetError({"data": "no input files"})
    if mapping.process_names is not None and len(mapping.process_names) != len(tables):
        raise DatasetError({"process_names": f"{len(mapping.process_names)} process names for "
                                             f"{len(tables)} files/trees; give one per input"})
    n_total = sum(t.n_rows for t in tables)
    report.n_rows_read = n_total

    # process index per event, with one list of names over all tables (a dict finds a
    # name's index: searching the list was quadratic, and 2 M labels hung the server)
    process_names: list[str] = []
    index_of: dict[str, int] = {}
    codes = []
    for i, table in enumerate(tables):
        if mapping.process_column:
            lookup = np.array([_index(process_names, index_of, n) for n in table.label_names],
                              np.int64)
            check_process_count(len(process_names), "the process columns of these files hold")
            lookup = lookup.astype(np.int16)  # fits: MAX_PROCESSES is below 32,768
            codes.append(np.take(lookup, table.labels, out=pool_empty(table.n_rows, np.int16))
                         if table.n_rows else np.zeros(0, np.int16))
            table.labels = None
        else:
            pname = mapping.process_names[i] if mapping.process_names else table.process
            codes.append(np.full(table.n_rows, _index(process_names, index_of, pname), np.int16))
    process = np.concatenate(codes) if len(codes) > 1 else codes[0]
    del codes
    missing = [s for s in mapping.signals if s not in index_of]
    if missing:
        raise DatasetError({"signals": f"signal {missing[0]!r} is not among the processes "
                                       f"({', '.join(process_names)})"})

    def column(name, out=None):
        """One float32 column over all tables, copied once from the read pieces into ``out``
        (the read array itself when it is one float32 piece and no ``out`` is given)."""
        parts = [p for t in tables for p in t.take(name)]
        if out is None and len(parts) == 1:
            return np.asarray(parts[0]).astype(np.float32, copy=False)
        out = pool_empty(n_total, np.float32) if out is None else out
        start = 0
        for part in parts:
            out[start:start + len(part)] = part
            start += len(part)
        return out

    # column-major: each score column is contiguous here and one contiguous write in the
    # store; training makes its own row-major tensor anyway
    matrix = pool_empty((len(mapping.score_columns), n_total), np.float32).T
    scores = [column(c, matrix[:, j]) for j, c in enumerate(mapping.score_columns)]
    weight = column(mapping.weight_column) if mapping.weight_column else np.ones(n_total, np.float32)
    mass = column(mapping.mass_column) if mapping.mass_column else None

    # NaN / inf: count per column, refuse or drop
    bad = None
    counts = {}
    for label, values in [*zip(mapping.score_columns, scores),
                          (mapping.weight_column, weight), (mapping.mass_column, mass)]:
        if label is None or values is None:
            continue
        if np.isfinite(np.sum(values, dtype=np.float64)):
            continue  # a NaN or inf always reaches the sum (float32 cannot overflow float64)
        nonfinite = ~np.isfinite(values)
        if nonfinite.any():
            n_bad, n_nan = int(nonfinite.sum()), int(np.isnan(values).sum())
            counts[label] = (n_nan, n_bad - n_nan)
            bad = nonfinite if bad is None else (bad | nonfinite)
    if counts:
        text = ", ".join(f"{c}: {nan:,} NaN, {inf:,} inf" for c, (nan, inf) in counts.items())
        if not mapping.drop_nonfinite:
            raise DatasetError({"nonfinite": f"{int(bad.sum()):,} of {n_total:,} rows hold NaN or "
                                             f"infinite values ({text}); fix the file or choose "
                                             f"to drop those rows"})
        report.dropped_nonfinite = int(bad.sum())
        report.notes.append(f"dropped {report.dropped_nonfinite:,} rows with NaN/inf values ({text})")
    if mass is not None:
        lo, hi = mapping.mass_range
        finite_mass = mass if bad is None else mass[~bad]
        if finite_mass.size and (finite_mass.min() < lo or finite_mass.max() > hi):
            outside = (mass < lo) | (mass > hi)  # NaN compares False: counted above, not here
            report.dropped_outside_mass_range = int(outside.sum())
            bad = outside if bad is None else (bad | outside)
        if report.dropped_outside_mass_range:
            report.notes.append(f"left out {report.dropped_outside_mass_range:,} events with a "
                                f"mass outside the fit range {lo:g}-{hi:g}")
    if bad is not None and bad.any():
        keep = ~bad
        scores = [c[keep] for c in scores]
        weight, process = weight[keep], process[keep]
        mass = mass[keep] if mass is not None else None

    n_events = int(weight.shape[0])
    report.n_events = n_events
    is_signal_process = np.zeros(len(process_names), bool)
    is_signal_process[[index_of[s] for s in mapping.signals]] = True
    n_signal_events = int(np.count_nonzero(is_signal_process[process]))
    if n_signal_events == 0:
        raise DatasetError({"signals": "no signal events (after the checks above)"})
    if n_signal_events == n_events:
        raise DatasetError({"signals": "no background events: every process is a signal"})

    negative = weight < 0 if weight.size and weight.min() < 0 else None
    report.negative_weight_events = int(np.count_nonzero(negative)) if negative is not None else 0
    if report.negative_weight_events:
        abs_sum = float(np.abs(weight).sum(dtype=np.float64))
        report.negative_weight_share = float(-weight[negative].sum(dtype=np.float64) / abs_sum)
        report.notes.append(f"{report.negative_weight_events:,} events "
                            f"({report.negative_weight_events / n_events:.1%}) have negative "
                            f"weights, {report.negative_weight_share:.1%} of the total |weight|; "
                            f"they are kept")

    scores = _score_geometry(scores, mapping, report)
    if all(c.base is matrix.base for c in scores) and len(matrix) == n_events:
        matrix = matrix[:, :len(scores)]  # untouched columns (a redundant last one dropped)
    else:
        matrix = pool_empty((len(scores), n_events), np.float32).T
        for j in range(len(scores)):
            matrix[:, j] = scores[j]
            scores[j] = None  # free each column once copied
    events = EventSample(
        scenario="dataset", scores=matrix, weight=weight, process=process,
        process_names=tuple(process_names), signal_names=tuple(mapping.signals),
        mass=mass, mean_mode=report.mean_mode,
        window=tuple(mapping.mass_window) if mass is not None else None,
        mass_range=tuple(mapping.mass_range) if mass is not None else None,
        meta={"name": name},
    )
    return events, report


def pool_empty(shape, dtype) -> np.ndarray:
    """An uninitialised array in Arrow's memory pool (C order).

    The pool recycles the pages a file read has just used; a fresh numpy allocation of the
    same size page-faults its way in, which measured 5-10x slower than the copy itself on
    the VMs here (bench/bench_datasets.py). The array keeps its buffer alive.
    """
    import pyarrow as pa

    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    buffer = pa.allocate_buffer(max(count * dtype.itemsize, 1))
    return np.frombuffer(buffer, dtype, count=count).reshape(shape)


def _index(names: list[str], index_of: dict[str, int], name: str) -> int:
    """The index of ``name`` in ``names``, appended if new; ``index_of`` mirrors ``names``."""
    if name not in index_of:
        index_of[name] = len(names)
        names.append(name)
    return index_of[name]


def _score_geometry(scores: list[np.ndarray], mapping: DatasetMapping,
                    report: ImportReport) -> list[np.ndarray]:
    """Decide the model's score domain; drop a redundant softmax column, rescale if needed.

    Several scores in [0, 1] whose sum never exceeds 1 are softmax outputs: the means live on
    the simplex. If they sum to 1 exactly, the last one carries no information and is
    dropped. Anything else is treated as independent scores on [0, 1] (rescaled to it when
    a column leaves that range).
    """
    names = list(mapping.score_columns)
    lo = [float(c.min()) if c.size else 0.0 for c in scores]
    hi = [float(c.max()) if c.size else 1.0 for c in scores]
    in_unit = min(lo) >= 0.0 and max(hi) <= 1.0
    if len(scores) >= 2 and in_unit:
        sums_to_one, at_most_one = _row_sums(scores)
        if sums_to_one:
            report.redundant_column = names[-1]
            report.notes.append(
                f"the scores {', '.join(names)} sum to 1 (softmax outputs): {names[-1]!r} is "
                f"redundant and is not used; categories live in the space of the others")
            scores, names = scores[:-1], names[:-1]
            if len(scores) >= 2:
                report.mean_mode = "softmax"
        elif at_most_one:
            report.mean_mode = "softmax"
        if report.mean_mode == "softmax":
            report.notes.append(f"scores {', '.join(names)} are treated as softmax outputs "
                                f"(categories on the probability simplex)")
        return scores
    if not in_unit:
        for j, name in enumerate(names):
            if lo[j] < 0.0 or hi[j] > 1.0:
                span = (hi[j] - lo[j]) or 1.0
                rescaled = (scores[j].astype(np.float64) - lo[j]) / span
                scores[j] = np.clip(rescaled, 0.0, 1.0).astype(np.float32)  # float32 rounding
                report.rescaled[name] = [lo[j], hi[j]]
                report.notes.append(f"score {name!r} ranges over {lo[j]:g}..{hi[j]:g}, outside "
                                    f"[0, 1]: rescaled linearly to [0, 1]")
    return scores


def _row_sums(scores: list[np.ndarray], block: int = 1 << 18) -> tuple[bool, bool]:
    """(every row sums to 1, no row sums above 1), within SUM_TOLERANCE.

    In blocks: a whole-column float64 temporary costs more in fresh memory than the sum.
    """
    sums_to_one = at_most_one = True
    for start in range(0, len(scores[0]), block):
        total = scores[0][start:start + block].astype(np.float64)
        for column in scores[1:]:
            total += column[start:start + block]
        sums_to_one = sums_to_one and bool(np.all(np.abs(total - 1.0) <= SUM_TOLERANCE))
        at_most_one = at_most_one and bool(np.all(total <= 1.0 + SUM_TOLERANCE))
        if not (sums_to_one or at_most_one):
            break
    return sums_to_one, at_most_one
