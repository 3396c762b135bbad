"""GitHub requests per flow, counted by a recording fake GitHub (respx), and tokens per triage.

Runs the real dispatcher and triage flow against tests' FakeGitHub (every request logged) with the
LLM answered by a mock at the HTTP layer, for:
- a first triage in a fresh process ("cold": installation token and the App's login fetched), with
  every label the triage adds already in the repository;
- a first triage of another issue in the same process ("warm"), the common case;
- the same, in a repository that has none of the labels yet (each creation is one more request).

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
        for name, number in (("first triage, cold process", 7), ("first triage, warm process", 8)):
            repo.log.clear()
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
            results.append((name, list(repo.log), tokens))
        harness.close()
    return results


def main() -> None:
    from app import logs

    logs.configure("error", "console")
    logging.disable(logging.WARNING)
    for existing in (True, False):
        print(f"\nLabels already in the repository: {'yes' if existing else 'no'}")
        for name, log, tokens in asyncio.run(run(existing)):
            print(
                f"  {name}: {len(log)} GitHub requests; prompt {tokens['input (o200k)']:,} tokens "
                f"(max output {tokens['max output']:,})"
            )
            for request, count in Counter(log).items():
                print(f"      {count} x {request}")
    print("\nTarget: a first triage in at most 8 requests when its labels exist.")


if __name__ == "__main__":
    main()
