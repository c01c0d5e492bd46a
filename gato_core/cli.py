"""Command line: ``python -m gato_core run ...`` mirrors the reference workflows' flags;
``run --data FILES ...`` trains on your own events and ``dataset import`` stores them in
a dashboard data folder. Choices come from the registries (SCENARIOS, MODELS, SCHEDULES)."""
from __future__ import annotations

import argparse
import itertools
import json
import signal
import sys
import time
from pathlib import Path

from .config import DATASET_SCENARIO, MODELS, OBJECTIVES, PRESETS, ConfigError, RunConfig
from .initial import INITS
from .scenarios import SCENARIOS
from .schedules import SCHEDULES

PROGRESS_EVERY = 10

# flag -> RunConfig field, for flags given explicitly on the command line
FLAG_FIELDS = {
    "epochs": "epochs", "gato_bins": "n_cats", "n_signal": "n_signal", "n_bkg": "n_bkg",
    "seed": "seed", "lam_yield": "lam_yield", "lam_unc": "lam_unc", "thr_yield": "thr_yield",
    "thr_unc": "thr_unc", "rewt_interval": "rewt_interval", "mass_sigma": "mass_sigma",
    "snapshot_interval": "snapshot_interval", "model": "model", "noise": "noise",
    "lr_initial": "lr_initial", "lr_final": "lr_final", "t_initial": "t_initial",
    "t_final": "t_final", "lr_schedule": "lr_schedule", "t_schedule": "t_schedule",
    "held_out_fraction": "held_out_fraction", "init": "init", "starts": "n_starts",
    "explore_fraction": "explore_fraction", "objective": "objective",
    "bkg_rel_unc": "bkg_rel_unc",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gato_core",
        description="GATO category optimisation on toy scenarios or your own events.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train a scenario or a dataset and write DIR/result.json")
    what = run.add_mutually_exclusive_group(required=True)
    what.add_argument("--scenario", choices=list(SCENARIOS))
    what.add_argument("--data", nargs="+", metavar="PATH",
                      help="train on these CSV/Parquet/ROOT files (file.root:tree names one "
                           "tree); they are imported into --data-dir first")
    what.add_argument("--dataset", metavar="ID", help="train on a dataset imported before")
    run.add_argument("--out", required=True, help="output folder (created)")
    run.add_argument("--epochs", type=int)
    run.add_argument("--gato-bins", type=int, nargs="+", metavar="K", help="category counts")
    for flag, kind in (("--n-signal", int), ("--n-bkg", int), ("--seed", int),
                       ("--lam-yield", float), ("--lam-unc", float), ("--thr-yield", float),
                       ("--thr-unc", float), ("--rewt-interval", int), ("--mass-sigma", float),
                       ("--snapshot-interval", int), ("--noise", float), ("--lr-initial", float),
                       ("--lr-final", float), ("--t-initial", float), ("--t-final", float),
                       ("--held-out-fraction", float)):
        run.add_argument(flag, type=kind)
    optimiser = run.add_argument_group("optimiser (defaults: two starts, see docs/CONTRACTS.md)")
    optimiser.add_argument("--preset", choices=list(PRESETS),
                           help="named optimiser settings; 'reference' is the reference "
                                "workflows' optimiser (one random start), for side by side runs")
    optimiser.add_argument("--init", choices=list(INITS), help="where the categories start")
    optimiser.add_argument("--starts", type=int, metavar="R",
                           help="independent starts trained side by side")
    optimiser.add_argument("--explore-fraction", type=float, metavar="F",
                           help="share of the epochs all starts train before the best goes on")
    optimiser.add_argument("--objective", choices=list(OBJECTIVES),
                           help="what training maximises: the Asimov Z, or the Asimov Z with "
                                "a background uncertainty (needs --bkg-rel-unc)")
    optimiser.add_argument("--bkg-rel-unc", type=float, metavar="U",
                           help="relative background uncertainty per category for "
                                "--objective asimov_bkg_unc (0.1 = 10 %%)")
    run.add_argument("--model", choices=list(MODELS))
    run.add_argument("--lr-schedule", choices=list(SCHEDULES))
    run.add_argument("--t-schedule", choices=list(SCHEDULES))
    run.add_argument("--cache-dir", help="cache generated events here")
    run.add_argument("--data-dir", metavar="DIR",
                     help="dashboard data folder holding DIR/datasets (default for --data: "
                          "the output folder)")
    _mapping_arguments(run)
    run.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    run.add_argument("--export", metavar="DIR",
                     help="after training, write the analysis bundle (categoriser, yields, "
                          "pyhf workspace, datacard) to DIR/gato_analysis.zip")
    export = sub.add_parser("export", help="write the analysis bundle of a finished run folder")
    export.add_argument("run_dir", help="a `run --out` folder (result.json, params/)")
    export.add_argument("--out", help="zip file to write (default RUN_DIR/gato_analysis.zip)")
    export.add_argument("--k", type=int, help="only this number of categories (default: all)")
    export.add_argument("--mc-stat", choices=["lnN", "gmN"], default="lnN",
                        help="datacard form of the background MC statistics")
    export.add_argument("--cache-dir", help="cache regenerated events here")
    export.add_argument("--data-dir", metavar="DIR",
                        help="dataset runs: the data folder the dataset was imported into "
                             "(default: RUN_DIR)")

    dataset = sub.add_parser("dataset", help="import and list datasets")
    dataset_sub = dataset.add_subparsers(dest="dataset_command", required=True)
    imp = dataset_sub.add_parser("import", help="import files as one dataset")
    imp.add_argument("paths", nargs="+", metavar="PATH",
                     help="CSV/Parquet/ROOT files (file.root:tree names one tree)")
    imp.add_argument("--name", help="dataset name (default: the file names)")
    imp.add_argument("--data-dir", required=True, metavar="DIR",
                     help="dashboard data folder; the dataset goes to DIR/datasets/<id>")
    _mapping_arguments(imp)
    trees = dataset_sub.add_parser("trees", help="the TTrees of ROOT files: entries, branches")
    trees.add_argument("paths", nargs="+", metavar="FILE.root")
    listing = dataset_sub.add_parser("list", help="list imported datasets")
    listing.add_argument("--data-dir", required=True, metavar="DIR")
    inspect = dataset_sub.add_parser("inspect", help="columns, ranges and first rows of files")
    inspect.add_argument("paths", nargs="+", metavar="PATH")
    inspect.add_argument("--rows", type=int, default=5)
    return parser


