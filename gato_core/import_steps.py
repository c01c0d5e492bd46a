"""What an analysis does to its events at import, beyond the column mapping (numpy only):

- **trees**: list the TTrees of a ROOT file (``list_trees``) and import a chosen subset,
  each as a named process (``DatasetMapping.trees``: ``{tree: process}``). Without a
  choice every tree of a file is read, except trees that lack the mapped columns (a
  ``meta`` tree: skipped, with a note); a file whose trees look like systematic variations
  of another tree (``ttbar_JESup`` next to ``ttbar``) is refused until trees are chosen,
  so a variation never silently becomes one more background.
- **selection**: a cut on columns (``gato_core.selection``) applied to the read tables
  before anything else looks at the events (score ranges, softmax detection, sums).
- **scale factors**: ``luminosity`` times a per-process factor (cross-section,
  normalisation: ``process_scales``) multiplies the weights; the report keeps the
  weighted yields per process before and after.
- **systematics**: per-process lnN normalisation uncertainties
  ``{nuisance: {process: u}}`` (``u`` relative, e.g. 0.05), checked here and stored with
  the dataset; the analysis export turns them into pyhf ``normsys`` modifiers and Combine
  ``lnN`` rows (``gato_core.statmodel``, ``gato_core.datacard``).

Every mapping value here is plain JSON (dicts of names and numbers); bad values raise
``DatasetError`` with the field's name as key.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .readers import DatasetError, Source, Table, _open_trees, check_rows

#: Tree names ending like a systematic variation: ``_JESup``, ``_jer_Down``, ``Up``, ...
VARIATION_SUFFIX = re.compile(r"[_\-.]?[A-Za-z0-9]*(up|down)$", re.IGNORECASE)
#: A relative lnN uncertainty above this (kappa 3) is almost certainly a typo (5 for 5 %).
MAX_REL_UNCERTAINTY = 2.0
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


# ----- trees -----------------------------------------------------------------------------
@dataclass
class TreeInfo:
    """One TTree of a ROOT file: its name, entries and branches (name -> type name)."""

    name: str
    entries: int
    branches: dict[str, str] = field(default_factory=dict)
    #: branches holding one number per event (the ones an import can use)
    flat: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "entries": self.entries, "branches": dict(self.branches),
                "flat": list(self.flat)}


def list_trees(path) -> list[TreeInfo]:
    """The TTrees of a ROOT file with entries and branches (reads headers, no events).

    Raises DatasetError for an unreadable or truncated file."""
    from .readers import _branch_types

    source = Source(str(path))
    if source.format != "root":
        raise DatasetError({"file": f"{source.label} is not a ROOT file"})
    out = []
    with _open_trees(source) as trees:
        for name, tree, label in trees:
            try:
                dtypes, flat = _branch_types(tree)
                entries = int(tree.num_entries)
            except Exception as err:  # uproot raises many types for damaged files
                raise DatasetError({"file": f"{label} could not be read (truncated or "
                                            f"corrupted?): {str(err).strip()[:200]}"}) from None
            out.append(TreeInfo(name, entries, dtypes, flat))
    return out


def clean_trees(value) -> dict[str, str] | None:
    """``{tree: process}`` from a dict, a list of tree names (process = tree name) or text
    ``"ttbar=tt sig"``; empty process names mean the tree's name."""
    value = _text_pairs("trees", value, value_optional=True,
                        not_a_map="trees must map tree names to process names")
    if value is None:
        return None
    out = {}
    for tree, process in value.items():
        tree, process = str(tree).strip(), str(process or "").strip() or str(tree).strip()
        if not tree:
            raise DatasetError({"trees": "a chosen tree needs a name"})
        if not _NAME.match(process):
            raise DatasetError({"trees": f"process name {process!r} for tree {tree!r}: use "
                                         f"letters, digits and _ . - (at most 64)"})
        out[tree] = process
    return out


