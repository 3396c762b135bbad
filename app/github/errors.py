"""What a GitHub failure means for the job that hit it.

Primary and secondary rate limits reschedule the job for the reset time (a worker never sleeps on
them); 5xx, timeouts and network errors are transient (inbox backoff); a 4xx that retrying cannot
fix (404, 410, 422, 400) is permanent.
"""

from __future__ import annotations

import time

from githubkit.exception import RateLimitExceeded, RequestFailed

from app.errors import PermanentError, Reschedule

PERMANENT_STATUSES = frozenset({400, 404, 410, 422})
MIN_RATE_LIMIT_WAIT = 1.0


def classify(exc: BaseException, *, now: float | None = None) -> BaseException:
    """Map a githubkit exception to Reschedule / PermanentError, or return it unchanged."""
    if isinstance(exc, RateLimitExceeded):
        wait = max(MIN_RATE_LIMIT_WAIT, exc.retry_after.total_seconds())
        kind = type(exc).__name__
        return Reschedule((now if now is not None else time.time()) + wait, f"GitHub {kind}")
    if isinstance(exc, RequestFailed):
        status = exc.response.status_code
        if status in PERMANENT_STATUSES:
            return PermanentError(f"GitHub {exc.request.method} {exc.request.url.path} answered {status}")
    return exc