def _mapping_arguments(parser) -> None:
    group = parser.add_argument_group("column mapping (files)")
    group.add_argument("--score-columns", nargs="+", metavar="COLUMN",
                       help="1 to 3 classifier score columns")
    group.add_argument("--signal", nargs="+", metavar="PROCESS", help="signal process(es)")
    group.add_argument("--weight-column", help="event weight (default: 1 per event)")
    group.add_argument("--process-column", help="process label column; without it each "
                                                "file / tree is one process")
    group.add_argument("--process-names", nargs="+", metavar="NAME",
                       help="one process name per file/tree (default: tree name or file stem)")
    group.add_argument("--mass-column", help="mass column: enables the sideband reweighting")
    group.add_argument("--mass-window", type=float, nargs=2, metavar=("LO", "HI"))
    group.add_argument("--mass-range", type=float, nargs=2, metavar=("LO", "HI"),
                       help="fit range: window plus sidebands")
    group.add_argument("--drop-nonfinite", action="store_true",
                       help="drop rows with NaN/inf values instead of refusing the file")
    group.add_argument("--max-file-mb", type=float, help="refuse larger files")
    steps = parser.add_argument_group("analysis steps at import (docs/DATASETS.md)")
    steps.add_argument("--trees", nargs="+", metavar="TREE[=PROCESS]",
                       help="read only these trees of the ROOT files, each as a process "
                            "(default name: the tree's)")
    steps.add_argument("--selection", metavar="EXPR",
                       help="keep events passing a cut on columns, e.g. "
                            "'nn_score > 0.1 & njets >= 2'")
    steps.add_argument("--luminosity", type=float, metavar="L",
                       help="multiply every weight by L")
    steps.add_argument("--process-scales", nargs="+", metavar="PROCESS=FACTOR",
                       help="multiply a process's weights (cross-section, normalisation)")
    steps.add_argument("--systematics", nargs="+", metavar="NAME:PROCESS=U",
                       help="lnN normalisation uncertainties, e.g. lumi:*=0.025 "
                            "xs_tt:ttbar=0.1 (PROCESS * = every process)")