def expand_sources(sources: list[Source], trees: dict[str, str] | None,
                   needed_columns, max_rows: int | None = None) -> tuple[list[Source], list[str]]:
    """The Sources to read (one per chosen tree, with its process name) and notes for the
    report.

    ROOT files named without a tree are opened (headers only) to list their trees: with
    ``trees`` given only those are read, under their process names; without, all trees
    that hold the needed columns (a variation-looking tree refuses the file). A file whose
    trees are all read stays one Source, so the reader checks its declared rows as a whole.
    ``max_rows``: the chosen trees of one file declaring more are refused from their
    headers, before anything is decoded (readers.check_rows).
    """
    needed = [c for c in needed_columns if c]
    out, notes = [], []
    used = set()
    for source in sources:
        if source.format != "root" or source.tree:
            if trees and source.format == "root" and source.tree in trees:
                used.add(source.tree)
                source = Source(source.path, source.tree, trees[source.tree])
            out.append(source)
            continue
        listed = list_trees(source.path)
        name = Path(source.path).name
        if trees is not None:
            chosen = [t for t in listed if t.name in trees]
            used.update(t.name for t in chosen)
            if max_rows is not None and chosen:
                check_rows(f"{name} ({', '.join(t.name for t in chosen)})",
                           sum(t.entries for t in chosen), max_rows)
            out += [Source(source.path, t.name, trees[t.name]) for t in chosen]
            left = [t.name for t in listed if t.name not in trees]
            if left:
                notes.append(f"{name}: not imported (not chosen): {', '.join(left)}")
            continue
        usable = [t for t in listed if all(c in t.branches for c in needed)]
        skipped = [t.name for t in listed if t not in usable]
        names = [t.name for t in usable]
        variations = [(v, base) for v in names for base in names
                      if v != base and v.startswith(base) and VARIATION_SUFFIX.fullmatch(
                          v[len(base):])]
        if variations:
            v, base = variations[0]
            raise DatasetError({"trees": f"{name} holds {v!r}, which looks like a systematic "
                                         f"variation of {base!r}: choose the trees to import "
                                         f"(trees: {', '.join(names)}), so that it is not "
                                         f"counted as one more process"})
        if skipped and usable:
            notes.append(f"{name}: skipped trees without the mapped columns: "
                         f"{', '.join(skipped)}")
        if not usable or not skipped:
            out.append(source)  # every tree is read (or none can be: the reader says why)
            continue
        # as the reader names a file's trees: the file's process name, else the tree's
        out += [Source(source.path, t.name, source.process) for t in usable]
    if trees is not None:
        missing = [t for t in trees if t not in used]
        if missing:
            raise DatasetError({"trees": f"no tree {missing[0]!r} in the ROOT files given"})
    return out, notes


# ----- selection -------------------------------------------------------------------------
def apply_selection(tables: list[Table], selection, weight_column: str | None) -> dict:
    """Keep the events passing ``selection`` (a ``selection.Selection``) in every table, in
    place, before the mapping looks at them. Returns the counts for the report:
    ``{"expression", "events_read", "events_kept", "weight_read", "weight_kept"}``."""
    counts = {"expression": selection.expression, "events_read": 0, "events_kept": 0,
              "weight_read": 0.0, "weight_kept": 0.0}
    for table in tables:
        values = {name: _whole(table, name) for name in selection.columns}
        keep = selection.mask(values) if table.n_rows else np.zeros(0, bool)
        weight = _whole(table, weight_column) if weight_column else None
        counts["events_read"] += table.n_rows
        counts["events_kept"] += int(np.count_nonzero(keep))
        if weight is not None:
            counts["weight_read"] += float(np.sum(weight, dtype=np.float64))
            counts["weight_kept"] += float(np.sum(weight[keep], dtype=np.float64))
        else:
            counts["weight_read"] += float(table.n_rows)
            counts["weight_kept"] += float(np.count_nonzero(keep))
        for name in list(table.chunks):
            table.columns[name] = _whole(table, name)
        table.chunks = {}
        table.columns = {name: values_[keep] for name, values_ in table.columns.items()}
        if table.labels is not None:
            table.labels = table.labels[keep]
        table.n_rows = int(np.count_nonzero(keep))
    return counts


def _whole(table: Table, name: str) -> np.ndarray:
    """Column ``name`` of ``table`` as one array (kept in the table)."""
    if name in table.chunks:
        parts = table.chunks[name]
        whole = parts[0] if len(parts) == 1 else np.concatenate(parts)
        table.chunks[name] = [whole]
        return whole
    return table.columns[name]


# ----- scale factors and systematics -------------------------------------------------------
def clean_luminosity(value) -> float | None:
    if value is None or value == "":
        return None
    number = _number("luminosity", value)
    if not number > 0:
        raise DatasetError({"luminosity": f"the luminosity must be above 0, got {number:g}"})
    return number


def clean_process_scales(value) -> dict[str, float] | None:
    """``{process: factor}`` (cross-section x normalisation) from a dict or ``"a=2 b=0.5"``."""
    pairs = _text_pairs("process_scales", value)
    if pairs is None:
        return None
    out = {}
    for process, raw in pairs.items():
        factor = _number("process_scales", raw, f"scale factor of {process!r}")
        if not factor > 0:
            raise DatasetError({"process_scales": f"the scale factor of {process!r} must be "
                                                  f"above 0, got {factor:g}"})
        out[process] = factor
    return out


