import numpy as np
import pytest

from gato_core.scenarios import CROSS_SECTIONS, LUMINOSITY, MASS_RANGE, SCENARIOS, generate, one_d_discriminant, CLASS_MEANS


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_same_seed_same_events_and_other_seed_differs(scenario):
    a = generate(scenario, n_signal=500, n_bkg=3000, seed=7)
    b = generate(scenario, n_signal=500, n_bkg=3000, seed=7)
    c = generate(scenario, n_signal=500, n_bkg=3000, seed=8)
    assert np.array_equal(a.scores, b.scores) and np.array_equal(a.weight, b.weight)
    assert not np.array_equal(a.scores, c.scores)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_weights_sum_to_cross_section_times_luminosity(scenario):
    events = generate(scenario, n_signal=1000, n_bkg=5000, seed=1)
    for i, name in enumerate(events.process_names):
        xs = CROSS_SECTIONS["signal1" if name == "signal" else name]
        assert events.weight[events.process == i].sum() == pytest.approx(xs * LUMINOSITY, rel=1e-5)
    assert events.n_events == 1000 * len(events.signal_names) + 5000


def test_background_split_follows_cross_sections():
    events = generate("three_class", n_signal=100, n_bkg=26000, seed=1)
    counts = [int((events.process == events.process_index(b)).sum()) for b in
              ("bkg1", "bkg2", "bkg3", "bkg4", "bkg5")]
    assert counts == [10000, 8000, 5000, 2000, 1000]


def test_scores_in_range_and_simplex():
    one = generate("one_d", 1000, 3000, seed=2)
    assert one.scores.shape == (4000, 1) and one.scores.min() >= 0 and one.scores.max() <= 1
    two = generate("three_class", 1000, 3000, seed=2)
    assert two.scores.shape == (5000, 2)
    assert np.all(two.scores >= 0) and np.all(two.scores.sum(axis=1) <= 1 + 1e-6)
    # signal1 events peak at high p1: the discriminant works
    s1 = two.scores[two.process == two.process_index("signal1"), 0].mean()
    bkg = two.scores[two.background_mask(), 0].mean()
    assert s1 > bkg + 0.3


def test_discriminant_is_the_likelihood_ratio():
    cov = np.full((3, 3), 0.2) + 0.8 * np.eye(3)

    def pdf(x, mean):
        d = x - np.asarray(mean)
        return np.exp(-0.5 * d @ np.linalg.solve(cov, d)) / np.sqrt((2 * np.pi) ** 3 * np.linalg.det(cov))

    xs = np.array([100, 80, 50, 20, 10]) / 260
    for point in ([1.5, -1, -1], [0.0, 0.0, 0.0], [-0.5, -0.5, 1.0]):
        point = np.array(point)
        lr = pdf(point, CLASS_MEANS["signal1"]) / sum(
            f * pdf(point, CLASS_MEANS[b]) for f, b in zip(xs, ("bkg1", "bkg2", "bkg3", "bkg4", "bkg5")))
        assert one_d_discriminant(point[None, :])[0] == pytest.approx(lr / (1 + lr), rel=1e-9)


def test_bump_hunt_masses():
    events = generate("bump_hunt", 2000, 20000, seed=3, mass_sigma=1.5)
    assert events.mass.min() >= MASS_RANGE[0] and events.mass.max() <= MASS_RANGE[1]
    sig = events.mass[events.process == 0]
    assert np.median(sig) == pytest.approx(125.0, abs=0.2)
    assert np.std(sig) == pytest.approx(1.5, rel=0.1)
    # exponential background with slope 0.05: mean of truncated exp on [100, 180]
    bkg1 = events.mass[events.process == events.process_index("bkg1")] - 100
    lam, span = 0.05, 80.0
    expected = 1 / lam - span * np.exp(-lam * span) / (1 - np.exp(-lam * span))
    assert bkg1.mean() == pytest.approx(expected, rel=0.03)
