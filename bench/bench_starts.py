"""Cost of several starts: ms per compiled training step with R starts against one start.

    python bench/bench_starts.py                  # bump hunt sample, K = 3 5 8 10 20, R = 1 2 4
    python bench/bench_starts.py --ks 8 --starts 1 2 3 4 --rounds 30

All steps run in one process and are interleaved round by round, so machine load hits
every setting alike; the figure that matters is the ratio to R = 1 at the same K. With
``explore_fraction`` f, a run with R starts costs about f * ratio + (1 - f) of one start.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from gato_core.config import RunConfig  # noqa: E402
from gato_core.model import MultiStart, build  # noqa: E402
from gato_core.scenarios import SCENARIOS, generate  # noqa: E402
from gato_core.training import _Trainer, role_weights  # noqa: E402


def compiled_step(events, n_cats: int, n_starts: int, info, config):
    starts = [build("gmm", n_cats, events.dim, info.mean_mode, info.score_range, seed=s)
              for s in range(n_starts)]
    model = MultiStart(starts)
    trainer = _Trainer(model, len(events.signal_names))
    inputs = model.prepare_inputs(events.scores)
    roles = tf.constant(role_weights(events))
    args = [tf.constant(v, tf.float32) for v in
            (0.001, 0.5, 0.0, config.thr_yield, 0.0, config.thr_unc)]
    step = lambda: trainer._compiled_step(inputs, roles, *args, tf.constant(True))  # noqa: E731
    step()[0].numpy()  # compile
    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="bump_hunt", choices=sorted(SCENARIOS))
    parser.add_argument("--ks", type=int, nargs="+", default=[3, 5, 8, 10, 20])
    parser.add_argument("--starts", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    info = SCENARIOS[args.scenario]
    config = RunConfig.defaults(args.scenario)
    events = generate(args.scenario, info.n_signal, info.n_bkg, seed=1)
    print(f"{args.scenario}: {events.n_events:,} events, median of {args.rounds} interleaved "
          f"steps", flush=True)
    print(f"{'K':>3} " + " ".join(f"{f'R={r} ms':>9} {'ratio':>6}" for r in args.starts))
    for k in args.ks:
        steps = {r: compiled_step(events, k, r, info, config) for r in args.starts}
        times = {r: [] for r in args.starts}
        for _ in range(args.rounds):
            for r, step in steps.items():
                tick = time.perf_counter()
                step()[0].numpy()
                times[r].append(1000.0 * (time.perf_counter() - tick))
        one = np.median(times[args.starts[0]])
        print(f"{k:>3} " + " ".join(f"{np.median(times[r]):9.1f} {np.median(times[r]) / one:6.2f}"
                                    for r in args.starts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
