"""Tokens, cost and GitHub requests per proposal, for a small fixture repository (issue: proposals).

Runs the real flows against tests' recording FakeGitHub (every GitHub request logged), in a warm
process (the installation token and the App's login already fetched): `/autopack propose` →
propose → CI fails on the tests-only commit → the fix is pushed → CI passes → audit → ready for
review → a writer approves → the gate merges. The LLM providers are mocked at the HTTP layer, but
each answer reports the tokens of the prompt it was actually sent (o200k for OpenAI, the
1-token-per-3-bytes estimate for Anthropic), so tokens and cost follow the real prompt sizes and the
catalogue's prices. A second run adds one revise round (CI fails on the fix).

    python bench/proposal_calls.py [-v]   (-v lists every request)
"""

from __future__ import annotations

import httpx2

from app.inbox.triage_log import TriageLog

httpx2.alias_httpx()  # one respx router for githubkit (httpx) and the LLM SDKs (httpx2)

import asyncio  # noqa: E402
import difflib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import respx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.inbox.proposals import Proposals  # noqa: E402
from app.llm.tokens import counter_for  # noqa: E402
from tests.component.harness import Harness  # noqa: E402
from tests.component.llm_mock import ANTHROPIC, OPENAI, anthropic_answer, openai_answer  # noqa: E402
from tests.component.scenarios import (  # noqa: E402
    ANALYSIS,
    REPO,
    SAVE,
    approve,
    change_set,
    ci_event,
    ci_run,
    edit,
    propose_comment,
)
from tests.fake_github import FakeGitHub  # noqa: E402

MODULE = """def {name}_step_{i}(value):
    \"\"\"Step {i} of {name}.\"\"\"
    result = transform(value, {i})
    if result is None:
        raise ValueError("{name} {i}")
    return result
"""
TEST = """from app.storage.{name} import {name}_step_0


def test_{name}():
    assert {name}_step_0(1)
"""


def fixture_repo() -> dict[str, str]:
    """A small Python package: six modules of ~80 lines, their tests, README, CONTRIBUTING, pyproject."""
    files: dict[str, str] = {}
    for name in ("save", "load", "cache", "config", "cli", "models"):
        body = "\n\n".join(MODULE.format(name=name, i=i) for i in range(10))
        files[f"app/storage/{name}.py"] = f'"""The {name} module."""\n\n{body}'
        files[f"tests/test_{name}.py"] = TEST.format(name=name)
    files["app/storage/save.py"] += "\n\n" + SAVE
    files["README.md"] = "# Widgets\n\nA widget store.\n\n## Development\n\nRun `pytest`.\n" + "Notes.\n" * 40
    files["CONTRIBUTING.md"] = "Write a test for every fix. Keep functions small.\n" * 20
    files["pyproject.toml"] = '[project]\nname = "widgets"\n\n[tool.pytest.ini_options]\n'
    files["conftest.py"] = ""
    return files


def patch(file: dict[str, Any]) -> str:
    old, new = (file["base"] or "").splitlines(), (file["current"] or "").splitlines()
    return "\n".join(list(difflib.unified_diff(old, new, lineterm="", n=3))[2:])


