"""Training as a stream of per-epoch records (ALGORITHM §2-§3).

``train(config)`` yields a RunInfo, then EpochRecords and one TrainingResult per category
count. The hot path is one XLA-compiled step over flat tensors: a single [N, S+2] x [N, K]
matmul gives every soft yield, so nothing loops over processes or components in Python.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

import numpy as np
import tensorflow as tf

from . import baselines, evaluation, initial, massfit, schedules, statmodel, yields
from .config import ConfigError, RunConfig
from .data import held_out_split, load_events
from .model import MultiStart, build
from .objective import (high_uncertainty_penalty, low_background_penalty, objective_loss,
                        significance_per_signal)
from .records import EpochRecord, RunInfo, TrainingResult
from .scenarios import SCENARIOS, EventSample

RMS_RHO = 0.9
RMS_EPS = 1e-7
#: Epochs run eagerly while the step compiles (the first records come out at once); from
#: this one on the compiled step runs, after waiting for the compiler if need be. A fixed
#: epoch, because the two steps round differently: where the switch falls changes the
#: categories a run ends in, and it must not depend on the machine's load.
COMPILED_FROM_EPOCH = 5
#: Epochs all starts keep training after the best was chosen, while its own step compiles.
KEPT_COMPILE_EPOCHS = 10


def role_weights(events: EventSample) -> np.ndarray:
    """[N, S+2]: per-signal weights (zero outside the mass window), background weights, and
    background weights squared (for the MC-uncertainty penalty)."""
    w = events.weight.astype(np.float32)
    in_window = events.in_window()
    columns = [w * (events.signal_mask(s) & in_window) for s in events.signal_names]
    is_bkg = events.background_mask()
    columns += [w * is_bkg, w * w * is_bkg]
    return np.stack(columns, axis=1).astype(np.float32)


def score_domain(config: RunConfig, events: EventSample) -> tuple[str, tuple[float, float]]:
    """(mean mode, score range) of the model: the scenario's, or what the dataset import found."""
    if config.is_dataset:
        return events.mean_mode or "sigmoid", (0.0, 1.0)
    return config.info.mean_mode, config.info.score_range


def check_events(config: RunConfig, events: EventSample) -> None:
    """What only the loaded events can tell about a dataset run, as a ConfigError."""
    problems = {}
    if config.model == "sigmoid_cuts" and events.dim != 1:
        problems["model"] = (f"the sigmoid-cut model needs one score column; this dataset "
                             f"has {events.dim}")
    largest = max(config.n_cats)
    if events.n_events < largest:
        problems["n_cats"] = (f"{events.n_events:,} training events cannot fill {largest} "
                              f"categories")
    present = set(np.unique(events.process).tolist())
    absent = [s for s in events.signal_names if events.process_index(s) not in present]
    if absent:
        problems["held_out_fraction"] = (f"no {absent[0]} events are left for training; "
                                         f"lower the held-out fraction")
    if problems:
        raise ConfigError(problems)


def run_info(config: RunConfig, events: EventSample, data_seconds: float,
             held_out: dict | None = None) -> RunInfo:
    info = config.info
    bins = info.baseline_bins
    if config.is_dataset:  # the toy scenarios' choices for the same dimension
        bins = SCENARIOS["one_d" if events.dim == 1 else "three_class"].baseline_bins
    ref = baselines.reference_baselines(events, bins)
    yields = {p: float(events.weight[events.process == i].sum())
              for i, p in enumerate(events.process_names)}
    dataset = None
    if config.is_dataset:
        dataset = {"id": events.meta.get("dataset", config.dataset),
                   "name": events.meta.get("name", ""),
                   "content_hash": events.meta.get("content_hash", ""),
                   "dim": events.dim, "mean_mode": score_domain(config, events)[0]}
    exact = events.dim == 1 and len(events.signal_names) == 1  # the DP optimises one Z
    return RunInfo(
        scenario=config.scenario,
        n_events=events.n_events,
        process_names=list(events.process_names),
        signal_names=list(events.signal_names),
        yields=yields,
        baselines=ref["per_signal"],
        optimum_1d=baselines.optimum_1d_table(events, config.n_cats) if exact else None,
        baseline_objective=ref["objective"],
        data_seconds=data_seconds,
        inclusive=evaluation.inclusive_summary(events),
        dataset=dataset,
        held_out=held_out,
    )


