"""The analysis bundle: everything needed to use a trained categorisation in an analysis,
as files (numpy, pyhf and uproot; never TensorFlow, so the web process may call it).

Per K: ``categoriser.json`` (apply with ``gato_core.apply.apply``), ``yields.csv``,
``workspace.json`` (pyhf), ``datacard.txt`` (Combine), ``statistical_model.json`` and, for
the bump hunt, ``mass_histograms.csv`` / ``.root``; plus a README for the whole bundle.

The one entry every front end calls (the CLI's ``run --export`` and ``export``, the run
page's downloads): ``export(config, results, n_cats=None, name=None, ...)`` -> bytes, the
zip or one file of one K, the trained parameters (``PARAMETERS_FILE``) included. Each file
is made by one function here. Around it:
- ``export_files(config, result, ...)`` -> {file name: bytes}, the bundle's files of one K
- ``write_bundle(path, config, results, n_cats=None, ...)`` -> the zip, written atomically
- ``bundle_from_run_dir(run_dir, path=None, n_cats=None, cache_dir=None)``: from a finished
  ``python -m gato_core run --out DIR`` folder (``result.json`` + ``params/<K>_cats.json``)
- ``statistical_model(config, result, events=None, cache_dir=None)`` -> summary dict
Every refused request raises ``ExportError`` with a message to show as it is.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from . import categoriser as categoriser_file
from . import datacard as datacard_file
from . import shapes, statmodel
from .apply import assign
from .categoriser import ExportError, _get
from .config import ConfigError, RunConfig
from .scenarios import SCENARIOS, EventSample
from .yields import YieldsTable, table_from_categories, yields_table

__all__ = ["ExportError", "export", "export_files", "write_bundle", "bundle_from_run_dir",
           "parameters_file", "statistical_model", "select_results", "load_run_events",
           "PARAMETERS_FILE"]

FINISHED = "finished"
BUNDLE_NAME = "gato_analysis.zip"
#: the trained model's parameters (not in the zip: the run page's download and the CLI
#: folder's ``params/<K>_cats.json``); gato_core.model.from_parameters restores them
PARAMETERS_FILE = "parameters.json"


def _run_config(config) -> RunConfig:
    if isinstance(config, RunConfig):
        return config
    try:
        return RunConfig.from_dict(dict(config))
    except ConfigError as exc:
        raise ExportError(f"the run's configuration is not valid: {exc}") from None


def load_run_events(config, cache_dir=None, datasets_dir=None) -> EventSample:
    """The run's events again: toy scenarios regenerate them (numpy only, same seed); a
    dataset run reads its dataset (all its events: the export is for the analysis)."""
    from .data import load_events
    try:
        return load_events(_run_config(config), cache_dir, datasets_dir)
    except ConfigError as exc:
        raise ExportError(f"the run's events cannot be loaded: {exc}") from None


def select_results(results, n_cats=None) -> list:
    """The finished results to export: the one with ``n_cats`` or, without it, all of them.

    ExportError when the run has none, when K is unknown, or when that K did not finish.
    """
    results = [r for r in (results or []) if r is not None]
    if n_cats is not None:
        result = _result_with(results, n_cats)
        if _get(result, "status") != FINISHED:
            why = _get(result, "message") or _get(result, "status")
            raise ExportError(f"K={_k(n_cats)} did not finish ({why}); only finished "
                              "categorisations can be exported")
        return [result]
    finished = [r for r in results if _get(r, "status") == FINISHED]
    if not finished:
        raise ExportError("this run has no finished categorisation yet; export it when "
                          "training has finished")
    return sorted(finished, key=lambda r: int(_get(r, "n_cats")))


def _categoriser(config: RunConfig, result, events, score_columns, datasets_dir=None) -> dict:
    parameters = _get(result, "parameters") or {}
    order = None
    if int(parameters.get("dim", 1)) > 1 and _get(result, "order") is None:
        # results read back from a CLI folder keep only the parameters: number the
        # components by significance exactly as the run did
        from .evaluation import evaluate
        order = evaluate(parameters, events, parameters["mean_range"])["order"]
    extra = {"window": events.signal_window if events.mass is not None else None}
    if config.is_dataset:
        extra.update(_dataset_description(config, datasets_dir))
    if score_columns:
        extra["score_columns"] = score_columns
    return categoriser_file.from_result(result, config, order=order, **extra)


def run_systematics(config: RunConfig, processes, datasets_dir=None) -> dict | None:
    """The dataset's lnN systematics ``{nuisance: {process: u}}`` (``*`` expanded), or None
    (toy scenarios, or a dataset imported without any)."""
    if not config.is_dataset or datasets_dir is None:
        return None
    from .datasets import get_dataset
    from .import_steps import resolved_systematics
    from .readers import DatasetError
    try:
        manifest = get_dataset(datasets_dir, config.dataset)
        return resolved_systematics(manifest.mapping.get("systematics"), list(processes)) or None
    except DatasetError as exc:
        raise ExportError(f"the run's dataset cannot be read: {exc}") from None


def held_out_events(config, events: EventSample, cache_dir=None) -> EventSample | None:
    """The run's held-out sample, as training evaluated it (gato_core.data.held_out_split):
    toys an independent sample of the same size, datasets the held-out share of the events
    with weights divided by that share (so yields estimate the full sample's). None when
    the run held nothing out."""
    from .data import held_out_split
    try:
        _, held, _ = held_out_split(_run_config(config), events, cache_dir)
    except ConfigError as exc:
        raise ExportError(f"the run's held-out events cannot be loaded: {exc}") from None
    return held


#: export_files computes the held-out sample itself unless the caller passes it (or None)
_HELD_OUT_FROM_CONFIG = object()


def _dataset_description(config: RunConfig, datasets_dir) -> dict:
    """Score columns as named in the user's files, the import's rescaling, the mass column."""
    from .datasets import get_dataset
    from .readers import DatasetError
    if datasets_dir is None:
        raise ExportError("exporting a dataset run needs the datasets folder")
    try:
        manifest = get_dataset(datasets_dir, config.dataset)
    except DatasetError as exc:
        raise ExportError(f"the run's dataset cannot be read: {exc}") from None
    redundant = manifest.report.get("redundant_column")
    return {
        "score_columns": [c for c in manifest.mapping["score_columns"] if c != redundant],
        "rescale": dict(manifest.report.get("rescaled") or {}),
        "mass_column": manifest.mapping.get("mass_column"),
        "dataset": {"id": manifest.id, "name": manifest.name,
                    "content_hash": manifest.content_hash},
    }


def _table_from_events(cat: dict, events: EventSample) -> tuple[YieldsTable, np.ndarray]:
    # events.scores are the model's inputs (a dataset's already rescaled at import)
    category = assign(cat, events.scores)
    return yields_table(events, category, cat["n_categories"]), category


def statistical_model(config, result, events=None, cache_dir=None, datasets_dir=None) -> dict:
    """The summary of ``statmodel.summary`` for one K: taken from the result when training
    stored it, else from the result's per-category sums, else from the (regenerated) events."""
    config = _run_config(config)
    select_results([result], _get(result, "n_cats"))
    stored = _get(result, "statistical_model")
    table = _result_table(result)
    systematics = run_systematics(config, table.processes, datasets_dir) \
        if table is not None else None
    if stored and not systematics:
        return stored
    if table is None:
        events = events if events is not None else load_run_events(config, cache_dir,
                                                                   datasets_dir)
        cat = _categoriser(config, result, events, None, datasets_dir)
        table, _ = _table_from_events(cat, events)
        systematics = run_systematics(config, table.processes, datasets_dir)
    return statmodel.summary(table, systematics)


def _result_table(result) -> YieldsTable | None:
    categories = _get(result, "categories") or []
    if not categories:
        return None
    return table_from_categories(categories, list(categories[0].get("process_yields", {})),
                                 list(categories[0].get("signal", {})))


def export_files(config, result, events=None, cache_dir=None, score_columns=None,
                 mc_stat: str = "lnN", datasets_dir=None,
                 held_out=_HELD_OUT_FROM_CONFIG) -> dict[str, bytes]:
    """{file name: content} for one finished K (names without the K folder).

    The main files are on the full sample (every event of the run); ``yields_held_out.csv``
    and ``statistical_model_held_out.json`` repeat the yields and the model on the held-out
    sample only (``held_out``: that EventSample, None for none; by default computed from
    the config as training did). Each file names its sample."""
    config = _run_config(config)
    select_results([result], _get(result, "n_cats"))
    events = events if events is not None else load_run_events(config, cache_dir, datasets_dir)
    if held_out is _HELD_OUT_FROM_CONFIG:
        held_out = held_out_events(config, events, cache_dir)
    cat = _categoriser(config, result, events, score_columns, datasets_dir)
    table, category = _table_from_events(cat, events)
    systematics = run_systematics(config, table.processes, datasets_dir)
    spec = statmodel.workspace(table, systematics)
    statmodel.validated_workspace(spec)
    files = {
        "categoriser.json": categoriser_file.dumps(cat).encode(),
        "yields.csv": table.to_csv("full").encode(),
        "workspace.json": json.dumps(spec, indent=1).encode(),
        "datacard.txt": datacard_file.datacard(
            table, mc_stat, title=f"{config.scenario}, K={_get(result, 'n_cats')}",
            systematics=systematics, sample="full").encode(),
        "statistical_model.json": json.dumps(
            statmodel.summary(table, systematics, "full"), indent=1).encode(),
    }
    if held_out is not None:
        held_table, _ = _table_from_events(cat, held_out)
        files["yields_held_out.csv"] = held_table.to_csv("held_out").encode()
        files["statistical_model_held_out.json"] = json.dumps(
            statmodel.summary(held_table, systematics, "held_out"), indent=1).encode()
    if events.mass is not None:
        hists = shapes.mass_histograms(events, category, cat["n_categories"])
        files["mass_histograms.csv"] = shapes.to_csv(hists, events.process_names).encode()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "mass_histograms.root"
            shapes.write_root(hists, events.process_names, path)
            files["mass_histograms.root"] = path.read_bytes()
    return files


def folder_name(n_cats: int) -> str:
    return f"K{int(n_cats)}"


def export(config, results, n_cats=None, name: str | None = None, *, events=None,
           cache_dir=None, datasets_dir=None, score_columns=None,
           mc_stat: str = "lnN") -> bytes:
    """The analysis export as bytes, for every front end.

    ``name`` None: the zip (README.md + one folder ``K<n>/`` per finished K, or only
    ``n_cats``). ``name`` one of ``export_files``' names: that file of K = ``n_cats``
    (finished). ``PARAMETERS_FILE``: K's trained parameters, whatever its status (a
    cancelled K's model is still a model). ``config``: RunConfig or the stored dict;
    ``results``: every result of the run (records or stored dicts)."""
    if name is None:
        return _zip(config, results, n_cats, events, cache_dir, score_columns, mc_stat,
                    datasets_dir)
    if n_cats is None:
        raise ExportError(f"{name} is a file of one K: say which number of categories")
    if name == PARAMETERS_FILE:
        return parameters_file(_result_with(results, n_cats))
    (result,) = select_results(results, n_cats)
    files = export_files(config, result, events, cache_dir, score_columns, mc_stat,
                         datasets_dir)
    if name not in files:
        raise ExportError(f"K={n_cats} has no file {name!r} (it has {', '.join(files)})")
    return files[name]


def _result_with(results, n_cats):
    """The result of K = ``n_cats``, finished or not; ExportError without one."""
    results = [r for r in (results or []) if r is not None]
    k = _k(n_cats)
    match = [r for r in results if int(_get(r, "n_cats")) == k]
    if not match:
        known = ", ".join(str(n) for n in sorted(int(_get(r, "n_cats")) for r in results))
        raise ExportError(f"this run has no categorisation with K={k} "
                          f"(trained K: {known or 'none yet'})")
    return match[0]


def _k(n_cats) -> int:
    try:
        return int(n_cats)
    except (TypeError, ValueError):
        raise ExportError(f"the number of categories must be an integer, got {n_cats!r}") \
            from None


def parameters_file(result) -> bytes:
    """The parameters of one trained K as JSON: exactly the engine's dict, so
    ``gato_core.model.from_parameters(json.load(f))`` restores the model."""
    parameters = _get(result, "parameters")
    if not parameters:
        raise ExportError(f"the result for K={_get(result, 'n_cats')} holds no model parameters")
    return json.dumps(parameters, indent=1).encode()


def _zip(config, results, n_cats, events, cache_dir, score_columns, mc_stat,
         datasets_dir) -> bytes:
    """The zip (README.md + one folder ``K<n>/`` per exported K) as bytes."""
    config = _run_config(config)
    chosen = select_results(results, n_cats)
    events = events if events is not None else load_run_events(config, cache_dir, datasets_dir)
    held_out = held_out_events(config, events, cache_dir)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        ks = []
        for result in chosen:
            k = int(_get(result, "n_cats"))
            ks.append(k)
            for name, content in export_files(config, result, events, score_columns=score_columns,
                                              mc_stat=mc_stat, datasets_dir=datasets_dir,
                                              held_out=held_out).items():
                zf.writestr(f"{folder_name(k)}/{name}", content)
        zf.writestr("README.md", readme(config, ks, events, held_out is not None))
    return buffer.getvalue()


def write_bundle(path, config, results, n_cats=None, events=None, cache_dir=None,
                 score_columns=None, mc_stat: str = "lnN", datasets_dir=None) -> Path:
    """Write the zip to ``path`` (temp file, then rename: never a half-written bundle)."""
    path = Path(path)
    content = export(config, results, n_cats, events=events, cache_dir=cache_dir,
                     datasets_dir=datasets_dir, score_columns=score_columns, mc_stat=mc_stat)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    os.replace(tmp, path)
    return path


def read_run_dir(run_dir) -> tuple[RunConfig, list[dict]]:
    """Config and per-K results (status, message, parameters, boundaries) of a CLI folder."""
    run_dir = Path(run_dir)
    result_file = run_dir / "result.json"
    if not result_file.is_file():
        raise ExportError(f"{run_dir} has no result.json: the run has not finished "
                          "(or this is not a `python -m gato_core run` output folder)")
    try:
        summary = json.loads(result_file.read_text())
        config = _run_config(summary["config"])
        trainings = summary["trainings"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ExportError(f"{result_file} is damaged: {exc}") from None
    results = []
    for t in trainings:
        entry = dict(t)
        params = run_dir / "params" / f"{int(t['n_cats'])}_cats.json"
        if params.is_file():
            try:
                entry["parameters"] = json.loads(params.read_text())
            except json.JSONDecodeError as exc:
                raise ExportError(f"{params} is damaged: {exc}") from None
        elif entry.get("status") == FINISHED:
            entry["status"] = "missing"
            entry["message"] = f"its parameters file params/{int(t['n_cats'])}_cats.json is missing"
        results.append(entry)
    return config, results


def bundle_from_run_dir(run_dir, path=None, n_cats=None, cache_dir=None,
                        score_columns=None, mc_stat: str = "lnN", datasets_dir=None) -> Path:
    """Build the bundle of a finished CLI output folder; default ``DIR/gato_analysis.zip``.

    A dataset run needs ``datasets_dir`` (default: ``RUN_DIR/datasets``, where
    ``run --data`` imports its files)."""
    config, results = read_run_dir(run_dir)
    if config.is_dataset and datasets_dir is None:
        datasets_dir = Path(run_dir) / "datasets"
    path = Path(path) if path is not None else Path(run_dir) / BUNDLE_NAME
    return write_bundle(path, config, results, n_cats, cache_dir=cache_dir,
                        score_columns=score_columns, mc_stat=mc_stat, datasets_dir=datasets_dir)


def readme(config: RunConfig, ks, events: EventSample, has_held_out: bool = False) -> str:
    has_mass = events.mass is not None
    title = (SCENARIOS[config.scenario].title if config.scenario in SCENARIOS
             else f"dataset {events.meta.get('name') or config.dataset}")
    lines = [
        f"# GATO categorisation: {title}",
        "",
        f"Scenario `{config.scenario}`, model `{config.model}`, seed {config.seed}; "
        f"categories K = {', '.join(map(str, ks))}. One folder `K<n>/` per K:",
        "",
        "- `categoriser.json`: the trained categorisation (schema: docs/CATEGORISER.md of the",
        "  GATO dashboard). Category numbers are the dashboard's.",
        "- `yields.csv`: per category and process: sum of weights, sum of squared weights,",
        "  raw MC events" + (" (inside the mass window)." if has_mass else "."),
        "- `workspace.json`: pyhf (HistFactory) workspace, one channel per category, one",
        "  measurement per signal (POI `mu_<signal>`, other signals fixed at 1), background",
        "  MC statistics as `staterror`; observations are Asimov data s + b.",
        "- `datacard.txt`: CMS Combine counting datacard, one bin per category.",
        "- `statistical_model.json`: Asimov Z and pyhf expected discovery Z with and without",
        "  MC-stat uncertainty (and with the dataset's lnN systematics, `pyhf_z_syst`), and",
        "  flags for categories with tiny background or large MC-stat uncertainty.",
        "",
        "Which events: these files are on the **full sample** (every event of the run: the",
        "training and the held-out events together); each says so (`sample` column, `sample`",
        "key, datacard comment).",
    ]
    if has_held_out:
        lines += [
            "- `yields_held_out.csv`, `statistical_model_held_out.json`: the same on the",
            "  **held-out sample** only (events training never saw; a dataset's held-out",
            "  weights are divided by the held-out fraction, so yields estimate the full",
            "  sample's; a toy's held-out sample is an independent one of the same size).",
        ]
    lines += ["",
              "Systematics: a dataset's lnN normalisation uncertainties u are `normsys`",
              "modifiers (hi = 1+u, lo = 1/(1+u)) in the workspace and `lnN` rows with",
              "kappa = 1+u in the datacard: the same log-normal model in both."]
    if has_mass:
        lines += ["- `mass_histograms.csv` / `.root`: per category (`cat<k>/`), per process mass",
                  "  histograms (1 GeV bins, full range, with sum w^2) and Asimov `data_obs`."]
    lines += [
        "",
        "Use it:",
        "",
        "```python",
        "import json, pyhf",
        "from gato_core.apply import apply",
        f"categories = apply('K{ks[0]}/categoriser.json', scores)  # scores: [N, D] or columns",
        f"ws = pyhf.Workspace(json.load(open('K{ks[0]}/workspace.json')))",
        f"model = ws.model(measurement_name='{events.signal_names[0]}')",
        "print(pyhf.infer.hypotest(0.0, ws.data(model), model, test_stat='q0'))",
        "```",
        "",
    ]
    return "\n".join(lines)
