"""Hand-made run records of realistic shape and size, following docs/CONTRACTS.md.

Used by the results-figure, report, store, live and page tests, the results browser test
(written into a run store) and the benchmarks. They need no TensorFlow and take milliseconds,
so the figure code is tested independently of the engine; tests/test_figures_results.py
also checks the same builders against a real (tiny) training run.
"""
from __future__ import annotations

import math

import numpy as np

BACKGROUNDS = ["bkg1", "bkg2", "bkg3", "bkg4", "bkg5"]
BKG_XS = [100.0, 80.0, 50.0, 20.0, 10.0]
SLOPES = [0.05, 0.04, 0.035, 0.03, 0.025]
MASS_EDGES = np.linspace(100.0, 180.0, 81)
WINDOW = [123.5, 126.5]


def _simplex_points(n_cats: int, rng) -> np.ndarray:
    """``n_cats`` random points inside the (p1, p2) simplex."""
    pts = rng.dirichlet(np.ones(3), size=n_cats)[:, :2]
    return pts


def _voronoi_grid(centres: np.ndarray, grid: int) -> list[int]:
    """Component index of the nearest centre per cell, -1 outside the simplex (iy*n+ix)."""
    c = (np.arange(grid) + 0.5) / grid
    x, y = np.meshgrid(c, c)  # [iy, ix]
    d = (x[..., None] - centres[:, 0]) ** 2 + (y[..., None] - centres[:, 1]) ** 2
    comp = np.argmin(d, axis=-1)
    comp[x + y > 1] = -1
    return comp.ravel().astype(int).tolist()


def _snapshot_epochs(epochs: int, interval: int) -> list[int]:
    """Like the engine: every ``interval`` epochs from 0, and the last (400/10 -> 41)."""
    return [e for e in range(epochs) if e % interval == 0 or e == epochs - 1]


def run_info(scenario: str = "bump_hunt", density_grid: int = 40) -> dict:
    if scenario == "one_d":
        signals = ["signal"]
        edges = np.linspace(0, 1, 51)
        centres = (edges[:-1] + edges[1:]) / 2
        counts = {"signal": (50 * np.exp(-((centres - 0.9) / 0.1) ** 2)).round(3).tolist()}
        for b, xs in zip(BACKGROUNDS, BKG_XS):
            counts[b] = (xs * 40 * np.exp(-3 * centres)).round(3).tolist()
        return {
            "kind": "run_info", "scenario": "one_d", "n_events": 400_000,
            "process_names": signals + BACKGROUNDS, "signal_names": signals,
            "yields": {"signal": 50.0, **dict(zip(BACKGROUNDS, [x * 100 for x in BKG_XS]))},
            "baselines": {"signal": {"2": 0.7, "5": 1.007, "10": 1.172, "20": 1.324}},
            "optimum_1d": {"5": 1.635, "10": 1.701, "20": 1.715},
            "baseline_objective": {"2": 0.7, "5": 1.007, "10": 1.172, "20": 1.324},
            "data_seconds": 0.4,
            "inclusive": {"processes": signals + BACKGROUNDS, "signals": signals,
                          "score_hist": {"edges": edges.tolist(), "counts": counts}},
        }
    signals = ["signal1", "signal2"]
    c = (np.arange(density_grid) + 0.5) / density_grid
    x, y = np.meshgrid(c, c)
    inside = x + y <= 1
    density = {}
    for name, (mx, my, xs) in {"signal1": (0.8, 0.1, 50), "signal2": (0.1, 0.8, 10),
                               **{b: (0.2 + 0.05 * i, 0.2, s) for i, (b, s)
                                  in enumerate(zip(BACKGROUNDS, BKG_XS))}}.items():
        d = xs * np.exp(-((x - mx) ** 2 + (y - my) ** 2) / 0.05) * inside
        density[name] = d.ravel().round(3).tolist()
    info = {
        "kind": "run_info", "scenario": scenario, "n_events": 1_200_000,
        "process_names": signals + BACKGROUNDS, "signal_names": signals,
        "yields": {"signal1": 50.0, "signal2": 10.0,
                   **dict(zip(BACKGROUNDS, [x * 100 for x in BKG_XS]))},
        "baselines": {"signal1": {"5": 1.3, "11": 1.6, "21": 1.75},
                      "signal2": {"5": 1.1, "11": 1.4, "21": 1.58}},
        "optimum_1d": None,
        "baseline_objective": {"5": 1.205, "11": 1.502, "21": 1.661},
        "data_seconds": 1.2,
        "inclusive": {"processes": signals + BACKGROUNDS, "signals": signals,
                      "score_density": {"grid": density_grid, "counts": density}},
    }
    if scenario == "bump_hunt":
        m = (MASS_EDGES[:-1] + MASS_EDGES[1:]) / 2
        counts = {s: (xs * 100 * np.exp(-0.5 * ((m - 125) / 1.5) ** 2) / (1.5 * 2.5066)).round(3).tolist()
                  for s, xs in (("signal1", 0.5), ("signal2", 0.1))}
        for b, xs, k in zip(BACKGROUNDS, BKG_XS, SLOPES):
            shape = np.exp(-k * (m - 100))
            counts[b] = (xs * 100 * shape / shape.sum()).round(3).tolist()
        info["inclusive"]["mass_hist"] = {"edges": MASS_EDGES.tolist(), "counts": counts,
                                          "window": WINDOW}
    return info


