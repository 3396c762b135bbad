"""Subject keys (what runs one at a time) and retry backoff."""

from __future__ import annotations

import random

import pytest

from app.inbox.backoff import backoff_delay
from app.policy.subjects import subject_key
from tests.support import payload


@pytest.mark.parametrize(
    ("event", "name", "expected"),
    [
        ("issues", "opened.payload.json", "Codertocat/Hello-World#1"),
        ("issue_comment", "created.payload.json", "Codertocat/Hello-World#1"),
        ("pull_request", "opened.payload.json", "Codertocat/Hello-World#2"),
        ("pull_request_review", "submitted.payload.json", "Codertocat/Hello-World#2"),
        ("push", "payload.json", "Codertocat/Hello-World@refs/tags/simple-tag"),
        ("installation", "created.payload.json", "installation:957387"),
    ],
)
def test_subject_of_real_payloads(event: str, name: str, expected: str) -> None:
    assert subject_key(event, payload(event, name), "d-1") == expected


def test_check_suite_of_a_pull_request_is_that_pull_request() -> None:
    data = payload("check_suite", "completed.payload.json")
    data["check_suite"]["pull_requests"] = [{"number": 31}]
    assert subject_key("check_suite", data, "d-1").endswith("#31")


def test_subject_falls_back_to_delivery() -> None:
    assert subject_key("meta", {}, "d-77") == "delivery:d-77"


def test_backoff_grows_is_capped_and_jittered() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, base=5, cap=300, rng=rng) for n in range(1, 12)]
    for n, delay in enumerate(delays, 1):
        nominal = min(300, 5 * 2 ** (n - 1))
        assert nominal / 2 <= delay <= nominal
    assert max(delays) <= 300
    assert len({round(d, 6) for d in delays}) == len(delays)  # jitter: no two alike


def test_backoff_huge_attempt_does_not_overflow() -> None:
    assert backoff_delay(10_000, base=5, cap=60) <= 60
