"""Differentiable categorisers in TensorFlow (ALGORITHM §2).

Both models expose ``log_scores``/``soft_membership`` on flat tensors and convert to and
from a plain ``parameters`` dict (JSON-safe), which is also what the numpy evaluation uses.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from . import geometry

LOG_2PI = math.log(2.0 * math.pi)


def quadratic_feature_count(dim: int) -> int:
    return 1 + dim + dim * (dim + 1) // 2


def quadratic_features(scores):
    """(1, x_i, x_i x_j for i <= j) per event: the Gaussian log density is linear in these."""
    scores = tf.convert_to_tensor(scores, tf.float32)
    dim = scores.shape[-1]
    cols = [tf.ones_like(scores[:, :1]), scores]
    for i in range(dim):
        for j in range(i, dim):
            cols.append(scores[:, i:i + 1] * scores[:, j:j + 1])
    return tf.concat(cols, axis=1)


class GMMCategoriser(tf.Module):
    """K Gaussian components; soft category = softmax((log N + log pi) / T)."""

    model = "gmm"

    def __init__(self, n_cats, dim, mean_mode="sigmoid", mean_range=(0.0, 1.0), seed=0,
                 damping=geometry.OFFDIAG_DAMPING, initial_means=None):
        super().__init__(name="gmm_categoriser")
        self.n_cats, self.dim = int(n_cats), int(dim)
        self.mean_mode, self.mean_range = mean_mode, tuple(float(v) for v in mean_range)
        self.sigma_base = geometry.sigma_base(self.dim, self.n_cats)
        self.damping = float(damping)
        rng = np.random.default_rng(seed)
        self.logits = tf.Variable(rng.normal(0.0, 0.1, self.n_cats), dtype=tf.float32)
        raw_means = rng.normal(0.0, 2.0, (self.n_cats, self.dim))
        if initial_means is not None:  # drawn anyway, so a seed gives the same logits
            raw_means = geometry.raw_means_for(initial_means, mean_mode, self.mean_range)
        self.raw_means = tf.Variable(raw_means, dtype=tf.float32)
        self.raw_scale = tf.Variable(tf.zeros((self.n_cats, self.dim, self.dim)), dtype=tf.float32)

    @property
    def variables_list(self):
        return [self.logits, self.raw_means, self.raw_scale]

    def means(self):
        if self.mean_mode == "sigmoid":
            lo, hi = self.mean_range
            return lo + (hi - lo) * tf.sigmoid(self.raw_means)
        padded = tf.concat([self.raw_means, tf.zeros((self.n_cats, 1))], axis=1)
        return tf.nn.softmax(padded, axis=1)[:, : self.dim]

    def scale_tril(self):
        eye = tf.eye(self.dim, dtype=tf.bool)
        lower = tf.constant(np.tril(np.ones((self.dim, self.dim), dtype=bool), -1))
        diag = self.sigma_base * tf.exp(self.raw_scale)
        off = self.damping * self.raw_scale
        # each branch is finite for any raw value, so where() gets clean gradients
        return tf.where(eye, diag, tf.where(lower, off, tf.zeros_like(off)))

    def log_scores(self, scores):
        """log N(x | mu_k, L_k L_k^T) + log pi_k, [N, K], without a per-component loop.

        ``scores`` may be the raw [N, D] scores or their ``quadratic_features``; with the
        features the whole density is one [N, F] x [F, K] matmul, which is what makes the
        training step cheap (the expansion is exact; float32 rounding is harmless for the
        soft objective, and hard evaluation uses the float64 numpy path).
        """
        if scores.shape[-1] != quadratic_feature_count(self.dim):
            scores = quadratic_features(scores)
        return tf.matmul(scores, self.feature_weights())

    def feature_weights(self):
        """[F, K] coefficients of (1, x_i, x_i x_j (i <= j)) in log N + log pi."""
        mu = self.means()  # [K, D]
        tril = self.scale_tril()  # [K, D, D]
        eye = tf.eye(self.dim, batch_shape=[self.n_cats])
        inv_tril = tf.linalg.triangular_solve(tril, eye, lower=True)  # L^-1
        precision = tf.matmul(inv_tril, inv_tril, transpose_a=True)  # L^-T L^-1
        linear = tf.linalg.matvec(precision, mu)  # [K, D]
        log_det = tf.reduce_sum(tf.math.log(tf.linalg.diag_part(tril)), axis=1)
        log_pi = tf.nn.log_softmax(self.logits)
        const = (log_pi - log_det - 0.5 * self.dim * LOG_2PI
                 - 0.5 * tf.reduce_sum(linear * mu, axis=1))
        rows = [const] + [linear[:, i] for i in range(self.dim)]
        for i in range(self.dim):
            for j in range(i, self.dim):
                factor = -0.5 if i == j else -1.0
                rows.append(factor * precision[:, i, j])
        return tf.stack(rows, axis=0)

    def soft_membership(self, scores, temperature):
        return tf.nn.softmax(self.log_scores(scores) / temperature, axis=1)

    def prepare_inputs(self, scores):
        """What the training step consumes: the quadratic features, computed once."""
        return quadratic_features(scores)

    def parameters(self) -> dict:
        return {
            "model": self.model,
            "n_cats": self.n_cats,
            "dim": self.dim,
            "mean_mode": self.mean_mode,
            "mean_range": list(self.mean_range),
            "sigma_base": self.sigma_base,
            "damping": self.damping,
            "logits": self.logits.numpy().astype(float).tolist(),
            "raw_means": self.raw_means.numpy().astype(float).tolist(),
            "raw_scale": self.raw_scale.numpy().astype(float).tolist(),
        }

    def load(self, parameters: dict):
        self.logits.assign(np.asarray(parameters["logits"], dtype=np.float32))
        self.raw_means.assign(np.asarray(parameters["raw_means"], dtype=np.float32))
        self.raw_scale.assign(np.asarray(parameters["raw_scale"], dtype=np.float32))
        self.sigma_base = float(parameters["sigma_base"])
        self.damping = float(parameters["damping"])


class SigmoidCutCategoriser(tf.Module):
    """K-1 ordered cuts on a 1-D discriminant; membership from differences of sigmoids.

    The 'temperature' handed to it is 1/steepness, so the same annealing code drives both.
    """

    model = "sigmoid_cuts"

    def __init__(self, n_cats, mean_range=(0.0, 1.0), seed=0, initial_cuts=None):
        super().__init__(name="sigmoid_cut_categoriser")
        self.n_cats, self.dim = int(n_cats), 1
        self.mean_range = tuple(float(v) for v in mean_range)
        rng = np.random.default_rng(seed)
        raw_cuts = rng.normal(0.0, 0.1, self.n_cats - 1)
        if initial_cuts is not None:
            raw_cuts = geometry.raw_cuts_for(initial_cuts, self.mean_range)
        self.raw_cuts = tf.Variable(raw_cuts, dtype=tf.float32)

    @property
    def variables_list(self):
        return [self.raw_cuts]

    def prepare_inputs(self, scores):
        return tf.convert_to_tensor(scores, tf.float32)

    def cuts(self):
        lo, hi = self.mean_range
        frac = tf.math.cumsum(tf.nn.softmax(tf.concat([self.raw_cuts, [0.0]], axis=0)))[:-1]
        return lo + (hi - lo) * frac

    def soft_membership(self, scores, temperature):
        steep = 1.0 / temperature
        above = tf.sigmoid(steep * (scores[:, :1] - self.cuts()[None, :]))  # [N, K-1]
        ones = tf.ones_like(scores[:, :1])
        upper = tf.concat([ones, above], axis=1)
        lower = tf.concat([above, tf.zeros_like(ones)], axis=1)
        return upper - lower

    def log_scores(self, scores):
        # Hard assignment only: the bin index, encoded so that argmax picks it.
        n_below = tf.reduce_sum(tf.cast(scores[:, :1] >= self.cuts()[None, :], tf.int32), axis=1)
        return tf.one_hot(n_below, self.n_cats)

    def parameters(self) -> dict:
        return {
            "model": self.model,
            "n_cats": self.n_cats,
            "dim": 1,
            "mean_range": list(self.mean_range),
            "raw_cuts": self.raw_cuts.numpy().astype(float).tolist(),
        }

    def load(self, parameters: dict):
        self.raw_cuts.assign(np.asarray(parameters["raw_cuts"], dtype=np.float32))


class MultiStart(tf.Module):
    """R independent starts of one categoriser, trained together as one flat computation.

    Memberships of all starts sit side by side, [N, R*K] (start r owns columns r*K ..
    r*K+K-1), so every yield of every start is one matmul. Each start's softmax is its own
    [N, K] op: XLA on CPU runs one softmax over [N, R, K] slower than R of them at R = 2
    (the default), e.g. 2.7x instead of 2.2x the one-start step at K = 8
    (bench/bench_starts.py). The starts share no parameter: the gradient of the summed loss
    is each start's own gradient.
    """

    def __init__(self, starts):
        super().__init__(name="multi_start")
        self.starts = list(starts)
        first = self.starts[0]
        self.model, self.n_cats, self.dim = first.model, first.n_cats, first.dim
        self.n_starts = len(self.starts)

    @property
    def variables_list(self):
        return [v for start in self.starts for v in start.variables_list]

    def prepare_inputs(self, scores):
        return self.starts[0].prepare_inputs(scores)

    def log_scores(self, inputs):
        """[N, R*K]; argmax within each start's K columns is that start's hard category."""
        if self.model == "gmm":
            if inputs.shape[-1] != quadratic_feature_count(self.dim):
                inputs = quadratic_features(inputs)
            weights = tf.concat([start.feature_weights() for start in self.starts], axis=1)
            return tf.matmul(inputs, weights)
        return tf.concat([start.log_scores(inputs) for start in self.starts], axis=1)

    def hard(self, inputs):
        """[N, R] hard category of every event in every start."""
        scores = tf.reshape(self.log_scores(inputs), [-1, self.n_starts, self.n_cats])
        return tf.argmax(scores, axis=2, output_type=tf.int32)

    def soft_membership(self, inputs, temperature):
        return tf.concat([start.soft_membership(inputs, temperature) for start in self.starts],
                         axis=1)

    def parameters(self, start: int = 0) -> dict:
        """One start's parameters, in the single-model format (from_parameters restores it)."""
        return self.starts[start].parameters()


def build(model: str, n_cats: int, dim: int, mean_mode: str, mean_range, seed: int,
          initial=None):
    """A fresh categoriser; ``initial`` is optional starting means [K, D] (GMM) or cut
    points [K-1] (sigmoid cuts), otherwise the start is random."""
    if model == "gmm":
        return GMMCategoriser(n_cats, dim, mean_mode, mean_range, seed=seed, initial_means=initial)
    if model == "sigmoid_cuts":
        return SigmoidCutCategoriser(n_cats, mean_range, seed=seed, initial_cuts=initial)
    raise ValueError(f"unknown model {model!r}")


def from_parameters(parameters: dict):
    """Rebuild a trainable model from a ``parameters`` dict (or a saved JSON file path)."""
    if isinstance(parameters, (str, Path)):
        parameters = load_parameters(parameters)
    model = build(parameters["model"], parameters["n_cats"], parameters["dim"],
                  parameters.get("mean_mode", "sigmoid"), parameters["mean_range"], seed=0)
    model.load(parameters)
    return model


def load_parameters(path) -> dict:
    return json.loads(Path(path).read_text())
