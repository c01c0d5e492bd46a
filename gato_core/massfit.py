"""Exponential fits of category background mass spectra (bump hunt, ALGORITHM §3).

A binned Poisson likelihood with the normalisation profiled out leaves one parameter, the
slope B; it is found on a grid and refined by golden-section search, vectorised over
categories. No scipy needed and no failure modes from a bad starting point.
"""
from __future__ import annotations

import numpy as np

from . import binning
from .scenarios import MASS_RANGE

FIT_BINS = 10
_SLOPE_LIMITS = (-1.0, 1.0)  # 1/GeV; continuum slopes are ~ -0.05


def _bin_integrals(slope: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Integral of exp(B m) over each bin, [..., n_bins], stable near B = 0."""
    lo, hi = edges[:-1], edges[1:]
    b = slope[..., None]
    ref = np.where(b >= 0, hi, lo)  # factor out the largest exponential
    safe_b = np.where(np.abs(b) < 1e-9, 1.0, b)
    span = np.where(
        np.abs(b) < 1e-9,
        hi - lo,
        (np.exp(safe_b * (hi - ref)) - np.exp(safe_b * (lo - ref))) / safe_b,
    )
    return span * np.exp(b * ref - b * edges[0])


def _profile_loglike(slope: np.ndarray, counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    shape = _bin_integrals(slope, edges)
    shape = np.maximum(shape, 1e-300)
    total = counts.sum(axis=-1)
    return (counts * np.log(shape)).sum(axis=-1) - total * np.log(shape.sum(axis=-1))


def fit_exponential(counts: np.ndarray, edges: np.ndarray):
    """Fit A exp(B m) to histogram ``counts`` [C, n_bins] (weighted counts allowed).

    Returns (A, B, ok) arrays of length C; A is the density per GeV at m (not m - m0).
    ``ok`` is False for categories without background.
    """
    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    edges = np.asarray(edges, dtype=np.float64)
    n_cat = counts.shape[0]
    grid = np.linspace(*_SLOPE_LIMITS, 401)
    ll = _profile_loglike(np.broadcast_to(grid, (n_cat, grid.size)), counts[:, None, :], edges)
    best = grid[np.argmax(ll, axis=1)]
    lo = best - (grid[1] - grid[0])
    hi = best + (grid[1] - grid[0])
    golden = (np.sqrt(5) - 1) / 2
    for _ in range(60):
        c = hi - golden * (hi - lo)
        d = lo + golden * (hi - lo)
        fc = _profile_loglike(c, counts, edges)
        fd = _profile_loglike(d, counts, edges)
        left = fc > fd
        hi = np.where(left, d, hi)
        lo = np.where(left, lo, c)
    slope = 0.5 * (lo + hi)
    total = counts.sum(axis=1)
    integral = _bin_integrals(slope, edges).sum(axis=1) * np.exp(slope * edges[0])
    amplitude = np.where(total > 0, total / np.maximum(integral, 1e-300), 0.0)
    ok = (total > 0) & np.isfinite(slope) & np.isfinite(amplitude)
    return amplitude, slope, ok


def window_fraction(slope, window, mass_range=MASS_RANGE):
    """Fraction of an exp(B m) spectrum on ``mass_range`` that falls inside ``window``."""
    slope = np.asarray(slope, dtype=np.float64)
    inner = _bin_integrals(slope, np.asarray(window, dtype=np.float64))[..., 0]
    outer = _bin_integrals(slope, np.asarray(mass_range, dtype=np.float64))[..., 0]
    # both integrals were referenced to their own lower edge: bring to a common origin
    inner = inner * np.exp(slope * (window[0] - mass_range[0]))
    return inner / outer


def reweight_factors(
    category: np.ndarray,
    mass: np.ndarray,
    weight: np.ndarray,
    is_background: np.ndarray,
    n_cats: int,
    window,
    mass_range=MASS_RANGE,
) -> np.ndarray:
    """Per-category factor (expected background in window) / (background in the full range).

    ``mass_range`` is the fit range (window plus sidebands). Falls back to window width / range width where the category has no background in the
    window or the fit fails.
    """
    edges = np.linspace(mass_range[0], mass_range[1], FIT_BINS + 1)
    fallback = (window[1] - window[0]) / (mass_range[1] - mass_range[0])
    bkg_cat = category[is_background]
    bkg_mass = mass[is_background]
    bkg_w = weight[is_background]
    counts = binning.weighted(edges, bkg_mass, bkg_w, by=((bkg_cat, n_cats),)).values()
    in_window = (bkg_mass >= window[0]) & (bkg_mass <= window[1])
    window_bkg = np.bincount(bkg_cat[in_window], weights=bkg_w[in_window], minlength=n_cats)
    _, slope, ok = fit_exponential(counts, edges)
    factors = window_fraction(slope, window, mass_range)
    good = ok & (window_bkg > 0) & np.isfinite(factors) & (factors > 0)
    return np.where(good, factors, fallback).astype(np.float64)
