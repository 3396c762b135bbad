"""Rate-limit-aware scheduling through the dispatcher: with an installation's GitHub budget under
the reserve, background work (a push audit) is deferred to the reset, counted and logged, while a
command still runs; after a secondary rate limit every job of that installation waits, and other
installations do not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from app.errors import Reschedule
from app.metrics import JOBS_DEFERRED
from tests.component.harness import Harness
from tests.fake_github import FakeGitHub
from tests.support import comment_payload, payload

REPO = "octo-org/widgets"


def push_event() -> dict[str, Any]:
    data = payload("push", "with-new-branch.payload.json")
    data["installation"] = {"id": 4242, "node_id": "x"}
    data["repository"].update(full_name=REPO, name="widgets", default_branch="main", master_branch="main")
    data["commits"] = [{**data["commits"][0], "id": "1" * 40, "message": "change"}]
    data.update(ref="refs/heads/main", before="b" * 40, after="a" * 40, created=False, forced=False)
    return data


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    repo = FakeGitHub()
    repo.compares[f"{'b' * 40}...{'a' * 40}"] = []
    with respx.mock(assert_all_called=False) as router:
        repo.install(router)
        yield repo


def deferred(flow: str, kind: str) -> float:
    return JOBS_DEFERRED.labels(flow, kind)._value.get()


async def run_each(harness: Harness) -> dict[str, str]:
    """Run every due job once: flow → done, or the reason it was rescheduled."""
    outcome: dict[str, str] = {}
    while (job := await harness.inbox.claim("test", 60)) is not None:
        try:
            await harness.dispatcher(job)
        except Reschedule as exc:
            await harness.inbox.reschedule(job, exc.at, exc.reason, max_reschedules=50)
            outcome[job.flow] = exc.reason
        else:
            await harness.inbox.complete(job)
            outcome[job.flow] = "done"
    return outcome


async def test_low_budget_defers_background_work_and_commands_still_run(
    harness: Harness, github: FakeGitHub
) -> None:
    reset = harness.inbox.clock() + 900
    await harness.inbox.save_rate_limit(4242, 120, 5_000, reset, harness.inbox.clock())
    before = deferred("push_audit", "low_budget")
    await harness.deliver("push", push_event())
    await harness.deliver("issue_comment", comment_payload("/autopack help"))
    outcome = await run_each(harness)
    assert outcome["command"] == "done"
    assert (9001, "+1") in github.reactions  # the command answered
    assert outcome["push_audit"].startswith("120 of 5000 GitHub requests left until the reset")
    assert not any("check-runs" in line for line in github.log)  # the push audit did not run
    assert deferred("push_audit", "low_budget") == before + 1
    (job,) = [j for j in await harness.inbox.jobs_for_subject(f"{REPO}@refs/heads/main")]
    assert job.status == "queued"
    assert job.run_at == pytest.approx(reset + 1)

    harness.offset = 901  # the window resets: the deferred push audit runs
    await harness.inbox.save_rate_limit(4242, 5_000, 5_000, reset + 3_600, harness.inbox.clock())
    assert (await run_each(harness)).get("push_audit") == "done"


async def test_a_secondary_limit_pauses_every_job_of_that_installation_only(
    harness: Harness, github: FakeGitHub
) -> None:
    real = github._react
    limited = [True]

    def secondary(request: httpx.Request, **path: str) -> httpx.Response:
        if limited.pop() if limited else False:
            return httpx.Response(
                403,
                headers={"retry-after": "120", "x-ratelimit-remaining": "4000"},
                json={"message": "You have exceeded a secondary rate limit. Please wait a few minutes."},
            )
        return real(request, **path)

    github._react = secondary  # type: ignore[method-assign]
    await harness.deliver("issue_comment", comment_payload("/autopack help"))
    outcome = await run_each(harness)
    assert "GitHub SecondaryRateLimitExceeded" in outcome["command"]
    budget = await harness.inbox.rate_budget(4242)
    assert budget is not None
    assert budget.blocked_until == pytest.approx(harness.inbox.clock() + 120, abs=5)

    before = deferred("command", "secondary_limit")
    await harness.deliver("issue_comment", comment_payload("/autopack help", comment_id=9002))
    outcome = await run_each(harness)
    assert outcome["command"].startswith("GitHub's secondary rate limit for this installation")
    assert deferred("command", "secondary_limit") == before + 1
    assert await harness.inbox.rate_budget(4343) is None  # another installation is not paused

    harness.offset = 130
    assert await run_each(harness) == {"command": "done"}
