"""Annealing schedules for learning rate, temperature and steepness (ALGORITHM §2)."""
from __future__ import annotations

import math

SCHEDULES = ("cosine", "exponential")


def cosine(v0: float, vf: float, epoch: int, epochs: int) -> float:
    return vf + 0.5 * (v0 - vf) * (1.0 + math.cos(math.pi * epoch / epochs))


def exponential(v0: float, vf: float, epoch: int, epochs: int) -> float:
    return v0 * (vf / v0) ** (epoch / epochs)


def value(kind: str, v0: float, vf: float, epoch: int, epochs: int) -> float:
    if kind == "cosine":
        return cosine(v0, vf, epoch, epochs)
    if kind == "exponential":
        return exponential(v0, vf, epoch, epochs)
    raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {kind!r}")