class _Trainer:
    """Compiled step and diagnostics for one model; TF state lives here.

    Compiling the step takes seconds, so it happens on a background thread while the first
    epochs run eagerly (same maths, slower per epoch): the first record comes out in well
    under a second. The switch to the compiled step happens at a fixed epoch
    (``use_compiled``), waiting for the compiler if it is not done: the two steps round
    differently, so a switch that followed the compiler's timing made two runs of one
    configuration end in different categories.
    """

    def __init__(self, model, n_signals: int, jit_compile: bool = True,
                 bkg_rel_unc: float = 0.0):
        if not isinstance(model, MultiStart):
            model = MultiStart([model])
        self.model = model
        self.n_signals = n_signals
        self.bkg_rel_unc = float(bkg_rel_unc)  # objective "asimov_bkg_unc" (else 0)
        self.n_starts, self.n_cats = model.n_starts, model.n_cats
        self.slots = [tf.Variable(tf.zeros_like(v)) for v in model.variables_list]
        # background reweighting factor per start and component (bump hunt)
        self.factors = tf.Variable(tf.ones((model.n_starts, model.n_cats)), dtype=tf.float32)
        self.jit_compile = jit_compile
        self._compiled_step = tf.function(self._step, jit_compile=jit_compile)
        self._compiled_diagnostics = tf.function(self._diagnostics, jit_compile=jit_compile)
        self._compiled_hard = tf.function(self._hard, jit_compile=jit_compile)
        self.ready = threading.Event()
        self.compiled = False  # the compiled step is in use (see use_compiled)
        self.compile_seconds = None
        self.compile_error = None

    def compile_in_background(self, inputs, roles, all_weights, penalties):
        def compile_all():
            tick = time.perf_counter()
            try:
                t = tf.constant(1.0)
                # apply=False: a full step that changes no variable
                self._compiled_step(inputs, roles, tf.constant(0.0), t, *penalties,
                                    tf.constant(False))
                self._compiled_diagnostics(inputs, roles, all_weights, t)
                self._compiled_hard(inputs)
                self.compile_seconds = time.perf_counter() - tick
            except Exception as exc:  # keep training eagerly rather than fail the run
                self.compile_error = repr(exc)
            finally:
                self.ready.set()

        # Not a daemon: the interpreter must wait for the compiler before it finalises. A
        # daemon thread still inside XLA at exit is torn down by a forced unwind through
        # TensorFlow's C++ frames, which aborts the process ("FATAL: exception not
        # rethrown"); a short CLI run that ends before compilation did exactly that in CI.
        self.compile_thread = threading.Thread(target=compile_all, name="gato-compile",
                                               daemon=False)
        self.compile_thread.start()

    def keep_start(self, index: int) -> "_Trainer":
        """A single-start trainer for start ``index``; it shares the start's parameters.
        Call ``take_state`` when switching to it, so optimiser state and reweighting
        factors carry over and the start's path is unchanged."""
        kept = _Trainer(MultiStart([self.model.starts[index]]), self.n_signals,
                        self.jit_compile, self.bkg_rel_unc)
        kept.kept_index = index
        return kept

    def take_state(self, source: "_Trainer") -> "_Trainer":
        index = self.kept_index
        per_start = len(source.slots) // source.n_starts
        for slot, old in zip(self.slots, source.slots[index * per_start:(index + 1) * per_start]):
            slot.assign(old)
        self.factors.assign(source.factors[index:index + 1])
        return self

    def use_compiled(self, should_stop: Callable[[], bool]) -> None:
        """From now on, the compiled step (unless compiling failed): waits for the compiler,
        or until ``should_stop()``, in which case the eager step stays."""
        while not self.ready.wait(0.1):
            if should_stop():
                return
        self.compiled = self.compile_error is None

    def uses_compiled(self) -> bool:
        return self.compiled

    def step(self, *args):
        fn = self._compiled_step if self.uses_compiled() else self._step
        return fn(*args, tf.constant(True))

    def diagnostics(self, *args):
        fn = self._compiled_diagnostics if self.uses_compiled() else self._diagnostics
        return fn(*args)

    def hard(self, inputs):
        fn = self._compiled_hard if self.uses_compiled() else self._hard
        return fn(inputs)

    def _hard(self, inputs):
        return self.model.hard(inputs)  # [N, R]

    def _yields(self, membership, roles):
        """[S, R, K] signal, [R, K] background and background sum w^2 from [N, R*K]."""
        yields = tf.matmul(roles, membership, transpose_a=True)  # [S+2, R*K]
        yields = tf.reshape(yields, [-1, self.n_starts, self.n_cats])
        signal = yields[: self.n_signals]
        background = yields[self.n_signals] * self.factors
        sum_w2 = yields[self.n_signals + 1] * self.factors ** 2
        return signal, background, sum_w2

    def _step(self, scores, roles, lr, temperature, lam_yield, thr_yield, lam_unc, thr_unc, apply):
        variables = self.model.variables_list
        with tf.GradientTape() as tape:
            membership = self.model.soft_membership(scores, temperature)
            signal, background, sum_w2 = self._yields(membership, roles)
            z = significance_per_signal(signal, background, self.bkg_rel_unc)  # [S, R]
            loss = objective_loss(z)  # [R]
            pen_yield = low_background_penalty(background, thr_yield)
            pen_unc = high_uncertainty_penalty(sum_w2, background, thr_unc)
            total = loss + lam_yield * pen_yield + lam_unc * pen_unc  # [R]
            # starts share no parameter: the sum's gradient is each start's own gradient
            summed = tf.reduce_sum(total)
        grads = tape.gradient(summed, variables)
        finite = tf.math.is_finite(summed)
        for g in grads:
            finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(g)))
        update = tf.logical_and(finite, apply)
        for var, slot, g in zip(variables, self.slots, grads):
            # a non-finite step leaves parameters and optimiser state untouched
            g = tf.where(update, g, tf.zeros_like(g))
            new_slot = RMS_RHO * slot + (1.0 - RMS_RHO) * g * g
            slot.assign(tf.where(update, new_slot, slot))
            var.assign_sub(tf.where(update, lr * g / (tf.sqrt(new_slot) + RMS_EPS), tf.zeros_like(g)))
        return total, loss, z, pen_yield, pen_unc, finite

    def _diagnostics(self, scores, roles, all_weights, temperature):
        """Per start: soft and hard total yields [R, K], hard Z per signal [S, R]."""
        soft = self.model.soft_membership(scores, temperature)
        hard = tf.reshape(tf.one_hot(self.model.hard(scores), self.n_cats),
                          [-1, self.n_starts * self.n_cats])
        b_soft = tf.linalg.matvec(soft, all_weights, transpose_a=True)
        b_hard = tf.linalg.matvec(hard, all_weights, transpose_a=True)
        signal, background, _ = self._yields(hard, roles)
        per_start = [self.n_starts, self.n_cats]
        return (tf.reshape(b_soft, per_start), tf.reshape(b_hard, per_start),
                significance_per_signal(signal, background))  # reported hard Z: plain Asimov


