"""Runs as the compare view loads them (``ComparedRun``), built by hand: each K\'s history
rises linearly, results and baselines are round numbers a test can predict."""
from __future__ import annotations

from gato_core.config import RunConfig
from gato_core.scenarios import SCENARIOS
from gato_dash.comparison import loading


def make_run(run_id, scenario="one_d", epochs=20, ks=(3, 5), seed=42, name=None,
             z_offset=0.0, **config_overrides) -> loading.ComparedRun:
    signals = ["signal"] if scenario == "one_d" else ["signal1", "signal2"]
    config = RunConfig.defaults(scenario, epochs=epochs, n_cats=list(ks), seed=seed,
                                **config_overrides).to_dict()
    by_k, results = {}, []
    for k in ks:
        records = []
        for e in range(epochs):
            z = 1.0 + z_offset + e / epochs
            snapshot_epoch = e % 5 == 4 or e == epochs - 1
            records.append(dict(
                n_cats=k, epoch=e, epochs=epochs, loss=-z, total_loss=-z,
                significance={s: z for s in signals},
                hard_significance={s: z - 0.01 for s in signals} if snapshot_epoch else None,
                mean_abs_bias=0.5 / (e + 1) if snapshot_epoch else None,
                temperature=1.0 - 0.9 * e / epochs, learning_rate=0.1))
        by_k[k] = records
        if scenario == "one_d":
            cuts = [(i + 1) / k for i in range(k - 1)]
            edges = [0.0] + cuts + [1.0]
            categories = [dict(index=i, range=[edges[i], edges[i + 1]], background=100.0 / (i + 1),
                               signal={"signal": 5.0 * (i + 1)}, z={"signal": 0.3})
                          for i in range(k)]
            snapshot = {"epoch": epochs - 1, "temperature": 0.1, "boundaries": cuts}
        else:
            n = 20
            cells = [-1 if (ix + 0.5) / n + (iy + 0.5) / n > 1 else ix * k // n
                     for iy in range(n) for ix in range(n)]
            categories = []
            snapshot = {"epoch": epochs - 1, "temperature": 0.1, "grid": n, "categories": cells}
        results.append(dict(
            n_cats=k, status="finished", message="", epochs_done=epochs,
            significance={s: 1.4 + z_offset + k / 100 for s in signals},
            objective=1.4 + z_offset + k / 100, categories=categories,
            order=list(reversed(range(k))), boundaries=None, snapshot=snapshot,
            epoch_ms_median=2.5))
    baselines = {s: {"2": 0.8, "5": 1.0, "10": 1.1} for s in signals}
    run = dict(id=run_id, name=name or run_id, scenario=scenario, status="finished",
               config=config, created=1_700_000_000.0, started=1_700_000_001.0,
               finished=1_700_000_031.0, note="", tags=[],
               run_info=dict(signal_names=signals, baselines=baselines,
                             optimum_1d={str(k): 1.6 + k / 100 for k in ks}
                             if scenario == "one_d" else None))
    return loading.ComparedRun(run=run, results=results, histories=by_k,
                               dim=SCENARIOS[scenario].dim, named_signals=signals)
