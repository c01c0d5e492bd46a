"""RunConfig: everything that defines a GATO run, validated with messages a physicist reads."""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace

from .initial import INITS
from .scenarios import MASS_CENTER, MASS_RANGE, SCENARIOS, ScenarioInfo
from .schedules import SCHEDULES

MODELS = ("gmm", "sigmoid_cuts")
#: What training maximises: the Asimov Z ("asimov"), or the Asimov Z with a background
#: uncertainty of ``bkg_rel_unc`` x b in every category ("asimov_bkg_unc", Cowan's formula:
#: gato_core.significance.asimov_z_bkg_unc), which keeps categories out of regions where a
#: systematic uncertainty on the background would dominate.
OBJECTIVES = ("asimov", "asimov_bkg_unc")
#: Largest relative background uncertainty the objective accepts (200 %).
MAX_BKG_REL_UNC = 2.0
MAX_TOTAL_EVENTS = 5_000_000
MAX_STARTS = 8

#: Named optimiser settings for RunConfig.preset; "default" is the dataclass defaults.
PRESETS: dict[str, dict] = {
    "default": {},
    "reference": {"init": "random", "n_starts": 1},
}

#: Snapshots (category layouts for the animated maps) kept per K at most: a 2-D frame is
#: ~40 KB in the store, so 1 500 epochs at interval 1 wrote 54 MB for one run before this.
MAX_SNAPSHOTS_PER_K = 200
#: ``scenario`` of a run on an imported dataset (see gato_core.datasets).
DATASET_SCENARIO = "dataset"
#: Training defaults of a dataset run; dimension, score domain and signals come from the
#: dataset when the run starts (``dim``/``mean_mode`` here are placeholders).
DATASET_DEFAULTS = ScenarioInfo(
    key=DATASET_SCENARIO, title="Imported dataset",
    description="Your own events, imported with a column mapping.",
    dim=0, mean_mode="", score_range=(0.0, 1.0), signals=(), has_mass=False,
    n_signal=100_000, n_bkg=300_000, noise=0.3,
    epochs=200, n_cats=(3, 5, 10), lr_initial=0.05, lr_final=0.001,
    t_initial=1.0, t_final=0.05, baseline_bins=(2, 5, 10), thr_yield=5.0, thr_unc=0.2,
    quick_demo={"epochs": 60, "n_cats": (3,), "snapshot_interval": 10},
)
#: Held-out share of a dataset's events unless the run says otherwise.
DATASET_HELD_OUT = 0.5
MAX_HELD_OUT = 0.9
_DATASET_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ConfigError(ValueError):
    """Raised with one message per problem; ``problems`` maps field name -> message."""

    def __init__(self, problems: dict[str, str]):
        self.problems = dict(problems)
        super().__init__("; ".join(self.problems.values()))


