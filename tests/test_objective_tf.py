"""The TensorFlow objective against the numpy reference, and its gradients at the edges."""
import numpy as np
import pytest

import tensorflow as tf  # pinned (requirements.txt): a broken install fails, never skips

from gato_core.objective import (asimov_z2, high_uncertainty_penalty, low_background_penalty,
                                 significance_per_signal)
from gato_core.significance import asimov_z, significance_per_signal as np_significance


def test_tf_significance_equals_numpy():
    rng = np.random.default_rng(3)
    s = rng.uniform(0, 20, (2, 6))
    b = rng.uniform(0.5, 200, 6)
    tf_z = significance_per_signal(tf.constant(s, tf.float32), tf.constant(b, tf.float32)).numpy()
    assert tf_z == pytest.approx(np_significance(s, b), rel=1e-4)


@pytest.mark.parametrize("s,b", [(0.0, 10.0), (5.0, 0.0), (5.0, 1e-9), (1e7, 1e-3), (0.0, 0.0),
                                 (1e-8, 1e6)])
def test_gradients_are_finite_at_the_edges(s, b):
    s_var = tf.Variable([s, 1.0], dtype=tf.float32)
    b_var = tf.Variable([b, 2.0], dtype=tf.float32)
    with tf.GradientTape() as tape:
        z = significance_per_signal(s_var[None, :], b_var)
        loss = -z[0] + low_background_penalty(b_var, 5.0) + high_uncertainty_penalty(
            b_var * 0.01, b_var, 0.1)
    grads = tape.gradient(loss, [s_var, b_var])
    assert np.isfinite(loss.numpy())
    for g in grads:
        assert np.all(np.isfinite(g.numpy())), (s, b, g)


def test_z2_values_per_category():
    s = np.array([0.0, 0.5, 5.0, 50.0])
    b = np.array([10.0, 10.0, 10.0, 10.0])
    assert np.sqrt(asimov_z2(tf.constant(s), tf.constant(b)).numpy()) == pytest.approx(
        asimov_z(s, b), rel=1e-6)


def test_penalties_match_their_formulas():
    b = tf.constant([2.0, 20.0, 4.0])
    w2 = tf.constant([1.0, 1.0, 4.0])
    # relu(5 - b)^2 summed: 9 + 0 + 1
    assert low_background_penalty(b, 5.0).numpy() == pytest.approx(10.0)
    # rel = sqrt(w2)/b = 0.5, 0.05, 0.5 ; relu(rel - 0.1)^2 = 0.16 + 0 + 0.16
    assert high_uncertainty_penalty(w2, b, 0.1).numpy() == pytest.approx(0.32, rel=1e-4)