def _temperature(config: RunConfig, epoch: int) -> float:
    if config.model == "sigmoid_cuts":
        steep = schedules.value(config.t_schedule, config.steepness_initial,
                                config.steepness_final, epoch, config.epochs)
        return 1.0 / steep
    return schedules.value(config.t_schedule, config.t_initial, config.t_final, epoch, config.epochs)


def train(
    config: RunConfig,
    events: EventSample | None = None,
    should_stop: Callable[[], bool] | None = None,
    cache_dir=None,
    datasets_dir=None,
) -> Iterator[RunInfo | EpochRecord | TrainingResult]:
    """Train every K of ``config`` in turn, yielding records as they happen.

    ``events`` defaults to the config's toy sample or, for scenario "dataset", the dataset
    ``config.dataset`` in ``datasets_dir``. Part of a dataset is held out (see
    data.held_out_split); toys are also evaluated on an independent sample.
    """
    config = config.validated()
    should_stop = should_stop or (lambda: False)
    statmodel.preload()  # the statistical model after each K needs pyhf
    t0 = time.perf_counter()
    if events is None:
        events = load_events(config, cache_dir, datasets_dir)
    if should_stop():  # data preparation can take seconds: honour a cancel made meanwhile
        return
    events, held_out, held_out_info = held_out_split(config, events, cache_dir)
    if config.is_dataset:
        check_events(config, events)
    if should_stop():
        return
    yield run_info(config, events, time.perf_counter() - t0, held_out_info)
    if should_stop():  # the baselines (exact 1-D optimum) too
        return

    scores = events.scores
    roles = tf.constant(role_weights(events))
    all_weights = tf.constant(events.weight, dtype=tf.float32)
    for n_cats in config.n_cats:
        result = yield from _train_one(config, events, n_cats, scores, roles, all_weights,
                                       should_stop, held_out)
        if result.status != "finished":
            return


