"""Proposal decisions: eligibility, what CI says, the next step, context ranking, the PR body."""

from __future__ import annotations

from typing import Any

import pytest

from app.events import CheckRun, CommitStatus, Issue
from app.policy import context
from app.policy.context import Entry, detect_framework, identifiers, is_test, plan
from app.policy.proposal import (
    CheckResult,
    Proposal,
    Round,
    Usage,
    Verification,
    branch_for,
    checks_from,
    ci_outcome,
    commit_message,
    eligible,
    issue_comment,
    issue_of_branch,
    next_step,
    parse_propose_args,
    render_body,
    routing,
)

OPEN_ISSUE = {"number": 7, "state": "open"}


def make(**kw: Any) -> Proposal:
    return Proposal(repository="o/r", issue=7, installation_id=1, **kw)


# ---- eligibility -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issue", "triaged", "rejected", "existing", "force", "ok", "reason"),
    [
        (OPEN_ISSUE, True, None, None, False, True, "ok"),
        ({**OPEN_ISSUE, "pull_request": {}}, True, None, None, False, False, "not pull requests"),
        ({**OPEN_ISSUE, "state": "closed"}, True, None, None, False, False, "closed"),
        (OPEN_ISSUE, False, None, None, False, False, "not been triaged"),
        (
            OPEN_ISSUE,
            True,
            None,
            make(status="awaiting_test_ci", pr_number=12),
            True,
            False,
            "already open in #12",
        ),
        (OPEN_ISSUE, True, None, make(status="building"), True, False, "`/autopack retry` resumes it"),
        (OPEN_ISSUE, True, None, make(status="failed"), False, True, "ok"),
        (OPEN_ISSUE, True, None, make(status="closed"), False, True, "ok"),
        (OPEN_ISSUE, True, "too big", None, False, False, "rejected (too big)"),
        (OPEN_ISSUE, True, "", None, False, False, "--force"),
        (OPEN_ISSUE, True, "too big", None, True, True, "ok"),
    ],
)
def test_eligibility(
    issue: dict[str, Any],
    triaged: bool,
    rejected: str | None,
    existing: Proposal | None,
    force: bool,
    ok: bool,
    reason: str,
) -> None:
    verdict = eligible(
        issue=Issue.model_validate(issue), triaged=triaged, rejected=rejected, existing=existing, force=force
    )
    assert verdict.ok is ok
    assert reason in verdict.reason


def test_rejection_reasons_are_neutralised_in_the_refusal() -> None:
    verdict = eligible(
        issue=Issue.model_validate(OPEN_ISSUE),
        triaged=True,
        rejected="ask @admin at https://x.test",
        existing=None,
        force=False,
    )
    assert "@admin" not in verdict.reason
    assert "https://" not in verdict.reason


def test_propose_arguments() -> None:
    assert parse_propose_args("--force keep it small") == ("keep it small", True)
    assert parse_propose_args("keep --force it") == ("keep it", True)
    assert parse_propose_args("") == ("", False)


def test_branch_names_round_trip_and_nothing_else_matches() -> None:
    assert issue_of_branch(branch_for(42)) == 42
    for other in (
        "autopack/issue-",
        "autopack/issue-4x",
        "feature/autopack/issue-4",
        "autopack/issue-4/x",
        None,
    ):
        assert issue_of_branch(other) is None


# ---- CI ------------------------------------------------------------------------------------------


def run(name: str, status: str, conclusion: str | None, run_id: int = 1, app: int = 99) -> dict[str, Any]:
    return {"id": run_id, "name": name, "status": status, "conclusion": conclusion, "app": {"id": app}}


@pytest.mark.parametrize(
    ("runs", "statuses", "outcome"),
    [
        ([], [], "none"),
        ([run("tests", "completed", "success")], [], "passed"),
        ([run("tests", "completed", "failure")], [], "failed"),
        ([run("tests", "completed", "timed_out")], [], "failed"),
        ([run("tests", "in_progress", None)], [], "pending"),
        ([run("tests", "queued", None), run("lint", "completed", "failure", 2)], [], "failed"),
        ([run("tests", "completed", "cancelled")], [], "none"),
        ([run("tests", "completed", "skipped"), run("lint", "completed", "neutral", 2)], [], "passed"),
        ([run("Autopack audit", "completed", "failure", app=12345)], [], "none"),  # our own check
        ([], [{"context": "ci/jenkins", "state": "pending"}], "pending"),
        ([], [{"context": "ci/jenkins", "state": "error"}], "failed"),
        ([run("tests", "completed", "success")], [{"context": "ci", "state": "success"}], "passed"),
        # a re-run replaces the earlier result of the same check
        ([run("tests", "completed", "failure", 1), run("tests", "completed", "success", 2)], [], "passed"),
    ],
)
def test_ci_outcome(runs: list[dict[str, Any]], statuses: list[dict[str, Any]], outcome: str) -> None:
    typed = [CheckRun.model_validate(r) for r in runs], [CommitStatus.model_validate(s) for s in statuses]
    assert ci_outcome(checks_from(*typed, own_app_id=12345)) == outcome