def epochs_for(n_cats: int, scenario: str = "bump_hunt", epochs: int = 400,
               snapshot_interval: int = 10, grid: int = 120, seed: int = 0) -> list[dict]:
    """EpochRecords of one K; 2-D snapshots are Voronoi maps of centres drifting over time."""
    rng = np.random.default_rng(seed + n_cats)
    signals = ["signal"] if scenario == "one_d" else ["signal1", "signal2"]
    start = _simplex_points(n_cats, rng)
    end = _simplex_points(n_cats, rng)
    snaps = set(_snapshot_epochs(epochs, snapshot_interval))
    records = []
    for e in range(epochs):
        frac = e / max(epochs - 1, 1)
        temperature = 0.1 + 0.45 * (1 + math.cos(math.pi * frac))
        z = {s: 0.5 + frac * (1.0 + 0.1 * i) for i, s in enumerate(signals)}
        record = {
            "kind": "epoch", "n_cats": n_cats, "epoch": e, "epochs": epochs,
            "loss": -float(np.sqrt(np.prod(list(z.values())))),
            "total_loss": -float(np.sqrt(np.prod(list(z.values())))),
            "significance": z, "penalty_yield": 0.0, "penalty_unc": 0.0,
            "temperature": temperature, "learning_rate": 0.05 * (1 - frac) + 0.001,
            "epoch_ms": 12.0, "elapsed_s": 0.012 * e, "mean_abs_bias": None,
            "hard_significance": None, "snapshot": None,
        }
        if e in snaps:
            record["mean_abs_bias"] = 0.3 * (1 - frac) + 0.01
            record["hard_significance"] = dict(z)
            if scenario == "one_d":
                cuts = np.sort(np.linspace(0.2, 0.95, n_cats - 1) + 0.05 * (1 - frac)
                               * rng.standard_normal(n_cats - 1))
                record["snapshot"] = {"epoch": e, "temperature": temperature,
                                      "boundaries": np.clip(cuts, 0, 1).tolist()}
            else:
                centres = (1 - frac) * start + frac * end
                record["snapshot"] = {"epoch": e, "temperature": temperature, "grid": grid,
                                      "categories": _voronoi_grid(centres, grid)}
        records.append(record)
    return records


def result_for(n_cats: int, epoch_records: list[dict], scenario: str = "bump_hunt",
               status: str = "finished") -> dict:
    rng = np.random.default_rng(100 + n_cats)
    signals = ["signal"] if scenario == "one_d" else ["signal1", "signal2"]
    last = [r for r in epoch_records if r["snapshot"]][-1]
    # Display order: a permutation, so that tests notice when it is ignored.
    order = [int(v) for v in rng.permutation(n_cats)]
    categories = []
    for i in range(n_cats):
        process_yields = {s: float(20 * 0.6**i) for s in signals}
        process_yields.update({b: float(xs * 2 * 1.8**i) for b, xs in zip(BACKGROUNDS, BKG_XS)})
        background = sum(process_yields[b] for b in BACKGROUNDS)
        cat = {
            "index": i, "component": order.index(i),
            "signal": {s: process_yields[s] for s in signals},
            "background": background, "bkg_sum_w2": background * 0.01,
            "rel_unc": math.sqrt(background * 0.01) / background,
            "z": {s: process_yields[s] / math.sqrt(background) for s in signals},
            "process_yields": process_yields,
        }
        if scenario == "one_d":
            edges = [0.0] + list(last["snapshot"]["boundaries"]) + [1.0]
            cat["range"] = [edges[i], edges[i + 1]]
        categories.append(cat)
    dim = 1 if scenario == "one_d" else 2
    components = []
    for k in range(n_cats):
        mean = rng.dirichlet(np.ones(3))[:dim] if dim == 2 else [0.2 + 0.7 * k / n_cats]
        a = rng.normal(0, 0.05, size=(dim, dim))
        cov = (a @ a.T + 0.003 * np.eye(dim)).tolist()
        components.append({"component": k, "weight": 1.0 / n_cats, "mean": list(map(float, mean)),
                           "cov": cov})
    result = {
        "kind": "result", "n_cats": n_cats, "status": status, "message": "",
        "epochs_done": last["epoch"] + 1,
        "significance": {s: 1.2 + 0.05 * n_cats + 0.1 * i for i, s in enumerate(signals)},
        "objective": 1.25 + 0.05 * n_cats,
        "categories": categories, "order": order,
        "boundaries": last["snapshot"]["boundaries"] if scenario == "one_d" else None,
        "snapshot": dict(last["snapshot"]),
        "mass_histograms": None,
        "parameters": {"model": "gmm", "n_cats": n_cats, "dim": dim,
                       "logits": rng.normal(size=n_cats).tolist(),
                       "raw_means": rng.normal(size=(n_cats, dim)).tolist(),
                       "raw_scale": rng.normal(size=(n_cats, dim, dim)).tolist()},
        "epoch_ms_median": 12.0,
        "reweight_factors": None,
        "components": components,
    }
    if scenario == "bump_hunt":
        m = (MASS_EDGES[:-1] + MASS_EDGES[1:]) / 2
        counts, fits = [], []
        for cat in categories:
            per_proc = []
            for p in signals:
                per_proc.append((cat["process_yields"][p] * 3
                                 * np.exp(-0.5 * ((m - 125) / 1.5) ** 2) / 3.76).round(4).tolist())
            for b, k in zip(BACKGROUNDS, SLOPES):
                shape = np.exp(-k * (m - 100))
                per_proc.append((cat["process_yields"][b] * 25 * shape / shape.sum()).round(4).tolist())
            counts.append(per_proc)
            total = np.sum(per_proc[len(signals):], axis=0)
            fits.append({"A": float(total[0] * math.exp(0.04 * 100.5)), "B": -0.04})
        fits[-1] = None  # a category whose fit failed: drawn without a curve
        result["mass_histograms"] = {
            "edges": MASS_EDGES.tolist(), "processes": signals + BACKGROUNDS,
            "signals": signals, "window": WINDOW, "counts": counts, "fits": fits,
        }
        result["reweight_factors"] = [3 / 80] * n_cats
    return result