def initial_placement(config: RunConfig, events: EventSample, n_cats: int):
    """Starting means (GMM) or cuts (sigmoid cuts) for ``config.init``; None = random."""
    if config.init == "random" or (config.init == "auto" and config.model == "sigmoid_cuts"):
        return None
    signal_weights = role_weights(events)[:, : len(events.signal_names)]
    if config.model == "sigmoid_cuts":
        return initial.signal_quantile_cuts(events.scores, signal_weights, n_cats)
    return initial.signal_quantile_means(events.scores, signal_weights, n_cats)


def build_starts(config: RunConfig, events: EventSample, n_cats: int) -> MultiStart:
    """``config.n_starts`` independent starts. The first is placed by ``config.init``; the
    others start at random; the first random one is exactly the reference workflow's start
    (same seed), so both ways of starting compete when there are two or more."""
    mean_mode, score_range = score_domain(config, events)
    seed = config.seed + 1000 * n_cats
    placed = initial_placement(config, events, n_cats)
    starts = []
    for r in range(config.n_starts):
        start_seed = seed + (r - 1 if placed is not None and r > 0 else r)
        starts.append(build(config.model, n_cats, events.dim, mean_mode, score_range,
                            seed=start_seed, initial=placed if r == 0 else None))
    return MultiStart(starts)


def exploration_epochs(config: RunConfig) -> int:
    """Epochs during which all starts train; then only the best one continues."""
    return max(1, min(config.epochs, round(config.explore_fraction * config.epochs)))