WAITING_TEST = make(status="awaiting_test_ci", waiting_sha="t1")
WAITING_FIX = make(status="awaiting_fix_ci", waiting_sha="f1")


@pytest.mark.parametrize(
    ("proposal", "sha", "outcome", "trigger", "step"),
    [
        (WAITING_TEST, "t1", "failed", "event", "push_fix"),
        (WAITING_TEST, "t1", "passed", "event", "not_reproduced"),
        (WAITING_TEST, "t1", "pending", "event", "wait"),
        (WAITING_TEST, "t1", "none", "event", "wait"),
        (WAITING_TEST, "t1", "pending", "no_ci_check", "wait"),
        (WAITING_TEST, "t1", "none", "no_ci_check", "push_fix_unverified"),
        (WAITING_TEST, "t1", "pending", "deadline", "push_fix_unverified"),
        (WAITING_FIX, "f1", "passed", "event", "verified"),
        (WAITING_FIX, "f1", "failed", "event", "revise"),
        (make(status="awaiting_fix_ci", waiting_sha="f1", round=3), "f1", "failed", "event", "hand_over"),
        (WAITING_FIX, "f1", "none", "no_ci_check", "unverified"),
        (WAITING_FIX, "f1", "pending", "deadline", "unverified"),
        (WAITING_FIX, "t1", "failed", "event", "stale"),
        (make(status="ready", waiting_sha=None), "f1", "passed", "event", "stale"),
    ],
)
def test_next_step(proposal: Proposal, sha: str, outcome: str, trigger: Any, step: str) -> None:
    assert next_step(proposal, sha, outcome, trigger, max_rounds=3) == step


# ---- routing and context -----------------------------------------------------------------------


def test_routing_by_triage_and_files() -> None:
    assert routing({"category": "bug", "severity": "medium"}, ["app/save.py"]) == ("medium", "general")
    assert routing({"category": "feature_request", "severity": "low"}, ["app/x.py"])[0] == "high"
    assert routing({"category": "bug", "severity": "high"}, ["app/auth/login.py"]) == (
        "high",
        "security_auth_change",
    )
    assert routing({"category": "bug", "severity": "low"}, ["docs/guide.md"]) == ("low", "docs")


def test_context_plan_ranks_named_files_then_identifiers_then_the_area() -> None:
    entries = [
        Entry("app/storage/save.py", 500),
        Entry("app/storage/load.py", 500),
        Entry("app/project_loader.py", 500),
        Entry("tests/test_save.py", 300),
        Entry("tests/storage/test_load.py", 300),
        Entry("web/index.ts", 100),
        Entry("node_modules/x/save.py", 10),
        Entry("app/huge.py", 500_000),
        Entry("README.md", 100),
        Entry("CONTRIBUTING.md", 100),
        Entry("conftest.py", 0),
    ]
    result = plan(
        entries,
        title="Crash in save.py",
        body="`ProjectLoader` fails after saving; see app/storage/save.py:12",
        area_globs=["app/**"],
    )
    ordered = [(c.path, c.reason) for c in result.candidates]
    assert ordered[:3] == [
        ("app/storage/save.py", "named in the issue"),
        ("tests/test_save.py", "test of app/storage/save.py"),
        ("app/project_loader.py", "matches `ProjectLoader`"),
    ]
    assert ("app/storage/load.py", "in the affected area") in ordered
    assert ("tests/storage/test_load.py", "test of app/storage/load.py") in ordered
    assert all(not p.startswith(("node_modules", "web/")) for p, _ in ordered)
    assert result.too_large == ("app/huge.py",)
    assert result.conventions == ("CONTRIBUTING.md", "README.md")
    assert result.test_framework == "pytest"


