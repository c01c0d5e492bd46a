"""Plain records that training yields; every field is JSON-safe after ``to_dict()``."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

#: How the training of one category count ended (``TrainingResult.status``)
RESULT_STATUSES = ("finished", "cancelled", "diverged")


@dataclass
class RunInfo:
    """Yielded once, before the first epoch: the data and the reference numbers."""

    kind = "run_info"
    scenario: str
    n_events: int
    process_names: list[str]
    signal_names: list[str]
    yields: dict[str, float]  # process -> total weight
    #: signal -> {n_categories: Z}; for 2-D scenarios keyed by 2n+1
    baselines: dict[str, dict[int, float]]
    #: 1-D only: {K: exact optimum Z over 1500 fine bins}
    optimum_1d: dict[int, float] | None
    #: the equidistant/argmax baseline as geometric mean (2 signals) or Z, keyed like baselines
    baseline_objective: dict[int, float]
    data_seconds: float
    #: small inclusive histograms, see evaluation.inclusive_summary
    inclusive: dict = field(default_factory=dict)
    #: dataset runs: {"id", "name", "content_hash", "dim", "mean_mode"}; None for toys
    dataset: dict | None = None
    #: the sample the held-out numbers of each TrainingResult come from:
    #: {"kind": "independent" (toys: another generator seed, same size) or "split"
    #: (datasets: a random share of the events), "seed", "n_events", "fraction"};
    #: None when the run has no held-out sample (a dataset run with held_out_fraction 0)
    held_out: dict | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kind"] = self.kind
        return d


@dataclass
class EpochRecord:
    """One training epoch of one category count."""

    kind = "epoch"
    n_cats: int
    epoch: int  # 0-based
    epochs: int
    loss: float  # -Z (one signal) or -sqrt(Z1 Z2), soft, without penalties
    total_loss: float
    significance: dict[str, float]  # soft Z per signal
    penalty_yield: float
    penalty_unc: float
    temperature: float  # for the sigmoid-cut model: 1 / steepness
    learning_rate: float
    epoch_ms: float
    elapsed_s: float  # since this K started (includes compilation)
    #: snapshot epochs only (every snapshot_interval and the last epoch)
    mean_abs_bias: float | None = None
    hard_significance: dict[str, float] | None = None
    snapshot: dict | None = None  # see training.snapshot_layout
    #: with several starts (RunConfig.n_starts): the start these numbers belong to, the
    #: one with the lowest loss this epoch; None with a single start
    start: int | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kind"] = self.kind
        return d


@dataclass
class TrainingResult:
    """Final, hard-assignment numbers for one category count."""

    kind = "result"
    n_cats: int
    status: str  # one of RESULT_STATUSES
    message: str
    epochs_done: int
    significance: dict[str, float]  # hard Z per signal
    objective: float  # Z, or geometric mean of the two
    #: one entry per displayed category (1-D: left to right; 2-D: most significant first)
    categories: list[dict]
    #: display number of each model component (components[k] -> category index)
    order: list[int]
    boundaries: list[float] | None  # 1-D only
    snapshot: dict  # final layout, same form as EpochRecord.snapshot
    mass_histograms: dict | None  # bump hunt only
    parameters: dict  # restorable with gato_core.model.from_parameters
    epoch_ms_median: float
    reweight_factors: list[float] | None = None  # bump hunt, per component
    components: list[dict] = field(default_factory=list)  # learned Gaussians (display)
    #: gato_core.statmodel.summary of the hard categories (pyhf); None without pyhf / old runs
    statistical_model: dict | None = None
    #: seconds this K took, compilation and final evaluation included
    elapsed_s: float | None = None
    #: the same categories evaluated on the held-out sample (RunInfo.held_out); a gap to
    #: ``significance`` shows overtraining. None without a held-out sample.
    heldout_significance: dict[str, float] | None = None
    heldout_objective: float | None = None
    #: hard objective of every start on the training sample, and the one kept (the best);
    #: ``parameters`` and every number above belong to the kept start
    start_objectives: list[float] | None = None
    chosen_start: int | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kind"] = self.kind
        return d
