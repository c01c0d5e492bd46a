"""What a stored run is about, for toy scenarios and imported datasets alike.

A toy run's title, signals and dimension come from its scenario (gato_core.scenarios). A
dataset run's come from what it recorded (``run_info``: signal names, and the dataset's
name and dimension) or, before its first record, from the dataset's manifest. Pages and
figures ask here instead of looking the scenario up themselves.
"""
from __future__ import annotations

import logging
from functools import lru_cache

from gato_core import datasets as catalogue
from gato_core.config import DATASET_SCENARIO
from gato_core.scenarios import SCENARIOS

from .. import runtime

log = logging.getLogger(__name__)


def scenario_of(run: dict) -> str:
    return str(run.get("scenario") or (run.get("config") or {}).get("scenario")
               or (run.get("run_info") or {}).get("scenario") or "")


def _dataset_id(run: dict) -> str | None:
    if scenario_of(run) != DATASET_SCENARIO:
        return None
    return (run.get("config") or {}).get("dataset") or None


@lru_cache(maxsize=64)
def _manifest(dataset_id: str, data_dir: str):
    try:
        return catalogue.get_dataset(catalogue.datasets_folder(data_dir), dataset_id)
    except Exception:  # deleted or unreadable: the run's own records still say enough
        log.info("dataset %s of a run is not readable", dataset_id)
        return None


def manifest_of(run: dict):
    """The manifest of a dataset run's dataset, or None (toy run, or dataset gone)."""
    dataset_id = _dataset_id(run)
    if dataset_id is None:
        return None
    try:
        data_dir = str(runtime.data_dir())
    except RuntimeError:
        return None
    return _manifest(dataset_id, data_dir)


def title_of(run: dict) -> str:
    scenario = scenario_of(run)
    if scenario in SCENARIOS:
        return SCENARIOS[scenario].title
    recorded = (run.get("run_info") or {}).get("dataset") or {}
    manifest = manifest_of(run)
    name = recorded.get("name") or (manifest.name if manifest else None)
    if scenario == DATASET_SCENARIO:
        return f"dataset {name}" if name else "dataset (no longer stored)"
    return scenario


def signals_of(run: dict) -> list[str]:
    recorded = (run.get("run_info") or {}).get("signal_names")
    if recorded:
        return list(recorded)
    scenario = scenario_of(run)
    if scenario in SCENARIOS:
        return list(SCENARIOS[scenario].signals)
    manifest = manifest_of(run)
    return list(manifest.signals) if manifest and manifest.signals else ["signal"]


def dim_of(run: dict) -> int:
    """The number of score dimensions the run's categories live in (1, 2 or 3)."""
    scenario = scenario_of(run)
    if scenario in SCENARIOS:
        return SCENARIOS[scenario].dim
    recorded = (run.get("run_info") or {}).get("dataset") or {}
    if recorded.get("dim"):
        return int(recorded["dim"])
    manifest = manifest_of(run)
    return int(manifest.dim) if manifest else 2