def test_secrets_files_never_reach_the_builder_even_when_the_issue_names_them() -> None:
    entries = [
        Entry("app/settings.py", 400),
        Entry("app/.env", 100),
        Entry("config/credentials.yml", 100),
        Entry("deploy/secrets.json", 100),
        Entry("certs/server.pem", 100),
    ]
    result = plan(
        entries,
        title="Wrong value in app/.env and config/credentials.yml",
        body="see deploy/secrets.json, certs/server.pem and app/settings.py",
        area_globs=["**"],
    )
    assert [c.path for c in result.candidates] == ["app/settings.py"]


def test_context_helpers() -> None:
    assert identifiers("call `save_all(x)` then fooBar and FooBar, not foo") == [
        "save_all",
        "fooBar",
        "FooBar",
    ]
    assert is_test("src/foo.test.ts")
    assert is_test("pkg/foo_test.go")
    assert is_test("spec/x_spec.rb")
    assert not is_test("app/testing_utils_helper.py".replace("testing_", ""))
    assert context.tests_for("src/foo.ts", ["src/foo.test.ts", "src/bar.test.ts"]) == ["src/foo.test.ts"]
    assert (
        detect_framework({"package.json"}, {"package.json": '{"devDependencies": {"vitest": "1"}}'})
        == "vitest"
    )
    assert detect_framework({"go.mod", "a_test.go"}, {}) == "go test"
    assert detect_framework({"README.md"}, {}) == "unknown"


# ---- what people see ---------------------------------------------------------------------------


def test_body_is_rendered_from_the_record_with_model_text_neutralised() -> None:
    p = make(
        status="ready",
        pr_number=12,
        base_sha="b" * 40,
        test_sha="t" * 40,
        fix_sha="f" * 40,
        title="Retry",
        approach="Retry writes. <img src=x> Ping @maintainer, see https://evil.test",
        problem="Saving fails.",
        files={
            "tests/test_a.py": {"base": None, "current": "t", "part": "test", "mode": "100644"},
            "app/a.py": {"base": "x", "current": "y", "part": "fix", "mode": "100644"},
            "app/old.py": {"base": "x", "current": None, "part": "fix", "mode": "100644"},
        },
        verification=[
            Verification("test", "t" * 40, "failed", [CheckResult("tests", "failed", "https://ci/1")]),
            Verification("fix", "f" * 40, "passed", [CheckResult("tests", "passed", "javascript:alert(1)")]),
        ],
        flags=["new dependency in `requirements.txt`: left-pad"],
        risk_notes=["Check the retry bound."],
        usage=[Usage("gpt-6.2-sol", "builder", 1200, 0.0123)],
        context={"app/a.py": "named in the issue"},
        rounds=[Round(1, "proposal", "first"), Round(2, "ci", "NameError", "verified")],
    )
    body = render_body(p)
    assert "Closes #7" in body
    assert "✅ **Verified**" in body
    assert "- test: `tests/test_a.py`" in body
    assert "- fix: `app/old.py` (deleted)" in body
    assert "[tests](https://ci/1)" in body
    assert "javascript:" not in body
    assert "<img" not in body
    assert "@maintainer" not in body
    assert "evil.test" not in body
    assert "left-pad" in body
    assert "Check the retry bound." in body
    assert "## Rounds" in body
    assert "1,200 tokens, $0.0123" in body
    assert "app/a.py (named in the issue)" in body
    assert "ready for review" in issue_comment(p)
    assert "#12" in issue_comment(p)
    failed = make(status="failed", error="The builder said <b>@x</b>")
    assert "<b>" not in issue_comment(failed)
    assert "@x" not in issue_comment(failed)


def test_commit_messages_reference_the_issue() -> None:
    p = make(title="Retry writes\nwith @someone")
    assert commit_message(p, "test").startswith("Add a failing test for #7: Retry writes with @")
    assert "(#7)" in commit_message(p, "fix").splitlines()[0]
    assert "@someone" not in commit_message(p, "fix")


def test_record_round_trips_through_json() -> None:
    p = make(
        verification=[Verification("test", "t", "failed", [CheckResult("c", "failed")])],
        rounds=[Round(1, "x", "y")],
    )
    assert Proposal.from_json(p.to_json()) == p


def test_verification_shows_the_current_commits_only() -> None:
    p = make(
        status="awaiting_test_ci",
        test_sha="2" * 40,
        fix_sha="3" * 40,
        verification=[
            Verification("test", "0" * 40, "failed"),
            Verification("fix", "1" * 40, "failed"),  # round 1's fix, superseded
            Verification("test", "2" * 40, "pending"),
        ],
    )
    text = "\n".join(render_body(p).splitlines())
    assert "`2222222`: ⏳ waiting for CI" in text
    assert "1111111" not in text
    assert "0000000" not in text
