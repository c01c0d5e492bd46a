"""gato_core.binning (hist, Weight storage) against plain numpy re-computations of the
binning the engine did before it: np.searchsorted(side="right") on the edges, then either
clipping into the edge bins or dropping what lies outside [first, last edge]; sums of
weights and of squared weights by np.bincount in event order. Exact equality: same bins
for events on an edge, same sums bit for bit."""
import math

import numpy as np
import pytest
import uproot

from gato_core import binning, evaluation, massfit, shapes
from gato_core.scenarios import generate


def awkward_sample(edges, n=50_000, seed=0):
    """Values spread beyond both ends, many exactly on an edge (on both ends too), a NaN
    and infinities; float32 weights (as events store them) of mixed sign."""
    rng = np.random.default_rng(seed)
    lo, hi = edges[0], edges[-1]
    span = hi - lo
    values = rng.uniform(lo - 0.1 * span, hi + 0.1 * span, n)
    on_edge = rng.choice(n, n // 10, replace=False)
    values[on_edge] = edges[rng.integers(0, len(edges), on_edge.size)]
    values[:4] = [np.nan, np.inf, -np.inf, hi]
    weights = rng.normal(1.0, 0.7, n).astype(np.float32)
    return values, weights


def numpy_bins(edges, values):
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)


def numpy_sums(flat, weights, size):
    w = weights.astype(np.float64)
    return (np.bincount(flat, weights=w, minlength=size),
            np.bincount(flat, weights=w * w, minlength=size))


EDGES = [np.linspace(100.0, 180.0, 81), np.linspace(0.0, 1.0, 1501),
         np.array([-2.0, -0.5, 0.0, 0.3, 7.0])]


@pytest.mark.parametrize("edges", EDGES, ids=["mass", "fine", "uneven"])
def test_clip_rule_gives_numpys_bins_and_sums_exactly(edges):
    values, weights = awkward_sample(edges)
    n_bins = len(edges) - 1
    np.testing.assert_array_equal(binning.bin_index(edges, values), numpy_bins(edges, values))
    rng = np.random.default_rng(1)
    category, process = rng.integers(0, 4, values.size), rng.integers(0, 3, values.size)
    h = binning.weighted(edges, values, weights, by=((category, 4), (process, 3)))
    sum_w, sum_w2 = numpy_sums((category * 3 + process) * n_bins + numpy_bins(edges, values),
                               weights, 4 * 3 * n_bins)
    np.testing.assert_array_equal(h.values(), sum_w.reshape(4, 3, n_bins))
    np.testing.assert_array_equal(h.variances(), sum_w2.reshape(4, 3, n_bins))
    assert not h.values(flow=True)[..., [0, -1]].any()


@pytest.mark.parametrize("edges", EDGES, ids=["mass", "fine", "uneven"])
def test_drop_rule_leaves_out_what_is_outside_and_keeps_the_last_edge(edges):
    values, weights = awkward_sample(edges, seed=2)
    n_bins = len(edges) - 1
    keep = (values >= edges[0]) & (values <= edges[-1])
    h = binning.weighted(edges, values, weights, outside=binning.DROP)
    sum_w, sum_w2 = numpy_sums(numpy_bins(edges, values[keep]), weights[keep], n_bins)
    np.testing.assert_array_equal(h.values(), sum_w)
    np.testing.assert_array_equal(h.variances(), sum_w2)
    # np.histogram has the same rule (it sums by a different route: equal to rounding)
    np.testing.assert_allclose(h.values(), np.histogram(values[keep], edges,
                                                        weights=weights[keep].astype(float))[0],
                               rtol=1e-12, atol=1e-9)


def test_edge_events_by_hand():
    edges = [0.0, 1.0, 2.0]
    values = [-0.5, 0.0, 1.0, 1.5, 2.0, 2.5, math.nan]
    weights = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    clip = binning.weighted(edges, values, weights)
    assert clip.values().tolist() == [1.0 + 2.0, 4.0 + 8.0 + 16.0 + 32.0 + 64.0]
    assert clip.variances().tolist() == [1.0 + 4.0, 16.0 + 64.0 + 256.0 + 1024.0 + 4096.0]
    drop = binning.weighted(edges, values, weights, outside=binning.DROP)
    assert drop.values().tolist() == [2.0, 4.0 + 8.0 + 16.0]
    labelled = binning.weighted(edges, values, weights, by=(([0, 1, -1, 2, 1, 0, 0], 2),))
    assert labelled.values().tolist() == [[1.0, 32.0 + 64.0], [2.0, 16.0]]


