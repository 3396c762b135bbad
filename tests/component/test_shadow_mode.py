"""Shadow mode, flow by flow: with `mode: shadow` a flow runs to its decision (models called) and
records what it would have written, and GitHub receives no write at all; the same scenario with
`mode: act` writes (the positive control); `mode: off` runs nothing.

Writes are caught where they would leave: every request the fake GitHub receives is classified
as a read or a write by the same rule as the transport (GraphQL mutations are writes).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
from click.testing import CliRunner

from app.cli import main
from app.github.client import _is_read
from app.inbox.proposals import Proposals
from app.inbox.shadow import ShadowDecisions
from tests.component.harness import Harness
from tests.component.llm_mock import ANTHROPIC, OPENAI, anthropic_answer, openai_answer
from tests.component.scenarios import (
    REPO,
    Builder,
    change_set,
    dependabot_commit,
    dependabot_pr,
    issue_event,
    pr_event,
    proposal_repo,
    propose_comment,
    setup_dependabot,
    start,
    triage_answer,
    triaged,
)
from tests.fake_github import FakeGitHub
from tests.support import payload

TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
FINDING = {
    "severity": "high",
    "path": "app/storage/save.py",
    "start_line": 12,
    "end_line": 12,
    "title": "SQL built by string concatenation",
    "explanation": "An injection.",
    "confidence": 0.9,
}


class Watched:
    """The fake GitHub, with every write it received (method and path)."""

    def __init__(self, repo: FakeGitHub) -> None:
        self.repo = repo
        self.writes: list[str] = []
        answer = repo.handle

        def handle(request: httpx.Request) -> httpx.Response:
            if not _is_read(request):
                self.writes.append(f"{request.method} {request.url.path}")
            return answer(request)

        repo.handle = handle  # type: ignore[method-assign]


async def triage(harness: Harness, repo: FakeGitHub, router: respx.MockRouter) -> None:
    router.post(OPENAI).mock(return_value=openai_answer(triage_answer(), "gpt-6-luna"))
    await harness.deliver("issues", issue_event())
    assert await harness.run_all() == ["triage"]


async def audit(harness: Harness, repo: FakeGitHub, router: respx.MockRouter) -> None:
    repo.pulls[21] = pr_event()["pull_request"]
    patch = "@@ -10,2 +10,3 @@\n rows = 1\n+query = 'x' + rows\n return rows"
    changed = {"filename": "app/storage/save.py", "status": "modified", "additions": 1, "deletions": 0}
    repo.pull_files[21] = [{**changed, "patch": patch}]
    answer = {"findings": [FINDING], "verdict": "comment", "confidence": 0.8}
    router.post(ANTHROPIC).mock(return_value=anthropic_answer(answer, "claude-haiku-5-5"))
    router.post(OPENAI).mock(return_value=openai_answer(json.dumps(answer), "gpt-6.2-astra"))
    await harness.deliver("pull_request", pr_event())
    assert "audit" in await harness.run_all()


async def dependabot(harness: Harness, repo: FakeGitHub, router: respx.MockRouter) -> None:
    repo.auto_merge_allowed = False
    event = dependabot_pr()
    setup_dependabot(repo, event, commits=[dependabot_commit()])
    repo.ci.setdefault(event["pull_request"]["head"]["sha"], []).append(
        {"id": 900, "name": "tests", "status": "completed", "conclusion": "success", "app": {"id": 15368}}
    )
    await harness.deliver("pull_request", event)
    assert "dependencies" in await harness.run_all()


async def proposals(harness: Harness, repo: FakeGitHub, router: respx.MockRouter) -> None:
    """A proposal started without a command (as triage starts one under `proposals.auto`): the
    command flow's own reply and reactions are not the proposal flow's writes."""
    repo.files.update(proposal_repo().files)
    Builder(router, change_set())
    await triaged(harness)
    issue = propose_comment()["issue"]
    args = {k: issue[k] for k in ("number", "title", "body", "state", "user")}
    await harness.inbox.enqueue(
        "propose", f"{REPO}#7", args={"installation_id": 4242, "repository": REPO, "issue": args}
    )
    assert await harness.run_all() == ["propose"]


async def push(harness: Harness, repo: FakeGitHub, router: respx.MockRouter) -> None:
    before, after = "b" * 40, "a" * 40
    patch = f'@@ -1,1 +1,2 @@\n context\n+TOKEN = "{TOKEN}"'
    repo.compares[f"{before}...{after}"] = [
        {"filename": "app/settings.py", "status": "modified", "additions": 1, "deletions": 0, "patch": patch}
    ]
    data = payload("push", "with-new-branch.payload.json")
    data["installation"] = {"id": 4242, "node_id": "x"}
    data["repository"].update(full_name=REPO, name="widgets", default_branch="main", master_branch="main")
    data["commits"] = [{**data["commits"][0], "id": "1" * 40, "message": "settings"}]
    data.update(ref="refs/heads/main", before=before, after=after, created=False, forced=False, deleted=False)
    await harness.deliver("push", data)
    assert "push_audit" in await harness.run_all()


Scenario = Callable[[Harness, FakeGitHub, respx.MockRouter], Awaitable[None]]
SCENARIOS: dict[str, tuple[Scenario, str, str]] = {
    # section: (scenario, flow recorded, a write every act run makes, as the record describes it)
    "feedback": (triage, "triage", "label #7: type:bug"),
    "audit": (audit, "audit", "review #21: COMMENT with 1 line comment"),
    "dependabot": (dependabot, "dependencies", "merge #40 (squash) at ddddddd"),
    "proposals": (proposals, "propose", "comment #7:"),
    "push": (push, "push_audit", "check run Autopack secrets: failure"),
}


@pytest.fixture
def github() -> Iterator[tuple[Watched, respx.MockRouter]]:
    repo = FakeGitHub(permissions={"maintainer": "write", "reporter": "read"})
    watched = Watched(repo)
    with respx.mock(assert_all_called=False) as router:
        repo.install(router)
        yield watched, router


def described(writes: list[tuple[str, str, Any]]) -> list[str]:
    from app.policy.shadow import describe

    return [describe(w) for w in writes]


@pytest.mark.parametrize("section", sorted(SCENARIOS))
async def test_in_shadow_a_flow_decides_records_and_writes_nothing(
    harness: Harness, github: tuple[Watched, respx.MockRouter], section: str
) -> None:
    watched, router = github
    scenario, flow, telling = SCENARIOS[section]
    watched.repo.files[(REPO, ".github/autopack.yml")] = f"{section}:\n  mode: shadow\n"
    await scenario(harness, watched.repo, router)
    assert watched.writes == []
    if section in ("feedback", "audit", "proposals"):  # these decide with a model: it was asked
        assert any(c.request.url in (OPENAI, ANTHROPIC) for c in router.calls)
    decisions = await ShadowDecisions(harness.inbox.db).since(0)
    assert flow in {d.flow for d in decisions}
    lines = [line for d in decisions if d.flow == flow for line in described(d.writes)]
    assert any(line.startswith(telling) for line in lines), lines


@pytest.mark.parametrize("section", sorted(SCENARIOS))
async def test_in_act_the_same_scenario_writes_and_records_nothing(
    harness: Harness, github: tuple[Watched, respx.MockRouter], section: str
) -> None:
    watched, router = github
    scenario, _flow, _telling = SCENARIOS[section]
    await scenario(harness, watched.repo, router)
    assert watched.writes != []
    assert await ShadowDecisions(harness.inbox.db).since(0) == []


async def test_off_runs_nothing_and_one_line_moves_shadow_to_act(
    harness: Harness, github: tuple[Watched, respx.MockRouter]
) -> None:
    watched, router = github
    policy = (REPO, ".github/autopack.yml")
    watched.repo.files[policy] = "feedback:\n  mode: off\n"
    await triage(harness, watched.repo, router)
    assert watched.writes == []
    assert not any(c.request.url == OPENAI for c in router.calls)

    watched.repo.files[policy] = "feedback:\n  mode: act\n"
    watched.repo.head = "e" * 40  # the policy is read at the default branch's new head
    await harness.deliver("issues", issue_event(number=8))
    await harness.run_all()
    assert "POST /repos/octo-org/widgets/issues/8/comments" in watched.writes


async def test_autopack_shadow_lists_the_decisions(
    harness: Harness, github: tuple[Watched, respx.MockRouter], app_env: dict[str, str]
) -> None:
    watched, router = github
    watched.repo.files[(REPO, ".github/autopack.yml")] = "feedback:\n  mode: shadow\n"
    await triage(harness, watched.repo, router)
    env = {**app_env, "DATABASE_URL": harness.settings.database_url, "LOG_LEVEL": "warning"}

    def cli(*args: str) -> Any:  # the CLI runs its own event loop: off this test's
        return asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)

    result = await cli("shadow", "--repo", REPO, "--full")
    assert result.exit_code == 0, result.output
    assert f"{REPO}#7" in result.output
    assert "label #7: type:bug, severity:high, area:app, autopack:triaged" in result.output
    assert "comment #7: **Autopack triage:** bug" in result.output
    assert "triage: 4 create label, 1 label, 1 comment" in result.output
    other = await cli("shadow", "--repo", "octo-org/other")
    assert "No shadow decisions since 7d ago in octo-org/other." in other.output
    as_json = await cli("shadow", "--format", "json")
    (row,) = [json.loads(line) for line in as_json.output.splitlines()]
    assert row["flow"] == "triage"
    assert {w["method"] for w in row["writes"]} == {"POST"}


async def test_a_command_for_a_flow_in_shadow_says_so_and_the_flow_writes_nothing(
    harness: Harness, github: tuple[Watched, respx.MockRouter]
) -> None:
    watched, router = github
    watched.repo.files.update(proposal_repo().files)
    watched.repo.files[(REPO, ".github/autopack.yml")] = "proposals:\n  mode: shadow\n"
    Builder(router, change_set())
    await start(harness)
    (reply,) = watched.repo.bot_comments()
    assert "`proposals` runs in shadow mode here" in reply["body"]
    command_writes = {
        "POST /repos/octo-org/widgets/issues/comments/9001/reactions",
        "POST /repos/octo-org/widgets/issues/7/comments",
    }
    assert set(watched.writes) == command_writes  # 👀, the reply, 👍: the proposal wrote nothing
    (decision,) = await ShadowDecisions(harness.inbox.db).since(0)
    assert decision.flow == "propose"
    p = await Proposals(harness.inbox.db).get(REPO, 7)
    assert p is not None
    assert p.status == "shadow"  # ended: moving to act can propose afresh
