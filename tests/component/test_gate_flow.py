"""The human gate end to end: approval → merge → issue told; a moved head; CI completing after the
approval; rejections by closing and by `/autopack reject`, remembered for the next proposal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import respx

from app.inbox.proposals import Proposals
from tests.component.harness import Harness
from tests.component.llm_mock import OPENAI
from tests.component.scenarios import (
    REPO,
    approve,
    change_set,
    ci_event,
    gate_comment,
    issue_comment,
    proposal,
    proposal_repo,
    propose_comment,
    ready,
    review_event,
)
from tests.fake_github import FakeGitHub
from tests.support import comment_payload, payload


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, respx.MockRouter]]:
    repo = proposal_repo()
    with respx.mock(assert_all_called=False) as router:
        repo.install(router)
        yield repo, router


async def test_approval_merges_the_exact_head_and_the_issue_is_told(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    head = await ready(harness, repo, router)
    await harness.deliver("pull_request_review", approve(repo, head))
    assert await harness.run_all() == ["gate", "gate_check"]
    (merge,) = repo.merges
    assert merge["sha"] == head
    assert merge["merge_method"] == "squash"
    assert (await proposal(harness)).status == "merged"
    assert "autopack:shipped" in repo.issue_labels[7]
    assert repo.deleted_branches == ["autopack/issue-7"]
    assert "merged as `mmmmmmm` into `main`: this improvement has shipped" in issue_comment(repo)
    assert "approved on `c000000` by maintainer; merging" in gate_comment(repo)


async def test_a_readers_approval_does_not_merge(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    head = await ready(harness, repo, router)
    await harness.deliver("pull_request_review", approve(repo, head, login="reader"))
    await harness.run_all()
    assert repo.merges == []
    assert "waiting for: approval of `c000000` by a writer" in gate_comment(repo)


async def test_a_moved_head_means_re_evaluate_never_a_blind_retry(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    head = await ready(harness, repo, router)
    moved = "d" * 40

    def push_meanwhile(request: Any, full: str, n: str) -> Any:
        repo.pulls[100]["head"]["sha"] = moved  # someone pushed between the decision and the merge
        return FakeGitHub._merge(repo, request, full, n)

    repo._merge = push_meanwhile  # type: ignore[method-assign]
    await harness.deliver("pull_request_review", approve(repo, head))
    await harness.run_all()
    assert repo.merges == []  # the merge carried the approved sha and GitHub refused it (409)
    merge_calls = [line for line in repo.log if line.startswith("PUT")]
    assert len(merge_calls) == 1  # re-evaluated: the approval is for an older commit now, no retry
    assert (await proposal(harness)).status == "ready"
    assert "earlier approvals by maintainer were for an older commit" in gate_comment(repo)


async def test_merge_refused_twice_waits_for_the_next_event(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    head = await ready(harness, repo, router)
    repo.merge_refusals = [405, 405]
    await harness.deliver("pull_request_review", approve(repo, head))
    await harness.run_all()
    assert repo.merges == []
    assert "waiting for: GitHub to accept the merge" in gate_comment(repo)


async def test_ci_completing_on_an_approved_pr_merges_it(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    head = await ready(harness, repo, router)
    repo.ci[head].append(
        {"id": 503, "name": "e2e", "status": "in_progress", "conclusion": None, "app": {"id": 15368}}
    )
    await harness.deliver("pull_request_review", approve(repo, head))
    await harness.run_all()
    assert repo.merges == []
    assert "checks 1/2 green" in gate_comment(repo)
    repo.ci[head][-1].update(status="completed", conclusion="success")
    await harness.deliver("check_suite", ci_event(head, "success"))
    assert await harness.run_all() == ["verify", "gate_check"]
    assert len(repo.merges) == 1


async def test_required_checks_come_from_branch_protection(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    head = await ready(harness, repo, router)
    repo.required_checks = ["tests", "e2e"]  # e2e never reported
    await harness.deliver("pull_request_review", approve(repo, head))
    await harness.run_all()
    assert repo.merges == []
    assert "checks 1/2 green" in gate_comment(repo)


async def test_closing_unmerged_remembers_the_rejection(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    await ready(harness, repo, router)
    repo.comments.append(
        {
            "id": 1,
            "body": "We do not want retries here; fix the lock instead.",
            "user": {"login": "maintainer"},
        }
    )
    repo.comments.append({"id": 2, "body": "+1 please merge", "user": {"login": "reader"}})
    data = payload("pull_request", "closed.payload.json")
    data["installation"] = {"id": 4242, "node_id": "x"}
    data["repository"].update(full_name=REPO, name="widgets", default_branch="main")
    data["number"] = 100
    data["pull_request"].update(number=100, merged=False)
    data["pull_request"]["head"]["ref"] = "autopack/issue-7"
    data["sender"].update(login="maintainer")
    await harness.deliver("pull_request", data)
    assert await harness.run_all() == ["learn"]
    assert (await proposal(harness)).status == "closed"
    assert await Proposals(harness.inbox.db).rejection(REPO, 7) == (
        "We do not want retries here; fix the lock instead."
    )
    assert "autopack:rejected" in repo.issue_labels[7]
    assert "fix the lock instead" in issue_comment(repo)
    # a new proposal needs --force
    await harness.deliver("issue_comment", propose_comment(comment_id=9005))
    await harness.run_all()
    assert "--force" in repo.comments[-1]["body"]
    assert len(repo.created_pulls) == 1


async def test_reject_command_closes_and_the_next_proposal_is_told_why(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    await ready(harness, repo, router, change_set(), change_set())
    data = comment_payload("/autopack reject too risky for a patch release", login="maintainer", number=100)
    data["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/100"}
    await harness.deliver("issue_comment", data)
    assert await harness.run_all() == ["command"]
    assert {"number": 100, "state": "closed"} in repo.pull_updates
    assert await Proposals(harness.inbox.db).rejection(REPO, 7) == "too risky for a patch release"
    assert "autopack:rejected" in repo.issue_labels[7]
    # the PR's closed event that follows records nothing twice
    repo.pulls[100]["state"] = "closed"
    closed = payload("pull_request", "closed.payload.json")
    closed["installation"] = {"id": 4242, "node_id": "x"}
    closed["repository"].update(full_name=REPO, name="widgets", default_branch="main")
    closed["pull_request"].update(number=100, merged=False)
    closed["pull_request"]["head"]["ref"] = "autopack/issue-7"
    await harness.deliver("pull_request", closed)
    await harness.run_all()
    rows = await harness.inbox.db.run(lambda tx: tx.fetchall("SELECT reason, area, summary FROM rejections"))
    (row,) = rows  # recorded once, with the area and what the change was
    assert row["reason"] == "too risky for a patch release"
    assert row["area"] == "app"
    assert row["summary"].startswith("Retry writes when the database is locked")
    assert row["summary"].endswith(": app/storage/save.py, tests/test_save_locked.py")
    # with --force, the builder is told what was rejected in this area
    repo.pulls.clear()
    await harness.deliver("issue_comment", propose_comment("/autopack propose --force", comment_id=9006))
    assert await harness.run_all() == ["command", "propose"]
    sent = json.loads([c for c in router.calls if c.request.url == OPENAI][-1].request.content)
    assert "rejected because: too risky for a patch release" in sent["messages"][-1]["content"]


async def test_a_manual_merge_is_recorded_as_shipped(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    await ready(harness, repo, router)
    data = payload("pull_request", "closed.payload.json")
    data["installation"] = {"id": 4242, "node_id": "x"}
    data["repository"].update(full_name=REPO, name="widgets", default_branch="main")
    data["pull_request"].update(number=100, merged=True, merge_commit_sha="e" * 40)
    data["pull_request"]["head"]["ref"] = "autopack/issue-7"
    await harness.deliver("pull_request", data)
    assert await harness.run_all() == ["learn"]
    p = await proposal(harness)
    assert p.status == "merged"
    assert p.merge_sha == "e" * 40
    assert "autopack:shipped" in repo.issue_labels[7]
    assert await Proposals(harness.inbox.db).rejection(REPO, 7) is None


async def test_changes_requested_revise_and_the_gate_comment_follows(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    revision = change_set(
        tests=[],
        fixes=[{"op": "search_replace", "path": "app/storage/save.py", "content": None,
                "search": "retry(", "replace": "retry_with_backoff("}],
    )  # fmt: skip
    head = await ready(harness, repo, router, change_set(), revision)
    assert "waiting for: approval of `c000000` by a writer" in gate_comment(repo)
    repo.reviews.setdefault(100, []).append(
        {
            "id": 301,
            "state": "CHANGES_REQUESTED",
            "commit_id": head,
            "user": {"login": "maintainer", "type": "User"},
        }
    )
    await harness.deliver("pull_request_review", review_event("changes_requested", head, review_id=301))
    assert await harness.run_all() == ["gate", "revise"]
    assert "waiting for: Autopack's revision to be verified by CI and audited" in gate_comment(repo)
    assert repo.merges == []


async def test_reviews_by_bots_are_not_even_queued(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    head = await ready(harness, repo, router)
    bot_review = review_event("commented", head, login="autopack[bot]")
    bot_review["review"]["user"]["type"] = "Bot"
    assert await harness.deliver("pull_request_review", bot_review) == []
    approval = approve(repo, head, login="autopack[bot]")
    approval["review"]["user"]["type"] = "Bot"
    assert await harness.deliver("pull_request_review", approval) == []
    assert repo.merges == []