@dataclass(frozen=True)
class RunConfig:
    scenario: str = "one_d"
    model: str = "gmm"
    n_signal: int = 100_000
    n_bkg: int = 300_000
    noise: float = 0.3
    seed: int = 42
    n_cats: tuple[int, ...] = (5, 10, 20)
    epochs: int = 300
    lr_initial: float = 0.1
    lr_final: float = 0.001
    lr_schedule: str = "cosine"
    t_initial: float = 1.0
    t_final: float = 0.05
    t_schedule: str = "cosine"
    # Steepness of the sigmoid-cut model, annealed upward with ``t_schedule``.
    steepness_initial: float = 20.0
    steepness_final: float = 2000.0
    lam_yield: float = 0.0
    thr_yield: float = 5.0
    lam_unc: float = 0.0
    thr_unc: float = 0.2
    mass_sigma: float = 1.5
    rewt_interval: int = 50
    snapshot_interval: int = 10
    #: where the categories start: "signal_quantiles" (slices of equal signal yield along
    #: the scores, gato_core.initial), "random" (the reference workflows' start) or
    #: "auto" (signal quantiles for the Gaussian mixture, random for sigmoid cuts)
    init: str = "auto"
    #: independent starts trained side by side in one compiled step; the one with the best
    #: hard significance on the training sample is kept (cost grows about linearly)
    n_starts: int = 2
    #: fraction of the epochs all starts train; then only the best (hard significance on
    #: the training sample) continues, so R starts cost about R*f + (1 - f) of one
    explore_fraction: float = 0.5
    #: scenario "dataset": the id of an imported dataset (gato_core.datasets)
    dataset: str = ""
    #: scenario "dataset": share of the events kept out of training and used to report
    #: held-out significance. Toy runs ignore it: they are evaluated on an independent
    #: sample from the generator (another seed, same size).
    held_out_fraction: float = 0.0
    #: the training objective (OBJECTIVES); "asimov_bkg_unc" needs bkg_rel_unc > 0
    objective: str = "asimov"
    #: relative background uncertainty per category for objective "asimov_bkg_unc"
    #: (0.1 = 10 %: σ_b = 0.1 x b, independent between categories)
    bkg_rel_unc: float = 0.0

    # ----- construction -------------------------------------------------------------
    @classmethod
    def defaults(cls, scenario: str = "one_d", **overrides) -> "RunConfig":
        """The reference workflow's settings for ``scenario``, then ``overrides``."""
        if scenario not in SCENARIOS and scenario != DATASET_SCENARIO:
            raise ConfigError({"scenario": _scenario_message(scenario)})
        info = SCENARIOS.get(scenario, DATASET_DEFAULTS)
        base = cls(
            scenario=scenario,
            n_signal=info.n_signal,
            n_bkg=info.n_bkg,
            noise=info.noise,
            n_cats=info.n_cats,
            epochs=info.epochs,
            lr_initial=info.lr_initial,
            lr_final=info.lr_final,
            t_initial=info.t_initial,
            t_final=info.t_final,
            thr_yield=info.thr_yield,
            thr_unc=info.thr_unc,
            held_out_fraction=DATASET_HELD_OUT if scenario == DATASET_SCENARIO else 0.0,
        )
        return base.updated(**overrides) if overrides else base.validated()

    @classmethod
    def preset(cls, name: str, scenario: str = "one_d", **overrides) -> "RunConfig":
        """A named set of settings on top of the scenario defaults, then ``overrides``.

        ``"reference"`` reproduces the reference workflows' optimiser exactly (one random
        start), so results stay comparable side by side with the improved defaults.
        """
        if name not in PRESETS:
            raise ConfigError({"preset": f"preset must be one of {', '.join(PRESETS)}, got {name!r}"})
        return cls.defaults(scenario, **{**PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        """Build from loosely typed values (form fields, JSON, query strings) and validate.

        Missing keys take the scenario's defaults.
        """
        if not isinstance(data, dict):
            raise ConfigError({"config": "a run configuration must be a mapping of settings"})
        scenario = data.get("scenario", "one_d")
        if scenario not in SCENARIOS and scenario != DATASET_SCENARIO:
            raise ConfigError({"scenario": _scenario_message(scenario)})
        return cls.defaults(scenario, **{k: v for k, v in data.items() if k != "scenario"})

    def updated(self, **changes) -> "RunConfig":
        """A copy with ``changes`` coerced to the right types and validated."""
        known = {f.name: f for f in fields(self)}
        problems = {}
        coerced = {}
        for key, raw in changes.items():
            if key not in known:
                problems[key] = f"unknown setting {key!r}"
                continue
            try:
                coerced[key] = _coerce(key, known[key].type, raw)
            except ValueError as exc:
                problems[key] = str(exc)
        candidate = replace(self, **coerced)
        # report range problems of the values that did parse alongside the unparseable ones
        problems.update({k: v for k, v in candidate.problems().items() if k not in problems})
        if problems:
            raise ConfigError(problems)
        return candidate

    def to_dict(self) -> dict:
        out = asdict(self)
        out["n_cats"] = list(self.n_cats)
        return out

    # ----- validation ---------------------------------------------------------------
    def problems(self) -> dict[str, str]:
        """Field -> message for every problem; empty when the configuration is valid."""
        p: dict[str, str] = {}
        if self.scenario not in SCENARIOS and not self.is_dataset:
            p["scenario"] = _scenario_message(self.scenario)
            return p
        info = self.info
        if self.model not in MODELS:
            p["model"] = f"model must be one of {', '.join(MODELS)}, got {self.model!r}"
        elif self.model == "sigmoid_cuts" and not self.is_dataset and info.dim != 1:
            # for a dataset the dimension is known once its scores are loaded
            p["model"] = "the sigmoid-cut model exists only for the 1-D scenario"
        if self.is_dataset:
            if not _DATASET_ID.match(self.dataset or ""):
                p["dataset"] = ("name an imported dataset by its id (letters, digits, - and _)"
                                if not self.dataset else
                                f"a dataset id holds letters, digits, - and _, got {self.dataset!r}")
            _range(p, "held_out_fraction", self.held_out_fraction, 0.0, MAX_HELD_OUT,
                   "held-out fraction")
        _range(p, "n_signal", self.n_signal, 100, MAX_TOTAL_EVENTS, "signal events")
        _range(p, "n_bkg", self.n_bkg, 1_000, MAX_TOTAL_EVENTS, "background events")
        total = self.n_signal * len(info.signals) + self.n_bkg
        if not self.is_dataset and "n_signal" not in p and "n_bkg" not in p \
                and total > MAX_TOTAL_EVENTS:
            p["n_bkg"] = (
                f"at most {MAX_TOTAL_EVENTS:,} events in total (signal + background), "
                f"got {total:,}"
            )
        _range(p, "noise", self.noise, 0.0, 1.0, "detector smearing")
        _range(p, "seed", self.seed, 0, 2**31 - 1, "seed")
        if not self.n_cats:
            p["n_cats"] = "give at least one number of categories"
        elif len(self.n_cats) > 8:
            p["n_cats"] = f"at most 8 category counts per run, got {len(self.n_cats)}"
        elif any(not 2 <= k <= 50 for k in self.n_cats):
            bad = [k for k in self.n_cats if not 2 <= k <= 50]
            p["n_cats"] = f"number of categories must be between 2 and 50, got {bad[0]}"
        elif len(set(self.n_cats)) != len(self.n_cats):
            p["n_cats"] = "each number of categories may appear only once"
        _range(p, "epochs", self.epochs, 1, 100_000, "epochs")
        for name in ("lr_initial", "lr_final"):
            _range(p, name, getattr(self, name), 1e-7, 10.0, "learning rate", open_low=False)
        for name in ("t_initial", "t_final"):
            _range(p, name, getattr(self, name), 1e-4, 100.0, "temperature")
        for name in ("steepness_initial", "steepness_final"):
            _range(p, name, getattr(self, name), 0.1, 1e6, "steepness")
        for name in ("lr_schedule", "t_schedule"):
            if getattr(self, name) not in SCHEDULES:
                p[name] = (
                    f"schedule must be one of {', '.join(SCHEDULES)}, got {getattr(self, name)!r}"
                )
        _range(p, "lam_yield", self.lam_yield, 0.0, 1e6, "low-background penalty λ")
        _range(p, "lam_unc", self.lam_unc, 0.0, 1e6, "MC-uncertainty penalty λ")
        _range(p, "thr_yield", self.thr_yield, 0.0, 1e9, "background-yield threshold")
        _range(p, "thr_unc", self.thr_unc, 1e-6, 10.0, "relative-uncertainty threshold")
        max_sigma = min(MASS_CENTER - MASS_RANGE[0], MASS_RANGE[1] - MASS_CENTER)
        _range(p, "mass_sigma", self.mass_sigma, 0.1, max_sigma, "mass resolution σm (GeV)")
        _range(p, "rewt_interval", self.rewt_interval, 1, 100_000, "reweight interval (epochs)")
        if self.init not in INITS:
            p["init"] = f"initial placement must be one of {', '.join(INITS)}, got {self.init!r}"
        _range(p, "n_starts", self.n_starts, 1, MAX_STARTS, "number of starts")
        _range(p, "explore_fraction", self.explore_fraction, 0.0, 1.0,
               "fraction of epochs with all starts")
        _range(p, "snapshot_interval", self.snapshot_interval, 1, 100_000,
               "snapshot interval (epochs)")
        if self.objective not in OBJECTIVES:
            p["objective"] = (f"objective must be one of {', '.join(OBJECTIVES)}, "
                              f"got {self.objective!r}")
        _range(p, "bkg_rel_unc", self.bkg_rel_unc, 0.0, MAX_BKG_REL_UNC,
               "relative background uncertainty")
        if "bkg_rel_unc" not in p and "objective" not in p:
            if self.objective == "asimov_bkg_unc" and not self.bkg_rel_unc > 0:
                p["bkg_rel_unc"] = ("the objective with a background uncertainty needs a "
                                    "relative uncertainty above 0 (e.g. 0.1 for 10 %)")
            elif self.objective == "asimov" and self.bkg_rel_unc > 0:
                p["bkg_rel_unc"] = ("a background uncertainty is used only by the objective "
                                    "'asimov_bkg_unc'; choose it or set the uncertainty to 0")
        return p

    @property
    def training_bkg_rel_unc(self) -> float:
        """The σ_b / b the objective uses (0 for the plain Asimov Z)."""
        return self.bkg_rel_unc if self.objective == "asimov_bkg_unc" else 0.0

    def validated(self) -> "RunConfig":
        problems = self.problems()
        if problems:
            raise ConfigError(problems)
        return self

    @property
    def info(self) -> ScenarioInfo:
        """The scenario's defaults; for a dataset run DATASET_DEFAULTS (no dimension yet)."""
        return DATASET_DEFAULTS if self.is_dataset else SCENARIOS[self.scenario]

    @property
    def is_dataset(self) -> bool:
        return self.scenario == DATASET_SCENARIO

    @property
    def snapshot_every(self) -> int:
        """Epochs between two snapshots: the asked-for interval, widened evenly so that a K
        keeps at most MAX_SNAPSHOTS_PER_K frames, plus the last epoch's, which is always kept."""
        return max(self.snapshot_interval, math.ceil(self.epochs / MAX_SNAPSHOTS_PER_K))

    @property
    def snapshots_per_k(self) -> int:
        """How many snapshot frames one K stores (every ``snapshot_every`` and the last)."""
        every = self.snapshot_every
        last_on_grid = (self.epochs - 1) % every == 0
        return math.ceil(self.epochs / every) + (0 if last_on_grid else 1)


def _scenario_message(value) -> str:
    return (f"scenario must be one of {', '.join(SCENARIOS)} or {DATASET_SCENARIO!r}, "
            f"got {value!r}")


def _range(problems, name, value, lo, hi, label, open_low=False):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        problems[name] = f"{label} must be a number, got {value!r}"
    elif not lo <= value <= hi:
        problems[name] = f"{label} must be between {lo:g} and {hi:g}, got {value:g}"


def _coerce(key: str, type_name, raw):
    """Turn form/JSON/query values into the field's type, with a readable message if not."""
    type_name = str(type_name)
    if type_name.startswith("tuple"):
        if isinstance(raw, str):
            parts = [x for x in raw.replace(",", " ").split() if x]
        elif isinstance(raw, (list, tuple)):
            parts = list(raw)
        else:
            parts = [raw]
        out = []
        for part in parts:
            out.append(_as_int(key, part))
        return tuple(out)
    if type_name == "int":
        return _as_int(key, raw)
    if type_name == "float":
        if isinstance(raw, bool) or raw is None or raw == "":
            raise ValueError(f"{key} needs a number")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"{key} must be a finite number, got {raw!r}")
        return value
    if raw is None:
        raise ValueError(f"{key} needs a value")
    return str(raw)


def _as_int(key, raw) -> int:
    if isinstance(raw, bool) or raw is None or raw == "":
        raise ValueError(f"{key} needs a whole number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a whole number, got {raw!r}") from None
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"{key} must be a whole number, got {raw!r}")
    return int(value)
