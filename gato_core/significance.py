"""Asimov discovery significance (ALGORITHM §1), numpy version used for hard evaluation."""
from __future__ import annotations

import numpy as np

#: Below this s/b the expansion s/sqrt(b) is used (also avoids cancellation in the log form).
SMALL_RATIO = 0.1
#: Floor on the background yield: a category without background cannot claim infinite Z.
B_FLOOR = 1e-3


def asimov_z(s, b):
    """Per-category Asimov significance sqrt(2((s+b) ln(1+s/b) - s)); s/sqrt(b) if s/b < 0.1."""
    s = np.maximum(np.asarray(s, dtype=np.float64), 0.0)
    b = np.maximum(np.asarray(b, dtype=np.float64), B_FLOOR)
    ratio = s / b
    full = 2.0 * ((s + b) * np.log1p(ratio) - s)
    z2 = np.where(ratio < SMALL_RATIO, s * s / b, np.maximum(full, 0.0))
    return np.sqrt(z2)


def asimov_z_bkg_unc(s, b, sigma_b):
    """Asimov discovery significance with an absolute background uncertainty ``sigma_b``
    (Cowan, Cranmer, Gross, Vitells, "Asymptotic formulae", and Cowan's "Discovery
    sensitivity for a counting experiment with background uncertainty"):

        Z^2 = 2 [ (s+b) ln((s+b)(b+σ²) / (b² + (s+b)σ²)) - (b²/σ²) ln(1 + σ²s / (b(b+σ²))) ]

    Written with log1p so that it tends to ``asimov_z`` as σ -> 0 without cancellation;
    σ = 0 gives ``asimov_z`` exactly. Like ``asimov_z``, s/b < 0.1 uses the expansion
    s / sqrt(b + σ²) (the formula's own small-s limit).
    """
    s = np.maximum(np.asarray(s, dtype=np.float64), 0.0)
    b = np.maximum(np.asarray(b, dtype=np.float64), B_FLOOR)
    var = np.asarray(sigma_b, dtype=np.float64) ** 2 + np.zeros_like(b)
    ratio = s / b
    safe_var = np.where(var > 0, var, 1.0)  # the σ = 0 branch is asimov_z: no 0/0 here
    first = (s + b) * (np.log1p(ratio) + np.log1p(var / b) - np.log1p((s + b) * var / b ** 2))
    second = b ** 2 / safe_var * np.log1p(safe_var * s / (b * (b + safe_var)))
    full = np.maximum(2.0 * (first - second), 0.0)
    z2 = np.where(ratio < SMALL_RATIO, s * s / (b + var), full)
    return np.where(var > 0, np.sqrt(z2), asimov_z(s, b))


def combined_z(s, b, bkg_rel_unc: float = 0.0) -> float:
    """Categories combined in quadrature; ``bkg_rel_unc`` > 0: each category's background
    has the uncertainty bkg_rel_unc x b (independent between categories)."""
    if bkg_rel_unc > 0:
        z = asimov_z_bkg_unc(s, b, bkg_rel_unc * np.maximum(np.asarray(b, np.float64),
                                                            B_FLOOR))
    else:
        z = asimov_z(s, b)
    return float(np.sqrt(np.sum(z ** 2)))


def significance_per_signal(signal_yields: np.ndarray, background: np.ndarray,
                            bkg_rel_unc: float = 0.0) -> np.ndarray:
    """Combined Z per signal from [S, K] signal yields and [K] background.

    Every other signal counts as extra background in each category. ``bkg_rel_unc``:
    see ``combined_z`` (RunConfig.objective "asimov_bkg_unc").
    """
    signal_yields = np.atleast_2d(np.asarray(signal_yields, dtype=np.float64))
    total_signal = signal_yields.sum(axis=0)
    return np.array(
        [combined_z(row, background + total_signal - row, bkg_rel_unc) for row in signal_yields]
    )


def objective_value(z_per_signal) -> float:
    """The quantity GATO maximises: Z for one signal, the geometric mean for several."""
    z = np.asarray(z_per_signal, dtype=np.float64)
    return float(np.exp(np.mean(np.log(np.maximum(z, 1e-300))))) if z.size > 1 else float(z[0])
