"""Differentiable Asimov significance and penalties in TensorFlow (ALGORITHM §1, §2).

Every branch is evaluated on inputs that are safe for it, so neither the value nor the
gradient can become NaN or inf through the formula (tf.where differentiates both branches).
"""
from __future__ import annotations

import tensorflow as tf

from .significance import B_FLOOR, SMALL_RATIO

SQRT_EPS = 1e-9  # keeps d sqrt(x)/dx finite where a significance is exactly zero


def asimov_z2(s, b):
    """Per-category Z^2, elementwise."""
    s = tf.maximum(s, 0.0)
    b = tf.maximum(b, B_FLOOR)
    ratio = s / b
    full = 2.0 * ((s + b) * tf.math.log1p(ratio) - s)
    return tf.where(ratio < SMALL_RATIO, s * s / b, tf.nn.relu(full))


def asimov_z2_bkg_unc(s, b, rel):
    """Per-category Z^2 with background uncertainty σ = rel x b (gato_core.significance.
    asimov_z_bkg_unc, same branches), elementwise; ``rel`` > 0 is a Python float."""
    s = tf.maximum(s, 0.0)
    b = tf.maximum(b, B_FLOOR)
    var = (rel * b) ** 2
    ratio = s / b
    first = (s + b) * (tf.math.log1p(ratio) + tf.math.log1p(var / b)
                       - tf.math.log1p((s + b) * var / (b * b)))
    second = (b * b) / var * tf.math.log1p(var * s / (b * (b + var)))
    return tf.where(ratio < SMALL_RATIO, s * s / (b + var), tf.nn.relu(2.0 * (first - second)))


def significance_per_signal(signal, background, bkg_rel_unc: float = 0.0):
    """Combined Z per signal from [S, K] signal and [K] background yields.

    Other signals count as background of each signal. Categories are the last axis, so
    several independent starts batch as [S, R, K] and [R, K], giving [S, R].
    ``bkg_rel_unc`` > 0: Asimov Z with background uncertainty bkg_rel_unc x b per category.
    """
    total_signal = tf.reduce_sum(signal, axis=0, keepdims=True)
    b = background[None] + total_signal - signal
    z2 = asimov_z2_bkg_unc(signal, b, bkg_rel_unc) if bkg_rel_unc > 0 else asimov_z2(signal, b)
    return tf.sqrt(tf.reduce_sum(z2, axis=-1) + SQRT_EPS)


def objective_loss(z_per_signal):
    """-Z for one signal, minus the geometric mean for several ([S] -> scalar, [S, R] -> [R])."""
    if z_per_signal.shape[0] == 1:
        return -z_per_signal[0]
    return -tf.exp(tf.reduce_mean(tf.math.log(z_per_signal), axis=0))


def low_background_penalty(background, threshold):
    """Sum over categories (the last axis) of relu(threshold - b)^2."""
    return tf.reduce_sum(tf.nn.relu(threshold - background) ** 2, axis=-1)


def high_uncertainty_penalty(sum_w2, background, threshold):
    """Sum over categories (the last axis) of relu(sqrt(sum w^2) / b - threshold)^2."""
    rel = tf.sqrt(sum_w2 + SQRT_EPS) / tf.maximum(background, B_FLOOR)
    return tf.reduce_sum(tf.nn.relu(rel - threshold) ** 2, axis=-1)
