"""The weekly digest: scheduling without cron (once per week, under two workers and a restart),
clusters limited to the listed issues, ranking by code, one issue per week edited in place,
proposals from the digest within rejections and budgets, and the shipped note to the whole theme."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import respx

from app.flows.digest import schedule_all
from app.inbox.installations import Installations
from app.inbox.proposals import Proposals
from app.inbox.shadow import ShadowDecisions
from app.inbox.triage_log import TriageLog
from tests.component.harness import Harness
from tests.component.llm_mock import ANTHROPIC, OPENAI, anthropic_answer, openai_answer
from tests.fake_github import FakeGitHub
from tests.support import comment_payload, payload

REPO = "octo-org/widgets"


def feedback(number: int, title: str, *, reporter: str, reactions: int = 0) -> dict[str, Any]:
    return {
        "number": number,
        "title": title,
        "labels": ["user-feedback"],
        "state": "open",
        "user": {"login": reporter, "type": "User"},
        "reactions": {"total_count": reactions},
        "body": f"Details of {title}",
    }


def analysis(severity: str, area: str = "storage") -> dict[str, Any]:
    return {
        "summary": "Saving fails.",
        "category": "bug",
        "severity": severity,
        "area": area,
        "warranted": True,
    }


def clusters(*items: dict[str, Any]) -> dict[str, Any]:
    return {"clusters": list(items)}


def cluster(theme: str, issues: list[int], feasibility: int, area: str = "storage") -> dict[str, Any]:
    return {"theme": theme, "area": area, "issues": issues, "feasibility": feasibility, "why": "same cause"}


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, respx.MockRouter]]:
    repo = FakeGitHub(permissions={"maintainer": "write"})
    repo.open_issues = [
        feedback(7, "Save fails when locked", reporter="ann", reactions=1),
        feedback(8, "Lock error on save", reporter="bob"),
        feedback(9, "Dark mode please", reporter="cat", reactions=12),
        feedback(10, "Untriaged report", reporter="dan"),
    ]
    with respx.mock(assert_all_called=False) as router:
        repo.install(router)
        yield repo, router


async def triaged(harness: Harness) -> None:
    for number, severity, area in ((7, "high", "storage"), (8, "medium", "storage"), (9, "low", "ui")):
        await TriageLog(harness.inbox.db).record(
            REPO, number, "r", f"h{number}", "b", 1, analysis(severity, area)
        )


def answer(router: respx.MockRouter, *answers: dict[str, Any]) -> list[dict[str, Any]]:
    """The analyst (medium: OpenAI's gpt-6.2-sol) answers in order; returns the prompts sent."""
    queue = list(answers)
    sent: list[dict[str, Any]] = []

    def respond(request: Any) -> Any:
        sent.append(json.loads(request.content))
        return openai_answer(json.dumps(queue.pop(0) if len(queue) > 1 else queue[0]), "gpt-6.2-sol")

    router.post(OPENAI).mock(side_effect=respond)
    router.post(ANTHROPIC).mock(return_value=anthropic_answer(answers[0], "claude-sonnet-5-5"))
    return sent


async def command(harness: Harness, comment_id: int = 9100) -> None:
    data = comment_payload("/autopack digest", login="maintainer", comment_id=comment_id)
    data["repository"]["default_branch"] = "main"
    await harness.deliver("issue_comment", data)


def digests(repo: FakeGitHub) -> list[dict[str, Any]]:
    return [i for i in repo.open_issues if "autopack:digest" in i.get("labels", [])]


def next_monday_six(now: float) -> float:
    day = dt.datetime.fromtimestamp(now, dt.UTC).date()
    monday = day - dt.timedelta(days=day.weekday())
    due = dt.datetime(monday.year, monday.month, monday.day, 6, tzinfo=dt.UTC).timestamp()
    return due if due > now else due + 7 * 86_400


async def test_schedule_is_created_once_and_runs_once_under_two_workers_and_a_restart(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    await triaged(harness)
    answer(router, clusters(cluster("Saving under locks", [7, 8], 4), cluster("Dark mode", [9], 2, "ui")))
    await Installations(harness.inbox.db).upsert(
        4242, "octo-org", "Organization", "Organization", repositories=[(1, REPO)]
    )
    await schedule_all(harness.inbox)
    await schedule_all(harness.inbox)  # a second process, or the next housekeeping pass
    (job,) = [j for j in await harness.inbox.jobs_for_subject(REPO) if j.flow == "digest"]
    assert job.run_at == pytest.approx(next_monday_six(harness.inbox.clock()), abs=2)
    harness.offset = job.run_at - harness.inbox.clock() + harness.offset + 1  # it is Monday 06:00
    # two workers claim at once: one gets the job
    claims = await asyncio.gather(harness.inbox.claim("w1", 60), harness.inbox.claim("w2", 60))
    claimed = [c for c in claims if c is not None]
    assert len(claimed) == 1
    # the worker dies mid-job (after posting); its lease runs out; another worker runs it again
    await harness.dispatcher(claimed[0])
    harness.offset += 120
    assert [j.id for j in await harness.inbox.reclaim_expired()] == [job.id]
    assert await harness.run_all() == ["digest"]
    assert len(digests(repo)) == 1  # edited in place, not posted twice
    # next week's digest is queued once, by the run itself
    week_jobs = [
        j for j in await harness.inbox.jobs_for_subject(REPO) if j.flow == "digest" and j.status == "queued"
    ]
    assert len(week_jobs) == 1
    assert week_jobs[0].run_at == pytest.approx(job.run_at + 7 * 86_400, abs=2)


async def test_a_scheduled_digest_reads_the_policy_from_the_default_branch(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    """The scheduler knows no branch: the digest asks GitHub, so a repository whose default branch
    is not `main` has its `.github/autopack.yml` read from that branch."""
    repo, router = github
    repo.default_branch = "develop"
    await triaged(harness)
    answer(router, clusters(cluster("Saving under locks", [7, 8], 4)))
    await Installations(harness.inbox.db).upsert(
        4242, "octo-org", "Organization", "Organization", repositories=[(1, REPO)]
    )
    await schedule_all(harness.inbox)
    (job,) = [j for j in await harness.inbox.jobs_for_subject(REPO) if j.flow == "digest"]
    assert "default_branch" not in job.args
    harness.offset = job.run_at - harness.inbox.clock() + harness.offset + 1
    assert await harness.run_all() == ["digest"]
    heads = [line for line in repo.log if "/commits/" in line and line.startswith("GET")]
    assert f"GET /repos/{REPO}/commits/develop" in heads
    assert f"GET /repos/{REPO}/commits/main" not in heads
    assert len(digests(repo)) == 1


async def test_clusters_name_only_the_listed_issues_and_code_ranks_them(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    await triaged(harness)
    invented = clusters(cluster("Saving under locks", [7, 8, 10, 99], 4))  # 10: untriaged, 99: invented
    valid = clusters(
        cluster("Dark mode", [9], 5, "ui"),  # the model lists it first...
        cluster("Saving under locks", [7, 8], 4),
    )
    sent = answer(router, invented, valid)
    await command(harness)
    assert await harness.run_all() == ["command", "digest"]
    assert len(sent) == 2  # the invented numbers failed the schema; one repair round
    prompt = sent[0]["messages"][-1]["content"]
    assert "#7 [bug/high/storage, 1 reactions]" in prompt
    assert "#10" not in prompt  # untriaged feedback waits for triage
    enum = json.dumps(sent[0]["response_format"])
    assert "99" not in enum
    (issue,) = digests(repo)
    body = issue["body"]
    # ...but code ranks: storage has 2 reporters and a high severity: impact 2+6+1 = 9 × 4 = 36,
    # dark mode 1+2+log2(13) ≈ 6.7 × 5 ≈ 33.5
    assert body.index("Saving under locks") < body.index("Dark mode")
    assert "= **36** |" in body
    assert "#7, #8" in body


async def test_one_digest_issue_per_week_edited_in_place_and_last_weeks_closed(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    await triaged(harness)
    answer(router, clusters(cluster("Saving under locks", [7, 8], 4)))
    repo.open_issues.append(
        {
            "number": 150,
            "title": "Feedback digest 2020-W01",
            "body": "old\n\n<!-- autopack:digest:2020-W01 -->",
            "labels": ["autopack:digest"],
            "state": "open",
            "user": {"login": "autopack[bot]", "type": "Bot"},
        }
    )
    await command(harness)
    await harness.run_all()
    await command(harness, comment_id=9101)
    await harness.run_all()
    this_week = [i for i in digests(repo) if i["number"] != 150]
    assert len(this_week) == 1
    assert this_week[0]["title"].startswith("Feedback digest 20")
    assert 150 in repo.closed
    assert "Shipped last week" in this_week[0]["body"]
    assert "$" in this_week[0]["body"]  # the week's cost


async def test_auto_propose_respects_rejections_and_budgets(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    await triaged(harness)
    repo.files[(REPO, ".github/autopack.yml")] = "digest:\n  auto_propose: 2\n"
    answer(router, clusters(cluster("Saving under locks", [7, 8], 4), cluster("Dark mode", [9], 5, "ui")))
    await Proposals(harness.inbox.db).record_rejection(REPO, 7, 20, "not like this", "maintainer")
    await command(harness)
    # run the command and the digest, but not the proposals they queue
    await run_only(harness, {"command", "digest"})
    queued = await proposals_queued(harness)
    assert queued == [9]  # #7 (the storage theme's representative) was rejected: skipped

    # a repository over its weekly budget starts no proposal (the earlier one forgotten, so the
    # budget alone stands in the way)
    await harness.inbox.db.run(lambda tx: tx.execute("DELETE FROM jobs WHERE flow = 'propose'"))
    harness.limit_repository_tokens(60_000)  # a digest fits, a build does not
    await command(harness, comment_id=9102)
    await run_only(harness, {"command", "digest"})
    assert await proposals_queued(harness) == []


async def run_only(harness: Harness, flows: set[str]) -> None:
    while True:
        jobs = [
            j
            for j in await harness.inbox.db.run(
                lambda tx: tx.fetchall("SELECT id, flow FROM jobs WHERE status = 'queued' ORDER BY id")
            )
            if j["flow"] in flows
        ]
        if not jobs:
            return
        job = await harness.inbox.claim("test", 60)
        assert job is not None
        if job.flow not in flows:
            await harness.inbox.release(job)
            continue
        await harness.dispatcher(job)
        await harness.inbox.complete(job)


async def proposals_queued(harness: Harness) -> list[int]:
    rows = await harness.inbox.db.run(
        lambda tx: tx.fetchall("SELECT args FROM jobs WHERE flow = 'propose' ORDER BY id")
    )
    return [int(json.loads(r["args"])["issue"]["number"]) for r in rows]


async def test_a_merged_proposal_tells_its_whole_theme_once(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    from app.policy.proposal import Proposal

    repo, _router = github
    store = Proposals(harness.inbox.db)
    await store.save_clusters(REPO, "2026-W48", [("Saving under @locks", [7, 8, 11])])
    p = Proposal(repository=REPO, issue=7, installation_id=4242, status="ready", pr_number=100, title="Retry")
    assert await store.start(p)
    await store.save(p)
    closed = payload("pull_request", "closed.payload.json")
    closed["installation"] = {"id": 4242, "node_id": "x"}
    closed["repository"].update(full_name=REPO, name="widgets", default_branch="main")
    closed["pull_request"].update(number=100, merged=True, merge_commit_sha="e" * 40)
    closed["pull_request"]["head"]["ref"] = "autopack/issue-7"
    await harness.deliver("pull_request", closed)
    await harness.run_all()
    await harness.deliver("pull_request", closed)  # a re-delivery changes nothing
    await harness.run_all()
    notes = [c for c in repo.bot_comments() if "autopack:shipped:100" in c["body"]]
    assert sorted(c["issue_number"] for c in notes) == [8, 11]
    assert "@locks" not in notes[0]["body"]
    assert "shipped in #100" in notes[0]["body"]


async def test_the_digest_charts_feedback_volume_and_cost_per_week(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    await triaged(harness)  # three issues triaged this week
    week_ago = time.time() - 7 * 86_400
    harness.inbox.db.run_sync(
        lambda tx: tx.execute(
            "INSERT INTO triage_log (repository, issue_number, author, body_hash, body, comment_id, "
            "triaged_at) VALUES (?, 5, 'r', 'h5', 'b', 1, ?)",
            (REPO, week_ago),
        )
    )
    answer(router, clusters(cluster("Saving under locks", [7, 8], 4)))
    await command(harness)
    await harness.run_all()
    (issue,) = digests(repo)
    body = issue["body"]
    assert "## Feedback and cost per week" in body
    chart = body.split("```mermaid")[1].split("```")[0]
    assert "xychart-beta" in chart
    assert chart.strip().splitlines()[-1].strip().endswith("1, 3]")  # last week 1, this week 3
    assert body.count("```mermaid") == 2  # volume and cost


async def test_the_digest_counts_this_weeks_shadow_decisions(
    harness: Harness, github: tuple[FakeGitHub, respx.MockRouter]
) -> None:
    repo, router = github
    await triaged(harness)
    answer(router, clusters(cluster("Saving under locks", [7, 8], 4)))
    decisions = ShadowDecisions(harness.inbox.db, clock=harness.inbox.clock)
    review = ("POST", f"/repos/{REPO}/pulls/21/reviews", {"event": "COMMENT", "body": "x", "comments": []})
    labels = ("POST", f"/repos/{REPO}/issues/7/labels", {"labels": ["type:bug"]})
    await decisions.record(REPO, "audit", f"{REPO}#21", 1, None, [review])
    await decisions.record(REPO, "triage", f"{REPO}#7", 2, None, [labels])
    await decisions.record(REPO, "triage", f"{REPO}#8", 3, None, [labels])
    await decisions.record("octo-org/other", "triage", "octo-org/other#1", 4, None, [labels])
    await command(harness)
    await harness.run_all()
    (issue,) = digests(repo)
    assert "## In shadow mode this week" in issue["body"]
    assert "- audit: 1 review\n- triage: 2 label\n" in issue["body"]