def _train_one(config, events, n_cats, scores, roles, all_weights, should_stop, held_out=None):
    mean_mode, score_range = score_domain(config, events)
    signals = list(events.signal_names)
    model = build_starts(config, events, n_cats)
    n_starts = model.n_starts
    trainer = _Trainer(model, len(signals), bkg_rel_unc=config.training_bkg_rel_unc)
    inputs = model.prepare_inputs(scores)
    window = events.signal_window
    is_bkg = events.background_mask()
    start = time.perf_counter()
    compiled_ms, eager_ms, status, message, epochs_done = [], [], "finished", "", 0
    penalties = [tf.constant(v, tf.float32) for v in
                 (config.lam_yield, config.thr_yield, config.lam_unc, config.thr_unc)]
    temperature = _temperature(config, 0)
    explore_epochs = exploration_epochs(config) if n_starts > 1 else config.epochs
    start_objectives, chosen, kept_trainer = None, 0, None
    snapshot_every = config.snapshot_every
    for epoch in range(config.epochs):
        if should_stop():
            status, message = "cancelled", f"cancelled at epoch {epoch}"
            break
        if epoch == explore_epochs:
            # only the best start so far trains on: the rest of the run costs one start.
            # Its own step compiles in the background while all starts keep running
            # compiled, for a fixed number of epochs (so that two runs agree).
            start_objectives, chosen = evaluation.best_start(
                [model.parameters(r) for r in range(n_starts)], events, score_range,
                config.training_bkg_rel_unc)
            kept_trainer = trainer.keep_start(chosen)
            kept_trainer.compile_in_background(inputs, roles, all_weights, penalties)
        if kept_trainer is not None and epoch == explore_epochs + KEPT_COMPILE_EPOCHS:
            kept_trainer.use_compiled(should_stop)
            trainer = kept_trainer.take_state(trainer)
            model, n_starts, kept_trainer = trainer.model, 1, None
        if epoch == COMPILED_FROM_EPOCH:
            trainer.use_compiled(should_stop)
        if events.mass is not None and epoch % config.rewt_interval == 0:
            component = trainer.hard(inputs).numpy()  # [N, R]
            trainer.factors.assign(np.stack([massfit.reweight_factors(
                component[:, r], events.mass, events.weight, is_bkg, n_cats, window,
                events.mass_limits) for r in range(n_starts)]).astype(np.float32))
        lr = schedules.value(config.lr_schedule, config.lr_initial, config.lr_final,
                             epoch, config.epochs)
        temperature = _temperature(config, epoch)
        compiled = trainer.uses_compiled()
        tick = time.perf_counter()
        total, loss, z, pen_y, pen_u, finite = (t.numpy() for t in trainer.step(
            inputs, roles, tf.constant(lr, tf.float32), tf.constant(temperature, tf.float32),
            *penalties))
        ms = 1000.0 * (time.perf_counter() - tick)
        if epoch == 0:
            # after the first (eager) epoch, so the compiler's tracing does not delay it
            trainer.compile_in_background(inputs, roles, all_weights, penalties)
        if not bool(finite):
            status, message = "diverged", f"diverged at epoch {epoch}"
            break
        (compiled_ms if compiled else eager_ms).append(ms)
        epochs_done = epoch + 1
        # the records follow the start that leads this epoch, or the one already chosen;
        # ``row`` is where that start sits in this step's outputs
        row = 0 if n_starts == 1 else (chosen if start_objectives else int(np.argmin(total)))
        lead = chosen if start_objectives else row
        record = EpochRecord(
            n_cats=n_cats, epoch=epoch, epochs=config.epochs, loss=float(loss[row]),
            total_loss=float(total[row]),
            significance={s: float(z[j, row]) for j, s in enumerate(signals)},
            penalty_yield=float(pen_y[row]), penalty_unc=float(pen_u[row]),
            temperature=float(temperature), learning_rate=float(lr), epoch_ms=ms,
            elapsed_s=time.perf_counter() - start,
            start=lead if config.n_starts > 1 else None,
        )
        if epoch % snapshot_every == 0 or epoch == config.epochs - 1:
            b_soft, b_hard, z_hard = (t.numpy() for t in trainer.diagnostics(
                inputs, roles, all_weights, tf.constant(temperature, tf.float32)))
            b_soft, b_hard = b_soft[row], b_hard[row]
            filled = b_hard > 0
            bias = (b_hard[filled] - b_soft[filled]) / b_hard[filled]
            record.mean_abs_bias = float(np.mean(np.abs(bias))) if bias.size else None
            record.hard_significance = {s: float(z_hard[j, row]) for j, s in enumerate(signals)}
            record.snapshot = evaluation.snapshot_layout(
                model.parameters(row), events.dim, epoch, temperature, score_range)
        yield record

    if n_starts > 1 and not start_objectives:  # all starts trained to the end (or a
        # cancel came first): pick now
        start_objectives, chosen = evaluation.best_start(
            [model.parameters(r) for r in range(n_starts)], events, score_range,
            config.training_bkg_rel_unc)
    kept = chosen if n_starts > 1 else 0
    parameters = model.parameters(kept)
    evaluated = evaluation.evaluate(parameters, events, score_range)
    heldout_z, heldout_objective = (evaluation.hard_significance(parameters, held_out, score_range)
                                    if held_out is not None else (None, None))
    # steady state means the compiled step; a run too short to use it reports the eager one
    steady = compiled_ms or eager_ms
    result = TrainingResult(
        n_cats=n_cats, status=status, message=message, epochs_done=epochs_done,
        significance=evaluated["significance"], objective=evaluated["objective"],
        categories=evaluated["categories"], order=evaluated["order"],
        boundaries=evaluated["boundaries"],
        snapshot=evaluation.snapshot_layout(parameters, events.dim, max(epochs_done - 1, 0),
                                            temperature, score_range),
        mass_histograms=evaluated["mass_histograms"], parameters=parameters,
        epoch_ms_median=float(np.median(steady)) if steady else 0.0,
        reweight_factors=trainer.factors.numpy()[kept].astype(float).tolist()
        if events.mass is not None else None,
        components=evaluated["components"],
        statistical_model=statmodel.try_summary(yields.table_from_categories(
            evaluated["categories"], events.process_names, events.signal_names,
            window if events.mass is not None else None),
            # a dataset run trains (and is evaluated here) on what is not held out
            "training" if held_out is not None and config.is_dataset else "full"),
        elapsed_s=time.perf_counter() - start,
        heldout_significance=heldout_z,
        heldout_objective=heldout_objective,
        start_objectives=[float(v) for v in start_objectives] if start_objectives else None,
        chosen_start=chosen if start_objectives else None,
    )
    yield result
    return result
