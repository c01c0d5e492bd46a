"""Issue #22 (trees, cut, scale factors, systematics): import speed and training epoch time
against another checkout (default /work/main), measured in one run, interleaved.

    python bench/bench_realism.py [--other /work/main] [--events 2000000] [--rounds 3]

Each measurement runs in its own subprocess with PYTHONPATH set to one checkout:
1. importing an N-event Parquet file (2 scores, weight, text process column) with a plain
   mapping (none of the new settings): this branch / other, min over rounds;
2. the same import with a selection, luminosity and process scale factors (this branch
   only: the new steps' cost, against the plain import of the same round);
3. the median compiled epoch time of train() (1-D toy, 400 k events, K = 5, one start):
   this branch / other; and this branch with objective "asimov_bkg_unc".
Prints the figures and the ratios (target: plain import and plain training ratios ~1).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time, tempfile
mode, path = sys.argv[1], sys.argv[2]
if mode.startswith("import"):
    from gato_core.datasets import import_dataset
    mapping = {"score_columns": ["s0", "s1"], "weight_column": "w", "process_column": "proc",
               "signals": ["sig"]}
    if mode == "import_steps":
        mapping.update(selection="s0 > 0.05 & s1 < 0.97", luminosity=138.0,
                       process_scales={"sig": 0.5, "bkg1": 1.1})
    with tempfile.TemporaryDirectory() as tmp:
        tick = time.perf_counter()
        import_dataset([path], mapping, tmp)
        print(json.dumps({"seconds": time.perf_counter() - tick}))
else:
    from gato_core.config import RunConfig
    from gato_core.training import train
    extra = {"objective": "asimov_bkg_unc", "bkg_rel_unc": 0.1} if mode == "train_sigma" else {}
    config = RunConfig.defaults("one_d", n_signal=100_000, n_bkg=300_000, epochs=60,
                                n_cats=[5], n_starts=1, seed=3, **extra)
    result = [r for r in train(config) if r.kind == "result"][0]
    print(json.dumps({"seconds": result.epoch_ms_median / 1000.0}))
"""


def write_file(path: Path, n: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    proc = rng.choice(["sig", "bkg1", "bkg2"], n, p=[0.2, 0.5, 0.3])
    s0 = rng.random(n).astype("f4")
    table = pa.table({"s0": s0, "s1": (rng.random(n) * (1 - s0)).astype("f4"),
                      "w": rng.uniform(0.5, 1.5, n).astype("f4"),
                      "proc": pa.array(proc).dictionary_encode()})
    pq.write_table(table, path, row_group_size=1 << 20)


def measure(tree: Path, mode: str, path: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(path)], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=1800)
    if done.returncode:
        raise SystemExit(f"{mode} in {tree} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--other", default="/work/main")
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    other = Path(args.other)
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.parquet"
        write_file(path, args.events)
        for _ in range(args.rounds):
            for key, tree, mode in (("import_this", ROOT, "import"),
                                    ("import_other", other, "import"),
                                    ("import_steps", ROOT, "import_steps")):
                times.setdefault(key, []).append(measure(tree, mode, path))
        if not args.skip_train:
            for _ in range(args.rounds):
                for key, tree, mode in (("train_this", ROOT, "train"),
                                        ("train_other", other, "train"),
                                        ("train_sigma", ROOT, "train_sigma")):
                    times.setdefault(key, []).append(measure(tree, mode, path))
    best = {k: min(v) for k, v in times.items()}
    print(f"{args.events:,} events, {args.rounds} rounds (min of rounds), other = {other}")
    for key, values in times.items():
        print(f"  {key:14s} min {best[key]:.4f} s   all " + " ".join(f"{v:.4f}" for v in values))
    print(f"import, plain mapping: this / other = {best['import_this'] / best['import_other']:.2f}")
    print(f"import with cut + scale factors / plain (this branch) = "
          f"{best['import_steps'] / best['import_this']:.2f}")
    if not args.skip_train:
        print(f"training epoch (compiled, median): this / other = "
              f"{best['train_this'] / best['train_other']:.2f}")
        print(f"training epoch with objective asimov_bkg_unc / plain (this branch) = "
              f"{best['train_sigma'] / best['train_this']:.2f}")


if __name__ == "__main__":
    main()