def run_record(scenario: str = "bump_hunt", n_cats=(5, 8), name: str = "synthetic run",
               note: str = "", epochs: int = 400, snapshot_interval: int = 10,
               grid: int = 120) -> tuple[dict, list[dict], list[dict]]:
    """(run dict as ``RunStore.get_run`` returns it, all epoch records, all results)."""
    info = run_info(scenario)
    all_epochs, results = [], []
    for k in n_cats:
        recs = epochs_for(k, scenario, epochs, snapshot_interval, grid)
        all_epochs.extend(recs)
        results.append(result_for(k, recs, scenario))
    config = {"scenario": scenario, "model": "gmm", "n_cats": list(n_cats), "epochs": epochs,
              "snapshot_interval": snapshot_interval, "thr_yield": 10.0, "thr_unc": 0.1,
              "lam_yield": 0.0, "lam_unc": 0.0, "seed": 42}
    run = {"id": "synthetic-1", "name": name, "note": note, "tags": [], "scenario": scenario,
           "status": "finished", "message": "", "config": config,
           "created": "2026-11-26T10:00:00", "started": "2026-11-26T10:00:01",
           "finished": "2026-11-26T10:05:00", "heartbeat": None, "run_info": info,
           "current_k": n_cats[-1], "epochs_done": epochs}
    return run, all_epochs, results


def store_finished_run(store, scenario: str = "bump_hunt", n_cats=(5, 8),
                       name: str = "synthetic run", note: str = "", prebuild: bool = False,
                       **config_overrides) -> tuple[str, list[dict], list[dict]]:
    """Write a ``run_record`` into a RunStore as a finished run (it never trains: a queued
    run would start when its page opens). Returns (run id, epoch records, results).

    ``prebuild``: also build and keep each K's figures, as an import does; without it the
    page builds them when first asked (as for a run the training job stored)."""
    from gato_dash.figure_cache import prebuild_figures
    from gato_dash.runtime.recording import store_records

    run, epochs, results = run_record(scenario, n_cats=n_cats, name=name, note=note)
    run_id = store.create_run({**run["config"], **config_overrides}, name=name)
    store.claim(run_id)
    if prebuild:  # the shared record loop, figures included
        store_records(store, run_id, [run["run_info"], *epochs, *results],
                      on_result=prebuild_figures)
    else:
        store.set_run_info(run_id, run["run_info"])
        for record in epochs:
            store.append_epoch(run_id, record)
        for result in results:
            store.put_result(run_id, result)
    if note:
        store.set_note(run_id, note)
    store.set_status(run_id, "finished")
    return run_id, epochs, results


def epoch_record(k: int, epoch: int, snapshot: bool = False) -> dict:
    """A small 1-D EpochRecord dict of K = ``k`` (30 epochs), with a snapshot if asked."""
    rec = {"kind": "epoch", "n_cats": k, "epoch": epoch, "epochs": 30, "loss": -1.0 - epoch / 100,
           "total_loss": -1.0, "significance": {"signal": 1.0 + epoch / 100},
           "penalty_yield": 0.0, "penalty_unc": 0.0, "temperature": 1.0, "learning_rate": 0.1,
           "epoch_ms": 3.0, "elapsed_s": 0.01 * (epoch + 1), "mean_abs_bias": None,
           "hard_significance": None, "snapshot": None}
    if snapshot:
        rec.update(mean_abs_bias=0.1, hard_significance={"signal": 1.2},
                   snapshot={"epoch": epoch, "temperature": 1.0, "boundaries": [0.2, 0.5]})
    return rec
