"""Command line: ``python -m gato_core run ...`` mirrors the reference workflows' flags."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from .config import ConfigError, RunConfig
from .scenarios import SCENARIOS

PROGRESS_EVERY = 10

# flag -> RunConfig field, for flags given explicitly on the command line
FLAG_FIELDS = {
    "epochs": "epochs", "gato_bins": "n_cats", "n_signal": "n_signal", "n_bkg": "n_bkg",
    "seed": "seed", "lam_yield": "lam_yield", "lam_unc": "lam_unc", "thr_yield": "thr_yield",
    "thr_unc": "thr_unc", "rewt_interval": "rewt_interval", "mass_sigma": "mass_sigma",
    "snapshot_interval": "snapshot_interval", "model": "model", "noise": "noise",
    "lr_initial": "lr_initial", "lr_final": "lr_final", "t_initial": "t_initial",
    "t_final": "t_final", "lr_schedule": "lr_schedule", "t_schedule": "t_schedule",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gato_core",
                                     description="GATO category optimisation on toy scenarios.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train a scenario and write DIR/result.json")
    run.add_argument("--scenario", required=True, choices=list(SCENARIOS))
    run.add_argument("--out", required=True, help="output folder (created)")
    run.add_argument("--epochs", type=int)
    run.add_argument("--gato-bins", type=int, nargs="+", metavar="K", help="category counts")
    for flag, kind in (("--n-signal", int), ("--n-bkg", int), ("--seed", int),
                       ("--lam-yield", float), ("--lam-unc", float), ("--thr-yield", float),
                       ("--thr-unc", float), ("--rewt-interval", int), ("--mass-sigma", float),
                       ("--snapshot-interval", int), ("--noise", float), ("--lr-initial", float),
                       ("--lr-final", float), ("--t-initial", float), ("--t-final", float)):
        run.add_argument(flag, type=kind)
    run.add_argument("--model", choices=["gmm", "sigmoid_cuts"])
    run.add_argument("--lr-schedule", choices=["cosine", "exponential"])
    run.add_argument("--t-schedule", choices=["cosine", "exponential"])
    run.add_argument("--cache-dir", help="cache generated events here")
    run.add_argument("--store", metavar="DATA_DIR",
                     help="also import the finished run into the dashboard's run store")
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
    return parser


def config_from_args(args) -> RunConfig:
    overrides = {field: getattr(args, flag) for flag, field in FLAG_FIELDS.items()
                 if getattr(args, flag, None) is not None}
    return RunConfig.defaults(args.scenario, **overrides)


def summary(config: RunConfig, records) -> dict:
    info = next(r for r in records if r.kind == "run_info")
    trainings = [
        {
            "n_cats": r.n_cats, "status": r.status, "message": r.message,
            "epochs_done": r.epochs_done, "significance": r.significance,
            "objective": r.objective, "boundaries": r.boundaries,
            "epoch_ms_median": r.epoch_ms_median, "elapsed_s": r.elapsed_s,
            "statistical_model": r.statistical_model,
        }
        for r in records if r.kind == "result"
    ]
    out = {
        "config": config.to_dict(),
        "data_seconds": info.data_seconds,
        "baselines": {s: {str(k): z for k, z in v.items()} for s, v in info.baselines.items()},
        "trainings": trainings,
    }
    if info.optimum_1d is not None:
        out["optimum_1d"] = {str(k): z for k, z in info.optimum_1d.items()}
    return out


def run_command(args) -> int:
    try:
        config = config_from_args(args)
    except ConfigError as err:
        for message in err.problems.values():
            print(f"error: {message}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        (out / "params").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"error: cannot create output folder {out}: {err.strerror}", file=sys.stderr)
        return 2

    interrupted = []
    signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    from .model import save_parameters
    from .training import train  # TensorFlow is imported only once the flags are valid

    records = []
    start = time.perf_counter()
    with open(out / "records.jsonl", "w") as stream:
        for record in train(config, should_stop=lambda: bool(interrupted), cache_dir=args.cache_dir):
            records.append(record)
            stream.write(json.dumps(record.to_dict()) + "\n")
            if record.kind == "epoch" and not args.quiet and (
                    record.epoch % PROGRESS_EVERY == 0 or record.epoch == record.epochs - 1):
                z = " ".join(f"Z({s})={v:.3f}" for s, v in record.significance.items())
                print(f"[K={record.n_cats}] epoch {record.epoch + 1}/{record.epochs} "
                      f"loss={record.loss:.4f} {z} T={record.temperature:.3g} "
                      f"lr={record.learning_rate:.3g}", flush=True)
            elif record.kind == "result":
                save_parameters(record.parameters, out / "params" / f"{record.n_cats}_cats.json")
                z = " ".join(f"Z({s})={v:.3f}" for s, v in record.significance.items())
                print(f"[K={record.n_cats}] {record.status}: hard {z} "
                      f"({record.epoch_ms_median:.1f} ms/epoch)", flush=True)
    (out / "result.json").write_text(json.dumps(summary(config, records), indent=1))
    print(f"wrote {out / 'result.json'} in {time.perf_counter() - start:.1f} s")
    if args.store:
        try:
            from gato_dash.importer import ImportProblem, import_into_data_dir
        except ImportError:
            print("error: --store needs the dashboard package (gato_dash) next to gato_core",
                  file=sys.stderr)
            return 1
        try:
            run_id = import_into_data_dir(out, args.store)
        except (ImportProblem, OSError) as err:
            print(f"error: the run was written to {out} but not imported: {err}", file=sys.stderr)
            return 1
        print(f"imported into the run store at {args.store} as run {run_id}")
    if args.export and not interrupted:
        from .bundle import BUNDLE_NAME, ExportError, write_bundle
        try:
            path = write_bundle(Path(args.export) / BUNDLE_NAME, config,
                                [r for r in records if r.kind == "result"],
                                cache_dir=args.cache_dir)
        except (ExportError, OSError) as err:
            print(f"error: the run was written to {out} but not exported: {err}", file=sys.stderr)
            return 1
        print(f"wrote the analysis bundle {path}")
    return 1 if interrupted else 0


def export_command(args) -> int:
    from .bundle import ExportError, bundle_from_run_dir
    try:
        path = bundle_from_run_dir(args.run_dir, args.out, n_cats=args.k,
                                   cache_dir=args.cache_dir, mc_stat=args.mc_stat)
    except (ExportError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote the analysis bundle {path}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return run_command(args)
    if args.command == "export":
        return export_command(args)
    return 2