def mapping_from_args(args) -> dict:
    return {
        "score_columns": args.score_columns or [], "signals": args.signal or [],
        "weight_column": args.weight_column, "process_column": args.process_column,
        "process_names": args.process_names, "mass_column": args.mass_column,
        "mass_window": args.mass_window, "mass_range": args.mass_range,
        "drop_nonfinite": args.drop_nonfinite,
        "trees": args.trees, "selection": args.selection, "luminosity": args.luminosity,
        "process_scales": args.process_scales, "systematics": args.systematics,
    }


def _import(args, paths, data_dir, name=None):
    """Import files into DATA_DIR/datasets; prints the notes. Raises DatasetError."""
    from .datasets import datasets_folder, import_dataset
    from .readers import DEFAULT_MAX_FILE_BYTES

    max_bytes = int(args.max_file_mb * 1e6) if args.max_file_mb else DEFAULT_MAX_FILE_BYTES
    manifest = import_dataset(paths, mapping_from_args(args), datasets_folder(data_dir),
                              name or "", max_bytes=max_bytes)
    counts = ", ".join(f"{p} {v['events']:,} ({v['weight_sum']:.4g})"
                       for p, v in manifest.process_summary.items())
    print(f"imported dataset {manifest.id} {manifest.name!r}: {manifest.n_events:,} events, "
          f"{manifest.dim} score(s), {manifest.mean_mode}; {counts}")
    for note in manifest.notes:
        print(f"note: {note}")
    scaling = manifest.report.get("scaling")
    if scaling:
        for process, after in scaling["yields_after"].items():
            print(f"yield {process}: {scaling['yields_before'][process]:.6g} -> {after:.6g}")
    return manifest


def _print_errors(problems: dict) -> None:
    for message in problems.values():
        print(f"error: {message}", file=sys.stderr)


def dataset_command(args) -> int:
    from .datasets import datasets_folder, list_datasets
    from .readers import DatasetError, inspect_sources

    try:
        if args.dataset_command == "import":
            _import(args, args.paths, args.data_dir, args.name)
        elif args.dataset_command == "list":
            for m in list_datasets(datasets_folder(args.data_dir)):
                print(f"{m.id}  {m.name}  {m.n_events:,} events  signals {', '.join(m.signals)}"
                      f"  {m.content_hash}")
        elif args.dataset_command == "inspect":
            print(json.dumps(inspect_sources(args.paths, n_rows=args.rows), indent=1))
        elif args.dataset_command == "trees":
            from .import_steps import list_trees
            for path in args.paths:
                for tree in list_trees(path):
                    branches = ", ".join(f"{b} ({t})" for b, t in tree.branches.items())
                    print(f"{Path(path).name}:{tree.name}  {tree.entries:,} entries  {branches}")
    except DatasetError as err:
        _print_errors(err.problems)
        return 2
    return 0


def config_from_args(args, dataset_id: str | None = None) -> RunConfig:
    overrides = {field: getattr(args, flag) for flag, field in FLAG_FIELDS.items()
                 if getattr(args, flag, None) is not None}
    preset = getattr(args, "preset", None) or "default"
    if args.scenario:
        return RunConfig.preset(preset, args.scenario, **overrides)
    # a dataset run; --data is checked (and imported) only once the flags are valid
    return RunConfig.preset(preset, DATASET_SCENARIO,
                            dataset=dataset_id or args.dataset or "pending", **overrides)


def summary(config: RunConfig, records) -> dict:
    info = next(r for r in records if r.kind == "run_info")
    trainings = [
        {
            "n_cats": r.n_cats, "status": r.status, "message": r.message,
            "epochs_done": r.epochs_done, "significance": r.significance,
            "objective": r.objective, "boundaries": r.boundaries,
            "epoch_ms_median": r.epoch_ms_median, "elapsed_s": r.elapsed_s,
            "heldout_significance": r.heldout_significance,
            "heldout_objective": r.heldout_objective,
            "statistical_model": r.statistical_model,
        }
        for r in records if r.kind == "result"
    ]
    out = {
        "config": config.to_dict(),
        "data_seconds": info.data_seconds,
        "baselines": {s: {str(k): z for k, z in v.items()} for s, v in info.baselines.items()},
        "trainings": trainings,
        "held_out": info.held_out,
    }
    if info.dataset is not None:
        out["dataset"] = info.dataset
    if info.optimum_1d is not None:
        out["optimum_1d"] = {str(k): z for k, z in info.optimum_1d.items()}
    return out


