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


def combined_z(s, b) -> float:
    """Categories combined in quadrature."""
    return float(np.sqrt(np.sum(asimov_z(s, b) ** 2)))


def significance_per_signal(signal_yields: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Combined Z per signal from [S, K] signal yields and [K] background.

    Every other signal counts as extra background in each category.
    """
    signal_yields = np.atleast_2d(np.asarray(signal_yields, dtype=np.float64))
    total_signal = signal_yields.sum(axis=0)
    return np.array(
        [combined_z(row, background + total_signal - row) for row in signal_yields]
    )


def objective_value(z_per_signal) -> float:
    """The quantity GATO maximises: Z for one signal, the geometric mean for several."""
    z = np.asarray(z_per_signal, dtype=np.float64)
    return float(np.exp(np.mean(np.log(np.maximum(z, 1e-300))))) if z.size > 1 else float(z[0])
