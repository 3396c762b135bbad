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
from tests.component.llm_mock import OPENAI, openai_answer
from tests.component.scenarios import (
    REPO,
    Builder,
    approve,
    change_set,
    ci_event,
    ci_run,
    edit,
    gate_comment,
    issue_comment,
    proposal,
    proposal_repo,
    propose_comment,
    ready,
    review_event,
    start,
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


async def test_the_gate_asks_for_permissions_afresh_even_with_the_etag_cache(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    """With conditional reads on (as `autopack serve` runs), the approver's permission is asked
    without an ETag every time, so a role removed a moment ago is never answered from the store."""
    repo, router = github
    harness.use_etag_cache()
    head = await ready(harness, repo, router)
    await harness.deliver("issue_comment", comment_payload("/autopack help", login="maintainer", number=100))
    await harness.run_all()  # a command's permission check: stored, and revalidated next time
    permission = f"GET /repos/{REPO}/collaborators/maintainer/permission"
    assert repo.conditional.count(permission) == 1  # the help command's: revalidated
    asked = repo.log.count(permission)
    repo.permissions["maintainer"] = "read"
    await harness.deliver("pull_request_review", approve(repo, head))
    await harness.run_all()
    assert repo.merges == []
    assert repo.log.count(permission) > asked
    assert repo.conditional.count(permission) == 1  # the gate's requests carried no ETag
    assert "waiting for: approval of `c000000` by a writer" in gate_comment(repo)
    repo.permissions["maintainer"] = "write"
    await harness.deliver("pull_request_review", approve(repo, head, review_id=301))
    await harness.run_all()
    assert [m["sha"] for m in repo.merges] == [head]


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
    assert await harness.run_all() == ["learn_dismissals", "learn"]
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
    assert await harness.run_all() == ["learn_dismissals", "learn"]
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


# ---- issue 16: proposal state is compare-and-set; no CI event is dropped ----------------------


async def test_a_revise_finishing_after_a_reject_never_reopens_or_pushes(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    """The two racing jobs for real: a revise (the issue's subject) is in its builder call while
    `/autopack reject` (the pull request's subject) runs to the end. The revise then fails its
    compare-and-set before it moves the branch, runs again, and stops at the closed record."""
    from app.inbox.proposals import StaleProposal

    repo, router = github
    await ready(harness, repo, router)
    revision = change_set(
        tests=[],
        fixes=[edit("search_replace", "app/storage/save.py", search="retry(", replace="retry_twice(")],
    )

    async def reject_meanwhile(request: Any) -> Any:
        data = comment_payload("/autopack reject not needed", login="maintainer", number=100, comment_id=9301)
        data["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/100"}
        await harness.deliver("issue_comment", data)
        job = await harness.inbox.claim("another-worker", 60)  # the PR's subject is free
        assert job is not None
        assert (job.flow, job.subject) == ("command", f"{REPO}#100")
        await harness.dispatcher(job)
        await harness.inbox.complete(job)
        return openai_answer(json.dumps(revision), "gpt-6.2-sol")

    router.post(OPENAI).mock(side_effect=reject_meanwhile)
    await harness.deliver(
        "issue_comment", propose_comment("/autopack revise retry only twice", comment_id=9300)
    )
    command = await harness.inbox.claim("worker", 60)
    assert command is not None
    await harness.dispatcher(command)
    await harness.inbox.complete(command)
    revise = await harness.inbox.claim("worker", 60)
    assert revise is not None
    assert revise.flow == "revise"
    refs_before = list(repo.ref_writes)
    with pytest.raises(StaleProposal):
        await harness.dispatcher(revise)
    assert repo.ref_writes == refs_before  # nothing pushed after the reject
    assert (await proposal(harness)).status == "closed"
    await harness.dispatcher(revise)  # run again: reads the closed record and stops
    assert repo.ref_writes == refs_before
    final = await proposal(harness)
    assert final.status == "closed"
    assert {"number": 100, "state": "closed"} in repo.pull_updates
    assert not [u for u in repo.pull_updates if u.get("state") == "open"]


async def test_an_ended_proposal_is_never_written_back_open() -> None:
    """Belt and braces below the flows: even a writer holding the current version cannot reopen."""
    from app.inbox.proposals import StaleProposal
    from app.inbox.store import Inbox
    from app.policy.proposal import Proposal

    inbox = Inbox.open("sqlite:///:memory:")
    await inbox.migrate()
    store = Proposals(inbox.db)
    record = Proposal(REPO, 7, 4242)
    assert await store.start(record)
    record.status = "merged"
    await store.save(record)
    record.status = "revising"  # a late job with the current version
    with pytest.raises(StaleProposal):
        await store.save(record)
    stale = await store.get(REPO, 7)
    assert stale is not None
    assert stale.status == "merged"
    inbox.close()


async def test_a_ci_result_arriving_while_the_branch_moves_is_not_dropped(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    """The fix's CI finishes at once, and its event is handled while the job that moved the branch
    is still running: the record already says what it waits for, so the result counts."""
    repo, router = github
    Builder(router, change_set())
    await start(harness)
    p = await proposal(harness)
    assert p.test_sha is not None
    assert p.fix_sha is not None
    fix = p.fix_sha

    async def fast_ci(request: Any, full: str, branch: str) -> Any:
        response = FakeGitHub._update_ref(repo, request, full, branch)
        if json.loads(request.content)["sha"] == fix:
            ci_run(repo, fix, "success", run_id=502)
            await harness.deliver("check_suite", ci_event(fix, "success"))
            job = await harness.inbox.claim("another-worker", 60)
            assert job is not None
            assert job.flow == "verify"
            await harness.dispatcher(job)
            await harness.inbox.complete(job)
        return response

    repo._update_ref = fast_ci  # type: ignore[assignment]
    ci_run(repo, p.test_sha, "failure")
    await harness.deliver("check_suite", ci_event(p.test_sha, "failure"))
    await harness.run_all()
    assert (await proposal(harness)).status == "ready"  # verified now, not at the no-CI deadline


async def test_a_repository_without_ci_merges_an_approved_unverified_proposal(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    """Positive control for "no check is not green": verification found no CI at all, the PR says
    unverified, and a writer approved the exact head; that is the maintainer's decision to make."""
    repo, router = github
    Builder(router, change_set())
    await start(harness)
    harness.offset = 15 * 60 + 1  # the no-CI check: nothing ever reported
    await harness.run_all()
    p = await proposal(harness)
    assert p.status == "unverified"
    assert p.fix_sha is not None
    repo.pulls[100]["draft"] = False  # the maintainer marks it ready for review
    await harness.deliver("pull_request_review", approve(repo, p.fix_sha))
    await harness.run_all()
    assert [m["sha"] for m in repo.merges] == [p.fix_sha]
