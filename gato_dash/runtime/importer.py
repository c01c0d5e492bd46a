"""Import command-line results (``python -m gato_core run ... --out DIR``) into the run store.

A result folder holds ``result.json`` (config, baselines, per-K significances, 1-D optimum),
one saved-parameters JSON file per K, and, from newer CLIs, ``records.jsonl``: every
RunInfo / EpochRecord / TrainingResult dict, one per line. With ``records.jsonl`` the imported
run has full histories and figures; without it, only the final numbers.

Folders can be imported by path (the server's disk) or uploaded as .zip / .tar.gz archives.
Archives are untrusted input: members are checked before anything is written (no absolute
paths, no "..", no links or devices), and both the archive and its unpacked size are capped,
so a crafted file cannot write outside a scratch folder or fill the disk.

Also a command: ``python -m gato_dash.runtime.importer DIR_OR_ARCHIVE [--data-dir D] [--name N]``.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import functools
import gzip
import io
import json
import math
import shutil
import stat
import sys
import tarfile
import tempfile
import types
import typing
import zipfile
import zlib
from dataclasses import MISSING, fields
from pathlib import Path, PurePosixPath

from gato_core import records as record_types
from gato_core.config import ConfigError, RunConfig
from gato_core.scenarios import SCENARIOS
from gato_core.significance import objective_value

from .recording import final_status, store_records
from .run_fields import MAX_NAME_CHARS

RESULT_FILE = "result.json"
RECORDS_FILE = "records.jsonl"
MAX_ARCHIVE_BYTES = 50 * 1024 * 1024
MAX_UNPACKED_BYTES = 400 * 1024 * 1024
MAX_MEMBERS = 2000
MAX_RESULT_JSON_BYTES = 20 * 1024 * 1024
#: Subfolder of the run's folder (removed with the run) where the CLI's files are kept.
IMPORTED_FILES_DIR = "imported"


class ImportProblem(ValueError):
    """An import was refused; the message says why in words a user can act on."""


# ----- result folder -> store ------------------------------------------------------------
def import_result_dir(result_dir, store, name: str | None = None, on_result=None) -> str:
    """Validate a CLI result folder and store it as one run; returns the new run id.

    Nothing is left in the store when the folder is refused (ImportProblem).
    """
    folder = _find_result_folder(Path(result_dir))
    result_json = _read_result_json(folder / RESULT_FILE)
    config = _validated_config(result_json.get("config"))
    records_path = folder / RECORDS_FILE
    if records_path.is_file():
        run_info, epochs, results = _read_records(records_path, config)
        source = f"{RESULT_FILE} + {RECORDS_FILE}"
    else:
        run_info = _run_info_from_result_json(result_json, config)
        epochs, results = [], _results_from_result_json(result_json, config)
        # what was read from result.json meets the same schema as records.jsonl's records
        check_record(run_info, RESULT_FILE, config)
        for result in results:
            check_record(result, f"{RESULT_FILE} trainings (K={result['n_cats']})", config,
                         unknown=_UNKNOWN_WITHOUT_RECORDS)
        source = f"{RESULT_FILE} only: no per-epoch history"
    parameter_files = _parameter_files(folder)
    for result in results:
        if not result.get("parameters") and int(result["n_cats"]) in parameter_files:
            path = parameter_files[int(result["n_cats"])]
            result["parameters"] = json.loads(path.read_text())
    if not results:
        raise ImportProblem(f"{RESULT_FILE} lists no trained category count (\"trainings\")")

    run_name = (name or "").strip() or f"imported {folder.name}"
    run_id = store.create_run(config.to_dict(), name=run_name[:MAX_NAME_CHARS])
    try:
        # queued -> running -> terminal, the same lifecycle as a trained run. Claimed at
        # once: a queued run is what the dispatcher trains (gato_dash.runtime.dispatch).
        if not store.claim(run_id):
            raise ImportProblem("a training job took the new run before the import did; "
                                "import again")
        # the engine's order: every epoch of a K is stored before that K's result
        stored = store_records(store, run_id, [run_info, *epochs, *results], on_result)
        if stored is None:
            raise ImportProblem("the run was deleted while it was being imported")
        status, message = final_status(stored, cancel_requested=False)
        note = f"imported from {folder.name} ({source})"
        store.set_status(run_id, status, f"{message}; {note}" if message else note)
        seconds = training_seconds(run_info, results, epochs)
        if seconds is not None:
            store.set_training_time(run_id, seconds)
        _keep_files(folder, store.run_dir(run_id) / IMPORTED_FILES_DIR, parameter_files)
        _bring_dataset(folder, config, store)
    except BaseException:
        store.delete(run_id)
        raise
    return run_id


def _bring_dataset(folder: Path, config: RunConfig, store) -> None:
    """A dataset run's folder carries its dataset (``run --data``: DIR/datasets/<id>): put it
    in the dashboard's datasets folder, so the run's analysis bundle can be built."""
    from gato_core.datasets import adopt_dataset, datasets_folder
    from gato_core.readers import DatasetError

    carried = datasets_folder(folder)
    if not config.is_dataset or not (carried / config.dataset).is_dir():
        return
    try:
        adopt_dataset(carried, config.dataset, datasets_folder(store.data_dir()))
    except DatasetError as exc:
        raise ImportProblem(f"the run's dataset cannot be brought along: {exc}") from None


def training_seconds(run_info: dict, results: list[dict], epochs: list[dict]) -> float | None:
    """How long the run took where it trained: data preparation plus each K's time, from
    the results (``elapsed_s``) or else the last epoch of that K; None if unknown."""
    last_elapsed = {}
    for record in epochs:
        last_elapsed[record.get("n_cats")] = record.get("elapsed_s")
    total = float(run_info.get("data_seconds") or 0.0)
    for result in results:
        seconds = result.get("elapsed_s")
        if seconds is None:
            seconds = last_elapsed.get(result.get("n_cats"))
        if not isinstance(seconds, (int, float)) or seconds < 0:
            return None
        total += float(seconds)
    return total


def _find_result_folder(path: Path) -> Path:
    """The folder holding result.json: ``path`` itself or its only subfolder (archives of a
    folder unpack to one top-level directory)."""
    if not path.is_dir():
        raise ImportProblem(f"{path} is not a folder")
    if (path / RESULT_FILE).is_file():
        return path
    subfolders = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and p.name != "__MACOSX"]
    if len(subfolders) == 1 and (subfolders[0] / RESULT_FILE).is_file():
        return subfolders[0]
    raise ImportProblem(
        f"no {RESULT_FILE} found: expected the folder written by "
        "`python -m gato_core run ... --out DIR` (or an archive of it)")


def _read_result_json(path: Path) -> dict:
    if path.stat().st_size > MAX_RESULT_JSON_BYTES:
        raise ImportProblem(f"{RESULT_FILE} is larger than {MAX_RESULT_JSON_BYTES // 2**20} MB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportProblem(f"{RESULT_FILE} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ImportProblem(f"{RESULT_FILE} is nested too deeply") from None
    if not isinstance(data, dict):
        raise ImportProblem(f"{RESULT_FILE} must hold a JSON object")
    if not isinstance(data.get("trainings"), list):
        raise ImportProblem(f"{RESULT_FILE} has no \"trainings\" list")
    return data


def _validated_config(raw) -> RunConfig:
    if not isinstance(raw, dict):
        raise ImportProblem(f"{RESULT_FILE} has no \"config\" object")
    try:
        return RunConfig.from_dict(raw)
    except ConfigError as exc:
        details = "; ".join(f"{k}: {v}" for k, v in exc.problems.items())
        raise ImportProblem(f"the stored configuration is not valid: {details}") from None


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ImportProblem(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _k_map(mapping, what: str) -> dict[str, float]:
    """{K: Z} with JSON's string keys checked to be whole numbers (kept as strings, as the
    engine's own to_dict() output reads back from JSON)."""
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise ImportProblem(f"{what} must be an object of number of categories -> Z")
    out = {}
    for key, value in mapping.items():
        try:
            k = int(str(key))
        except ValueError:
            raise ImportProblem(f"{what}: {key!r} is not a number of categories") from None
        out[str(k)] = _number(value, f"{what}[{key}]")
    return out


