"""Remembered dismissals and Autopack's own review threads, through the audit and command flows.

A finding a writer dismissed — by resolving its thread with the code unchanged, by 👎, or by
replying `/autopack dismiss` — is never posted again in that repository (on a new head, or on
another pull request with the same code on other lines); a different finding still is;
`/autopack forget` brings it back. A re-audit resolves Autopack's threads whose finding is gone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import respx

from tests.component.harness import Harness
from tests.component.llm_mock import ANTHROPIC, OPENAI, anthropic_answer, openai_answer
from tests.component.scenarios import AUDIT_PATCH, pr_event
from tests.fake_github import FakeGitHub
from tests.support import comment_payload, review_comment_payload, section, thread_resolved_payload

SQL = "SQL built by string concatenation"
LOG = "Log line leaks project paths"
PATCH = AUDIT_PATCH
# The same code forty lines further down, in another pull request.
MOVED = PATCH.replace("@@ -10,3 +10,5 @@", "@@ -50,3 +50,5 @@")


def finding(title: str = SQL, line: int = 12, **kw: Any) -> dict[str, Any]:
    return {
        "severity": "high",
        "path": "app/storage/save.py",
        "start_line": line,
        "end_line": line + 1,
        "title": title,
        "explanation": "Project data reaches the query unescaped: an injection.",
        "confidence": 0.9,
        **kw,
    }


def answer(router: respx.MockRouter, *findings: dict[str, Any]) -> None:
    value = {"findings": list(findings), "verdict": "comment", "confidence": 0.8}
    router.post(ANTHROPIC).mock(return_value=anthropic_answer(value, "claude-haiku-5-5"))
    router.post(OPENAI).mock(return_value=openai_answer(json.dumps(value), "gpt-6.2-astra"))


def add_pull(repo: FakeGitHub, number: int, patch: str = PATCH) -> None:
    repo.pulls[number] = pr_event(number=number)["pull_request"]
    repo.pull_files[number] = [
        {
            "filename": "app/storage/save.py",
            "status": "modified",
            "additions": 3,
            "deletions": 1,
            "patch": patch,
        }
    ]


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, respx.MockRouter]]:
    repo = FakeGitHub(permissions={"maintainer": "write", "reader": "read"})
    add_pull(repo, 21)
    add_pull(repo, 22, MOVED)
    add_pull(repo, 23, MOVED)
    with respx.mock(assert_all_called=False) as router:
        repo.install(router)
        yield repo, router


def posted_titles(repo: FakeGitHub, number: int) -> list[str]:
    """The titles of the line comments of the latest review of pull request `number`."""
    review = repo.reviews[number][-1]
    return [c["body"].splitlines()[0] for c in review["comments"]]


async def audit(harness: Harness, number: int, head: str, action: str = "opened") -> None:
    await harness.deliver("pull_request", pr_event(action, head=head, number=number))
    await harness.run_all()


async def closed(harness: Harness, number: int) -> list[str]:
    event = pr_event("closed", number=number)
    event["pull_request"].update(state="closed", merged=True)
    await harness.deliver("pull_request", event)
    return await harness.run_all()


async def dismiss(harness: Harness, repo: FakeGitHub, how: str, who: str = "maintainer") -> None:
    thread = repo.thread_of(21, SQL)
    if how == "resolved":
        thread.update(isResolved=True, resolvedBy=who)
        first = repo.line_comments[thread["comments"][0]]
        await harness.deliver("pull_request_review_thread", thread_resolved_payload(first, login=who))
        await harness.run_all()
    elif how == "thumbs_down":
        thread["thumbs_down"].append(who)
    else:
        reply = review_comment_payload(
            "/autopack dismiss we escape rows upstream", in_reply_to=thread["comments"][0], login=who
        )
        await harness.deliver("pull_request_review_comment", reply)
        await harness.run_all()


@pytest.mark.parametrize("how", ["resolved", "thumbs_down", "command"])
async def test_each_dismissal_signal_keeps_the_finding_out_and_a_different_one_still_posts(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter], how: str
) -> None:
    repo, router = github
    answer(router, finding())
    await audit(harness, 21, "a1" * 20)
    assert posted_titles(repo, 21) == [f"**high: {SQL}**"]
    await dismiss(harness, repo, how)

    # The next head of the same pull request: the SQL finding again, and a new one.
    answer(router, finding(), finding(LOG, line=14, end_line=14))
    await audit(harness, 21, "b2" * 20, "synchronize")
    assert posted_titles(repo, 21) == [f"**high: {LOG}**"]
    body = repo.reviews[21][-1]["body"]
    assert "Left out: 1 dismissed here before (`/autopack learnings`)." in body
    assert "still apply" not in body  # left out as dismissed, not as already reported
    sent = [json.loads(c.request.content) for c in router.calls if c.request.url == ANTHROPIC]
    assert section(sent[0]["messages"][0]["content"], "dismissed_before") == "(none)"
    assert SQL in section(sent[-1]["messages"][0]["content"], "dismissed_before")  # the kind is told

    # Another pull request with the same code on other lines: still not posted.
    answer(router, finding(line=52), finding(LOG, line=54, end_line=54))
    await audit(harness, 22, "c3" * 20)
    assert posted_titles(repo, 22) == [f"**high: {LOG}**"]

    # `/autopack forget` brings it back.
    await harness.deliver("issue_comment", comment_payload("/autopack learnings", login="reader", number=22))
    await harness.run_all()
    listing = repo.comments[-1]["body"]
    fp = listing.split("| `", 1)[1].split("`", 1)[0]
    assert SQL in listing
    assert "@\u2060maintainer" in listing
    how_said = {"resolved": "| resolved the thread | — |", "thumbs_down": "| 👎 | — |"}
    assert how_said.get(how, "| `/autopack dismiss` | we escape rows upstream |") in listing
    await harness.deliver(
        "issue_comment",
        comment_payload(f"/autopack forget {fp}", login="maintainer", number=22, comment_id=9002),
    )
    await harness.run_all()
    assert f"Forgot `{fp}`" in repo.comments[-1]["body"]
    answer(router, finding(line=52))
    await audit(harness, 23, "d4" * 20)
    assert posted_titles(repo, 23) == [f"**high: {SQL}**"]


@pytest.mark.parametrize("how", ["resolved", "thumbs_down", "command"])
async def test_a_reader_cannot_dismiss_a_finding(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter], how: str
) -> None:
    repo, router = github
    answer(router, finding())
    await audit(harness, 21, "a1" * 20)
    await dismiss(harness, repo, how, who="reader")
    await closed(harness, 21)  # the threads are read once more when the pull request closes
    answer(router, finding(line=52))
    await audit(harness, 22, "c3" * 20)
    assert posted_titles(repo, 22) == [f"**high: {SQL}**"]


async def test_a_thumbs_down_before_the_merge_is_remembered_for_the_next_pull_request(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    answer(router, finding())
    await audit(harness, 21, "a1" * 20)
    await dismiss(harness, repo, "thumbs_down")
    assert await closed(harness, 21) == ["learn_dismissals"]
    answer(router, finding(line=52), finding(LOG, line=54, end_line=54))
    await audit(harness, 22, "c3" * 20)
    assert posted_titles(repo, 22) == [f"**high: {LOG}**"]
    # A pull request Autopack never audited: nothing is read when it closes.
    reads = repo.log.count("POST /graphql")
    assert await closed(harness, 23) == ["learn_dismissals"]
    assert repo.log.count("POST /graphql") == reads


async def test_a_thread_resolved_after_the_code_changed_is_a_fix_not_a_dismissal(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    answer(router, finding())
    await audit(harness, 21, "a1" * 20)
    thread = repo.thread_of(21, SQL)
    thread.update(isResolved=True, isOutdated=True, resolvedBy="maintainer")
    first = repo.line_comments[thread["comments"][0]]
    await harness.deliver("pull_request_review_thread", thread_resolved_payload(first))
    await closed(harness, 21)
    answer(router, finding(line=52))
    await audit(harness, 22, "c3" * 20)
    assert posted_titles(repo, 22) == [f"**high: {SQL}**"]


async def test_dismiss_outside_a_finding_thread_changes_nothing(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    human = repo.add_thread(21, "app/storage/save.py", "Could this be simpler?", author="maintainer")
    reply = review_comment_payload("/autopack dismiss", in_reply_to=human["comments"][0])
    await harness.deliver("pull_request_review_comment", reply)
    top_level = comment_payload("/autopack dismiss", login="maintainer", number=21, comment_id=9003)
    await harness.deliver("issue_comment", top_level)
    await harness.run_all()
    replies = [c["body"] for c in repo.comments]
    assert any("not one of Autopack's audit findings" in r for r in replies)
    assert any("in the thread of the audit finding you mean" in r for r in replies)
    assert (9101, "eyes") in repo.review_reactions  # a review comment gets its reactions there
    answer(router, finding())
    await audit(harness, 21, "a1" * 20)
    assert posted_titles(repo, 21) == [f"**high: {SQL}**"]


async def test_a_reaudit_resolves_its_own_threads_whose_finding_is_gone_and_only_those(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    answer(router, finding(), finding(LOG, line=14, end_line=14))
    await audit(harness, 21, "a1" * 20)
    human = repo.add_thread(21, "app/storage/save.py", "Please rename `rows`.", author="maintainer")
    answer(router, finding(LOG, line=14, end_line=14))  # the SQL finding is fixed on the new head
    await audit(harness, 21, "b2" * 20, "synchronize")
    assert repo.resolved_threads == [repo.thread_of(21, SQL)["id"]]
    assert not repo.thread_of(21, LOG)["isResolved"]
    assert not human["isResolved"]

    # A thread Autopack resolved itself is not a dismissal: the finding may come back.
    await closed(harness, 21)
    answer(router, finding(line=52))
    await audit(harness, 23, "d4" * 20)
    assert posted_titles(repo, 23) == [f"**high: {SQL}**"]
