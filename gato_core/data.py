"""Events for a RunConfig, generated once and cached on disk by scenario/size/seed."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .config import RunConfig
from .scenarios import EventSample, generate

CACHE_VERSION = 1


def _key(config: RunConfig) -> str:
    spec = {
        "v": CACHE_VERSION, "scenario": config.scenario, "n_signal": config.n_signal,
        "n_bkg": config.n_bkg, "seed": config.seed, "noise": config.noise,
        "mass_sigma": config.mass_sigma if config.info.has_mass else None,
    }
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def load_events(config: RunConfig, cache_dir=None) -> EventSample:
    """Generate the run's events, or read them from ``cache_dir`` if made before."""
    def make():
        return generate(config.scenario, config.n_signal, config.n_bkg, config.seed,
                        config.noise, config.mass_sigma)

    if cache_dir is None:
        return make()
    path = Path(cache_dir) / f"{config.scenario}-{_key(config)}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                return EventSample(
                    scenario=config.scenario,
                    scores=f["scores"], weight=f["weight"], process=f["process"],
                    process_names=tuple(str(x) for x in f["process_names"]),
                    signal_names=tuple(str(x) for x in f["signal_names"]),
                    mass=f["mass"] if f["mass"].size else None,
                    mass_sigma=config.mass_sigma,
                    meta={"seed": config.seed, "n_signal": config.n_signal,
                          "n_bkg": config.n_bkg, "noise": config.noise, "cached": True},
                )
        except (OSError, KeyError, ValueError):
            path.unlink(missing_ok=True)  # a damaged cache file is regenerated
    events = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, scores=events.scores, weight=events.weight, process=events.process,
             process_names=np.array(events.process_names), signal_names=np.array(events.signal_names),
             mass=events.mass if events.mass is not None else np.zeros(0, np.float32))
    os.replace(tmp, path)  # atomic: concurrent runs never read a half-written file
    return events