def _signals(data: dict, config: RunConfig) -> list[str]:
    """The run's signals: its scenario's, or for a dataset run those its numbers name."""
    if config.scenario in SCENARIOS:
        return list(SCENARIOS[config.scenario].signals)
    for training in data.get("trainings") or []:
        if isinstance(training, dict) and isinstance(training.get("significance"), dict):
            return [str(s) for s in training["significance"]]
    raise ImportProblem("the dataset run's result.json names no signal in its trainings")


def _run_info_from_result_json(data: dict, config: RunConfig) -> dict:
    baselines_raw = data.get("baselines") or {}
    if not isinstance(baselines_raw, dict):
        raise ImportProblem("\"baselines\" must be an object of signal -> {K: Z}")
    baselines = {str(sig): _k_map(curve, f"baselines[{sig}]")
                 for sig, curve in baselines_raw.items()}
    signals = _signals(data, config)
    objective = {}
    for k in sorted({k for curve in baselines.values() for k in curve}, key=int):
        values = [baselines[s][k] for s in signals if k in baselines.get(s, {})]
        if len(values) == len(signals):
            objective[k] = objective_value(values)
    return {
        "kind": "run_info", "scenario": config.scenario,
        "n_events": config.n_signal * len(signals) + config.n_bkg,
        "process_names": [], "signal_names": signals, "yields": {},
        "baselines": baselines,
        "optimum_1d": _k_map(data.get("optimum_1d"), "optimum_1d") or None,
        "baseline_objective": objective,
        "data_seconds": _number(data.get("data_seconds") or 0.0, "data_seconds"),
        "dataset": data.get("dataset") if isinstance(data.get("dataset"), dict) else None,
        "held_out": data.get("held_out") if isinstance(data.get("held_out"), dict) else None,
    }


