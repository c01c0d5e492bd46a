import numpy as np
import pytest

from gato_core.massfit import FIT_BINS, fit_exponential, reweight_factors, window_fraction


def analytic_fraction(slope, window, mass_range=(100.0, 180.0)):
    return (np.exp(slope * window[1]) - np.exp(slope * window[0])) / (
        np.exp(slope * mass_range[1]) - np.exp(slope * mass_range[0]))


@pytest.mark.parametrize("slope", [-0.05, -0.025, -0.001])
def test_reweight_factor_on_a_pure_exponential_within_2_percent(slope):
    rng = np.random.default_rng(11)
    n = 100_000
    u = rng.random(n)
    mass = 100 + np.log1p(u * np.expm1(slope * 80)) / slope
    window = (123.5, 126.5)
    factor = reweight_factors(np.zeros(n, int), mass, np.full(n, 0.3), np.ones(n, bool), 1, window)
    assert factor[0] == pytest.approx(analytic_fraction(slope, window), rel=0.02)


def test_fit_recovers_slope_and_normalisation():
    edges = np.linspace(100, 180, FIT_BINS + 1)
    true_a, true_b = 5000.0, -0.04
    counts = true_a / true_b * (np.exp(true_b * edges[1:]) - np.exp(true_b * edges[:-1]))
    a, b, ok = fit_exponential(counts[None], edges)
    assert ok[0] and b[0] == pytest.approx(true_b, rel=1e-4) and a[0] == pytest.approx(true_a, rel=1e-3)
    assert window_fraction(b, (123.5, 126.5))[0] == pytest.approx(
        analytic_fraction(true_b, (123.5, 126.5)), rel=1e-3)


def test_fallback_when_category_has_no_background_in_window():
    mass = np.array([101.0, 102.0, 170.0])
    factors = reweight_factors(np.array([0, 0, 1]), mass, np.ones(3), np.ones(3, bool), 3, (123.5, 126.5))
    assert factors == pytest.approx([3 / 80] * 3)
