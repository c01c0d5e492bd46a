"""Toy scenarios of the reference workflows (ALGORITHM §3), generated with numpy only.

Events are kept in one flat layout per quantity (scores ``[N, D]``, weight, process index,
mass) so that the training hot path never loops over processes in Python.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import lgamma

import numpy as np

#: The seven 3-D Gaussian classes shared by every scenario.
CLASS_MEANS = {
    "signal1": (1.5, -1.0, -1.0),
    "signal2": (-1.0, 1.5, -1.0),
    "bkg1": (-0.5, -0.5, 1.0),
    "bkg2": (0.5, -0.5, 0.8),
    "bkg3": (0.5, 0.5, -0.6),
    "bkg4": (-0.5, 1.0, -0.4),
    "bkg5": (-0.5, 0.5, -0.2),
}
CROSS_SECTIONS = {
    "signal1": 0.5,
    "signal2": 0.1,
    "bkg1": 100.0,
    "bkg2": 80.0,
    "bkg3": 50.0,
    "bkg4": 20.0,
    "bkg5": 10.0,
}
BACKGROUNDS = ("bkg1", "bkg2", "bkg3", "bkg4", "bkg5")
BKG_MASS_SLOPES = (0.05, 0.04, 0.035, 0.03, 0.025)
LUMINOSITY = 100.0
MASS_RANGE = (100.0, 180.0)
MASS_CENTER = 125.0
COVARIANCE = np.full((3, 3), 0.2) + 0.8 * np.eye(3)


@dataclass(frozen=True)
class ScenarioInfo:
    key: str
    title: str
    description: str
    dim: int
    mean_mode: str  # "sigmoid" or "softmax"
    score_range: tuple[float, float]
    signals: tuple[str, ...]
    has_mass: bool
    n_signal: int
    n_bkg: int
    noise: float
    # Training defaults of the reference workflow.
    epochs: int
    n_cats: tuple[int, ...]
    lr_initial: float
    lr_final: float
    t_initial: float
    t_final: float
    baseline_bins: tuple[int, ...]
    thr_yield: float
    thr_unc: float
    # What the dashboard needs of a scenario, here so that a new scenario is added in one
    # place: the "Quick demo" preset (RunConfig fields; small samples, few epochs, one K,
    # done in well under 20 s end to end) and the preview sample's size (signal,
    # background: smooth histograms for ~0.5 s of numpy).
    quick_demo: dict = field(default_factory=dict, compare=False, hash=False)
    preview_events: tuple[int, int] = (20_000, 60_000)


SCENARIOS: dict[str, ScenarioInfo] = {
    "one_d": ScenarioInfo(
        key="one_d",
        title="1-D: signal vs. five backgrounds",
        description=(
            "One likelihood-ratio discriminant in [0, 1] separates one signal from five "
            "backgrounds. GATO places the bin boundaries; the exact optimum is known."
        ),
        dim=1, mean_mode="sigmoid", score_range=(0.0, 1.0), signals=("signal",),
        has_mass=False, n_signal=100_000, n_bkg=300_000, noise=0.3,
        epochs=300, n_cats=(5, 10, 20), lr_initial=0.1, lr_final=0.001,
        t_initial=1.0, t_final=0.05, baseline_bins=(2, 5, 10, 20),
        thr_yield=5.0, thr_unc=0.2,
        quick_demo={"n_signal": 5000, "n_bkg": 15000, "epochs": 80, "n_cats": (5,),
                    "snapshot_interval": 10},
        preview_events=(20_000, 60_000),
    ),
    "three_class": ScenarioInfo(
        key="three_class",
        title="Three-class softmax (2-D)",
        description=(
            "A 3-class classifier output (p1, p2, pB) for two signals and five backgrounds; "
            "categories are regions of the (p1, p2) simplex, loss is -sqrt(Z1 Z2)."
        ),
        dim=2, mean_mode="softmax", score_range=(0.0, 1.0), signals=("signal1", "signal2"),
        has_mass=False, n_signal=100_000, n_bkg=1_000_000, noise=0.3,
        epochs=250, n_cats=(3, 5, 10), lr_initial=0.05, lr_final=0.001,
        t_initial=1.0, t_final=0.05, baseline_bins=(2, 5, 10),
        thr_yield=10.0, thr_unc=0.1,
        quick_demo={"n_signal": 5000, "n_bkg": 50000, "epochs": 60, "n_cats": (3,),
                    "snapshot_interval": 10},
        preview_events=(20_000, 200_000),
    ),
    "bump_hunt": ScenarioInfo(
        key="bump_hunt",
        title="Diphoton bump hunt (2-D + mass)",
        description=(
            "The three-class classifier plus a diphoton mass: two resonances at 125 GeV on "
            "falling continua. Significance counts events in the window 125 ± σm."
        ),
        dim=2, mean_mode="softmax", score_range=(0.0, 1.0), signals=("signal1", "signal2"),
        has_mass=True, n_signal=100_000, n_bkg=1_000_000, noise=0.2,
        epochs=400, n_cats=(5, 8), lr_initial=0.05, lr_final=0.001,
        t_initial=1.0, t_final=0.1, baseline_bins=(2, 5, 10),
        thr_yield=10.0, thr_unc=0.1,
        quick_demo={"n_signal": 5000, "n_bkg": 50000, "epochs": 60, "n_cats": (3,),
                    "snapshot_interval": 10, "rewt_interval": 20},
        preview_events=(20_000, 200_000),
    ),
}


@dataclass
class EventSample:
    """Events of one scenario in flat arrays.

    ``process`` indexes ``process_names``; ``signal_names`` lists the signals in the
    order used everywhere (significance dicts, yield matrices).
    """

    scenario: str
    scores: np.ndarray  # [N, D] float32
    weight: np.ndarray  # [N] float32
    process: np.ndarray  # [N] int16
    process_names: tuple[str, ...]
    signal_names: tuple[str, ...]
    mass: np.ndarray | None = None  # [N] float32
    mass_sigma: float = 1.5
    meta: dict = field(default_factory=dict)
    #: Imported datasets set these; toy scenarios take them from SCENARIOS and 125 ± σm.
    mean_mode: str | None = None  # "sigmoid" (scores on [0, 1]) or "softmax" (simplex)
    window: tuple[float, float] | None = None  # signal mass window
    mass_range: tuple[float, float] | None = None  # mass fit range (window + sidebands)

    @property
    def n_events(self) -> int:
        return int(self.weight.shape[0])

    @property
    def dim(self) -> int:
        return int(self.scores.shape[1])

    def process_index(self, name: str) -> int:
        return self.process_names.index(name)

    def signal_mask(self, name: str) -> np.ndarray:
        return self.process == self.process_index(name)

    def background_mask(self) -> np.ndarray:
        signal_ids = [self.process_index(s) for s in self.signal_names]
        return ~np.isin(self.process, signal_ids)

    def in_window(self) -> np.ndarray:
        """Events inside the signal mass window (all True without a mass)."""
        if self.mass is None:
            return np.ones(self.n_events, dtype=bool)
        lo, hi = self.signal_window
        return (self.mass >= lo) & (self.mass <= hi)

    @property
    def signal_window(self) -> tuple[float, float]:
        return tuple(self.window) if self.window else mass_window(self.mass_sigma)

    @property
    def mass_limits(self) -> tuple[float, float]:
        return tuple(self.mass_range) if self.mass_range else MASS_RANGE

    def subset(self, keep: np.ndarray, weight_scale: float = 1.0, **meta) -> "EventSample":
        """The events selected by ``keep`` (mask or indices), weights times ``weight_scale``."""
        return replace(
            self, scores=self.scores[keep], process=self.process[keep],
            weight=(self.weight[keep] * np.float32(weight_scale)).astype(np.float32),
            mass=self.mass[keep] if self.mass is not None else None,
            meta={**self.meta, **meta})


def mass_window(mass_sigma: float) -> tuple[float, float]:
    return MASS_CENTER - mass_sigma, MASS_CENTER + mass_sigma


def _log_gauss_3d(points: np.ndarray, mean) -> np.ndarray:
    """Log density of the shared-covariance class Gaussian at ``points`` [N, 3]."""
    inv = np.linalg.inv(COVARIANCE)
    _, logdet = np.linalg.slogdet(COVARIANCE)
    d = points - np.asarray(mean)
    maha = np.einsum("ni,ij,nj->n", d, inv, d)
    return -0.5 * maha - 0.5 * logdet - 1.5 * np.log(2 * np.pi)


def _background_log_density(points: np.ndarray) -> np.ndarray:
    xs = np.array([CROSS_SECTIONS[b] for b in BACKGROUNDS])
    frac = xs / xs.sum()
    logs = np.stack([_log_gauss_3d(points, CLASS_MEANS[b]) for b in BACKGROUNDS], axis=1)
    return np.logaddexp.reduce(logs + np.log(frac), axis=1)


def one_d_discriminant(points: np.ndarray) -> np.ndarray:
    """lr / (1 + lr), lr = N(x; signal1) / mixture of backgrounds, from noise-free densities."""
    log_lr = _log_gauss_3d(points, CLASS_MEANS["signal1"]) - _background_log_density(points)
    # sigmoid(log lr) == lr / (1 + lr), without overflow
    return 0.5 * (1.0 + np.tanh(0.5 * log_lr))


def three_class_scores(points: np.ndarray) -> np.ndarray:
    """(p1, p2, pB) normalised class probabilities from the noise-free densities."""
    logs = np.stack(
        [
            _log_gauss_3d(points, CLASS_MEANS["signal1"]),
            _log_gauss_3d(points, CLASS_MEANS["signal2"]),
            _background_log_density(points),
        ],
        axis=1,
    )
    logs -= logs.max(axis=1, keepdims=True)
    p = np.exp(logs)
    return p / p.sum(axis=1, keepdims=True)


def _split_background(n_bkg: int) -> list[int]:
    """Split the background count in proportion to the cross sections (sums to n_bkg)."""
    xs = np.array([CROSS_SECTIONS[b] for b in BACKGROUNDS])
    counts = np.floor(n_bkg * xs / xs.sum()).astype(int)
    counts[0] += n_bkg - counts.sum()
    return [int(c) for c in counts]


def _truncated_exponential(rng, slope: float, n: int, lo: float, hi: float) -> np.ndarray:
    """Inverse-CDF sampling of exp(-slope m) on [lo, hi]."""
    u = rng.random(n)
    span = 1.0 - np.exp(-slope * (hi - lo))
    return lo - np.log1p(-u * span) / slope


def generate(
    scenario: str,
    n_signal: int | None = None,
    n_bkg: int | None = None,
    seed: int = 42,
    noise: float | None = None,
    mass_sigma: float = 1.5,
) -> EventSample:
    """Generate the events of a scenario; same arguments, same events."""
    info = SCENARIOS[scenario]
    n_signal = info.n_signal if n_signal is None else int(n_signal)
    n_bkg = info.n_bkg if n_bkg is None else int(n_bkg)
    noise = info.noise if noise is None else float(noise)
    rng = np.random.default_rng(seed)

    if scenario == "one_d":
        classes = [("signal", "signal1", n_signal)]
    else:
        classes = [("signal1", "signal1", n_signal), ("signal2", "signal2", n_signal)]
    classes += [(b, b, n) for b, n in zip(BACKGROUNDS, _split_background(n_bkg))]

    chol = np.linalg.cholesky(COVARIANCE)
    points, weights, procs, masses = [], [], [], []
    for index, (name, cls, n) in enumerate(classes):
        clean = CLASS_MEANS[cls] + rng.standard_normal((n, 3)) @ chol.T
        smeared = clean * rng.normal(1.0, noise, size=(n, 3))
        points.append(smeared)
        weights.append(np.full(n, CROSS_SECTIONS[cls] * LUMINOSITY / max(n, 1)))
        procs.append(np.full(n, index, dtype=np.int16))
        if info.has_mass:
            if cls.startswith("signal"):
                m = np.clip(rng.normal(MASS_CENTER, mass_sigma, n), *MASS_RANGE)
            else:
                slope = BKG_MASS_SLOPES[BACKGROUNDS.index(cls)]
                m = _truncated_exponential(rng, slope, n, *MASS_RANGE)
            masses.append(m)

    points = np.concatenate(points)
    if scenario == "one_d":
        scores = one_d_discriminant(points)[:, None]
    else:
        scores = three_class_scores(points)[:, :2]
    names = tuple(c[0] for c in classes)
    return EventSample(
        scenario=scenario,
        scores=scores.astype(np.float32),
        weight=np.concatenate(weights).astype(np.float32),
        process=np.concatenate(procs),
        process_names=names,
        signal_names=info.signals,
        mass=np.concatenate(masses).astype(np.float32) if info.has_mass else None,
        mass_sigma=float(mass_sigma),
        meta={"seed": seed, "n_signal": n_signal, "n_bkg": n_bkg, "noise": noise},
    )


def simplex_volume(dim: int) -> float:
    """sqrt(D)/(D-1)!, the simplex volume term of sigma_base (ALGORITHM §2)."""
    return float(np.sqrt(dim) / np.exp(lgamma(dim)))
