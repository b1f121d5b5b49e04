"""Deterministic noise for the demo's simulation: pure functions of integers."""

from __future__ import annotations

import math

_M64 = (1 << 64) - 1
_INV64 = 1.0 / float(1 << 64)


def hash01(seed: int, key: int, n: int) -> float:
    """A uniform float in [0, 1) from three integers (splitmix64 finaliser): pure."""
    z = (seed + key * 0x9E3779B97F4A7C15 + n * 0xD1B54A32D192ED03) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return (z ^ (z >> 31)) * _INV64


def smooth(seed: int, key: int, x: float) -> float:
    """Value noise in [0, 1): smooth between integer x, so curves do not jump."""
    i = math.floor(x)
    f = x - i
    f = f * f * (3.0 - 2.0 * f)
    a = hash01(seed, key, i)
    return a + (hash01(seed, key, i + 1) - a) * f


def smoothstep(x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    return x * x * (3.0 - 2.0 * x)


def clamp(x: float, low: float, high: float) -> float:
    return low if x < low else high if x > high else x
