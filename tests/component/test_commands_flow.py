"""`/autopack` commands end to end through the dispatcher, GitHub mocked with respx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import respx

from app.errors import PermanentError
from tests.component.harness import Harness
from tests.fake_github import FakeGitHub
from tests.support import comment_payload


@pytest.fixture
def github() -> AsyncIterator[FakeGitHub]:
    thread = FakeGitHub(permissions={"octocat": "admin", "reader": "read", "writer": "write"})
    with respx.mock(assert_all_called=False) as router:
        thread.install(router)
        yield thread


async def test_help_replies_once_and_reacts(harness: Harness, github: FakeGitHub) -> None:
    await harness.deliver("issue_comment", comment_payload("/autopack help", login="reader"))
    await harness.run_next()
    (reply,) = github.bot_comments()
    assert "`/autopack retry`" in reply["body"]
    assert "<!-- autopack:command:9001 -->" in reply["body"]
    assert github.reactions == [(9001, "eyes"), (9001, "+1")]
    # The token was narrowed to the one repository the job acts on (DESIGN §5.9).
    assert github.token_requests
    assert all(r.get("repositories") == ["widgets"] for r in github.token_requests)


async def test_rerun_edits_in_place_never_duplicates(harness: Harness, github: FakeGitHub) -> None:
    (job,) = await harness.deliver("issue_comment", comment_payload("/autopack help", login="reader"))
    await harness.run_next()
    github.comments[0]["body"] = "stale text <!-- autopack:command:9001 -->"
    await harness.inbox.requeue(job.id)
    await harness.run_next()
    assert len(github.bot_comments()) == 1
    assert github.edits == 1
    assert "`/autopack help`" in github.bot_comments()[0]["body"]


async def test_marker_in_someone_elses_comment_is_not_ours(harness: Harness, github: FakeGitHub) -> None:
    github.comments.append(
        {"id": 1, "body": "<!-- autopack:command:9001 -->", "user": {"login": "mallory", "type": "User"}}
    )
    await harness.deliver("issue_comment", comment_payload("/autopack help", login="reader"))
    await harness.run_next()
    assert len(github.bot_comments()) == 1
    assert github.comments[0]["body"] == "<!-- autopack:command:9001 -->"  # untouched


async def test_retry_refused_below_write(harness: Harness, github: FakeGitHub) -> None:
    await harness.deliver("issue_comment", comment_payload("/autopack retry", login="reader"))
    await harness.run_next()
    (reply,) = github.bot_comments()
    assert "needs **write** permission" in reply["body"]
    assert "you have **read**" in reply["body"]
    assert github.reactions[-1] == (9001, "-1")


async def test_retry_requeues_latest_failed_job(harness: Harness, github: FakeGitHub) -> None:
    (failed,) = await harness.deliver("issue_comment", comment_payload("/autopack help", comment_id=1))
    job = await harness.inbox.claim("w", 60)
    assert job is not None
    await harness.inbox.fail(job, "GitHub was down", retry_in=None)
    await harness.deliver("issue_comment", comment_payload("/autopack retry", login="writer", comment_id=2))
    await harness.run_next()
    again = await harness.inbox.get_job(failed.id)
    assert again is not None
    assert (again.status, again.attempts) == ("queued", 0)
    reply = next(c for c in github.bot_comments() if "command:2" in c["body"])
    assert "Re-queued the `command` job" in reply["body"]
    assert "GitHub was down" in reply["body"]


async def test_retry_with_nothing_to_retry(harness: Harness, github: FakeGitHub) -> None:
    await harness.deliver("issue_comment", comment_payload("/autopack retry", login="writer"))
    await harness.run_next()
    assert "Nothing to retry" in github.bot_comments()[0]["body"]


async def test_unknown_command_answers_with_help(harness: Harness, github: FakeGitHub) -> None:
    await harness.deliver("issue_comment", comment_payload("/autopack frobnicate", login="reader"))
    await harness.run_next()
    body = github.bot_comments()[0]["body"]
    assert "Unknown command `frobnicate`" in body
    assert "`/autopack help`" in body
    assert github.reactions[-1] == (9001, "-1")


async def test_bot_comments_and_edits_never_reach_a_flow(harness: Harness, github: FakeGitHub) -> None:
    assert (
        await harness.deliver(
            "issue_comment", comment_payload("/autopack retry", login="autopack[bot]", user_type="Bot")
        )
        == []
    )
    assert (
        await harness.deliver(
            "issue_comment", comment_payload("/autopack retry", login="ci", user_type="Bot")
        )
        == []
    )
    assert await harness.deliver("issue_comment", comment_payload("/autopack retry", action="edited")) == []
    assert github.reactions == []


async def test_flow_rechecks_bot_even_if_queued(harness: Harness, github: FakeGitHub) -> None:
    """Defence in depth: a bot's comment that reached the queue (e.g. `deliveries retry`) does nothing."""
    payload = comment_payload("/autopack retry", login="dependabot[bot]", user_type="Bot")
    harness.registry.flows["command"] = harness.registry.flows["command"].__class__(
        name="command",
        triggers=harness.registry.flows["command"].triggers,
        handler=harness.registry.flows["command"].handler,
    )
    assert len(await harness.deliver("issue_comment", payload)) == 1
    await harness.run_next()
    assert github.reactions == []
    assert github.comments == []


async def test_unparseable_payload_fails_permanently(harness: Harness, github: FakeGitHub) -> None:
    """A payload without a field Autopack reads (the comment's id) is queued all the same, and its
    job fails at once naming the field: visible to an operator, never silently ignored."""
    payload = comment_payload("/autopack help")
    del payload["comment"]["id"]
    assert len(await harness.deliver("issue_comment", payload)) == 1
    job = await harness.inbox.claim("w", 60)
    assert job is not None
    with pytest.raises(PermanentError, match=r"does not match GitHub's schema .*comment\.id"):
        await harness.dispatcher(job)
    assert github.comments == []


async def test_a_payload_with_only_what_autopack_reads_runs(harness: Harness, github: FakeGitHub) -> None:
    """Positive control: fields Autopack does not read may be missing (githubkit's full models
    refused this thin user object)."""
    payload = comment_payload("/autopack help")
    payload["comment"]["user"] = {"login": "octocat", "type": "User"}
    await harness.deliver("issue_comment", payload)
    await harness.run_next()
    (reply,) = github.bot_comments()
    assert "Autopack commands" in reply["body"]


@pytest.mark.parametrize(
    "name",
    [
        "x`@victim`",
        "x`[click](https://evil.example)`",
        "x`![p](https://evil.example/p.png)`",
        "www.evil.example",
    ],
)
async def test_an_unknown_command_echoes_nothing_live(
    harness: Harness, github: FakeGitHub, name: str
) -> None:
    """`/autopack x\\`@victim\\`` used to be echoed inside backticks it closed: a ping for anyone."""
    from tests.unit.test_render import problems

    await harness.deliver("issue_comment", comment_payload(f"/autopack {name}", login="reader"))
    await harness.run_next()
    (reply,) = github.bot_comments()
    assert reply["body"].startswith("Unknown command ")
    assert problems(reply["body"]) == []
    assert github.reactions[-1] == (9001, "-1")


async def test_a_normal_command_still_answers(harness: Harness, github: FakeGitHub) -> None:
    await harness.deliver("issue_comment", comment_payload("/autopack help", login="reader"))
    await harness.run_next()
    (reply,) = github.bot_comments()
    assert reply["body"].startswith("**Autopack commands**")
