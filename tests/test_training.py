"""Training as a stream: record order, hard results, cancellation, divergence, quality."""
import numpy as np
import pytest

from gato_core.config import RunConfig
from gato_core.scenarios import generate
from gato_core.training import train
from helpers.optimum import snapped_against_optimum


def run(config, events=None, should_stop=None):
    return list(train(config, events=events, should_stop=should_stop))


@pytest.fixture(scope="module")
def one_d_small():
    return RunConfig.defaults("one_d", n_signal=5000, n_bkg=15000, epochs=60, n_cats=[3, 4],
                              snapshot_interval=20)


def test_stream_order_snapshots_and_hard_result(one_d_small):
    records = run(one_d_small)
    kinds = [r.kind for r in records]
    assert kinds[0] == "run_info"
    assert kinds == ["run_info"] + (["epoch"] * 60 + ["result"]) * 2
    epochs = [r for r in records if r.kind == "epoch" and r.n_cats == 3]
    assert [r.epoch for r in epochs] == list(range(60))
    snaps = [r.epoch for r in epochs if r.snapshot is not None]
    assert snaps == [0, 20, 40, 59]
    assert all(r.mean_abs_bias is not None for r in epochs if r.snapshot)
    temps = [r.temperature for r in epochs]
    assert temps[0] == pytest.approx(1.0) and temps == sorted(temps, reverse=True)
    # the reported hard significance, re-computed in plain numpy from the events and the
    # boundaries (ALGORITHM.md: Asimov Z per bin, s/sqrt(b) below s/b = 0.1, quadrature)
    result = records[61]
    events = generate("one_d", 5000, 15000, seed=42, noise=0.3)
    is_signal = np.asarray(events.process_names)[events.process] == "signal"
    in_bin = np.searchsorted(np.sort(result.boundaries), events.scores[:, 0], side="right")
    weight = events.weight.astype(np.float64)
    bins = len(result.boundaries) + 1
    s = np.bincount(in_bin[is_signal], weight[is_signal], minlength=bins)
    b = np.bincount(in_bin[~is_signal], weight[~is_signal], minlength=bins)
    z2 = np.where(s / b < 0.1, s**2 / b, 2 * ((s + b) * np.log(1 + s / b) - s))
    assert result.significance["signal"] == pytest.approx(np.sqrt(z2.sum()), rel=1e-9)
    assert result.status == "finished" and result.epochs_done == 60
    info = records[0]
    assert set(info.optimum_1d) == {3, 4}
    # GATO may beat the 1500-fine-bin optimum only by the binning resolution
    # (tests/helpers/optimum.py): snapped to the fine grid its cuts cannot
    z_snapped, best, n_bins, least = snapped_against_optimum(events, result.boundaries)
    assert z_snapped <= best * (1 + 1e-12)
    if n_bins == 3 and least >= 10:
        assert best == pytest.approx(info.optimum_1d[3])


def test_training_raises_the_significance(one_d_small):
    epochs = [r for r in run(one_d_small.updated(n_cats=[3])) if r.kind == "epoch"]
    first, last = epochs[0], epochs[-1]
    assert last.significance["signal"] > 1.3 * first.significance["signal"]
    assert last.hard_significance["signal"] > first.hard_significance["signal"]


def test_cancel_between_epochs_keeps_what_was_trained(one_d_small):
    seen = []

    def stop():
        return len(seen) >= 7

    results = []
    for record in train(one_d_small, should_stop=stop):
        if record.kind == "epoch":
            seen.append(record)
        elif record.kind == "result":
            results.append(record)
    assert len(seen) == 7 and len(results) == 1  # no second K after a cancel
    assert results[0].status == "cancelled" and results[0].message == "cancelled at epoch 7"
    assert results[0].epochs_done == 7 and results[0].significance["signal"] > 0


def test_non_finite_loss_stops_with_diverged(one_d_small):
    events = generate("one_d", 2000, 6000, seed=1)
    events.weight[5] = np.nan
    records = run(one_d_small.updated(n_cats=[3], epochs=10), events=events)
    result = records[-1]
    assert result.kind == "result" and result.status == "diverged"
    assert result.message == "diverged at epoch 0"
    assert np.all(np.isfinite(np.asarray(result.parameters["raw_means"])))


