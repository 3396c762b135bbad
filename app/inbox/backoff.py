"""Capped exponential backoff with jitter for failed job attempts."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt `attempt + 1`, after `attempt` failures (attempt ≥ 1).

    "Equal jitter": half the exponential delay is fixed, half random, so retries of many jobs
    that failed together (a GitHub outage) spread out, and no retry comes sooner than half the
    nominal delay.
    """
    exponent = max(0, min(attempt - 1, 30))  # 2**30 * base is past any sane cap
    delay = min(cap, base * (2**exponent))
    return float(delay / 2 + (rng or random).uniform(0, delay / 2))
