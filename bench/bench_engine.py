"""Engine speed and memory: median ms per training epoch, compile time, peak memory.

    python bench/bench_engine.py            # scenario defaults + N x K table + TFP reference
    python bench/bench_engine.py --quick    # scenario defaults only

Each measurement runs in its own process so its peak memory (ru_maxrss) is its own.
Targets (2-core machine): bump hunt defaults <= 150 ms/epoch, 1-D defaults <= 40 ms,
cost ~linear in N*K, peak memory < 2 GB at 1.2 M events.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(scenario: str, n_events: int | None, n_cats: int, epochs: int, formulation: str) -> dict:
    """Runs inside a child process."""
    import numpy as np
    import tensorflow as tf

    from gato_core.config import RunConfig
    from gato_core.model import build
    from gato_core.scenarios import SCENARIOS, generate
    from gato_core.training import _Trainer, role_weights

    info = SCENARIOS[scenario]
    if n_events is None:
        n_signal, n_bkg = info.n_signal, info.n_bkg
    else:  # keep the default signal fraction
        frac = info.n_signal * len(info.signals) / (info.n_signal * len(info.signals) + info.n_bkg)
        n_signal = max(100, int(n_events * frac / len(info.signals)))
        n_bkg = n_events - n_signal * len(info.signals)
    events = generate(scenario, n_signal, n_bkg, seed=1)
    cfg = RunConfig.defaults(scenario)
    model = build("gmm", n_cats, events.dim, info.mean_mode, info.score_range, seed=1)
    roles = tf.constant(role_weights(events))
    args = [tf.constant(v, tf.float32) for v in (0.01, 0.5, 0.0, cfg.thr_yield, 0.0, cfg.thr_unc)]
    if formulation in ("fused", "fused_graph"):
        # fused_graph: the same step under plain tf.function, to show what XLA adds
        trainer = _Trainer(model, len(events.signal_names), jit_compile=formulation == "fused")
        inputs = model.prepare_inputs(events.scores)
        step = lambda: trainer._compiled_step(inputs, roles, *args, tf.constant(True))  # noqa: E731
    else:
        step = tfp_reference_step(model, events, args)
    tick = time.perf_counter()
    step()[0].numpy()
    compile_s = time.perf_counter() - tick
    times = []
    for _ in range(epochs):
        tick = time.perf_counter()
        step()[0].numpy()
        times.append(1000 * (time.perf_counter() - tick))
    return {
        "scenario": scenario, "n_events": events.n_events, "n_cats": n_cats,
        "formulation": formulation, "ms_per_epoch": float(np.median(times)),
        "compile_s": compile_s,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def tfp_reference_step(model, events, args):
    """The straightforward formulation: per-process Python loop over TFP distributions,
    plain tf.function, plain SGD instead of RMSprop (which favours it)."""
    import tensorflow as tf
    import tensorflow_probability as tfp

    from gato_core.objective import objective_loss, significance_per_signal

    per_process = []
    for i, name in enumerate(events.process_names):
        mask = events.process == i
        weight = events.weight[mask] * events.in_window()[mask] if name in events.signal_names \
            else events.weight[mask]
        per_process.append((name, tf.constant(events.scores[mask]), tf.constant(weight)))
    signals = list(events.signal_names)
    lr, temperature = args[0], args[1]

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            dist = tfp.distributions.MultivariateNormalTriL(loc=model.means(),
                                                            scale_tril=model.scale_tril())
            log_pi = tf.nn.log_softmax(model.logits)
            signal = {s: None for s in signals}
            background = tf.zeros(model.n_cats)
            for name, x, w in per_process:
                gamma = tf.nn.softmax((dist.log_prob(x[:, None, :]) + log_pi) / temperature, axis=1)
                yields = tf.reduce_sum(gamma * w[:, None], axis=0)
                if name in signal:
                    signal[name] = yields
                else:
                    background += yields
            loss = objective_loss(significance_per_signal(tf.stack([signal[s] for s in signals]), background))
        grads = tape.gradient(loss, model.variables_list)
        for v, g in zip(model.variables_list, grads):
            v.assign_sub(lr * g)
        return loss, loss

    return step


def run_child(spec: dict) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                          capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        return {**spec, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def row(r: dict) -> str:
    if "error" in r:
        return f"{r['scenario']:<12} {str(r.get('n_events')):>9} {r['n_cats']:>3}  error: {r['error']}"
    return (f"{r['scenario']:<12} {r['n_events']:>9,} {r['n_cats']:>3} {r['formulation']:<10}"
            f" {r['ms_per_epoch']:>9.1f} {r['compile_s']:>9.2f} {r['peak_mb']:>9.0f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(measure(**spec)))
        return
    print(f"{'scenario':<12} {'events':>9} {'K':>3} {'form':<10} {'ms/epoch':>9} {'compile s':>9} {'peak MB':>9}")
    specs = [
        {"scenario": "one_d", "n_events": None, "n_cats": 5},
        {"scenario": "three_class", "n_events": None, "n_cats": 5},
        {"scenario": "bump_hunt", "n_events": None, "n_cats": 5},
    ]
    for spec in specs:
        print(row(run_child({**spec, "epochs": args.epochs, "formulation": "fused"})), flush=True)
    if args.quick:
        return
    for spec in specs:
        print(row(run_child({**spec, "epochs": args.epochs, "formulation": "fused_graph"})), flush=True)
    print(row(run_child({"scenario": "bump_hunt", "n_events": None, "n_cats": 5,
                         "epochs": 5, "formulation": "tfp_loop"})), flush=True)
    for n in (100_000, 300_000, 1_200_000, 5_000_000):
        for k in (3, 5, 10, 20):
            print(row(run_child({"scenario": "three_class", "n_events": n, "n_cats": k,
                                 "epochs": max(5, args.epochs // (1 + n // 1_000_000)),
                                 "formulation": "fused"})), flush=True)


if __name__ == "__main__":
    main()