def test_background_compiler_never_outlives_the_interpreter(one_d_small, monkeypatch):
    """A run shorter than the XLA compile must not leave a daemon thread inside TensorFlow:
    interpreter shutdown tears such a thread down mid-C++ and aborts the process (seen in CI
    as a CLI run exiting with SIGABRT, "FATAL: exception not rethrown")."""
    import threading

    # every thread the run starts, caught at start: one that has finished by the time
    # the run returns is checked too
    started = []
    start = threading.Thread.start

    def recording_start(thread):
        started.append(thread)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", recording_start)
    run(one_d_small.updated(n_cats=[3], epochs=2))
    compilers = [t for t in started if t.name == "gato-compile"]
    # one K: one compiler for all starts, one more for the start kept after exploring
    assert len(compilers) == (2 if one_d_small.n_starts > 1 else 1)
    assert all(not t.daemon for t in compilers)
    for t in compilers:
        t.join(timeout=120)
        assert not t.is_alive()


def test_a_slow_compiler_does_not_change_the_result(monkeypatch):
    """Eager and compiled steps round differently, so the epoch at which a run switches
    to the compiled step decides the categories it ends in. That epoch is fixed: a run
    whose compiler finishes late (a busy machine) ends exactly where a quick one does,
    through both switches (all starts, then the start kept after exploring)."""
    import threading

    from gato_core import training

    # a size at which the two steps' rounding differs: the result changed with the
    # compiler's speed before the switch epoch was fixed
    config = RunConfig.defaults("one_d", n_signal=100000, n_bkg=300000, epochs=40,
                                n_cats=[10], snapshot_interval=40)
    events = generate("one_d", 100000, 300000, seed=3)
    assert config.n_starts > 1 and training.exploration_epochs(config) \
        + training.KEPT_COMPILE_EPOCHS < config.epochs  # both switches happen

    def final(records):
        result = records[-1]
        assert result.kind == "result" and result.status == "finished"
        return result.parameters, result.significance, [r.loss for r in records
                                                        if r.kind == "epoch"]

    quick = final(run(config, events))
    compile_now = training._Trainer.compile_in_background

    def compile_late(trainer, *args):  # the compiler starts 1.5 s late
        threading.Timer(1.5, compile_now, (trainer, *args)).start()

    monkeypatch.setattr(training._Trainer, "compile_in_background", compile_late)
    slow = final(run(config, events))
    assert slow == quick


def test_bump_hunt_stream_has_reweighting_and_mass_histograms():
    cfg = RunConfig.defaults("bump_hunt", n_signal=3000, n_bkg=30000, epochs=30, n_cats=[3],
                             rewt_interval=10, snapshot_interval=10)
    records = run(cfg)
    result = records[-1]
    assert result.kind == "result" and len(result.reweight_factors) == 3
    assert all(0 < f < 1 for f in result.reweight_factors)
    hist = result.mass_histograms
    assert len(hist["counts"]) == 3 and len(hist["edges"]) == 41
    # categories ordered by significance, most significant first
    z2 = [sum(v ** 2 for v in c["z"].values()) for c in result.categories]
    assert z2 == sorted(z2, reverse=True)
    assert sorted(result.order) == [0, 1, 2]
    snap = [r for r in records if r.kind == "epoch" and r.snapshot][0].snapshot
    assert len(snap["categories"]) == snap["grid"] ** 2
    assert min(snap["categories"]) == -1  # cells outside the simplex


def test_sigmoid_cut_model_trains():
    cfg = RunConfig.defaults("one_d", model="sigmoid_cuts", n_signal=5000, n_bkg=15000,
                             epochs=80, n_cats=[4])
    records = run(cfg)
    epochs = [r for r in records if r.kind == "epoch"]
    assert epochs[-1].significance["signal"] > epochs[0].significance["signal"]
    assert len(records[-1].boundaries) == 3 and records[-1].components == []


@pytest.mark.slow
def test_reference_quality_1d():
    """Seed settings: GATO reaches 98 % of the exact optimum and beats equal binning."""
    records = run(RunConfig.defaults("one_d"))
    info = records[0]
    for result in (r for r in records if r.kind == "result"):
        k = result.n_cats
        assert result.objective >= 0.98 * info.optimum_1d[k], (k, result.objective, info.optimum_1d[k])
        for n_bins, z in info.baselines["signal"].items():
            if n_bins <= k:
                assert result.objective > z


@pytest.mark.slow
def test_reference_quality_bump_hunt():
    records = run(RunConfig.defaults("bump_hunt"))
    info = records[0]
    for result in (r for r in records if r.kind == "result"):
        best = max(z for n, z in info.baseline_objective.items() if n <= result.n_cats)
        assert result.objective > best, (result.n_cats, result.objective, best)
