"""`autopack eval triage|audit` against a recorded repository (tests/fixtures/history): the report's
numbers are exact, nothing is written to GitHub, the cost is confirmed first, `--max-cost` stops.

The recorded repository: five issues in the window (labels for category, area and needs-info; #3
closed as a duplicate of #1 with GitHub's "Duplicate of #1" comment), a pull request, a bot's issue
and an older issue that must be left out; three merged pull requests with people's and bots' review
comments, a later revert of #11, a later fix of #12, a fix before #10 was merged (not counted) and a
closed pull request that was never merged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from click.testing import CliRunner

from app.cli import main
from app.flows.evaluate import Evaluation
from app.github.client import _is_read
from app.policy.app_manifest import github_web_url
from tests.component.harness import Harness
from tests.component.llm_mock import ANTHROPIC, OPENAI, anthropic_answer, openai_answer
from tests.fake_github import API, FakeGitHub
from tests.support import section

REPO = "octo-org/widgets"
HISTORY = Path(__file__).resolve().parents[1] / "fixtures" / "history" / "octo-org-widgets.json"
SINCE = dt.datetime(2026, 9, 1, tzinfo=dt.UTC).timestamp()

# What the analyst answers for each issue title (category, area, questions, duplicates).
TRIAGE = {
    "Crash when saving a large project": ("bug", "app", [], []),
    "Add a dark mode": ("feature_request", "web", [], []),
    "Saving big projects crashes": ("bug", "app", [], [1]),
    "It doesn't work": ("question", "unknown", ["Which version, and what did you do?"], []),
    "How do I configure the port?": ("bug", "docs", [], [2]),  # wrong twice: not a bug, no duplicate
    "An old report": ("bug", "app", [], []),  # filed before the window of the component tests
}


def finding(path: str, line: int, title: str) -> dict[str, Any]:
    return {
        "severity": "high",
        "path": path,
        "start_line": line,
        "end_line": line,
        "title": title,
        "explanation": "Explained.",
        "confidence": 0.9,
    }


# What the auditor finds in each merged pull request (by title).
AUDIT = {
    "Add retry to save": [
        finding("app/storage/save.py", 12, "Retries without a limit"),  # a maintainer said so too
        finding("app/storage/save.py", 14, "Logs the project path"),  # nobody did
    ],
    "Cache settings": [finding("app/settings.py", 5, "Cache never invalidated")],  # reverted later
    "Docs typo": [],  # a later fix changed this file: a signal the audit missed
}


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, list[str], respx.MockRouter]]:
    data = json.loads(HISTORY.read_text())
    repo = FakeGitHub(permissions={"maintainer": "write"})
    repo.open_issues = data["issues"]
    repo.comments = [
        {**c, "issue_number": int(n)} for n, comments in data["issue_comments"].items() for c in comments
    ]
    repo.pulls = {int(p["number"]): p for p in data["pulls"]}
    repo.pull_files = {int(n): files for n, files in data["pull_files"].items()}
    repo.pull_review_comments = {int(n): c for n, c in data["pull_review_comments"].items()}
    repo.history = data["history"]
    repo.commit_file_lists = data["commit_files"]
    writes: list[str] = []
    answer = repo.handle

    def handle(request: httpx.Request) -> httpx.Response:
        if not _is_read(request):
            writes.append(f"{request.method} {request.url.path}")
        return answer(request)

    repo.handle = handle  # type: ignore[method-assign]
    with respx.mock(assert_all_called=False) as router:
        router.post(OPENAI).mock(side_effect=_openai)
        router.post(ANTHROPIC).mock(side_effect=_anthropic)
        repo.install(router)
        yield repo, writes, router


def _title_in(prompt: str, name: str) -> str:
    return section(prompt, name).strip()


def _openai(request: httpx.Request) -> httpx.Response:
    sent = json.loads(request.content)
    prompt = "".join(str(m["content"]) for m in sent["messages"])
    if "issue_title" in prompt:
        category, area, questions, duplicates = TRIAGE[_title_in(prompt, "issue_title")]
        value = {
            "category": category,
            "severity": "medium",
            "summary": "Summary.",
            "warranted": False,
            "confidence": 0.9 if category == "bug" else 0.6,
            "reasons": ["r"],
            "questions": questions,
            "area": area,
            "duplicates": duplicates,
        }
        return openai_answer(json.dumps(value), "gpt-6-luna", prompt=1_000, completion=100)
    findings = AUDIT[_title_in(prompt, "pr_title")]
    return openai_answer(
        json.dumps({"findings": findings, "verdict": "comment", "confidence": 0.8}), "gpt-6.2-astra"
    )


def _anthropic(request: httpx.Request) -> httpx.Response:
    sent = json.loads(request.content)
    prompt = "".join(str(m["content"]) for m in sent["messages"])
    findings = AUDIT[_title_in(prompt, "pr_title")]
    value = {"findings": findings, "verdict": "comment", "confidence": 0.8}
    return anthropic_answer(value, "claude-haiku-5-5", input_tokens=800, output=90)


def evaluation(
    harness: Harness, *, max_cost: float | None = None, answer: bool = True
) -> tuple[Evaluation, list[str]]:
    asked: list[str] = []

    async def confirm(question: str) -> bool:
        asked.append(question)
        return answer

    github = harness.github.__class__(
        12345, harness.settings.private_key_pem() or "", base_url=API, dry_run_printer=lambda _l: None
    )
    run = Evaluation(
        github,
        harness.llm,
        harness.inbox,
        harness.settings,
        REPO,
        since=SINCE,
        limit=50,
        max_cost=max_cost,
        confirm=confirm,
    )
    return run, asked


def row(report: str, first_cell: str) -> list[str]:
    """The cells of the table row that starts with `first_cell`."""
    line = next(line for line in report.splitlines() if line.startswith(f"| {first_cell} |"))
    return [c.strip() for c in line.strip("|").split("|")]


async def test_triage_evaluation_numbers_are_exact(
    harness: Harness, github: tuple[FakeGitHub, list[str], respx.MockRouter]
) -> None:
    _repo, writes, router = github
    run, asked = evaluation(harness)
    outcome = await run.triage()
    assert writes == []
    (question,) = asked
    assert question.startswith(f"Triage 5 issues of {REPO}: about $")
    assert "gpt-6-luna" in question
    assert outcome.items == 5
    report = outcome.report
    assert row(report, "category") == ["category", "4", "75%"]
    assert row(report, "area") == ["area", "3", "100%"]
    assert row(report, "needs_info") == ["needs_info", "5", "100%"]
    assert row(report, "duplicate") == ["duplicate", "5", "80%"]
    assert "Duplicates that named the issue the maintainers linked: 1 of 1." in report
    category = report.split("## category", 1)[1].split("## area", 1)[0]
    assert row(category, "bug") == ["bug", "67%", "100%"]
    assert row(category, "question") == ["question", "—", "0%"]
    assert "| | bug | feature_request | question |" in category
    assert row(category, "**question**") == ["**question**", "1", "0", "0"]  # asked as a bug
    duplicate = report.split("## duplicate", 1)[1].split("## Worst", 1)[0]
    assert row(duplicate, "yes") == ["yes", "50%", "100%"]
    worst = report.split("## Worst disagreements", 1)[1].strip().splitlines()
    web = github_web_url(API)  # github.com for api.github.com
    assert worst[0].startswith(f"- [#5]({web}/{REPO}/issues/5) How do I configure the port?")
    assert "category: bug, maintainers: question; duplicate: #2, maintainers: none" in worst[0]
    assert len(worst) == 1
    assert "Tokens: 5,500; cost: $" in report  # 5 calls of 1,000 + 100 tokens
    # The duplicate's candidates were the issues open when it was filed, as then.
    prompts = [json.loads(c.request.content) for c in router.calls if c.request.url == OPENAI]
    third = "".join(m["content"] for m in prompts[2]["messages"])
    assert "#1: Crash when saving a large project" in third
    assert "#4:" not in third
    rows = await harness.inbox.db.run(lambda tx: tx.fetchall("SELECT task FROM llm_usage"))
    assert [r["task"] for r in rows] == ["triage"] * 5  # the ledger (and the weekly budgets) saw them


async def test_audit_evaluation_numbers_are_exact(
    harness: Harness, github: tuple[FakeGitHub, list[str], respx.MockRouter]
) -> None:
    _repo, writes, _router = github
    run, asked = evaluation(harness)
    outcome = await run.audit()
    assert writes == []
    assert asked[0].startswith(f"Audit 3 merged pull requests of {REPO}: about $")
    report = outcome.report
    assert row(report, "all") == ["all", "3", "2", "67%", "4", "2", "50%"]
    assert row(report, "general") == ["general", "3", "2", "67%", "3", "2", "67%"]
    assert row(report, "docs") == ["docs", "0", "0", "—", "1", "0", "0%"]
    web = github_web_url(API)
    assert f"[#11]({web}/{REPO}/pull/11) Cache settings: 1 findings, 1 agreeing; " in report
    assert "#13" not in report  # closed without a merge
    assert outcome.numbers["all"] == {"findings": 3, "agreeing": 2, "signals": 4, "matched": 2}


async def test_nothing_is_spent_without_confirmation_and_max_cost_stops_before_going_over(
    harness: Harness, github: tuple[FakeGitHub, list[str], respx.MockRouter]
) -> None:
    _repo, _writes, router = github
    run, _asked = evaluation(harness, answer=False)
    outcome = await run.triage()
    assert outcome.stopped == "not confirmed"
    assert not [c for c in router.calls if c.request.url in (OPENAI, ANTHROPIC)]

    run, _asked = evaluation(harness, max_cost=0.0)
    outcome = await run.triage()
    assert outcome.items == 0
    assert "The run stopped at --max-cost $0.00 after 0 issues." in outcome.report
    assert not [c for c in router.calls if c.request.url in (OPENAI, ANTHROPIC)]


async def test_the_cli_asks_then_writes_the_report(
    harness: Harness, github: tuple[FakeGitHub, list[str], respx.MockRouter], tmp_path: Path
) -> None:
    env = {
        "APP_ID": "12345",
        "PRIVATE_KEY": harness.settings.private_key_pem() or "",
        "WEBHOOK_SECRET": "s3cret-hook-0123456789",
        "DATABASE_URL": harness.settings.database_url,
        "GITHUB_API_URL": API,
        "OPENAI_API_KEY": "sk-test-0000000000000000",
        "ANTHROPIC_API_KEY": "sk-ant-test-000000000000",
        "LOG_LEVEL": "warning",
    }
    out = tmp_path / "report.md"
    args = ["eval", "triage", "--repo", REPO, "--since", "520w", "--out", str(out)]
    refused = await asyncio.to_thread(CliRunner().invoke, main, args, env=env, input="n\n")
    assert refused.exit_code == 1
    assert re.search(
        r"Triage 6 issues of octo-org/widgets: about \$\d+\.\d{4} with gpt-6-luna", refused.output
    )
    assert not out.exists()
    done = await asyncio.to_thread(CliRunner().invoke, main, args, env=env, input="y\n")
    assert done.exit_code == 0, done.output
    assert out.read_text().startswith(f"# Triage evaluation of `{REPO}`")
    assert "| category | 5 | 80% |" in out.read_text()  # 520 weeks: the old report (#8) too
