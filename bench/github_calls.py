"""GitHub requests and rate-limit units per flow, counted by a recording fake GitHub (respx).

Runs the real dispatcher and flows against tests' FakeGitHub (every request logged; GET answers
carry ETags and a matching `If-None-Match` gets a 304, as GitHub's do) with the LLM answered by a
mock at the HTTP layer, and the ETag store on, as `autopack serve` runs. Rate-limit units are
requests minus 304s (GitHub does not count a 304 against the rate limit). For:
- a first triage in a fresh process ("cold": installation token and the App's login fetched), with
  every label the triage adds already in the repository;
- first triages of other issues in the same process ("warm"), the common case;
- the same, in a repository that has none of the labels yet (each creation is one more request);
- audits of two pull requests in a warm process.

    python bench/github_calls.py
"""

from __future__ import annotations

import httpx2

httpx2.alias_httpx()  # one respx router for githubkit (httpx) and the LLM SDKs (httpx2)

import asyncio  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import respx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.component.harness import Harness  # noqa: E402
from tests.component.llm_mock import OPENAI, openai_answer  # noqa: E402
from tests.component.scenarios import issue_event, triage_answer  # noqa: E402
from tests.fake_github import FakeGitHub  # noqa: E402

LABELS = ["type:bug", "severity:high", "area:app", "autopack:triaged", "user-feedback"]


async def run(existing_labels: bool) -> list[tuple[str, list[str], dict[str, int]]]:
    results = []
    with tempfile.TemporaryDirectory() as tmp, respx.mock(assert_all_called=False) as router:
        harness = Harness(Path(tmp))
        harness.use_etag_cache()
        repo = FakeGitHub()
        repo.open_issues = [
            {"number": n, "title": f"Earlier feedback {n}", "labels": ["user-feedback"]}
            for n in range(100, 130)
        ]
        if existing_labels:
            repo.labels = {name: {"name": name} for name in LABELS}
        router.post(OPENAI).mock(
            return_value=openai_answer(triage_answer(), "gpt-6-luna", prompt=0, completion=0)
        )
        repo.install(router)
        runs = (("first triage, cold process", 7), ("first triage, warm process", 8), ("another, warm", 9))
        for name, number in runs:
            repo.log.clear()
            repo.not_modified.clear()
            calls_before = len(router.calls)
            await harness.deliver("issues", issue_event(number=number, body_text=f"Saving fails ({number})."))
            await harness.run_next()
            llm_calls = [c for c in list(router.calls)[calls_before:] if c.request.url == OPENAI]
            sent = json.loads(llm_calls[0].request.content)
            from app.llm.tokens import counter_for

            tokens = {
                "input (o200k)": sum(counter_for("openai").count(m["content"]) for m in sent["messages"]),
                "max output": int(sent["max_completion_tokens"]),
            }
            results.append((name, list(repo.log), len(repo.not_modified), tokens))
        harness.close()
    return results


async def audits() -> list[tuple[str, list[str], int]]:
    from tests.component.llm_mock import ANTHROPIC, anthropic_answer
    from tests.component.scenarios import AUDIT_PATCH, pr_event

    results = []
    with tempfile.TemporaryDirectory() as tmp, respx.mock(assert_all_called=False) as router:
        harness = Harness(Path(tmp))
        harness.use_etag_cache()
        repo = FakeGitHub()
        answer = {"findings": [], "verdict": "approve", "confidence": 0.9}
        router.post(ANTHROPIC).mock(return_value=anthropic_answer(answer, "claude-haiku-5-5"))
        router.post(OPENAI).mock(return_value=openai_answer(json.dumps(answer), "gpt-6.2-astra"))
        repo.install(router)
        await harness.github.bot_login()
        for number in (21, 22, 23):
            repo.pulls[number] = pr_event(number=number)["pull_request"]
            repo.pull_files[number] = [
                {
                    "filename": "app/save.py",
                    "status": "modified",
                    "additions": 3,
                    "deletions": 1,
                    "patch": AUDIT_PATCH,
                }
            ]
            repo.log.clear()
            repo.not_modified.clear()
            await harness.deliver("pull_request", pr_event(number=number, head=f"{number:040x}"))
            await harness.run_all()
            if number > 21:
                results.append((f"audit of #{number}, warm process", list(repo.log), len(repo.not_modified)))
        harness.close()
    return results


def main() -> None:
    from app import logs

    logs.configure("error", "console")
    logging.disable(logging.WARNING)
    for existing in (True, False):
        print(f"\nLabels already in the repository: {'yes' if existing else 'no'}")
        for name, log, not_modified, tokens in asyncio.run(run(existing)):
            print(
                f"  {name}: {len(log)} GitHub requests, {len(log) - not_modified} rate-limit units "
                f"({not_modified} answered 304); prompt {tokens['input (o200k)']:,} tokens "
                f"(max output {tokens['max output']:,})"
            )
            for request, count in Counter(log).items():
                print(f"      {count} x {request}")
    print("\nAudits (the auditor approves: no review, the check run answers)")
    for name, log, not_modified in asyncio.run(audits()):
        print(f"  {name}: {len(log)} GitHub requests, {len(log) - not_modified} rate-limit units")
        for request, count in Counter(log).items():
            print(f"      {count} x {request}")
    print("\nTargets: a warm triage costs at most 3 rate-limit units, an audit at most 5.")


if __name__ == "__main__":
    main()