def answering(provider: str, answers: list[dict[str, Any]]) -> Any:
    counter = counter_for(provider)

    def respond(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        system = sent.get("system", "")
        system_text = system if isinstance(system, str) else "".join(b.get("text", "") for b in system)
        prompt = counter.count(system_text + "".join(str(m["content"]) for m in sent["messages"]))
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        out = counter.count(json.dumps(answer))
        if provider == "openai":
            return openai_answer(json.dumps(answer), "gpt-6.2-sol", prompt=prompt, completion=out)
        return anthropic_answer(answer, "claude-sonnet-5-5", input_tokens=prompt, output=out)

    return respond


async def run(revise: bool) -> tuple[Counter[str], list[tuple[str, str, int, float]]]:
    with tempfile.TemporaryDirectory() as tmp, respx.mock(assert_all_called=False) as router:
        harness = Harness(Path(tmp))
        repo = FakeGitHub(permissions={"maintainer": "write"})
        repo.files.update({(REPO, p): t for p, t in fixture_repo().items()})
        revision = change_set(
            tests=[],
            fixes=[edit("search_replace", "app/storage/save.py", search="retry(", replace="retry_bounded(")],
        )
        router.post(OPENAI).mock(side_effect=answering("openai", [change_set(), revision]))
        verdict = {"findings": [], "verdict": "comment", "confidence": 0.8}
        router.post(ANTHROPIC).mock(side_effect=answering("anthropic", [verdict]))
        repo.install(router)
        await harness.github.bot_login()
        await TriageLog(harness.inbox.db).record(REPO, 7, "reporter", "h", "body", 1, ANALYSIS)
        phases: Counter[str] = Counter()

        async def drain(phase: str) -> None:
            repo.log.clear()
            while (job := await harness.inbox.claim("bench", 60)) is not None:
                await harness.dispatcher(job)
                await harness.inbox.complete(job)
            phases[phase] += len(repo.log)
            if "-v" in sys.argv:
                print(phase, *repo.log, sep="\n    ")

        # a warm process: the first request of the first job fetches the token; not counted
        await harness.deliver("issue_comment", propose_comment())
        await drain("command + propose")
        store = Proposals(harness.inbox.db)
        p = await store.get(REPO, 7)
        assert p is not None
        assert p.test_sha is not None
        ci_run(repo, p.test_sha, "failure")
        await harness.deliver("check_suite", ci_event(p.test_sha, "failure"))
        await drain("CI on tests-only commit")
        if revise:
            p = await store.get(REPO, 7)
            assert p is not None
            assert p.fix_sha is not None
            ci_run(repo, p.fix_sha, "failure", run_id=700)
            await harness.deliver("check_suite", ci_event(p.fix_sha, "failure"))
            await drain("fix fails → revise")
        p = await store.get(REPO, 7)
        assert p is not None
        assert p.fix_sha is not None
        repo.pull_files[100] = [  # what GitHub would list for the PR: the proposal's diff
            {"filename": path, "status": "modified", "additions": 1, "deletions": 1, "patch": patch(f)}
            for path, f in p.files.items()
        ]
        ci_run(repo, p.fix_sha, "success", run_id=800)
        await harness.deliver("check_suite", ci_event(p.fix_sha, "success"))
        await drain("CI passes → audit → ready")
        p = await store.get(REPO, 7)
        assert p is not None
        assert p.status == "ready", p.status
        await harness.deliver("pull_request_review", approve(repo, p.fix_sha or ""))
        await drain("approval → gate → merge")
        p = await store.get(REPO, 7)
        assert p is not None
        assert p.status == "merged", p.status
        from app.llm.ledger import Ledger

        rows = await Ledger(harness.inbox.db).summary(since=0, by="task")
        usage = [
            (str(r["key"]), "", int(r["input_tokens"]) + int(r["output_tokens"]), float(r["cost"]))
            for r in rows
        ]
        harness.close()
        return phases, usage


def main() -> None:
    from app import logs

    logs.configure("error", "console")
    logging.disable(logging.WARNING)
    files = fixture_repo()
    print(f"fixture repository: {len(files)} files, {sum(len(t) for t in files.values()):,} bytes\n")
    for revise in (False, True):
        phases, usage = asyncio.run(run(revise))
        print("proposal with one revise round" if revise else "proposal verified on the first round")
        for phase, requests in phases.items():
            print(f"  {phase:28} {requests:>3} GitHub requests")
        print(f"  {'total':28} {sum(phases.values()):>3} GitHub requests")
        for task, _, tokens, cost in usage:
            print(f"  LLM {task:24} {tokens:>7,} tokens  ${cost:.4f}")
        print(f"  {'LLM total':28} {sum(u[2] for u in usage):>7,} tokens  ${sum(u[3] for u in usage):.4f}\n")


if __name__ == "__main__":
    main()