def _results_from_result_json(data: dict, config: RunConfig) -> list[dict]:
    signals = _signals(data, config)
    results = {}
    for i, training in enumerate(data["trainings"]):
        where = f"trainings[{i}]"
        if not isinstance(training, dict):
            raise ImportProblem(f"{where} must be an object")
        k = training.get("n_cats")
        if isinstance(k, bool) or not isinstance(k, int) or k not in config.n_cats:
            raise ImportProblem(f"{where}: \"n_cats\" must be a category count of the "
                                f"configuration ({list(config.n_cats)}), got "
                                f"{str(k)[:40]!r}")
        significance = training.get("significance")
        if not isinstance(significance, dict) or not significance:
            raise ImportProblem(f"{where} has no \"significance\" object")
        z = {str(s): _number(v, f"{where}.significance[{s}]") for s, v in significance.items()}
        boundaries = training.get("boundaries")
        if boundaries is not None:
            if not isinstance(boundaries, list):
                raise ImportProblem(f"{where}.boundaries must be a list of cut positions")
            boundaries = sorted(_number(b, f"{where}.boundaries") for b in boundaries)
        epoch_ms = training.get("epoch_ms_median")
        epochs_done = training.get("epochs_done")
        results[k] = {
            "kind": "result", "n_cats": k, "status": training.get("status") or "finished",
            "message": training.get("message") or "",
            # checked with the whole record (check_record), like every other field
            "epochs_done": config.epochs if epochs_done is None else epochs_done,
            "significance": z,
            "objective": _number(training["objective"], f"{where}.objective")
            if training.get("objective") is not None
            else objective_value([z[s] for s in signals if s in z] or list(z.values())),
            "categories": _categories_from_boundaries(boundaries) if boundaries else [],
            "order": list(range(k)), "boundaries": boundaries,
            "snapshot": ({"epoch": config.epochs - 1, "temperature": None,
                          "boundaries": boundaries} if boundaries else {}),
            "mass_histograms": None, "parameters": {},
            "epoch_ms_median": _number(epoch_ms, f"{where}.epoch_ms_median")
            if epoch_ms is not None else None,
            "reweight_factors": None, "components": [],
            "elapsed_s": _number(training["elapsed_s"], f"{where}.elapsed_s")
            if training.get("elapsed_s") is not None else None,
            **_held_out_numbers(training, where),
        }
    return [results[k] for k in sorted(results)]


def _held_out_numbers(training: dict, where: str) -> dict:
    """The held-out significances a CLI result carries (None where it has none)."""
    z = training.get("heldout_significance")
    if z is not None and not isinstance(z, dict):
        raise ImportProblem(f"{where}.heldout_significance must be an object of signal -> Z")
    objective = training.get("heldout_objective")
    return {
        "heldout_significance": {str(s): _number(v, f"{where}.heldout_significance[{s}]")
                                 for s, v in z.items()} if z else None,
        "heldout_objective": _number(objective, f"{where}.heldout_objective")
        if objective is not None else None,
    }


