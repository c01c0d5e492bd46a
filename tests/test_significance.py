import math

import numpy as np
import pytest

from gato_core.significance import asimov_z, combined_z, objective_value, significance_per_signal


def hand_asimov(s, b):
    return math.sqrt(2 * ((s + b) * math.log(1 + s / b) - s))


@pytest.mark.parametrize("s,b", [(5.0, 10.0), (30.0, 2.0), (1.0, 1.0), (100.0, 400.0)])
def test_asimov_matches_hand_computation(s, b):
    assert asimov_z(s, b) == pytest.approx(hand_asimov(s, b), rel=1e-12)


def test_small_ratio_uses_s_over_sqrt_b():
    # s/b = 0.05 < 0.1: the expansion s/sqrt(b) is the defined value
    assert asimov_z(5.0, 100.0) == pytest.approx(5.0 / 10.0, rel=1e-12)
    # and it is close to the full formula there (continuity of the definition)
    assert asimov_z(5.0, 100.0) == pytest.approx(hand_asimov(5.0, 100.0), rel=0.02)


def test_quadrature_and_other_signal_as_background():
    s = np.array([[3.0, 1.0], [0.5, 2.0]])  # two signals, two categories
    b = np.array([10.0, 4.0])
    z = significance_per_signal(s, b)
    z1 = math.sqrt(asimov_z(3.0, 10.5) ** 2 + asimov_z(1.0, 6.0) ** 2)
    z2 = math.sqrt(asimov_z(0.5, 13.0) ** 2 + asimov_z(2.0, 5.0) ** 2)
    assert z == pytest.approx([z1, z2], rel=1e-12)
    assert objective_value(z) == pytest.approx(math.sqrt(z1 * z2), rel=1e-12)
    assert combined_z([3.0, 1.0], [10.0, 4.0]) == pytest.approx(
        math.hypot(asimov_z(3.0, 10.0), asimov_z(1.0, 4.0)))


def test_zero_signal_gives_zero():
    assert asimov_z(0.0, 5.0) == 0.0
