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


def significance_per_signal(signal, background):
    """Combined Z per signal from [S, K] signal and [K] background yields.

    Other signals count as background of each signal. Categories are the last axis, so
    several independent starts batch as [S, R, K] and [R, K], giving [S, R].
    """
    total_signal = tf.reduce_sum(signal, axis=0, keepdims=True)
    z2 = asimov_z2(signal, background[None] + total_signal - signal)
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
