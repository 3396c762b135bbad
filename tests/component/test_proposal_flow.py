"""Improvement proposals end to end: command → tree → builder → two commits → draft PR → CI → audit →
ready; every verification outcome, revise rounds, guardrail refusals, repairs and idempotency.
GitHub and both LLM providers are mocked at the HTTP layer; payloads are GitHub's examples."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import respx

from app.inbox.proposals import Proposals
from tests.component.harness import Harness
from tests.component.llm_mock import ANTHROPIC, OPENAI, anthropic_answer, openai_answer
from tests.component.scenarios import (
    ANALYSIS,
    FIX_EDIT,
    REPO,
    SAVE,
    Builder,
    change_set,
    ci_event,
    ci_run,
    edit,
    fail_the_test_commit,
    proposal,
    proposal_repo,
    propose_comment,
    start,
    triaged,
)
from tests.fake_github import FakeGitHub
from tests.support import comment_payload, payload, section


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, respx.MockRouter]]:
    repo = proposal_repo()
    with respx.mock(assert_all_called=False) as router:
        repo.install(router)
        yield repo, router


async def test_whole_flow_from_command_to_ready_pr(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    builder = Builder(router, change_set())
    await start(harness)

    # two commits: the tests-only one on the base, the fix on top of it
    p = await proposal(harness)
    assert p.status == "awaiting_test_ci"
    test_commit, fix_commit = repo.commits[p.test_sha], repo.commits[p.fix_sha]
    assert test_commit["parents"] == [repo.head]
    assert fix_commit["parents"] == [p.test_sha]
    assert "#7" in test_commit["message"]
    assert "#7" in fix_commit["message"]
    assert [e["path"] for e in repo.trees[test_commit["tree"]]["tree"]] == ["tests/test_save_locked.py"]
    assert [e["path"] for e in repo.trees[fix_commit["tree"]]["tree"]] == ["app/storage/save.py"]
    assert repo.file_at(p.fix_sha, "app/storage/save.py") == SAVE.replace(
        "return write(rows)", "return retry(write, rows)"
    )
    assert repo.file_at(p.test_sha, "app/storage/save.py") == SAVE  # the test runs against the old code
    # the branch points at the tests-only commit; one draft PR
    assert repo.refs == {"autopack/issue-7": p.test_sha}
    (created,) = repo.created_pulls
    assert created["draft"] is True
    assert created["head"] == "autopack/issue-7"
    assert created["base"] == "main"
    assert created["title"].startswith("Retry writes when the database is locked")
    assert "@team" not in created["title"]
    assert "Closes #7" in created["body"]
    assert "## Verification" in created["body"]
    assert "@someone" not in created["body"]
    assert "https://evil.example" not in created["body"]
    assert "tests/test_save_locked.py" in created["body"]
    assert "gpt-6.2-sol" in created["body"]
    # the feedback issue is told, in one marked comment
    (comment,) = repo.bot_comments()
    assert "#100" in comment["body"]
    assert "autopack:proposal" in comment["body"]
    assert builder.calls == 1
    # the builder saw the file the issue names and its test, and the README's conventions
    first = json.loads(next(c for c in router.calls if c.request.url == OPENAI).request.content)
    prompt = first["messages"][-1]["content"]
    assert re.search(r"=== FILE app/storage/save\.py #[0-9a-f]{8} ===", prompt)
    assert re.search(r"=== FILE tests/test_save\.py #[0-9a-f]{8} ===", prompt)
    assert "# Widgets" in prompt
    assert "pytest" in prompt
    assert "app/storage/save.py (named in the issue)" in created["body"]

    # CI fails on the tests-only commit → the fix is pushed
    await harness.deliver("check_suite", ci_event(p.test_sha, "failure"))
    ci_run(repo, p.test_sha, "failure")
    assert await harness.run_all() == ["verify", "verify_step"]
    p = await proposal(harness)
    assert p.status == "awaiting_fix_ci"
    assert repo.refs["autopack/issue-7"] == p.fix_sha
    # CI passes on the fix → verified → audit → ready for review, reviewers asked, issue linked
    ci_run(repo, p.fix_sha, "success", run_id=502)
    await harness.deliver("check_suite", ci_event(p.fix_sha, "success"))
    assert await harness.run_all() == ["verify", "verify_step", "audit", "verify_step", "gate_check"]
    p = await proposal(harness)
    assert p.status == "ready"
    assert p.audit_verdict == "comment"
    assert repo.ready == ["PR_node100"]
    # The audit found nothing: no review, the check run answers (and never as an approval of the
    # bot's own work, DESIGN §5.4: the auditor said "comment").
    assert repo.reviews.get(100, []) == []
    assert [(r["name"], r["conclusion"]) for r in repo.check_runs] == [("Autopack audit", "neutral")]
    body = repo.pulls[100]["body"]
    assert "✅ **Verified**" in body
    assert "https://github.com/octo-org/widgets/runs/501" in body
    comment, gate = repo.bot_comments()  # the issue's proposal comment, the PR's gate comment
    assert "ready for review" in comment["body"]
    assert "waiting for: approval of `c000000` by a writer" in gate["body"]
    assert gate["issue_number"] == 100


async def test_requested_reviewers_come_from_the_policy(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    repo.files[(REPO, ".github/autopack.yml")] = (
        "proposals:\n  reviewers: [alice]\n  team_reviewers: [core]\n"
    )
    Builder(router, change_set())
    await start(harness)
    p = await fail_the_test_commit(harness, repo)
    ci_run(repo, p.fix_sha, "success", run_id=502)
    await harness.deliver("check_suite", ci_event(p.fix_sha, "success"))
    await harness.run_all()
    assert repo.requested_reviewers == [{"number": 100, "reviewers": ["alice"], "team_reviewers": ["core"]}]


async def test_not_reproduced_keeps_the_draft_and_tells_the_issue(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    Builder(router, change_set())
    await start(harness)
    p = await proposal(harness)
    ci_run(repo, p.test_sha, "success")
    await harness.deliver("check_suite", ci_event(p.test_sha, "success"))
    await harness.run_all()
    p = await proposal(harness)
    assert p.status == "not_reproduced"
    assert repo.refs["autopack/issue-7"] == p.test_sha  # the fix is never pushed
    assert repo.ready == []
    assert repo.pulls[100]["draft"] is True
    assert "may not be needed" in repo.bot_comments()[0]["body"]
    assert "Not reproduced" in repo.pulls[100]["body"]


async def test_a_failed_suite_with_other_checks_pending_is_enough(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    Builder(router, change_set())
    await start(harness)
    p = await proposal(harness)
    ci_run(repo, p.test_sha, None, run_id=601, name="lint")  # still running
    await harness.deliver("check_suite", ci_event(p.test_sha, "success"))
    await harness.run_all()
    assert (await proposal(harness)).status == "awaiting_test_ci"  # pending: wait
    ci_run(repo, p.test_sha, "failure", run_id=602)
    await harness.deliver("check_suite", ci_event(p.test_sha, "failure"))
    await harness.run_all()
    assert (await proposal(harness)).status == "awaiting_fix_ci"


async def test_no_ci_at_all_pushes_the_fix_and_says_unverified(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    Builder(router, change_set())
    await start(harness)
    p = await proposal(harness)
    assert await harness.run_all() == []  # the no-CI check is not due yet
    harness.offset = 15 * 60 + 1
    assert await harness.run_all() == ["verify_step", "audit", "verify_step", "gate_check"]
    p = await proposal(harness)
    assert p.status == "unverified"
    assert repo.refs["autopack/issue-7"] == p.fix_sha
    assert repo.ready == []  # unverified is never marked ready
    assert "**Unverified**" in repo.pulls[100]["body"]
    assert "could not be verified" in repo.bot_comments()[0]["body"]


async def test_ci_that_never_finishes_times_out_as_unverified(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    Builder(router, change_set())
    await start(harness)
    p = await fail_the_test_commit(harness, repo)
    ci_run(repo, p.fix_sha, None, run_id=700)  # the fix's CI starts and never ends
    harness.offset = 15 * 60 + 1
    # the tests-only commit's check (stale: decided already) and the fix's (pending: a deadline is set)
    assert await harness.run_all() == ["verify_step", "verify_step"]
    assert (await proposal(harness)).status == "awaiting_fix_ci"
    harness.offset = 120 * 60 + 1
    assert await harness.run_all() == ["verify_step", "audit", "verify_step", "gate_check"]
    p = await proposal(harness)
    assert p.status == "unverified"
    assert p.current("fix").outcome == "timed_out"
    assert "did not finish in time" in repo.pulls[100]["body"]


async def test_fix_failure_revises_keeps_the_failing_test_commit_and_verifies_again(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    revision = change_set(
        tests=[],
        fixes=[
            edit(
                "search_replace",
                "app/storage/save.py",
                search="retry(write, rows)",
                replace="retry(write, rows, attempts=3)",
            )
        ],
    )
    builder = Builder(router, change_set(), revision)
    await start(harness)
    p = await proposal(harness)
    first_test = p.test_sha
    ci_run(repo, first_test, "failure")
    await harness.deliver("check_suite", ci_event(first_test, "failure"))
    await harness.run_all()
    p = await proposal(harness)
    ci_run(repo, p.fix_sha, "failure", run_id=800)
    repo.annotations[800] = [
        {
            "path": "app/storage/save.py",
            "start_line": 3,
            "annotation_level": "failure",
            "message": "NameError: retry",
        }
    ]
    await harness.deliver("check_suite", ci_event(p.fix_sha, "failure"))
    assert await harness.run_all() == ["verify", "verify_step", "revise"]
    p = await proposal(harness)
    assert builder.calls == 2
    assert p.round == 2
    # the builder was told what failed: the check's output and its annotations
    last_openai = [c for c in router.calls if c.request.url == OPENAI][-1]
    sent = json.loads(last_openai.request.content)["messages"][-1]["content"]
    assert "NameError: retry" in sent
    assert "1 failed: test_locked" in sent
    # the test did not change and CI saw it fail: only a new fix commit, waited for directly
    assert p.test_sha == first_test
    assert p.status == "awaiting_fix_ci"
    assert repo.refs["autopack/issue-7"] == p.fix_sha
    assert "attempts=3" in repo.file_at(p.fix_sha, "app/storage/save.py")
    ci_run(repo, p.fix_sha, "success", run_id=801)
    await harness.deliver("check_suite", ci_event(p.fix_sha, "success"))
    await harness.run_all()
    assert (await proposal(harness)).status == "ready"


async def test_revise_rounds_are_capped_then_handed_over(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    repo.files[(REPO, ".github/autopack.yml")] = "proposals:\n  max_rounds: 2\n"
    revision = change_set(
        tests=[],
        fixes=[edit("search_replace", "app/storage/save.py", search="retry(", replace="retry_again(")],
    )
    builder = Builder(router, change_set(), revision)
    await start(harness)
    p = await fail_the_test_commit(harness, repo)
    for round_ in (1, 2):
        p = await proposal(harness)
        ci_run(repo, p.fix_sha, "failure", run_id=900 + round_)
        await harness.deliver("check_suite", ci_event(p.fix_sha, "failure"))
        await harness.run_all()
    p = await proposal(harness)
    assert p.status == "handed_over"
    assert p.round == 2
    assert builder.calls == 2  # the first build and one revision
    assert "Handed over" in repo.pulls[100]["body"]
    assert "## Rounds" in repo.pulls[100]["body"]
    assert "handed #100 over to the maintainers after 2 rounds" in repo.bot_comments()[0]["body"]


async def test_a_blocking_audit_stops_the_proposal_before_anything_is_pushed(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    """On its branch, the repository's CI would run the change with the repository's secrets: the
    audit sees the exact change first, and a block means no branch, no commit on it, no PR."""
    repo, router = github
    builder = Builder(router, change_set(), verdict="block")
    await triaged(harness)
    await harness.deliver("issue_comment", propose_comment())
    assert await harness.run_all() == ["command", "propose"]
    assert builder.calls == 1
    p = await proposal(harness)
    assert p.status == "failed"
    assert repo.refs == {}  # nothing pushed
    assert repo.created_pulls == []
    assert "blocked it before anything was pushed" in (p.error or "")
    (comment,) = repo.bot_comments()
    assert "CI" in comment["body"]
    audited = json.loads(next(c for c in router.calls if c.request.url == ANTHROPIC).request.content)
    diff = section(audited["messages"][0]["content"], "diff")
    assert "+    return retry(write, rows)" in diff  # the exact change, before any push


async def test_the_pre_push_audit_is_the_one_posted_after_verification(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    concern = {
        "severity": "medium",
        "path": "app/storage/save.py",
        "start_line": 1,
        "end_line": 1,
        "title": "Retries are unbounded",
        "explanation": "A locked database retries forever.",
        "replacement": None,
        "confidence": 0.9,
    }
    Builder(router, change_set(), findings=[concern])
    await start(harness)
    assert len([c for c in router.calls if c.request.url == ANTHROPIC]) == 1  # audited before the push
    p = await fail_the_test_commit(harness, repo)
    ci_run(repo, p.fix_sha, "success", run_id=1001)
    await harness.deliver("check_suite", ci_event(p.fix_sha, "success"))
    assert await harness.run_all() == ["verify", "verify_step", "audit", "verify_step", "gate_check"]
    assert len([c for c in router.calls if c.request.url == ANTHROPIC]) == 1  # no second model call
    (review,) = repo.reviews[100]
    assert review["commit_id"] == p.fix_sha
    assert review["event"] == "COMMENT"  # never an approval of its own work (DESIGN §5.4)
    assert "Retries are unbounded" in str(review)
    assert [r["name"] for r in repo.check_runs] == ["Autopack audit"]
    assert (await proposal(harness)).status == "ready"


async def test_a_revision_the_audit_blocks_is_handed_over_without_a_push(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    revision = change_set(
        tests=[],
        fixes=[edit("search_replace", "app/storage/save.py", search="retry(", replace="safe_retry(")],
    )
    Builder(router, change_set(), revision)
    verdicts = ["comment", "block"]
    router.post(ANTHROPIC).mock(
        side_effect=lambda r: anthropic_answer(
            {"findings": [], "verdict": verdicts.pop(0) if verdicts else "block", "confidence": 0.9},
            "claude-sonnet-5-5",
        )
    )
    await start(harness)
    p = await fail_the_test_commit(harness, repo)
    ci_run(repo, p.fix_sha, "failure", run_id=1002)
    pushed = list(repo.ref_writes)
    await harness.deliver("check_suite", ci_event(p.fix_sha, "failure"))
    assert await harness.run_all() == ["verify", "verify_step", "revise"]
    p = await proposal(harness)
    assert p.status == "handed_over"
    assert repo.ref_writes == pushed  # the blocked revision never reached the branch
    assert "blocked it before anything was pushed" in (p.error or "")


async def test_a_missing_ci_approval_environment_is_said_in_the_pull_request(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    Builder(router, change_set())
    await start(harness)
    assert "no `autopack` environment with required reviewers" in repo.pulls[100]["body"]


async def test_a_ci_approval_environment_is_recognised(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    repo.environments["autopack"] = ["required_reviewers"]
    Builder(router, change_set())
    await start(harness)
    assert "environment" not in repo.pulls[100]["body"]


@pytest.mark.parametrize(
    ("bad_edit", "rule"),
    [
        (edit("create", ".github/workflows/ci.yml", content="on: push\n"), "path.workflow"),
        (edit("create", "../outside.py", content="x = 1\n"), "path.outside"),
        (edit("create", ".git/hooks/pre-commit", content="#!/bin/sh\n"), "path.outside"),
        (edit("create", "app/big.py", content="x = 1\n" * 900), "size.lines"),
        (edit("replace", "docs/link.md", content="now a file\n"), "file.symlink"),
        (edit("create", ".git./hooks/pre-commit", content="#!/bin/sh\n"), "path.outside"),  # NTFS
        (edit("create", ".g\u200cit/config", content="[core]\n"), "path.outside"),  # HFS+
        (edit("create", "GIT~1/config", content="[core]\n"), "path.outside"),
        (edit("create", "app", content="a file where the folder is\n"), "path.directory"),
        (edit("create", "tests/conftest.py", content="import os\nos.system('x')\n"), "file.executes"),
        (edit("replace", "conftest.py", content="collect_ignore = ['tests']\n"), "file.executes"),
    ],
)
async def test_guardrails_refuse_and_nothing_is_committed(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter], bad_edit: dict[str, Any], rule: str
) -> None:
    repo, router = github
    repo.modes["docs/link.md"] = "120000"
    Builder(router, change_set(fixes=[FIX_EDIT, bad_edit]))
    await start(harness)
    p = await proposal(harness)
    assert p.status == "failed"
    assert repo.commits == {}
    assert repo.refs == {}
    assert repo.created_pulls == []
    (comment,) = repo.bot_comments()
    assert f"`{rule}`" in comment["body"]
    assert "guardrails" in comment["body"]


async def test_an_edit_that_does_not_apply_is_repaired_once(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    _repo, router = github
    wrong = change_set(
        fixes=[edit("search_replace", "app/storage/save.py", search="return write(row)", replace="x")]
    )
    builder = Builder(router, wrong, change_set())
    await start(harness)
    assert builder.calls == 2
    assert (await proposal(harness)).status == "awaiting_test_ci"
    repair = json.loads([c for c in router.calls if c.request.url == OPENAI][-1].request.content)
    assert "does not occur in the file" in repair["messages"][-1]["content"]


async def test_an_edit_that_still_does_not_apply_refuses_the_proposal(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    wrong = change_set(fixes=[edit("search_replace", "app/storage/save.py", search="nowhere", replace="x")])
    builder = Builder(router, wrong)
    await start(harness)
    assert builder.calls == 2
    p = await proposal(harness)
    assert p.status == "failed"
    assert repo.commits == {}
    assert "did not apply, even after one repair round" in repo.bot_comments()[0]["body"]


async def test_redelivered_events_never_make_a_second_branch_or_pr(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    builder = Builder(router, change_set())
    await triaged(harness)
    event = propose_comment()
    await harness.deliver("issue_comment", event, delivery_id="d-1")
    assert await harness.deliver("issue_comment", event, delivery_id="d-1") == []  # the same delivery
    await harness.run_all()
    # a re-run of the propose job (a lost lease) resumes; a second command is refused
    p = await proposal(harness)
    p.status = "building"
    await Proposals(harness.inbox.db).save(p)
    await harness.inbox.enqueue(
        "propose",
        f"{REPO}#7",
        args={"installation_id": 4242, "repository": REPO, "issue": {"number": 7, "state": "open"}},
    )
    await harness.run_all()
    await harness.deliver("issue_comment", propose_comment(comment_id=9002))
    await harness.run_all()
    assert len(repo.created_pulls) == 1
    assert list(repo.refs) == ["autopack/issue-7"]
    assert builder.calls == 1  # the built change was not asked for again
    assert "already open in #100" in repo.comments[-1]["body"]


async def test_a_rejected_issue_needs_force(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    builder = Builder(router, change_set())
    await triaged(harness)
    await Proposals(harness.inbox.db).record_rejection(REPO, 7, 99, "not the direction we want", "maintainer")
    await harness.deliver("issue_comment", propose_comment())
    assert await harness.run_all() == ["command"]
    assert "rejected (not the direction we want)" in repo.comments[-1]["body"]
    assert "--force" in repo.comments[-1]["body"]
    assert builder.calls == 0
    assert repo.created_pulls == []
    await harness.deliver(
        "issue_comment", propose_comment("/autopack propose --force try a smaller fix", comment_id=9003)
    )
    assert await harness.run_all() == ["command", "propose"]
    p = await proposal(harness)
    assert p.notes == "try a smaller fix"
    assert len(repo.created_pulls) == 1


async def test_propose_needs_write_permission_and_a_triage(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    builder = Builder(router, change_set())
    await harness.deliver("issue_comment", propose_comment(login="reader"))
    await harness.run_all()
    assert "needs **write** permission" in repo.comments[-1]["body"]
    await harness.deliver("issue_comment", propose_comment(comment_id=9004))
    await harness.run_all()
    assert "not been triaged yet" in repo.comments[-1]["body"]
    assert builder.calls == 0
    assert repo.commits == {}


async def test_triage_proposes_by_itself_when_the_policy_allows(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    repo.files[(REPO, ".github/autopack.yml")] = "proposals:\n  auto: true\n  min_confidence: 0.7\n"
    triage_answer = {**ANALYSIS, "area": "app"}
    answers = [triage_answer, change_set()]
    router.post(OPENAI).mock(side_effect=lambda r: openai_answer(json.dumps(answers.pop(0)), "gpt-6.2-sol"))
    # the change is audited before its first push
    router.post(ANTHROPIC).mock(
        return_value=anthropic_answer(
            {"findings": [], "verdict": "comment", "confidence": 0.8}, "claude-sonnet-5-5"
        )
    )
    data = payload("issues", "opened.payload.json")
    data["installation"] = {"id": 4242, "node_id": "x"}
    data["repository"].update(full_name=REPO, name="widgets", default_branch="main")
    data["issue"].update(
        number=7,
        state="open",
        labels=[
            {
                "name": "user-feedback",
                "color": "fff",
                "default": False,
                "id": 1,
                "node_id": "L",
                "url": "u",
                "description": None,
            }
        ],
    )
    await harness.deliver("issues", data)
    assert await harness.run_all() == ["triage", "propose"]
    assert len(repo.created_pulls) == 1


async def test_changes_requested_by_a_writer_revise_with_the_review_comments(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    revision = change_set(
        tests=[],
        fixes=[edit("search_replace", "app/storage/save.py", search="retry(", replace="retry_with_backoff(")],
    )
    builder = Builder(router, change_set(), revision)
    await start(harness)
    repo.review_comments[77] = [
        {"path": "app/storage/save.py", "line": 3, "body": "Use exponential backoff here."}
    ]
    data = payload("pull_request_review", "submitted.payload.json")
    data["installation"] = {"id": 4242, "node_id": "x"}
    data["repository"].update(full_name=REPO, name="widgets", default_branch="main")
    data["review"].update(id=77, state="changes_requested", body="Please back off.")
    data["review"]["user"].update(login="maintainer", type="User")
    data["pull_request"].update(number=100)
    data["pull_request"]["head"]["ref"] = "autopack/issue-7"
    await harness.deliver("pull_request_review", data)
    assert await harness.run_all() == ["gate", "revise"]
    assert builder.calls == 2
    sent = json.loads([c for c in router.calls if c.request.url == OPENAI][-1].request.content)
    assert "Use exponential backoff here." in sent["messages"][-1]["content"]
    assert (await proposal(harness)).round == 2


async def test_revise_command_on_the_pull_request(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    revision = change_set(
        tests=[],
        fixes=[edit("search_replace", "app/storage/save.py", search="retry(", replace="retry_twice(")],
    )
    builder = Builder(router, change_set(), revision)
    await start(harness)
    data = comment_payload(
        "/autopack revise retry only twice", login="maintainer", number=100, comment_id=9100
    )
    data["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/100"}
    await harness.deliver("issue_comment", data)
    assert await harness.run_all() == ["command", "revise"]
    assert builder.calls == 2
    sent = json.loads([c for c in router.calls if c.request.url == OPENAI][-1].request.content)
    assert "retry only twice" in sent["messages"][-1]["content"]
    p = await proposal(harness)
    assert "retry_twice(" in repo.file_at(p.fix_sha, "app/storage/save.py")


async def test_a_builder_answer_that_never_fits_its_schema_fails_the_proposal_cleanly(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    builder = Builder(router, {"title": "no edits at all"})
    await start(harness)
    assert builder.calls == 2  # the answer and its schema repair round
    p = await proposal(harness)
    assert p.status == "failed"
    assert repo.commits == {}
    assert repo.created_pulls == []
    assert "The builder could not produce a usable change" in repo.bot_comments()[0]["body"]


async def test_propose_without_a_configured_provider_says_so(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, _router = github
    await triaged(harness)
    harness.llm.providers = {}
    await harness.deliver("issue_comment", propose_comment())
    assert await harness.run_all() == ["command"]
    assert "Autopack cannot build proposals here" in repo.comments[-1]["body"]
    assert repo.commits == {}


async def test_the_budget_is_checked_before_any_work(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    builder = Builder(router, change_set())
    await triaged(harness)
    harness.limit_repository_tokens(10_000)  # a build needs far more
    await harness.deliver("issue_comment", propose_comment())
    assert await harness.run_all() == ["command"]
    assert "Not now: weekly repository token budget reached" in repo.comments[-1]["body"]
    assert re.search(r"resets \d{4}-\d\d-\d\d 00:00 UTC", repo.comments[-1]["body"])  # when to ask again
    assert builder.calls == 0
    assert repo.log.count("GET /repos/octo-org/widgets/git/trees/" + repo.head) == 0


# ---- issue 16: "verified" means the same checks went from red to green ------------------------


async def test_a_check_red_on_the_base_branch_is_not_evidence_of_the_problem(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    Builder(router, change_set())
    await start(harness)
    p = await proposal(harness)
    ci_run(repo, p.base_sha, "failure", run_id=400, name="lint")  # main's lint is red already
    ci_run(repo, p.test_sha, "failure", run_id=401, name="lint")
    ci_run(repo, p.test_sha, "success", run_id=402, name="tests")  # the new test passes
    await harness.deliver("check_suite", ci_event(p.test_sha, "failure"))
    await harness.run_all()
    p = await proposal(harness)
    assert p.status == "not_reproduced"  # lint failing proves nothing about the reported problem
    assert p.base_failing == ["lint"]
    assert "red on `main` before this change too, so not evidence: `lint`" in repo.pulls[100]["body"]


async def test_the_fix_must_pass_the_checks_that_failed_without_it(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    """`tests` failed on the tests-only commit. On the fix commit, `lint` passing while `tests` has
    not reported is not "verified"; `tests` passing is."""
    repo, router = github
    Builder(router, change_set())
    await start(harness)
    p = await fail_the_test_commit(harness, repo, lint="success")
    assert p.current("test").deciding == ["tests"]
    assert p.fix_sha is not None
    ci_run(repo, p.fix_sha, "success", run_id=503, name="lint")  # only lint has reported
    await harness.deliver("check_suite", ci_event(p.fix_sha, "success"))
    await harness.run_all()
    assert (await proposal(harness)).status == "awaiting_fix_ci"
    ci_run(repo, p.fix_sha, "success", run_id=504, name="tests")
    await harness.deliver("check_suite", ci_event(p.fix_sha, "success"))
    await harness.run_all()
    p = await proposal(harness)
    assert p.status == "ready"
    assert p.current("fix").deciding == ["tests"]
    body = repo.pulls[100]["body"]
    assert "tests-only commit (must fail)" in body
    assert body.count("  - deciding: `tests`") == 2  # named for both commits


async def test_a_fix_that_breaks_another_check_is_not_verified(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    Builder(router, change_set(), change_set())
    await start(harness)
    p = await fail_the_test_commit(harness, repo, lint="success")
    ci_run(repo, p.fix_sha, "success", run_id=603, name="tests")
    ci_run(repo, p.fix_sha, "failure", run_id=604, name="lint")  # green before the fix, red after
    await harness.deliver("check_suite", ci_event(p.fix_sha, "failure"))
    assert await harness.run_all() == ["verify", "verify_step", "revise"]
    assert (await proposal(harness)).status not in ("auditing", "ready")  # a revise round, not verified


async def test_every_check_run_is_read_not_only_the_first_hundred(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    Builder(router, change_set(), change_set())
    await start(harness)
    p = await fail_the_test_commit(harness, repo)
    for i in range(130):  # a large matrix: the one failing job is on the second page
        ci_run(repo, p.fix_sha, "success" if i != 120 else "failure", run_id=1_000 + i, name=f"job-{i}")
    ci_run(repo, p.fix_sha, "success", run_id=2_000, name="tests")
    await harness.deliver("check_suite", ci_event(p.fix_sha, "failure"))
    assert await harness.run_all() == ["verify", "verify_step", "revise"]
    pages = [line for line in repo.log if line == f"GET /repos/{REPO}/commits/{p.fix_sha}/check-runs"]
    assert len(pages) >= 2


async def test_the_builder_sees_every_file_verbatim_and_a_tab_indented_search_applies(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    """One file holding `<!--` used to hide every file after it from the builder, and tabs became
    spaces, so a `search` copied exactly from a tab-indented file could never match."""
    repo, router = github
    repo.files[(REPO, "app/storage/save.py")] = (
        "def save(project):\n\t# keeps '<!--' markers in exported HTML\n\trows = collect(project)\n"
        "\treturn write(rows)\n"
    )
    tabbed = edit(
        "search_replace", "app/storage/save.py", search="\treturn write(rows)", replace="\treturn retry(rows)"
    )
    builder = Builder(router, change_set(fixes=[tabbed]))
    await start(harness)
    assert builder.calls == 1  # applied the first time: no repair round
    prompt = json.loads(next(c for c in router.calls if c.request.url == OPENAI).request.content)
    files = section(prompt["messages"][-1]["content"], "files")
    assert "\treturn write(rows)" in files
    assert "def test_save():" in files  # the file after the one with `<!--` is still there
    p = await proposal(harness)
    assert p.fix_sha is not None
    assert "\treturn retry(rows)" in (repo.file_at(p.fix_sha, "app/storage/save.py") or "")
