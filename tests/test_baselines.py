import itertools

import numpy as np
import pytest

from gato_core.baselines import (argmax_assignment, equidistant_1d, optimal_partition,
                                 optimum_1d, reference_baselines)
from gato_core.scenarios import EventSample, generate
from gato_core.significance import asimov_z, combined_z


def brute_force(signal, background, n_cats, counts=None, min_count=0):
    n = len(signal)
    best = float("nan")
    for cuts in itertools.combinations(range(1, n), n_cats - 1):
        edges = (0,) + cuts + (n,)
        if counts is not None and min(counts[a:b].sum() for a, b in zip(edges[:-1], edges[1:])) < min_count:
            continue
        s = [signal[a:b].sum() for a, b in zip(edges[:-1], edges[1:])]
        b = [background[a:b].sum() for a, b in zip(edges[:-1], edges[1:])]
        z = combined_z(s, b)
        best = z if not best >= z else best
    return best


@pytest.mark.parametrize("seed", range(6))
def test_dynamic_programming_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 11
    signal = rng.exponential(1.0, n) * np.linspace(0.1, 3, n)
    background = rng.exponential(20.0, n)[::-1]
    for n_cats in (1, 2, 3, 4):
        z, cuts = optimal_partition(signal, background, n_cats)
        assert z == pytest.approx(brute_force(signal, background, n_cats), rel=1e-10)
        assert len(cuts) == n_cats - 1
        # the returned cuts reproduce the optimum
        edges = [0] + cuts + [n]
        s = [signal[a:b].sum() for a, b in zip(edges[:-1], edges[1:])]
        b = [background[a:b].sum() for a, b in zip(edges[:-1], edges[1:])]
        assert combined_z(s, b) == pytest.approx(z, rel=1e-10)


@pytest.mark.parametrize("seed", range(4))
def test_minimum_background_events_constraint_equals_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    n = 10
    signal = rng.exponential(1.0, n)
    counts = rng.integers(0, 6, n)
    background = counts * 0.7
    for n_cats in (2, 3):
        z, cuts = optimal_partition(signal, background, n_cats, counts, 5)
        expected = brute_force(signal, background, n_cats, counts, 5)
        if np.isnan(expected):
            assert np.isnan(z)
        else:
            assert z == pytest.approx(expected, rel=1e-10)


def test_small_sample_optimum_is_not_inflated_by_empty_background_bins():
    events = generate("one_d", 2000, 6000, seed=42)
    z3, _ = optimum_1d(events, 3)
    assert z3 < 2.0 * equidistant_1d(events, 5)  # was 6.8 vs 1.03 without the constraint


def _toy(scores, process, weight, signals=("signal",), names=("signal", "bkg1")):
    return EventSample(scenario="one_d", scores=np.asarray(scores, np.float32)[:, None] if np.ndim(scores) == 1 else np.asarray(scores, np.float32),
                       weight=np.asarray(weight, np.float32), process=np.asarray(process, np.int16),
                       process_names=names, signal_names=signals)


def test_equidistant_baseline_by_hand():
    # two bins on [0, 1]: bin 0 gets s=1, b=4; bin 1 gets s=3, b=1
    events = _toy([0.1, 0.2, 0.3, 0.7, 0.9], [0, 1, 1, 0, 1], [1, 2, 2, 3, 1])
    expected = np.hypot(asimov_z(1, 4), asimov_z(3, 1))
    assert equidistant_1d(events, 2) == pytest.approx(expected, rel=1e-6)


def test_argmax_assignment_rule():
    scores = np.array([[0.8, 0.1], [0.4, 0.35], [0.2, 0.7], [0.2, 0.2], [0.34, 0.1], [0.5, 0.1]])
    bins = argmax_assignment(_toy(scores, [0] * 6, [1] * 6), 2, 0)
    # edges 0.33, 0.665, 1: argmax-signal1 events get a bin of p1; others -1
    assert bins.tolist() == [1, 0, -1, -1, -1, 0]  # [0.34, 0.1] has pB = 0.56: background-like


def test_reference_numbers_on_the_default_1d_sample():
    events = generate("one_d")
    ref = reference_baselines(events, (5, 10, 20))["per_signal"]["signal"]
    # FIELD-NOTES reference values (another generator): 1.007 / 1.172 / 1.324
    assert ref[5] == pytest.approx(1.007, rel=0.03)
    assert ref[10] == pytest.approx(1.172, rel=0.03)
    assert ref[20] == pytest.approx(1.324, rel=0.03)
    z5, boundaries = optimum_1d(events, 5)
    assert z5 > ref[20]  # the optimum with 5 bins beats 20 equal bins
    assert len(boundaries) == 4 and boundaries == sorted(boundaries)


def test_argmax_baseline_counts_2n_plus_1():
    events = generate("bump_hunt", n_signal=20000, n_bkg=200000, seed=5)
    ref = reference_baselines(events, (2, 5))
    assert set(ref["objective"]) == {5, 11}
    z1, z2 = ref["per_signal"]["signal1"][11], ref["per_signal"]["signal2"][11]
    assert ref["objective"][11] == pytest.approx(np.sqrt(z1 * z2))
