"""Outcomes a flow signals by raising: run me again later, or do not retry at all.

Any other exception is treated as transient: the job is retried with backoff and dead-lettered
after its attempts run out.
"""

from __future__ import annotations


class Reschedule(Exception):
    """Run this job again at `at` (epoch seconds) without counting a failed attempt.

    Used for rate-limit resets and for waiting on something external (a CI result), so a worker
    never sleeps on them.
    """

    def __init__(self, at: float, reason: str) -> None:
        super().__init__(reason)
        self.at = at
        self.reason = reason


class PermanentError(Exception):
    """Retrying cannot help (bad input, a 404, a refused action): the job ends as failed."""