def run_command(args) -> int:
    from .datasets import datasets_folder
    from .readers import DatasetError

    try:
        config = config_from_args(args)
    except ConfigError as err:
        _print_errors(err.problems)
        return 2
    if args.dataset and not args.data_dir:
        print("error: --dataset needs --data-dir (the folder it was imported into)",
              file=sys.stderr)
        return 2
    out = Path(args.out)
    data_dir = args.data_dir or out
    if args.data:
        try:
            config = config.updated(dataset=_import(args, args.data, data_dir).id)
        except DatasetError as err:
            _print_errors(err.problems)
            return 2
    try:
        (out / "params").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"error: cannot create output folder {out}: {err.strerror}", file=sys.stderr)
        return 2

    interrupted = []
    signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    from .bundle import parameters_file
    from .training import train  # TensorFlow is imported only once the flags are valid

    records = []
    start = time.perf_counter()
    stream_records = train(config, should_stop=lambda: bool(interrupted), cache_dir=args.cache_dir,
                           datasets_dir=datasets_folder(data_dir))
    with open(out / "records.jsonl", "w") as stream:
        try:
            first = next(stream_records)
        except ConfigError as err:  # what only the loaded dataset can tell
            _print_errors(err.problems)
            return 2
        for record in itertools.chain([first], stream_records):
            records.append(record)
            stream.write(json.dumps(record.to_dict()) + "\n")
            if record.kind == "epoch" and not args.quiet and (
                    record.epoch % PROGRESS_EVERY == 0 or record.epoch == record.epochs - 1):
                z = " ".join(f"Z({s})={v:.3f}" for s, v in record.significance.items())
                print(f"[K={record.n_cats}] epoch {record.epoch + 1}/{record.epochs} "
                      f"loss={record.loss:.4f} {z} T={record.temperature:.3g} "
                      f"lr={record.learning_rate:.3g}", flush=True)
            elif record.kind == "result":
                (out / "params" / f"{record.n_cats}_cats.json").write_bytes(
                    parameters_file(record))
                z = " ".join(f"Z({s})={v:.3f}" for s, v in record.significance.items())
                print(f"[K={record.n_cats}] {record.status}: hard {z} "
                      f"({record.epoch_ms_median:.1f} ms/epoch)", flush=True)
    if config.is_dataset:
        # the run folder carries its dataset (out/datasets/<id>, linked or copied), so
        # `export` and a dashboard import of the folder find the events without --data-dir
        from .datasets import adopt_dataset
        from .readers import DatasetError
        try:
            adopt_dataset(datasets_folder(data_dir), config.dataset, datasets_folder(out))
        except (DatasetError, OSError) as err:
            print(f"warning: the run folder does not carry its dataset: {err}", file=sys.stderr)
    (out / "result.json").write_text(json.dumps(summary(config, records), indent=1))
    print(f"wrote {out / 'result.json'} in {time.perf_counter() - start:.1f} s")
    if args.export and not interrupted:
        from .bundle import BUNDLE_NAME, ExportError, write_bundle
        try:
            path = write_bundle(Path(args.export) / BUNDLE_NAME, config,
                                [r for r in records if r.kind == "result"],
                                cache_dir=args.cache_dir, datasets_dir=datasets_folder(data_dir))
        except (ExportError, OSError) as err:
            print(f"error: the run was written to {out} but not exported: {err}", file=sys.stderr)
            return 1
        print(f"wrote the analysis bundle {path}")
    return 1 if interrupted else 0


def export_command(args) -> int:
    from .bundle import ExportError, bundle_from_run_dir
    from .datasets import datasets_folder
    try:
        path = bundle_from_run_dir(
            args.run_dir, args.out, n_cats=args.k, cache_dir=args.cache_dir,
            mc_stat=args.mc_stat,
            datasets_dir=datasets_folder(args.data_dir) if args.data_dir else None)
    except (ExportError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote the analysis bundle {path}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return run_command(args)
    if args.command == "dataset":
        return dataset_command(args)
    if args.command == "export":
        return export_command(args)
    return 2