def _categories_from_boundaries(boundaries: list[float]) -> list[dict]:
    """Category ranges only (yields are not in result.json): enough to draw the bin layout."""
    edges = [0.0] + list(boundaries) + [1.0]
    return [{"index": i, "component": i, "range": [lo, hi]}
            for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))]


# ----- the record schema ----------------------------------------------------------------------
# An imported run is shown to everyone (Runs table, Home, Compare): a record of the wrong
# shape would break those pages for all users, so every record is checked before anything is
# stored. The fields and their types are gato_core/records.py's (a field added there is
# checked here too); the shapes inside the untyped dicts come from docs/CONTRACTS.md.
_RECORD_CLASSES = {"run_info": record_types.RunInfo, "epoch": record_types.EpochRecord,
                   "result": record_types.TrainingResult}
#: result.json carries no median epoch time: an import of result.json alone leaves it unknown
_UNKNOWN_WITHOUT_RECORDS = {"epoch_ms_median"}
#: the largest whole number a record may hold: SQLite's integers are 64-bit, and JSON
#: readers elsewhere (browsers) are exact only to 2**53
_MAX_WHOLE = 2 ** 53

_Number = float  # an int or a float, never a bool (NaN and inf allowed: a diverged run)
_SNAPSHOT = {"epoch": int, "temperature": float, "boundaries": list[float], "grid": int,
             "categories": list[int]}
_CATEGORY = {"index": int, "component": int, "signal": dict[str, float], "background": float,
             "bkg_sum_w2": float, "rel_unc": float, "z": dict[str, float], "range": list[float],
             "process_yields": dict[str, float], "process_sum_w2": dict[str, float],
             "process_counts": dict[str, float]}
_COMPONENT = {"component": int, "weight": float, "mean": list[float],
              "cov": list[list[float]]}
_MASS_HISTOGRAMS = {"edges": list[float], "processes": list[str], "signals": list[str],
                    "window": list[float], "counts": list[list[list[float]]],
                    "fits": list[typing.Optional[dict[str, float]]]}
_INCLUSIVE = {"processes": list[str], "signals": list[str],
              "score_hist": {"edges": list[float], "counts": dict[str, list[float]]},
              "score_density": {"grid": int, "counts": dict[str, list[float]]},
              "mass_hist": {"edges": list[float], "counts": dict[str, list[float]],
                            "window": list[float]}}
_STATISTICAL_MODEL = {"n_categories": int, "signals": list[str],
                      "asimov_z": dict[str, float], "pyhf_z": dict[str, float],
                      "pyhf_z_mc_stat": dict[str, float], "flags": list[dict],
                      "thresholds": dict[str, float], "seconds": float}
_DATASET = {"id": str, "name": str, "content_hash": str, "dim": int, "mean_mode": str}
_HELD_OUT = {"kind": str, "seed": int, "n_events": int, "fraction": float}
#: (kind, field) -> the shape of a field records.py types only as ``dict`` / ``list[dict]``
_SHAPES = {
    ("run_info", "inclusive"): _INCLUSIVE, ("run_info", "dataset"): _DATASET,
    ("run_info", "held_out"): _HELD_OUT,
    ("epoch", "snapshot"): _SNAPSHOT, ("result", "snapshot"): _SNAPSHOT,
    ("result", "categories"): [_CATEGORY], ("result", "components"): [_COMPONENT],
    ("result", "mass_histograms"): _MASS_HISTOGRAMS,
    ("result", "statistical_model"): _STATISTICAL_MODEL,
}


@functools.lru_cache(maxsize=None)
def _field_types(kind: str) -> dict[str, tuple[object, bool, bool]]:
    """field -> (shape, required, may be null) of one record kind, from gato_core/records.py."""
    cls = _RECORD_CLASSES[kind]
    hints = typing.get_type_hints(cls)
    return {f.name: (_SHAPES.get((kind, f.name), hints[f.name]),
                     f.default is MISSING and f.default_factory is MISSING,
                     type(None) in typing.get_args(hints[f.name]))
            for f in fields(cls)}


