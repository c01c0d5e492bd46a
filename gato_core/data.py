"""Events for a RunConfig: toys generated once and cached on disk by scenario/size/seed,
or an imported dataset; and the held-out sample each run is also evaluated on."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .config import ConfigError, RunConfig
from .readers import DatasetError
from .scenarios import EventSample, generate

CACHE_VERSION = 1


def _key(config: RunConfig, seed: int) -> str:
    spec = {
        "v": CACHE_VERSION, "scenario": config.scenario, "n_signal": config.n_signal,
        "n_bkg": config.n_bkg, "seed": seed, "noise": config.noise,
        "mass_sigma": config.mass_sigma if config.info.has_mass else None,
    }
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def load_events(config: RunConfig, cache_dir=None, datasets_dir=None,
                seed: int | None = None) -> EventSample:
    """The run's events: a toy sample (generated, or read from ``cache_dir`` if made before)
    or, for scenario "dataset", the imported dataset ``config.dataset`` in ``datasets_dir``.

    ``seed`` overrides the toy generator's seed (the held-out sample uses another one).
    """
    if config.is_dataset:
        from .datasets import load_dataset

        if datasets_dir is None:
            raise ConfigError({"dataset": "a dataset run needs the datasets folder"})
        try:
            return load_dataset(datasets_dir, config.dataset)
        except DatasetError as err:
            raise ConfigError({"dataset": str(err)}) from None
    seed = config.seed if seed is None else int(seed)

    def make():
        return generate(config.scenario, config.n_signal, config.n_bkg, seed,
                        config.noise, config.mass_sigma)

    if cache_dir is None:
        return make()
    path = Path(cache_dir) / f"{config.scenario}-{_key(config, seed)}.npz"
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
                    meta={"seed": seed, "n_signal": config.n_signal,
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


#: The held-out toy sample's seed is the run's seed plus this: beyond every seed a RunConfig
#: accepts, so it never equals another run's training sample.
HELD_OUT_SEED_OFFSET = 2 ** 31


def held_out_split(config: RunConfig, events: EventSample, cache_dir=None):
    """(training events, held-out events or None, description of the held-out sample).

    Toys: the held-out sample is an independent sample from the generator (same size,
    seed + HELD_OUT_SEED_OFFSET). Datasets: a random ``held_out_fraction`` of the events
    (drawn with the run's seed) is held out; both parts get their weights divided by their
    share, so yields stay those of the full dataset and the two significances compare.
    """
    if not config.is_dataset:
        seed = config.seed + HELD_OUT_SEED_OFFSET
        held = load_events(config, cache_dir, seed=seed)
        return events, held, {"kind": "independent", "seed": seed, "n_events": held.n_events,
                              "fraction": None}
    fraction = float(config.held_out_fraction)
    if fraction <= 0.0:
        return events, None, None
    rng = np.random.default_rng(config.seed)
    is_held = rng.random(events.n_events) < fraction
    held = events.subset(is_held, 1.0 / fraction)
    train = events.subset(~is_held, 1.0 / (1.0 - fraction))
    return train, held, {"kind": "split", "seed": config.seed, "n_events": held.n_events,
                         "fraction": fraction}
