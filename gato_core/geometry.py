"""From raw trainable parameters to mixture weights, means and scales (ALGORITHM §2).

This numpy version is the canonical one used for hard assignments, evaluation and restored
models; ``gato_core.model`` mirrors it in TensorFlow for training.
"""
from __future__ import annotations

from math import gamma, pi

import numpy as np

from .scenarios import simplex_volume

OFFDIAG_DAMPING = 0.1


def sigma_base(dim: int, n_cats: int) -> float:
    """Scale that spreads K balls of this radius over the score domain."""
    m = max(dim - 1, 1)
    v_ball = pi ** (m / 2) / gamma(m / 2 + 1)
    return float((simplex_volume(dim) / (n_cats * v_ball)) ** (1.0 / m))


def means(raw_means: np.ndarray, mean_mode: str, mean_range=(0.0, 1.0)) -> np.ndarray:
    raw = np.asarray(raw_means, dtype=np.float64)
    if mean_mode == "sigmoid":
        lo, hi = mean_range
        return lo + (hi - lo) / (1.0 + np.exp(-raw))
    if mean_mode == "softmax":
        padded = np.concatenate([raw, np.zeros(raw.shape[:-1] + (1,))], axis=-1)
        padded -= padded.max(axis=-1, keepdims=True)
        e = np.exp(padded)
        return (e / e.sum(axis=-1, keepdims=True))[..., :-1]
    raise ValueError(f"mean mode must be 'sigmoid' or 'softmax', got {mean_mode!r}")


def raw_means_for(mean_positions: np.ndarray, mean_mode: str, mean_range=(0.0, 1.0),
                  margin: float = 1e-4) -> np.ndarray:
    """Inverse of ``means``: raw values that put the components at ``mean_positions``.

    Positions are pulled ``margin`` inside the domain, where the inverse is finite.
    """
    mu = np.asarray(mean_positions, dtype=np.float64)
    if mean_mode == "sigmoid":
        lo, hi = mean_range
        frac = np.clip((mu - lo) / (hi - lo), margin, 1.0 - margin)
        return np.log(frac) - np.log1p(-frac)
    if mean_mode == "softmax":
        mu = np.clip(mu, margin, None)
        rest = 1.0 - mu.sum(axis=-1, keepdims=True)
        mu = np.where(rest < margin, mu * (1.0 - margin) / mu.sum(axis=-1, keepdims=True), mu)
        rest = np.maximum(1.0 - mu.sum(axis=-1, keepdims=True), margin * margin)
        return np.log(mu) - np.log(rest)
    raise ValueError(f"mean mode must be 'sigmoid' or 'softmax', got {mean_mode!r}")


def raw_cuts_for(cuts: np.ndarray, mean_range=(0.0, 1.0), margin: float = 1e-6) -> np.ndarray:
    """Inverse of ``cut_positions``: raw values for ordered cut points inside the range."""
    lo, hi = mean_range
    frac = np.clip((np.sort(np.asarray(cuts, dtype=np.float64)) - lo) / (hi - lo), 0.0, 1.0)
    widths = np.maximum(np.diff(np.concatenate([[0.0], frac, [1.0]])), margin)
    return np.log(widths[:-1]) - np.log(widths[-1])


def scale_tril(raw_scale: np.ndarray, base: float, damping: float = OFFDIAG_DAMPING) -> np.ndarray:
    """Lower-triangular scale: diagonal base*exp(raw), below it damping*raw, above it 0."""
    raw = np.asarray(raw_scale, dtype=np.float64)
    dim = raw.shape[-1]
    eye = np.eye(dim, dtype=bool)
    lower = np.tril(np.ones((dim, dim), dtype=bool), -1)
    return np.where(eye, base * np.exp(raw), np.where(lower, damping * raw, 0.0))


def log_weights(logits: np.ndarray) -> np.ndarray:
    a = np.asarray(logits, dtype=np.float64)
    a = a - a.max()
    return a - np.log(np.exp(a).sum())


def gmm_log_scores(parameters: dict, scores: np.ndarray, chunk: int = 262_144) -> np.ndarray:
    """log N(x | mu_k, L_k L_k^T) + log pi_k for every event and component, [N, K]."""
    mu = means(parameters["raw_means"], parameters["mean_mode"], parameters["mean_range"])
    tril = scale_tril(parameters["raw_scale"], parameters["sigma_base"], parameters["damping"])
    return mixture_log_scores(scores, mu, tril, log_weights(parameters["logits"]), chunk)


def mixture_log_scores(scores: np.ndarray, mu: np.ndarray, tril: np.ndarray,
                       log_pi: np.ndarray, chunk: int = 262_144) -> np.ndarray:
    """log N(x | mu_k, L_k L_k^T) + log pi_k, [N, K], from means [K, D], Cholesky factors
    [K, D, D] and log mixture weights [K]: the one place the hard assignment's density is
    computed (trained parameters and exported categoriser files both land here)."""
    mu = np.asarray(mu, dtype=np.float64)
    tril = np.asarray(tril, dtype=np.float64)
    log_pi = np.asarray(log_pi, dtype=np.float64)
    x = np.asarray(scores, dtype=np.float64)
    dim = x.shape[1]
    diag = np.diagonal(tril, axis1=-2, axis2=-1)  # [K, D]
    const = log_pi - np.log(diag).sum(axis=1) - 0.5 * dim * np.log(2 * np.pi)
    out = np.empty((x.shape[0], mu.shape[0]))
    for start in range(0, x.shape[0], chunk):
        diff = x[start:start + chunk, None, :] - mu[None]  # [n, K, D]
        z = np.empty_like(diff)
        for i in range(dim):  # forward substitution, D is 1 or 2
            acc = diff[..., i]
            for j in range(i):
                acc = acc - tril[:, i, j] * z[..., j]
            z[..., i] = acc / tril[:, i, i]
        out[start:start + chunk] = const - 0.5 * (z * z).sum(axis=-1)
    return out


def cut_positions(parameters: dict) -> np.ndarray:
    """Ordered cut points of the sigmoid-cut model: cumsum(softmax([raw, 0]))[:-1] on the range."""
    raw = np.append(np.asarray(parameters["raw_cuts"], dtype=np.float64), 0.0)
    e = np.exp(raw - raw.max())
    frac = np.cumsum(e / e.sum())[:-1]
    lo, hi = parameters["mean_range"]
    return lo + (hi - lo) * frac


def components(parameters: dict) -> list[dict]:
    """Learned Gaussians for display: weight, mean and covariance per component."""
    if parameters["model"] != "gmm":
        return []
    mu = means(parameters["raw_means"], parameters["mean_mode"], parameters["mean_range"])
    tril = scale_tril(parameters["raw_scale"], parameters["sigma_base"], parameters["damping"])
    weights = np.exp(log_weights(parameters["logits"]))
    return [
        {
            "component": k,
            "weight": float(weights[k]),
            "mean": mu[k].tolist(),
            "cov": (tril[k] @ tril[k].T).tolist(),
        }
        for k in range(mu.shape[0])
    ]
