"""Tokens and GitHub requests per audit, for 50-, 400- and 3,000-line diffs (issue: audit engine).

Runs the real audit flow against tests' recording FakeGitHub (every GitHub request logged) with the
auditors answered by mocks at the HTTP layer, in a warm process (installation token and the App's
login already fetched, as in a running service), once as a general change and once as a security
change (which adds the secondary auditor).

    python bench/audit_calls.py
"""

from __future__ import annotations

import httpx2

httpx2.alias_httpx()  # one respx router for githubkit (httpx) and the LLM SDKs (httpx2)

import asyncio  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import respx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.llm.tokens import counter_for  # noqa: E402
from tests.component.harness import Harness  # noqa: E402
from tests.component.llm_mock import ANTHROPIC, OPENAI, anthropic_answer, openai_answer  # noqa: E402
from tests.component.scenarios import pr_event  # noqa: E402
from tests.fake_github import FakeGitHub  # noqa: E402

ANSWER = {"findings": [], "verdict": "approve", "confidence": 0.8}


def files_for(lines: int, security: bool) -> list[dict[str, object]]:
    """`lines` changed lines over files of 25-line hunks, like a real refactoring."""
    files = []
    per_file = 100
    for index in range(max(1, lines // per_file)):
        hunks = []
        for h in range(per_file // 25):
            start = 1 + h * 40
            body = [
                f"+    value_{i} = request.params.get('field_{i}')  # step {i}"
                if i % 2
                else f"-    value_{i} = request.args['field_{i}']"
                for i in range(25)
            ]
            context = [f"     context_line_{h}_{i} = compute({i})" for i in range(3)]
            hunks.append(
                f"@@ -{start},16 +{start},16 @@ def handler_{h}(request):\n" + "\n".join(context + body)
            )
        folder = "app/auth" if security and index == 0 else "app/services"
        files.append(
            {
                "filename": f"{folder}/module_{index}.py",
                "status": "modified",
                "additions": min(per_file, lines) // 2,
                "deletions": min(per_file, lines) // 2,
                "patch": "\n".join(hunks),
            }
        )
    return files


async def one(lines: int, security: bool) -> tuple[int, list[int], list[str]]:
    with tempfile.TemporaryDirectory() as tmp, respx.mock(assert_all_called=False) as router:
        harness = Harness(Path(tmp))
        repo = FakeGitHub()
        router.post(ANTHROPIC).mock(return_value=anthropic_answer(ANSWER, "claude-opus-5-5"))
        router.post(OPENAI).mock(return_value=openai_answer(json.dumps(ANSWER), "gpt-6.2-astra"))
        repo.install(router)
        repo.pulls[21] = pr_event()["pull_request"]
        repo.pull_files[21] = files_for(lines, security)
        await harness.github.bot_login()  # a warm process knows its login
        await harness.deliver("pull_request", pr_event())
        repo.log.clear()
        await harness.run_next()
        prompts = []
        for call in router.calls:
            if call.request.url in (ANTHROPIC, OPENAI):
                sent = json.loads(call.request.content)
                system = sent["system"][0]["text"] if "system" in sent else ""
                text = system + "".join(m["content"] for m in sent["messages"])
                prompts.append(counter_for("openai").count(text))
        harness.close()
        return len(repo.log), prompts, list(repo.log)


def main() -> None:
    from app import logs

    logs.configure("error", "console")
    logging.disable(logging.WARNING)
    print(f"{'diff':16} {'change':9} {'GitHub requests':>16}  prompt tokens per auditor (o200k)")
    for lines in (50, 400, 3000):
        for security in (False, True):
            requests, prompts, _log = asyncio.run(one(lines, security))
            print(
                f"{f'{lines}-line diff':16} {'security' if security else 'general':9} {requests:>16}  "
                f"{', '.join(f'{p:,}' for p in prompts)}"
            )
    print("\nRequests: installation token (first call of a repository), head commit and policy file,")
    print("reviews, review threads (GraphQL), files, commits and the check run; the review too when it")
    print("has something new to say (this answer has none); more annotation batches add requests.")


if __name__ == "__main__":
    main()