def _describe(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _shape_problem(value, shape, where: str) -> str | None:
    """Why ``value`` does not have ``shape`` (a type as records.py writes it, a dict of
    optional keys -> shapes, or [shape] for a list of them), or None if it has."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return f"{where} must be an object, got {_describe(value)}"
        for key, inner in shape.items():
            if value.get(key) is not None:  # nested keys are optional, as the figures read them
                problem = _shape_problem(value[key], inner, f"{where}.{key}")
                if problem:
                    return problem
        return None
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f"{where} must be a list, got {_describe(value)}"
        for i, item in enumerate(value):
            problem = _shape_problem(item, shape[0], f"{where}[{i}]")
            if problem:
                return problem
        return None
    origin, args = typing.get_origin(shape), typing.get_args(shape)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        problems = [_shape_problem(value, option, where) for option in options]
        return None if any(p is None for p in problems) else problems[0]
    if shape is _Number:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{where} must be a number, got {_describe(value)}"
        return None
    if shape is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{where} must be a whole number, got {_describe(value)}"
        if abs(value) > _MAX_WHOLE:
            return f"{where} is out of range ({value:.3g})"
        return None
    if shape is str:
        return None if isinstance(value, str) else f"{where} must be text, got {_describe(value)}"
    if shape is dict or origin is dict:
        if not isinstance(value, dict):
            return f"{where} must be an object, got {_describe(value)}"
        key_type, value_type = args or (str, None)
        for key, item in value.items():
            if key_type is int and not _whole_number_text(key):
                return f"{where} has the key {str(key)[:40]!r}, not a number of categories"
            if value_type is not None:
                problem = _shape_problem(item, value_type, f"{where}[{str(key)[:40]}]")
                if problem:
                    return problem
        return None
    if shape is list or origin is list:
        if not isinstance(value, list):
            return f"{where} must be a list, got {_describe(value)}"
        # category maps hold ~10^4 numbers per snapshot: one pass over their types (their
        # size is never used as a database integer, so it is not bounded here)
        if args and args[0] in _SCALAR_TYPES and set(map(type, value)) <= _SCALAR_TYPES[
                args[0]]:
            return None
        if args:
            for i, item in enumerate(value):
                problem = _shape_problem(item, args[0], f"{where}[{i}]")
                if problem:
                    return problem
        return None
    raise TypeError(f"no check for {shape!r}")  # a type records.py started using


#: the exact Python types JSON gives for each scalar type (bool is no number)
_SCALAR_TYPES = {float: {int, float}, int: {int}, str: {str}}


def _whole_number_text(key) -> bool:
    text = str(key)
    return text.isdigit() and len(text) <= 6


def check_record(record: dict, where: str, config: RunConfig,
                 unknown: frozenset[str] = frozenset()) -> None:
    """ImportProblem naming ``where``, the record kind and the field, unless ``record`` has
    every field of its kind (gato_core/records.py) with the right type and shape, and its
    category count is one the configuration trains. ``unknown``: fields that may be null."""
    kind = record.get("kind") if isinstance(record, dict) else None
    if kind not in _RECORD_CLASSES:
        raise ImportProblem(f"{where}: expected a record with kind run_info, epoch or "
                            f"result, got {str(kind)[:40]!r}")
    types_of = _field_types(kind)
    missing = [name for name, (_, required, _) in types_of.items() if required
               and name not in record]
    if missing:
        raise ImportProblem(f"{where}: the {kind} record lacks {', '.join(missing)}")
    for name, (shape, _, nullable) in types_of.items():
        if name not in record or (record[name] is None and (nullable or name in unknown)):
            continue
        problem = _shape_problem(record[name], shape, name)
        if problem:
            raise ImportProblem(f"{where}: {kind} record: {problem}")
    if kind in ("epoch", "result") and record["n_cats"] not in config.n_cats:
        raise ImportProblem(f"{where}: {kind} record: n_cats {record['n_cats']} is not a "
                            f"category count of the configuration ({list(config.n_cats)})")
    if kind == "epoch" and not 0 <= record["epoch"] < max(record["epochs"], 1):
        raise ImportProblem(f"{where}: epoch record: epoch {record['epoch']} is outside "
                            f"0..{record['epochs'] - 1}")
    if kind == "result" and record["status"] not in record_types.RESULT_STATUSES:
        raise ImportProblem(f"{where}: result record: status must be one of "
                            f"{', '.join(record_types.RESULT_STATUSES)}, got {record['status'][:40]!r}")
    if kind == "run_info" and record["scenario"] != config.scenario:
        raise ImportProblem(
            f"{where}: records are of scenario {record['scenario'][:40]!r} but the "
            f"configuration says {config.scenario!r}")


def _read_records(path: Path, config: RunConfig) -> tuple[dict, list[dict], list[dict]]:
    try:
        return _records_of(path, config)
    except UnicodeDecodeError:
        raise ImportProblem(f"{RECORDS_FILE} is not UTF-8 text") from None


def _records_of(path: Path, config: RunConfig) -> tuple[dict, list[dict], list[dict]]:
    run_info, epochs, results = None, [], {}
    with path.open(encoding="utf-8", errors="strict") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{RECORDS_FILE} line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ImportProblem(f"{where} is not valid JSON: {exc.msg}") from None
            except RecursionError:
                raise ImportProblem(f"{where} is nested too deeply to be a record") from None
            check_record(record, where, config)
            kind = record["kind"]
            if kind == "run_info":
                run_info = record
            elif kind == "epoch":
                epochs.append(record)
            else:
                results[int(record["n_cats"])] = record
    if run_info is None:
        raise ImportProblem(f"{RECORDS_FILE} has no run_info record")
    return run_info, epochs, [results[k] for k in sorted(results)]


def _parameter_files(folder: Path) -> dict[int, Path]:
    """K -> saved-parameters file: any JSON in the folder (or one level down) that holds a
    restorable model (``model`` and ``n_cats`` keys), whatever the CLI named it."""
    found: dict[int, Path] = {}
    candidates = sorted(folder.glob("*.json")) + sorted(folder.glob("*/*.json"))
    for path in candidates:
        if path.name == RESULT_FILE or path.stat().st_size > MAX_RESULT_JSON_BYTES:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            continue
        if isinstance(data, dict) and "model" in data and isinstance(data.get("n_cats"), int):
            found.setdefault(data["n_cats"], path)
    return found


def _keep_files(folder: Path, target: Path, parameter_files: dict[int, Path]) -> None:
    """Copy result.json and the parameter files next to the run (deleted with it)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(folder / RESULT_FILE, target / RESULT_FILE)
    for k, path in parameter_files.items():
        shutil.copy2(path, target / f"parameters_K{k}.json")


# ----- archives --------------------------------------------------------------------------
def import_archive(filename: str, data: bytes, store, name: str | None = None,
                   on_result=None) -> str:
    """Unpack an uploaded .zip / .tar.gz into a scratch folder safely, then import it."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise ImportProblem(f"the archive is {len(data) / 2**20:.1f} MB; at most "
                            f"{MAX_ARCHIVE_BYTES // 2**20} MB can be uploaded")
    with tempfile.TemporaryDirectory(prefix="gato_import_") as scratch:
        root = Path(scratch)
        if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
            _unpack_zip(data, root)
        elif data[:2] == b"\x1f\x8b":
            _unpack_tar_gz(data, root)
        else:
            raise ImportProblem(f"{filename!r} is neither a .zip nor a .tar.gz archive")
        stem = Path(filename).name
        for suffix in (".tar.gz", ".tgz", ".zip"):
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
        return import_result_dir(root, store, name=name or f"imported {stem}",
                                 on_result=on_result)


def import_upload(filename: str, contents: str, store, name: str | None = None,
                  on_result=None) -> str:
    """``dcc.Upload`` contents ("data:<type>;base64,<data>") -> run id."""
    _, _, encoded = (contents or "").partition(",")
    # Refuse by size before decoding: base64 is 4/3 of the bytes.
    if len(encoded) > MAX_ARCHIVE_BYTES * 4 // 3 + 4:
        raise ImportProblem(f"at most {MAX_ARCHIVE_BYTES // 2**20} MB can be uploaded")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ImportProblem("the upload could not be read (not base64 data)") from None
    return import_archive(filename or "upload", data, store, name=name, on_result=on_result)


def _safe_member_path(root: Path, member_name: str) -> Path | None:
    """Where a member may be written, or ImportProblem; None for entries to skip."""
    name = member_name.replace("\\", "/")
    pure = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ImportProblem(f"the archive holds an absolute path ({member_name!r}): refused")
    if any(part == ".." for part in pure.parts):
        raise ImportProblem(f"the archive holds a path leaving its folder ({member_name!r}): "
                            "refused")
    parts = [p for p in pure.parts if p not in ("", ".")]
    if not parts:
        return None
    target = root.joinpath(*parts)
    # Belt and braces: the resolved path must stay inside the scratch folder.
    if root.resolve() not in target.resolve().parents:
        raise ImportProblem(f"the archive member {member_name!r} would leave its folder: refused")
    return target


class _Budget:
    """Counts unpacked bytes and members across an archive; refuses when over the caps."""

    def __init__(self):
        self.bytes = 0
        self.members = 0

    def member(self):
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise ImportProblem(f"the archive holds more than {MAX_MEMBERS} entries")

    def add(self, n: int):
        self.bytes += n
        if self.bytes > MAX_UNPACKED_BYTES:
            raise ImportProblem(f"the archive unpacks to more than "
                                f"{MAX_UNPACKED_BYTES // 2**20} MB: refused")


def _copy_bounded(source, target: Path, budget: _Budget) -> None:
    """Copy in chunks, counting real bytes (a header's declared size can lie)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        while True:
            chunk = source.read(1 << 20)
            if not chunk:
                break
            budget.add(len(chunk))
            out.write(chunk)


def _unpack_zip(data: bytes, root: Path) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ImportProblem(f"the .zip archive is damaged: {exc}") from None
    budget = _Budget()
    with archive:
        infos = archive.infolist()
        # Check every entry before writing anything.
        for info in infos:
            budget.member()
            mode = (info.external_attr >> 16) & 0o170000
            if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise ImportProblem(f"the archive holds a link or special file "
                                    f"({info.filename!r}): refused")
            _safe_member_path(root, info.filename)
        if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
            raise ImportProblem(f"the archive unpacks to more than "
                                f"{MAX_UNPACKED_BYTES // 2**20} MB: refused")
        for info in infos:
            target = _safe_member_path(root, info.filename)
            if target is None or info.is_dir():
                continue
            try:
                with archive.open(info) as source:
                    _copy_bounded(source, target, budget)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise ImportProblem(f"the .zip archive is damaged at {info.filename!r}: "
                                    f"{exc}") from None


def _unpack_tar_gz(data: bytes, root: Path) -> None:
    budget = _Budget()
    # Streaming mode ("r|gz") reads each member once, in order, and stops at the first
    # problem, so a decompression bomb is cut off by the byte budget rather than by memory.
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|gz") as archive:
            for member in archive:
                budget.member()
                target = _safe_member_path(root, member.name)
                if member.isdir() or target is None:
                    continue
                if not member.isfile():
                    raise ImportProblem(f"the archive holds a link or special file "
                                        f"({member.name!r}): refused")
                source = archive.extractfile(member)
                _copy_bounded(source, target, budget)
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, OSError, zlib.error) as exc:
        raise ImportProblem(f"the .tar.gz archive is damaged: {exc}") from None


# ----- command line ----------------------------------------------------------------------
def main(argv=None) -> int:
    from . import BackendError, open_store, resolve_data_dir

    parser = argparse.ArgumentParser(
        prog="python -m gato_dash.runtime.importer",
        description="Import a `python -m gato_core run --out DIR` result into the run store.")
    parser.add_argument("source", help="result folder, or a .zip / .tar.gz of one")
    parser.add_argument("--data-dir", default=None,
                        help="the dashboard's data folder (default $GATO_DATA_DIR or "
                             "./gato_data, as app.py)")
    parser.add_argument("--store", default=None,
                        help="the run store, as app.py's --store (default $GATO_STORE, else "
                             "runs.sqlite in the data folder)")
    parser.add_argument("--name", default=None, help="name of the imported run")
    args = parser.parse_args(argv)
    try:
        store = open_store(resolve_data_dir(args.data_dir), args.store)
    except BackendError as exc:
        parser.error(str(exc))
    source = Path(args.source)
    try:
        if source.is_file():
            run_id = import_archive(source.name, source.read_bytes(), store, name=args.name)
        else:
            run_id = import_result_dir(source, store, name=args.name)
    except (ImportProblem, OSError) as exc:
        print(f"import failed: {exc}", file=sys.stderr)
        return 1
    print(run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
