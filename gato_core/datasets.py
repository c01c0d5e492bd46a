"""Imported datasets: a folder per dataset with a manifest and a columnar copy of the events.

Layout (``DATASETS_DIR`` is usually ``DATA_DIR/datasets``)::

    DATASETS_DIR/<id>/manifest.json   name, created, content hash, counts, mapping, notes
    DATASETS_DIR/<id>/scores.npy      [N, D] float32, column-major (after dropping/rescaling)
    DATASETS_DIR/<id>/weight.npy      [N] float32
    DATASETS_DIR/<id>/process.npy     [N] int16, index into manifest "processes"
    DATASETS_DIR/<id>/mass.npy        [N] float32, only with a mass column

A dataset is written into a hidden temporary folder next to the others and moved into
place with one ``os.replace``: a failed import leaves nothing behind, a reader never sees
half a dataset. Arrays are read with ``allow_pickle=False``.

The catalogue (``list_datasets``, ``get_dataset``, ``rename_dataset``, ``delete_dataset``)
works on manifests only and never imports TensorFlow, so the web process can use it.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import import_steps
from .mapping import DatasetMapping, ImportReport, build_events
from .readers import (DEFAULT_MAX_FILE_BYTES, DatasetError, as_source, check_size,
                      read_source)
from .selection import parse_selection
from .scenarios import EventSample

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
ARRAYS = ("scores", "weight", "process", "mass")
#: Most events a dataset may hold. Training keeps scores, role weights and the [N, K]
#: soft memberships (plus gradients) in memory: a whole train() at K = 5, D = 3 peaked at
#: about 330 bytes per event (bench/bench_datasets.py, 10 M events: +3.3 GB), growing with
#: K. 20 M events, ~7 GB at K = 5 and roughly twice that at K = 20, fit a 24-32 GB machine
#: next to the dashboard; the toy scenarios keep their own 5 M limit (config.py).
MAX_DATASET_EVENTS = 20_000_000
MAX_NAME_LENGTH = 120


@dataclass
class DatasetManifest:
    """What the catalogue knows about one dataset (the JSON manifest, as a dataclass)."""

    id: str
    name: str
    created: float  # Unix time
    content_hash: str  # "xxh3-128:<hex>" over the stored arrays and process names
    n_events: int
    dim: int  # number of score columns used
    mean_mode: str  # "sigmoid" (independent scores on [0, 1]) or "softmax" (simplex)
    processes: list[str]
    signals: list[str]
    #: process -> {"events": int, "weight_sum": float, "signal": bool}
    process_summary: dict[str, dict]
    mapping: dict  # DatasetMapping.to_dict()
    sources: list[dict]  # {"file", "tree", "bytes"}
    report: dict  # ImportReport.to_dict(): notes, dropped rows, rescaling, negative weights
    has_mass: bool = False
    version: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DatasetManifest":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def notes(self) -> list[str]:
        return list(self.report.get("notes", []))


def datasets_folder(data_dir) -> Path:
    """The datasets folder inside a dashboard data folder."""
    return Path(data_dir) / "datasets"


# ----- import ----------------------------------------------------------------------------
def read_events(sources, mapping: DatasetMapping | dict, name: str = "dataset",
                max_bytes: int = DEFAULT_MAX_FILE_BYTES,
                max_events: int = MAX_DATASET_EVENTS) -> tuple[EventSample, ImportReport, list]:
    """Read and check ``sources`` with ``mapping``, without storing anything.

    ``sources`` are paths (``file.root:tree`` names a tree) or ``readers.Source``.
    Returns (events, report, source descriptions).
    """
    if isinstance(mapping, dict):
        mapping = DatasetMapping.from_dict(mapping)
    mapping = mapping.validated()
    sources = [as_source(s) for s in sources]
    if not sources:
        raise DatasetError({"data": "give at least one input file"})
    for source in sources:
        check_size(source, max_bytes)  # before a ROOT file is opened to list its trees
    sources, tree_notes = import_steps.expand_sources(
        sources, mapping.trees, [*mapping.numeric_columns, mapping.process_column], max_events)
    tables = []
    for source in sources:
        # what is left of the event budget: files declaring more are refused from their
        # metadata before decoding (a compressed file can declare 100 M rows in 1 MB)
        remaining = max(max_events - sum(t.n_rows for t in tables), 0)
        tables += read_source(source, mapping.numeric_columns, mapping.process_column, max_bytes,
                              max_rows=remaining)
    total = sum(t.n_rows for t in tables)
    if total > max_events:
        raise DatasetError({"data": f"{total:,} events, more than the limit of {max_events:,} "
                                    f"(training needs memory in proportion to events)"})
    if total == 0:
        raise DatasetError({"data": "the input holds no events"})
    cut = None
    if mapping.selection:
        cut = import_steps.apply_selection(tables, parse_selection(mapping.selection),
                                           mapping.weight_column)
        if cut["events_kept"] == 0:
            raise DatasetError({"selection": f"the selection {mapping.selection!r} keeps none "
                                             f"of the {cut['events_read']:,} events"})
    events, report = build_events(tables, mapping, name)
    report.notes[:0] = tree_notes
    if cut is not None:
        report.selection = cut
        report.notes.append(f"selection {cut['expression']!r} kept {cut['events_kept']:,} of "
                            f"{cut['events_read']:,} events, weighted {cut['weight_kept']:.6g} "
                            f"of {cut['weight_read']:.6g}")
    report.scaling = import_steps.apply_scales(events, mapping.luminosity,
                                               mapping.process_scales)
    if report.scaling:
        report.notes.append("weights scaled by " + ", ".join(
            f"{p} x{report.scaling['process_scales'][p] * (mapping.luminosity or 1.0):.6g}"
            for p in events.process_names))
    import_steps.resolved_systematics(mapping.systematics, list(events.process_names))
    described = [{"file": Path(s.path).name, "tree": s.tree, "bytes": os.path.getsize(s.path)}
                 for s in sources]
    return events, report, described


def import_dataset(sources, mapping: DatasetMapping | dict, datasets_dir, name: str = "",
                   max_bytes: int = DEFAULT_MAX_FILE_BYTES,
                   max_events: int = MAX_DATASET_EVENTS) -> DatasetManifest:
    """Read, check and store a dataset; returns its manifest. Raises DatasetError.

    Nothing is written until every check passed; the folder appears in one ``os.replace``.
    """
    name = _clean_name(name or _default_name(sources))
    if isinstance(mapping, dict):
        mapping = DatasetMapping.from_dict(mapping)
    events, report, described = read_events(sources, mapping, name, max_bytes, max_events)
    return store_events(events, report, mapping, datasets_dir, name, described)


def store_events(events: EventSample, report: ImportReport, mapping: DatasetMapping,
                 datasets_dir, name: str, sources: list[dict] | None = None) -> DatasetManifest:
    """Write checked events as a new dataset folder (atomically) and return its manifest."""
    datasets_dir = Path(datasets_dir)
    dataset_id = uuid.uuid4().hex[:12]
    name = _clean_name(name)
    arrays = _arrays(events)
    datasets_dir.mkdir(parents=True, exist_ok=True)
    tmp = datasets_dir / f".tmp-{dataset_id}-{os.getpid()}"
    try:
        tmp.mkdir()
        # the files are written on threads (file writes release the GIL) while the hash
        # and the per-process sums are computed
        with ThreadPoolExecutor(max_workers=2) as pool:
            written = [pool.submit(_save, tmp / f"{key}.npy", values)
                       for key, values in arrays.items()]
            manifest = _manifest(events, report, mapping, dataset_id, name, sources, arrays)
            for future in written:
                future.result()
        (tmp / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=1))
        os.replace(tmp, datasets_dir / dataset_id)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _save(path: Path, values: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, values, allow_pickle=False)


def _manifest(events, report, mapping, dataset_id, name, sources, arrays) -> DatasetManifest:
    return DatasetManifest(
        id=dataset_id, name=name, created=time.time(),
        content_hash=content_hash(arrays, events.process_names),
        n_events=events.n_events, dim=events.dim, mean_mode=events.mean_mode or "sigmoid",
        processes=list(events.process_names), signals=list(events.signal_names),
        process_summary=_process_summary(events), mapping=mapping.to_dict(),
        sources=list(sources or []), report=report.to_dict(), has_mass=events.mass is not None,
    )


def _arrays(events: EventSample) -> dict[str, np.ndarray]:
    arrays = {
        "scores": np.asfortranarray(events.scores, dtype=np.float32),  # column-major
        "weight": np.ascontiguousarray(events.weight, np.float32),
        "process": np.ascontiguousarray(events.process, np.int16),
    }
    if events.mass is not None:
        arrays["mass"] = np.ascontiguousarray(events.mass, np.float32)
    return arrays


def content_hash(arrays: dict[str, np.ndarray], process_names) -> str:
    """A fingerprint of the stored events: equal content, equal hash (names not included).

    xxh3-128 reads several GB/s, so hashing never dominates an import; it identifies data,
    it is not meant to resist tampering.
    """
    import xxhash

    digest = xxhash.xxh3_128()
    digest.update(json.dumps(list(process_names)).encode())
    for key in ARRAYS:
        if key in arrays:
            values = arrays[key]
            digest.update(f"{key}:{values.dtype.str}:{values.shape}".encode())
            # column by column whatever the memory layout: the hash is of the content
            columns = np.asfortranarray(values).T if values.ndim == 2 else values
            digest.update(memoryview(np.ascontiguousarray(columns)).cast("B"))
    return f"xxh3-128:{digest.hexdigest()}"


def _process_summary(events: EventSample) -> dict[str, dict]:
    n_proc = len(events.process_names)
    counts = np.bincount(events.process, minlength=n_proc)
    sums = np.zeros(n_proc)
    block = 1 << 18  # bincount converts weights to float64: in blocks, not a whole copy
    for start in range(0, events.n_events, block):
        sums += np.bincount(events.process[start:start + block],
                            weights=events.weight[start:start + block], minlength=n_proc)
    return {p: {"events": int(counts[i]), "weight_sum": float(sums[i]),
                "signal": p in events.signal_names}
            for i, p in enumerate(events.process_names)}


def _default_name(sources) -> str:
    names = [Path(as_source(s).path).stem for s in sources]
    return ", ".join(dict.fromkeys(names)) or "dataset"


def _clean_name(name: str) -> str:
    name = " ".join(str(name).split())
    if not name:
        raise DatasetError({"name": "a dataset needs a name"})
    if len(name) > MAX_NAME_LENGTH:
        raise DatasetError({"name": f"a dataset name has at most {MAX_NAME_LENGTH} characters"})
    return name


# ----- catalogue -------------------------------------------------------------------------
def list_datasets(datasets_dir) -> list[DatasetManifest]:
    """Every readable dataset, newest first. Unreadable folders are skipped."""
    datasets_dir = Path(datasets_dir)
    if not datasets_dir.is_dir():
        return []
    out = []
    for folder in datasets_dir.iterdir():
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            out.append(_read_manifest(folder))
        except DatasetError:
            continue
    return sorted(out, key=lambda m: m.created, reverse=True)


def get_dataset(datasets_dir, dataset_id: str) -> DatasetManifest:
    return _read_manifest(_folder(datasets_dir, dataset_id))


def rename_dataset(datasets_dir, dataset_id: str, name: str) -> DatasetManifest:
    folder = _folder(datasets_dir, dataset_id)
    manifest = _read_manifest(folder)
    manifest.name = _clean_name(name)
    tmp = folder / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest.to_dict(), indent=1))
    os.replace(tmp, folder / MANIFEST)
    return manifest


def delete_dataset(datasets_dir, dataset_id: str,
                   in_use: Callable[[str], str | None] | None = None) -> None:
    """Delete a dataset unless ``in_use(dataset_id)`` returns a reason (a non-empty text),
    e.g. "run 12 is training on it"; then DatasetError carries that reason."""
    folder = _folder(datasets_dir, dataset_id)
    _read_manifest(folder)
    reason = in_use(dataset_id) if in_use else None
    if reason:
        raise DatasetError({"in_use": f"dataset {dataset_id} is in use: {reason}"})
    # move aside first so the dataset disappears in one step even if removal is slow
    trash = folder.with_name(f".del-{dataset_id}-{os.getpid()}")
    os.replace(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def adopt_dataset(source_dir, dataset_id: str, target_dir) -> DatasetManifest:
    """Make dataset ``dataset_id`` of ``source_dir`` available in ``target_dir`` (another
    datasets folder), so that a run on it can be exported from there: a run folder written
    by ``python -m gato_core run --data`` carries its dataset, and importing the run into
    a dashboard brings the dataset along.

    Files are hard-linked where both folders are on one file system (no copy of several
    GB), else copied; the folder appears with one ``os.replace``. A dataset already there
    with the same content hash is kept; one with another content is refused."""
    source = _folder(source_dir, dataset_id)
    manifest = _read_manifest(source)
    target_dir = Path(target_dir)
    target = target_dir / source.name
    if (target / MANIFEST).is_file():
        present = _read_manifest(target)
        if present.content_hash != manifest.content_hash:
            raise DatasetError({"dataset": f"dataset {dataset_id} already exists in "
                                           f"{target_dir} with other events (content "
                                           f"{present.content_hash}, not "
                                           f"{manifest.content_hash})"})
        return present
    target_dir.mkdir(parents=True, exist_ok=True)
    tmp = target_dir / f".tmp-{source.name}-{os.getpid()}"
    try:
        tmp.mkdir()
        for item in source.iterdir():
            if not item.is_file() or item.name.startswith("."):
                continue
            try:
                os.link(item, tmp / item.name)
            except OSError:  # another file system, or links not allowed
                shutil.copyfile(item, tmp / item.name)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _read_manifest(target)


def load_dataset(datasets_dir, dataset_id: str, mmap: bool = False) -> EventSample:
    """The stored events as an EventSample (``meta`` names the dataset and its hash)."""
    folder = _folder(datasets_dir, dataset_id)
    manifest = _read_manifest(folder)
    mode = "r" if mmap else None
    try:
        arrays = {key: np.load(folder / f"{key}.npy", mmap_mode=mode, allow_pickle=False)
                  for key in ARRAYS if (folder / f"{key}.npy").exists()}
    except (OSError, ValueError) as err:
        raise DatasetError({"dataset": f"dataset {dataset_id} is damaged: {err}"}) from None
    if {"scores", "weight", "process"} - set(arrays) or any(
            len(a) != manifest.n_events for a in arrays.values()):
        raise DatasetError({"dataset": f"dataset {dataset_id} is damaged: arrays are missing "
                                       f"or do not match the manifest"})
    mapping = manifest.mapping
    has_mass = "mass" in arrays
    return EventSample(
        scenario="dataset", scores=arrays["scores"], weight=arrays["weight"],
        process=arrays["process"], process_names=tuple(manifest.processes),
        signal_names=tuple(manifest.signals), mass=arrays.get("mass"),
        mean_mode=manifest.mean_mode,
        window=tuple(mapping["mass_window"]) if has_mass else None,
        mass_range=tuple(mapping["mass_range"]) if has_mass else None,
        meta={"dataset": manifest.id, "name": manifest.name,
              "content_hash": manifest.content_hash},
    )


def _folder(datasets_dir, dataset_id: str) -> Path:
    dataset_id = str(dataset_id)
    if not dataset_id or dataset_id.startswith(".") or "/" in dataset_id or "\\" in dataset_id:
        raise DatasetError({"dataset": f"no dataset {dataset_id!r}"})
    folder = Path(datasets_dir) / dataset_id
    if not (folder / MANIFEST).is_file():
        raise DatasetError({"dataset": f"no dataset {dataset_id!r} in {Path(datasets_dir).name}"})
    return folder


def _read_manifest(folder: Path) -> DatasetManifest:
    try:
        data = json.loads((folder / MANIFEST).read_text())
        return DatasetManifest.from_dict(data)
    except (OSError, ValueError, TypeError) as err:
        raise DatasetError({"dataset": f"dataset {folder.name} has an unreadable manifest: "
                                       f"{err}"}) from None