def clean_systematics(value) -> dict[str, dict[str, float]] | None:
    """``{nuisance: {process: u}}`` with ``u`` the relative uncertainty (0.05 = 5 %).

    Text form: ``"lumi:*=0.025 xs_tt:ttbar=0.1"`` (``*`` = every process)."""
    if value is None or value == "" or value == {} or value == []:
        return None
    if isinstance(value, (str, list, tuple)):
        items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
        nested: dict[str, dict] = {}
        for item in items:
            name, _, rest = str(item).partition(":")
            process, _, number = rest.partition("=")
            if not (name and process and number):
                raise DatasetError({"systematics": f"systematic {item!r}: write "
                                                   f"NAME:PROCESS=U, e.g. lumi:*=0.025"})
            nested.setdefault(name.strip(), {})[process.strip()] = number.strip()
        value = nested
    if not isinstance(value, dict):
        raise DatasetError({"systematics": "systematics must map nuisance names to "
                                           "{process: relative uncertainty}"})
    out = {}
    for name, per_process in value.items():
        name = str(name).strip()
        if not _NAME.match(name):
            raise DatasetError({"systematics": f"nuisance name {name!r}: use letters, digits "
                                               f"and _ . - (at most 64), starting with a letter"})
        if not isinstance(per_process, dict) or not per_process:
            raise DatasetError({"systematics": f"nuisance {name!r} needs "
                                               f"{{process: relative uncertainty}}"})
        out[name] = {}
        for process, raw in per_process.items():
            u = _number("systematics", raw, f"uncertainty of {process!r} in {name!r}")
            if not 0 < u <= MAX_REL_UNCERTAINTY:
                raise DatasetError({"systematics": f"the uncertainty of {process!r} in {name!r} "
                                                   f"must be a relative number above 0 and at "
                                                   f"most {MAX_REL_UNCERTAINTY:g} (0.05 = 5 %), "
                                                   f"got {u:g}"})
            out[name][str(process).strip()] = u
    return out


def resolved_systematics(systematics: dict | None, processes) -> dict[str, dict[str, float]]:
    """``systematics`` with ``*`` expanded to every process; DatasetError for unknown names."""
    out = {}
    for name, per_process in (systematics or {}).items():
        out[name] = {}
        for process, u in per_process.items():
            if process == "*":
                out[name].update({p: u for p in processes if p not in per_process})
            elif process not in processes:
                raise DatasetError({"systematics": f"nuisance {name!r}: no process {process!r} "
                                                   f"(processes: {', '.join(processes)})"})
            else:
                out[name][process] = u
    return out


def apply_scales(events, luminosity: float | None, process_scales: dict | None) -> dict | None:
    """Multiply ``events.weight`` (in place) by luminosity x per-process factor.

    Returns ``{"luminosity", "process_scales" (every process, 1 where not given),
    "yields_before", "yields_after"}`` ({process: weighted yield}), or None when there is
    nothing to scale."""
    if luminosity is None and not process_scales:
        return None
    names = list(events.process_names)
    unknown = [p for p in (process_scales or {}) if p not in names]
    if unknown:
        raise DatasetError({"process_scales": f"no process {unknown[0]!r} to scale "
                                              f"(processes: {', '.join(names)})"})
    factors = np.array([(luminosity or 1.0) * (process_scales or {}).get(p, 1.0)
                        for p in names])
    before = _yields(events)
    weight = events.weight.astype(np.float64) * factors[events.process]
    if not np.all(np.isfinite(weight)):
        raise DatasetError({"process_scales": "the scaled weights are not finite numbers "
                                              "(a factor too large for single precision?)"})
    events.weight = weight.astype(np.float32)  # the read array may be a read-only view
    after = _yields(events)
    return {"luminosity": luminosity,
            "process_scales": {p: (process_scales or {}).get(p, 1.0) for p in names},
            "yields_before": dict(zip(names, before)), "yields_after": dict(zip(names, after))}


def _yields(events) -> list[float]:
    sums = np.bincount(events.process, weights=events.weight.astype(np.float64),
                       minlength=len(events.process_names))
    return [float(v) for v in sums]


def _text_pairs(key: str, value, *, value_optional: bool = False,
                not_a_map: str | None = None) -> dict | None:
    """``{name: value}`` from a dict, a list of ``"name=value"`` items or the same as text
    (``"a=1 b=2"``, commas allowed); None when empty. Values stay as given (text from
    text); the caller checks them. ``value_optional``: ``"name"`` alone means an empty
    value (the caller picks the default) and an empty name is left for the caller to
    refuse; otherwise both are refused here as not NAME=NUMBER."""
    if value is None or value == "" or value == {} or value == []:
        return None
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if isinstance(value, (list, tuple)):
        out = {}
        for item in value:
            name, sep, given = str(item).partition("=")
            if not value_optional and (not sep or not name.strip()):
                raise DatasetError({key: f"{item!r}: write PROCESS=NUMBER"})
            out[name.strip()] = given.strip()
        return out
    if not isinstance(value, dict):
        raise DatasetError({key: not_a_map or f"{key} must map process names to numbers"})
    return {str(k).strip(): v for k, v in value.items()}


def _number(key: str, raw, what: str | None = None) -> float:
    what = what or key
    if isinstance(raw, bool):
        raise DatasetError({key: f"{what} must be a number, got {raw!r}"})
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise DatasetError({key: f"{what} must be a number, got {raw!r}"}) from None
    if not math.isfinite(number):
        raise DatasetError({key: f"{what} must be a finite number, got {raw!r}"})
    return number
