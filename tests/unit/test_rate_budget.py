"""`policy.rate_budget`: background work waits for the reset under the reserve; a secondary rate
limit stops every job of the installation; a budget whose reset has passed says nothing."""

from __future__ import annotations

import pytest

from app.policy.rate_budget import Budget, deferral, reserve

NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("budget", "background", "expected"),
    [
        (None, True, None),
        (Budget(4_000, 5_000, NOW + 600), True, None),
        (Budget(501, 5_000, NOW + 600), True, None),
        (Budget(499, 5_000, NOW + 600), True, ("low_budget", NOW + 601)),
        (Budget(499, 5_000, NOW + 600), False, None),  # interactive work uses the reserve
        (Budget(0, 5_000, NOW + 600), False, None),  # ...and GitHub answers for itself at zero
        (Budget(10, 5_000, NOW - 1), True, None),  # the window has reset since
        (Budget(99, 500, NOW + 60), True, ("low_budget", NOW + 61)),  # the floor: 100
        (Budget(4_000, 5_000, NOW + 600, blocked_until=NOW + 30), False, ("secondary_limit", NOW + 30)),
        (Budget(4_000, 5_000, NOW + 600, blocked_until=NOW + 30), True, ("secondary_limit", NOW + 30)),
        (Budget(4_000, 5_000, NOW + 600, blocked_until=NOW - 1), True, None),
    ],
)
def test_deferral(budget: Budget | None, background: bool, expected: tuple[str, float] | None) -> None:
    wait = deferral(budget, background=background, now=NOW)
    assert (None if wait is None else (wait.kind, wait.until)) == expected


def test_the_reason_says_what_is_left_and_what_is_kept() -> None:
    wait = deferral(Budget(120, 5_000, NOW + 10), background=True, now=NOW)
    assert wait is not None
    assert wait.reason.startswith("120 of 5000 GitHub requests left until the reset; the last 500 are kept")


def test_reserve() -> None:
    assert [reserve(n) for n in (0, 500, 5_000, 15_000)] == [100, 100, 500, 1_500]
