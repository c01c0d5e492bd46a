"""Optimiser quality: how close trained categories come to the targets and the exact optimum.

    python bench/bench_quality.py                      # both workflows, seed settings
    python bench/bench_quality.py --quick              # small samples, few epochs
    python bench/bench_quality.py --workflow one_d --ks 5 10 20 --preset reference
    python bench/bench_quality.py --workflow bump_hunt --ks 3 4 5 6 8 10 --set n_starts=1

Samples: the training sample is the scenario's own (seed 42); the independent sample comes
from the same generator with seed 123. Bump hunt: the geometric mean of the two signals' Z,
on the training sample (as the reference package reports it) and on the independent sample.
1-D: Z of the learned boundaries against the exact optimum (dynamic programming over 1500
fine bins, gato_core.baselines) fitted on the training sample, both on the independent
sample; the in-sample optimum of each sample is printed too. The same 1-D table follows
for the sigmoid-cut model.

``--train-seeds 42 7 2026`` repeats everything on other training samples of the same size
(the independent sample stays seed 123) and ends with the mean per setting and K: the
training-sample Z of one categorisation moves by about 0.02 from sample to sample at
K = 8, as much as the gap to the target, so one sample cannot rank two settings there.
For the bump hunt the header also prints the argmax baselines of the training sample next
to the reference package's (its own sample, FIELD-NOTES.md), which shows how much easier
or harder this sample is than the one the targets were measured on.

Times are wall-clock seconds per K (data generation excluded) and the seconds spent in
the training steps alone, so compare two settings by running them in the same invocation (``--compare``), not across invocations
on a busy machine.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from gato_core import baselines, evaluation  # noqa: E402
from gato_core.config import RunConfig  # noqa: E402
from gato_core.data import load_events  # noqa: E402
from gato_core.significance import significance_per_signal  # noqa: E402

TRAIN_SEED, INDEPENDENT_SEED = 42, 123
#: targets of issue #17: bump hunt geometric-mean Z on the training sample; 1-D ratio
BUMP_TARGETS = {5: 1.694, 8: 1.875}
#: before the change (seed settings, this machine class), for "no K gets worse"
BUMP_TODAY = {5: 1.689, 8: 1.830}
ONE_D_TARGET_RATIO = 0.99
#: the reference package's argmax baselines (2n+1 = 5/11/21 categories) on its own sample
REFERENCE_PACKAGE_BASELINES = {5: 1.205, 11: 1.502, 21: 1.661}


def _parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def config_for(workflow: str, ks, quick: bool, preset: str | None, overrides: dict,
               model: str = "gmm", seed: int = TRAIN_SEED) -> RunConfig:
    base = RunConfig.preset(preset, workflow) if preset else RunConfig.defaults(workflow)
    changes = {"n_cats": tuple(ks), "seed": seed, "model": model,
               "snapshot_interval": 100_000}
    if quick:
        changes.update(n_signal=base.n_signal // 10, n_bkg=base.n_bkg // 10,
                       epochs=max(base.epochs // 3, 50))
    changes.update(overrides)
    return base.updated(**changes)


def boundaries_z(events, boundaries) -> float:
    category = evaluation.segment_index(events.scores[:, 0].astype(np.float64), boundaries)
    signal, background, _ = baselines.category_yields(events, category, len(boundaries) + 1)
    return float(significance_per_signal(signal, background)[0])


def train_and_time(config: RunConfig, events):
    """{K: (TrainingResult, wall seconds, seconds in the training steps)} for every K."""
    from gato_core.training import train

    out = {}
    tick, step_ms = None, 0.0
    for record in train(config, events):
        if record.kind == "run_info":
            tick = time.perf_counter()
        elif record.kind == "epoch":
            step_ms += record.epoch_ms
        elif record.kind == "result":
            now = time.perf_counter()
            out[record.n_cats] = (record, now - tick, step_ms / 1000.0)
            tick, step_ms = now, 0.0
    return out


def bump_table(config: RunConfig, train_events, independent, label: str) -> list[dict]:
    rows = []
    for k, (result, seconds, step_seconds) in train_and_time(config, train_events).items():
        z_train = result.objective
        z_ind = evaluation.evaluate(result.parameters, independent,
                                    config.info.score_range)["objective"]
        target = BUMP_TARGETS.get(k, BUMP_TODAY.get(k))
        rows.append({"setting": label, "K": k, "z_train": z_train, "z_independent": z_ind,
                     "target": target, "ratio": z_train / target if target else None,
                     "seconds": seconds, "step_s": step_seconds,
                     "status": result.status})
    return rows


def one_d_table(config: RunConfig, train_events, independent, label: str) -> list[dict]:
    rows = []
    for k, (result, seconds, step_seconds) in train_and_time(config, train_events).items():
        z_opt_train, cuts = baselines.optimum_1d(train_events, k)
        z_opt_transferred = boundaries_z(independent, cuts)
        z_opt_independent, _ = baselines.optimum_1d(independent, k)
        z_train = result.objective
        z_ind = boundaries_z(independent, result.boundaries)
        rows.append({
            "setting": label, "K": k, "z_train": z_train, "z_independent": z_ind,
            "optimum_train": z_opt_train, "optimum_transferred": z_opt_transferred,
            "optimum_independent": z_opt_independent,
            "target": ONE_D_TARGET_RATIO * z_opt_transferred,
            "ratio": z_ind / z_opt_transferred, "n_categories": len(result.boundaries) + 1,
            "seconds": seconds, "step_s": step_seconds, "status": result.status,
        })
    return rows


def print_header(title: str, one_d: bool) -> None:
    print(f"\n{title}")
    head = f"{'setting':>10} {'K':>3} {'Z train':>8} {'Z indep':>8} {'target':>8} {'ratio':>7}"
    if one_d:
        head += f" {'opt.train':>9} {'opt.transf':>10} {'opt.indep':>9} {'cats':>4}"
    print(head + f" {'seconds':>8} {'steps s':>8}", flush=True)


def print_rows(rows: list[dict]) -> None:
    for r in rows:
        one_d = "optimum_train" in r
        line = (f"{r['setting']:>10} {r['K']:>3} {r['z_train']:8.4f} {r['z_independent']:8.4f} "
                f"{r['target'] or float('nan'):8.4f} "
                f"{(100 * r['ratio'] if r['ratio'] else float('nan')):6.2f}%")
        if one_d:
            line += (f" {r['optimum_train']:9.4f} {r['optimum_transferred']:10.4f} "
                     f"{r['optimum_independent']:9.4f} {r['n_categories']:>4}")
        print(line + f" {r['seconds']:8.1f} {r['step_s']:8.1f}" + ("" if r["status"] == "finished" else
                                                 f"  ({r['status']})"), flush=True)


def print_sample_baselines(events, seed: int) -> None:
    """This sample's argmax baselines next to the reference package's on its own sample."""
    ours = baselines.reference_baselines(events, (2, 5, 10))["objective"]
    print(f"\nargmax baselines, sample {seed} vs the reference package's sample: " + ", ".join(
        f"{n} cats {ours[n]:.3f} vs {ref:.3f} ({100 * ours[n] / ref:.1f} %)"
        for n, ref in REFERENCE_PACKAGE_BASELINES.items()), flush=True)


def print_means(rows: list[dict]) -> None:
    """Mean Z per workflow, model, setting and K over the training samples."""
    print("\nmean over training samples")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["workflow"], r["model"], r["setting"], r["K"]), []).append(r)
    for (workflow, model, setting, k), group in groups.items():
        z_train = [r["z_train"] for r in group]
        z_ind = [r["z_independent"] for r in group]
        ratio = [r["ratio"] for r in group if r["ratio"]]
        print(f"{workflow:>10} {model:>12} {setting:>10} K={k:<3} samples={len(group)} "
              f"Z train {np.mean(z_train):.4f} (sd {np.std(z_train, ddof=1):.4f}), "
              f"Z indep {np.mean(z_ind):.4f}"
              + (f", ratio {100 * np.mean(ratio):.2f}%" if ratio else ""), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflow", choices=["one_d", "bump_hunt", "both"], default="both")
    parser.add_argument("--ks", type=int, nargs="+", help="category counts (default: seed K)")
    parser.add_argument("--quick", action="store_true", help="1/10 of the events, 1/3 epochs")
    parser.add_argument("--preset", help="start from RunConfig.preset(NAME) (e.g. reference)")
    parser.add_argument("--compare", nargs="*", metavar="PRESET",
                        help="train each preset in turn, interleaved per K (A/B timings)")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="RunConfig overrides, e.g. epochs=100 n_starts=1")
    parser.add_argument("--models", nargs="+", default=["gmm", "sigmoid_cuts"],
                        help="1-D models to train")
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[TRAIN_SEED],
                        help="training samples to repeat everything on (default: 42)")
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "gato-bench"))
    parser.add_argument("--json", help="also write all rows to this JSON file")
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.set)
    overrides = {k: _parse_value(v) for k, v in overrides.items()}
    workflows = ["one_d", "bump_hunt"] if args.workflow == "both" else [args.workflow]
    settings = args.compare if args.compare else [args.preset]
    all_rows = []
    for workflow in workflows:
        models = args.models if workflow == "one_d" else ["gmm"]
        ks = args.ks or (RunConfig.defaults(workflow).n_cats if workflow == "one_d" else (5, 8))
        for seed in args.train_seeds:
            probe = config_for(workflow, ks, args.quick, settings[0], overrides, seed=seed)
            train_events = load_events(probe, args.cache_dir)
            independent = load_events(probe.updated(seed=INDEPENDENT_SEED), args.cache_dir)
            for model in models:
                if workflow == "bump_hunt":
                    print_sample_baselines(train_events, seed)
                print_header(f"{workflow} ({model}), {'quick, ' if args.quick else ''}"
                             f"{probe.n_signal} signal / {probe.n_bkg} background per sample, "
                             f"{probe.epochs} epochs, training sample seed {seed}",
                             workflow == "one_d")
                for k in ks:  # interleave settings per K so machine load hits them alike
                    for setting in settings:
                        config = config_for(workflow, [k], args.quick, setting, overrides, model,
                                            seed)
                        table = one_d_table if workflow == "one_d" else bump_table
                        rows = table(config, train_events, independent, setting or "default")
                        print_rows(rows)
                        for r in rows:
                            r.update(workflow=workflow, model=model, train_seed=seed)
                        all_rows += rows
                        if args.json:  # after every row, so a long run keeps what it measured
                            Path(args.json).write_text(json.dumps(all_rows, indent=1))
    if len(args.train_seeds) > 1:
        print_means(all_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
