"""Push audits end to end: secrets (redacted everywhere), risk routing, outdated models, and the
shapes of pushes (new branch, forced, deleted, truncated). GitHub and the providers are mocked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import respx

from tests.component.harness import Harness
from tests.component.llm_mock import ANTHROPIC, OPENAI, anthropic_answer, openai_answer
from tests.fake_github import FakeGitHub
from tests.support import payload

REPO = "octo-org/widgets"
BEFORE, AFTER = "b" * 40, "a" * 40
TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
ANTHROPIC_KEY = "sk-ant-api03-" + "Ab1_Cd2-Ef3" * 9


def push(
    *, ref: str = "refs/heads/main", before: str = BEFORE, created: bool = False, forced: bool = False,
    deleted: bool = False, commits: int = 1,
) -> dict[str, Any]:  # fmt: skip
    data = payload("push", "with-new-branch.payload.json")
    data["installation"] = {"id": 4242, "node_id": "x"}
    data["repository"].update(full_name=REPO, name="widgets", default_branch="main", master_branch="main")
    template = data["commits"][0]
    data["commits"] = [{**template, "id": f"{i + 1:040x}", "message": f"change {i}"} for i in range(commits)]
    data.update(
        ref=ref, before=before, after="0" * 40 if deleted else AFTER, created=created, forced=forced,
        deleted=deleted,
    )  # fmt: skip
    return data


def added(path: str, *lines: str, status: str = "modified") -> dict[str, Any]:
    body = "\n".join(f"+{line}" for line in lines)
    patch = f"@@ -1,1 +1,{len(lines) + 1} @@\n context\n{body}"
    return {"filename": path, "status": status, "additions": len(lines), "deletions": 0, "patch": patch}


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, respx.MockRouter]]:
    repo = FakeGitHub()
    with respx.mock(assert_all_called=False) as router:
        repo.install(router)
        yield repo, router


def run(repo: FakeGitHub, name: str) -> dict[str, Any]:
    (found,) = [r for r in repo.check_runs if r["name"] == name]
    return found


AUDIT = {
    "findings": [
        {"severity": "high", "path": "app/auth/login.py", "start_line": 2, "end_line": 2,
         "title": "Token compared with ==", "explanation": "Timing attack.", "replacement": None,
         "confidence": 0.9}
    ],
    "verdict": "block",
    "confidence": 0.8,
}  # fmt: skip


async def test_a_clean_push_yields_a_successful_check(
    harness: Harness, github: tuple[FakeGitHub, Any]
) -> None:
    repo, _router = github
    repo.compares[f"{BEFORE}...{AFTER}"] = [added("app/util.py", "def f():", "    return 1")]
    await harness.deliver("push", push())
    assert "push_audit" in await harness.run_all()
    check = run(repo, "Autopack secrets")
    assert check["conclusion"] == "success"
    assert check["head_sha"] == AFTER
    assert "below the audit threshold 60" in check["output"]["summary"]
    assert [r["name"] for r in repo.check_runs] == ["Autopack secrets"]  # low risk: no audit, no models


async def test_secrets_fail_the_check_redacted_and_never_leave_the_process(
    harness: Harness, github: tuple[FakeGitHub, Any]
) -> None:
    repo, router = github
    router.post(ANTHROPIC).mock(return_value=anthropic_answer(AUDIT, "claude-opus-5-5"))
    router.post(OPENAI).mock(return_value=openai_answer(json.dumps(AUDIT), "gpt-6.2-astra"))
    repo.compares[f"{BEFORE}...{AFTER}"] = [
        added("app/auth/login.py", "import hmac", f'API_TOKEN = "{TOKEN}"', f"anthropic = '{ANTHROPIC_KEY}'"),
    ]
    await harness.deliver("push", push())
    await harness.run_all()
    check = run(repo, "Autopack secrets")
    assert check["conclusion"] == "failure"
    notes = check["output"]["annotations"]
    assert [(a["path"], a["start_line"], a["annotation_level"]) for a in notes] == [
        ("app/auth/login.py", 3, "failure"),
        ("app/auth/login.py", 4, "failure"),
    ]
    assert "ghp_… (40 characters)" in notes[0]["message"]
    assert "Rotate" in check["output"]["summary"]
    # auth code: the routed audit ran as a check run on the pushed commit
    audit_run = run(repo, "Autopack audit")
    assert audit_run["conclusion"] == "failure"
    assert audit_run["head_sha"] == AFTER
    # the redaction invariant: no request the bot sent carries either secret (GitHub or a model)
    sent = [call.request.content.decode(errors="replace") for call in router.calls]
    assert any("<<<DATA diff id=" in body for body in sent)  # the model did see the diff...
    for body in sent:
        assert TOKEN not in body  # ...with the secrets redacted
        assert ANTHROPIC_KEY not in body
    # ... nor any database row
    dump = await harness.inbox.db.run(
        lambda tx: [
            json.dumps(r, default=str)
            for t in ("jobs", "llm_usage")
            for r in tx.fetchall(f"SELECT * FROM {t}")  # noqa: S608 - two constant table names
        ]
    )
    assert not any(TOKEN in row or ANTHROPIC_KEY in row for row in dump)


async def test_low_risk_pushes_are_not_audited_and_the_threshold_routes(
    harness: Harness, github: tuple[FakeGitHub, Any]
) -> None:
    repo, router = github
    router.post(ANTHROPIC).mock(
        return_value=anthropic_answer({**AUDIT, "findings": [], "verdict": "comment"}, "m")
    )
    router.post(OPENAI).mock(return_value=openai_answer(json.dumps({**AUDIT, "findings": []}), "m"))
    repo.files[(REPO, ".github/autopack.yml")] = "push:\n  risk_threshold: 0\n  audit_categories: []\n"
    repo.compares[f"{BEFORE}...{AFTER}"] = [added("docs/guide.md", "A sentence.")]
    await harness.deliver("push", push())
    await harness.run_all()
    assert run(repo, "Autopack audit")["conclusion"] == "neutral"  # threshold 0: every push audited


async def test_auth_changes_are_audited_whatever_the_score(
    harness: Harness, github: tuple[FakeGitHub, Any]
) -> None:
    repo, router = github
    router.post(ANTHROPIC).mock(return_value=anthropic_answer(AUDIT, "claude-opus-5-5"))
    router.post(OPENAI).mock(return_value=openai_answer(json.dumps(AUDIT), "gpt-6.2-astra"))
    repo.compares[f"{BEFORE}...{AFTER}"] = [added("app/auth/session.py", "TTL = 60")]
    await harness.deliver("push", push())
    await harness.run_all()
    audit_run = run(repo, "Autopack audit")
    assert audit_run["output"]["annotations"][0]["path"] == "app/auth/login.py"
    llm_calls = [c for c in router.calls if c.request.url in (OPENAI, ANTHROPIC)]
    assert llm_calls  # routed to the auditor(s) of the security category


async def test_a_new_branch_compares_against_the_default_branch(
    harness: Harness, github: tuple[FakeGitHub, Any]
) -> None:
    repo, _router = github
    repo.files[(REPO, ".github/autopack.yml")] = "push:\n  branches: ['release/*']\n"
    repo.compares[f"main...{AFTER}"] = [added("app/util.py", "x = 1")]
    await harness.deliver("push", push(ref="refs/heads/release/2.0", before="0" * 40, created=True))
    await harness.run_all()
    assert run(repo, "Autopack secrets")["conclusion"] == "success"
    assert any(line.endswith(f"/compare/main...{AFTER}") for line in repo.log)


async def test_other_branches_are_not_audited(harness: Harness, github: tuple[FakeGitHub, Any]) -> None:
    repo, _router = github
    await harness.deliver("push", push(ref="refs/heads/feature/x"))
    await harness.run_all()
    assert repo.check_runs == []


async def test_a_forced_push_compares_from_the_merge_base(
    harness: Harness, github: tuple[FakeGitHub, Any]
) -> None:
    repo, _router = github
    repo.compares[f"{BEFORE}...{AFTER}"] = [added("app/util.py", f'token = "{TOKEN}"')]
    await harness.deliver("push", push(forced=True))
    await harness.run_all()
    assert run(repo, "Autopack secrets")["conclusion"] == "failure"
    assert any(f"/compare/{BEFORE}...{AFTER}" in line for line in repo.log)  # three dots: merge base


async def test_a_deleted_branch_is_skipped(harness: Harness, github: tuple[FakeGitHub, Any]) -> None:
    _repo, _router = github
    jobs = await harness.deliver("push", push(deleted=True))
    assert "push_audit" not in [j.flow for j in jobs]


async def test_a_truncated_comparison_is_read_commit_by_commit(
    harness: Harness, github: tuple[FakeGitHub, Any]
) -> None:
    repo, _router = github
    repo.compares[f"{BEFORE}...{AFTER}"] = [added(f"gen/file_{i}.py", "x = 1") for i in range(300)]
    repo.commit_file_lists[f"{1:040x}"] = [added("app/util.py", "x = 1")]
    repo.commit_file_lists[f"{2:040x}"] = [added("app/keys.py", f'KEY = "{TOKEN}"')]
    await harness.deliver("push", push(commits=2))
    await harness.run_all()
    check = run(repo, "Autopack secrets")
    assert check["conclusion"] == "failure"
    assert check["output"]["annotations"][0]["path"] == "app/keys.py"


async def test_truncation_beyond_what_can_be_read_is_stated(
    harness: Harness, github: tuple[FakeGitHub, Any]
) -> None:
    repo, _router = github
    repo.compares[f"{BEFORE}...{AFTER}"] = [added(f"gen/file_{i}.py", "x = 1") for i in range(300)]
    await harness.deliver("push", push(commits=25))
    await harness.run_all()
    summary = run(repo, "Autopack secrets")["output"]["summary"]
    assert "only the first 20 commits were scanned" in summary


async def test_outdated_model_names_are_flagged_with_their_replacement(
    harness: Harness, github: tuple[FakeGitHub, Any]
) -> None:
    repo, _router = github
    config = "complexity_models:\n  high: {builder: gpt-4-turbo-2024-04-09, auditor: claude-opus-5-5}\n"
    repo.files[(REPO, "config/models.yaml")] = config
    repo.compares[f"{BEFORE}...{AFTER}"] = [added("config/models.yaml", "x")]
    await harness.deliver("push", push())
    await harness.run_all()
    check = run(repo, "Autopack models")
    assert check["conclusion"] == "neutral"
    (note,) = check["output"]["annotations"]
    assert (note["path"], note["start_line"], note["annotation_level"]) == (
        "config/models.yaml",
        2,
        "warning",
    )
    assert "`gpt-4-turbo-2024-04-09` was shut down on 2026-10-23" in note["message"]
    assert "instead" in note["message"]


# ---- issue 18: every file scanned, the unscannable reported, the detector and the way out ------


async def test_a_secret_in_a_lock_file_or_bundle_fails_the_check_with_the_detector_and_the_way_out(
    harness: Harness, github: tuple[FakeGitHub, Any]
) -> None:
    repo, _router = github
    npm = "npm_" + "Zq4mWv9LtR2xHc7NpB3sKd8fGj1YhU6eTq0w"
    repo.compares[f"{BEFORE}...{AFTER}"] = [
        added("package-lock.json", f'"_authToken": "{npm}"'),
        added("dist/app.min.js", f'var k="{TOKEN}";'),
    ]
    await harness.deliver("push", push())
    await harness.run_all()
    check = run(repo, "Autopack secrets")
    assert check["conclusion"] == "failure"
    assert check["output"]["title"] == "2 secrets found"
    summary = check["output"]["summary"]
    assert "`package-lock.json:2`" in summary
    assert "`dist/app.min.js:2`" in summary
    assert "If a value is a test fixture, add `autopack:allow-secret`" in summary  # the wording stays
    assert (
        "`dist/app.min.js:2` GitHub token (ghp_… (40 characters)); detector: autopack; not a secret? "
        "add `autopack:allow-secret` on line 2, or `dist/app.min.js` to `push.secrets_allow_paths`"
    ) in summary
    assert "detector: " in summary.split("`package-lock.json:2`")[1].split("\n")[0]
    assert npm not in json.dumps(check)
    assert TOKEN not in json.dumps(check)
    messages = [a["message"] for a in check["output"]["annotations"]]
    assert all("autopack:allow-secret" in m and "found by" in m for m in messages)


async def test_a_file_too_large_to_scan_is_never_called_clean(
    harness: Harness, github: tuple[FakeGitHub, Any]
) -> None:
    repo, _router = github
    big = {"filename": "data/dump.sql", "status": "modified", "additions": 90_000, "deletions": 0}  # no patch
    repo.compares[f"{BEFORE}...{AFTER}"] = [added("app/util.py", "x = 1"), big]
    await harness.deliver("push", push())
    await harness.run_all()
    check = run(repo, "Autopack secrets")
    assert check["conclusion"] == "neutral"
    assert check["output"]["title"] == "no secrets found; 1 file not scanned"
    assert "**Not scanned** (1): `data/dump.sql`" in check["output"]["summary"]