@pytest.fixture(scope="module")
def bump():
    events = generate("bump_hunt", 3000, 30000, seed=5, noise=0.1, mass_sigma=1.5)
    rng = np.random.default_rng(3)
    events.mass[:300] = np.linspace(100.0, 180.0, 81)[rng.integers(0, 81, 300)]
    return events, rng.integers(0, 4, events.weight.size)


def test_engine_mass_histograms_and_background_fit_counts_match_numpy(bump):
    events, category = bump
    n_proc = len(events.process_names)
    hists = evaluation.mass_histograms(events, category, 4, [0, 1, 2, 3])
    edges = np.asarray(hists["edges"])
    n_bins = len(edges) - 1
    flat = (category * n_proc + events.process) * n_bins + numpy_bins(edges, events.mass)
    expected = numpy_sums(flat, events.weight, 4 * n_proc * n_bins)[0].reshape(4, n_proc, n_bins)
    assert hists["counts"] == [np.round(expected[c], 6).tolist() for c in range(4)]
    # the training's background fit: its 10-bin counts, by np.add.at as it was
    is_bkg = events.background_mask()
    fit_edges = np.linspace(100.0, 180.0, massfit.FIT_BINS + 1)
    counts = np.zeros((4, massfit.FIT_BINS))
    np.add.at(counts, (category[is_bkg], numpy_bins(fit_edges, events.mass[is_bkg])),
              events.weight[is_bkg])
    _, slope, ok = massfit.fit_exponential(counts, fit_edges)
    for c in range(4):
        fit = hists["fits"][c]
        assert (fit is not None) == bool(ok[c]) and fit["B"] == slope[c]


def test_exported_root_histograms_keep_sum_w2_and_their_regular_axis(bump, tmp_path):
    events, category = bump
    category = category.copy()
    category[:50] = -1  # no category: in no histogram
    h = shapes.mass_histograms(events, category, 4)
    shapes.write_root(h, events.process_names, tmp_path / "h.root")
    keep = (category >= 0) & (events.mass >= 100.0) & (events.mass <= 180.0)
    with uproot.open(tmp_path / "h.root") as f:
        for k in range(4):
            for j, p in enumerate(events.process_names):
                sel = keep & (category == k) & (events.process == j)
                w = events.weight[sel].astype(np.float64)
                th1 = f[f"cat{k}/{p}"]
                bins = numpy_bins(np.linspace(100.0, 180.0, 81), events.mass[sel])
                np.testing.assert_array_equal(th1.values(), np.bincount(bins, w, 80))
                np.testing.assert_array_equal(th1.variances(), np.bincount(bins, w * w, 80))
                # ROOT's own totals: sum w^2 is the sum of squared weights (not of weights)
                assert th1.member("fTsumw2") == pytest.approx(float(np.sum(w * w)), rel=1e-12)
                assert th1.member("fTitle") == f"{p}, category {k}"
                axis = th1.member("fXaxis")
                assert axis.member("fTitle") == shapes.MASS_LABEL
                assert len(axis.member("fXbins")) == 0  # a regular axis, as ROOT files had
            asimov = f[f"cat{k}/{shapes.DATA_NAME}"]
            np.testing.assert_array_equal(asimov.variances(), asimov.values())


def test_inclusive_histograms_match_numpy(bump):
    events, _ = bump
    summary = evaluation.inclusive_summary(events)
    edges = np.asarray(summary["mass_hist"]["edges"])
    keep = (events.mass >= edges[0]) & (events.mass <= edges[-1])
    for j, p in enumerate(events.process_names):
        sel = keep & (events.process == j)
        expected = np.bincount(numpy_bins(edges, events.mass[sel]),
                               events.weight[sel].astype(np.float64), 80)
        assert summary["mass_hist"]["counts"][p] == expected.tolist()
