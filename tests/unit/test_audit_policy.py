"""Audit decisions as tables: diff parsing, categories, complexity, risk, consensus, placement."""

from __future__ import annotations

from typing import Any

import pytest

from app.policy.audit import (
    AuditAnswer,
    Finding,
    Floors,
    annotation_batches,
    categories,
    check_conclusion,
    comment_body,
    complexity,
    consensus,
    file_categories,
    fingerprint,
    keep,
    new_findings,
    place,
    primary_category,
    priority,
    risk,
    speaks,
    unasked_skip,
)
from app.policy.diff import FileDiff, fit, from_api, kind_of, parse_patch

PATCH = """@@ -1,3 +1,4 @@
 import os
-import sys
+import sys, json
+import re
 x = 1
@@ -10,2 +11,3 @@ def f():
-    return 1
+    return 2
+    # why
     # end
\\ No newline at end of file"""


def fd(path: str, additions: int = 5, deletions: int = 1, patch: str | None = PATCH, **kw: Any) -> FileDiff:
    (diff,) = from_api(
        [
            {
                "filename": path,
                "status": "modified",
                "additions": additions,
                "deletions": deletions,
                "patch": patch,
                **kw,
            }
        ]
    )
    return diff


def test_patch_lines_on_the_new_side() -> None:
    hunks = parse_patch(PATCH)
    assert [sorted(h.new_lines) for h in hunks] == [[1, 2, 3, 4], [11, 12, 13]]
    assert hunks[1].header.startswith("@@ -10,2 +11,3 @@")
    assert fd("app/x.py").commentable == frozenset({1, 2, 3, 4, 11, 12, 13})


@pytest.mark.parametrize(
    ("path", "patch", "kind"),
    [
        ("package-lock.json", "x", "lock"),
        ("sub/dir/poetry.lock", "x", "lock"),
        ("web/app.min.js", "x", "generated"),
        ("proto/api_pb2.py", "x", "generated"),
        ("img/logo.png", None, "binary"),
        ("data/huge.csv", None, "large"),
        ("app/main.py", "x", "code"),
    ],
)
def test_kinds(path: str, patch: str | None, kind: str) -> None:
    assert kind_of(path, patch) == kind


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("app/auth/login.py", ("security_auth_change",)),
        ("app/services/token_store.py", ("security_auth_change",)),
        (".github/workflows/ci.yml", ("security_auth_change",)),
        ("db/migrations/0004_users.py", ("schema_contract_change",)),
        ("api/openapi.yaml", ("schema_contract_change",)),
        ("requirements-dev.txt", ("external_feature_reuse",)),
        ("pyproject.toml", ("external_feature_reuse",)),
        ("vendor/lib/x.c", ("external_feature_reuse",)),
        ("tests/test_save.py", ("tests",)),
        ("src/save_test.go", ("tests",)),
        ("docs/guide.md", ("docs",)),
        ("README.md", ("docs",)),
        ("tests/README.md", ("tests",)),
        ("app/storage/save.py", ("general",)),
        ("tests/test_auth.py", ("security_auth_change", "tests")),
    ],
)
def test_file_categories(path: str, expected: tuple[str, ...]) -> None:
    assert file_categories(path) == expected


def test_policy_globs_extend_the_defaults() -> None:
    assert file_categories("app/billing/charge.py") == ("general",)
    assert file_categories("app/billing/charge.py", {"security_auth_change": ["app/billing/**"]}) == (
        "security_auth_change",
    )


def test_change_categories_and_routing_category() -> None:
    found = categories([fd("docs/a.md"), fd("app/x.py"), fd("app/auth/y.py"), fd("tests/test_x.py")])
    assert found == ("security_auth_change", "general", "tests", "docs")
    assert primary_category(found) == "security_auth_change"
    assert categories([fd("new/name.py", previous_filename="app/auth/old.py")])[0] == "security_auth_change"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ([fd("docs/a.md", 10, 2)], "low"),
        ([fd("app/x.py", 60, 10)], "low"),
        ([fd("app/x.py", 70, 20)], "medium"),
        ([fd(f"app/m{i}.py", 2, 0) for i in range(6)], "medium"),
        ([fd("requirements.txt", 1, 1)], "medium"),
        ([fd("app/x.py", 350, 60)], "high"),
        ([fd("app/auth/x.py", 1, 1)], "high"),
        ([fd("db/migrations/1.sql", 3, 0)], "high"),
        ([fd(f"app/m{i}.py", 1, 0) for i in range(21)], "high"),
    ],
)
def test_complexity(files: list[FileDiff], expected: str) -> None:
    assert complexity(files, categories(files)) == expected


def test_risk_score_is_deterministic_with_reasons() -> None:
    files = [
        fd("app/auth/session.py", 100, 20),
        fd(".github/workflows/ci.yml", 5, 1),
        fd("logo.png", patch=None),
    ]
    first = risk(files, categories(files))
    assert first == risk(files, categories(files))
    assert first.score == 35 + 10 + 5 + 1 + 5  # auth/CI, workflows, 126 lines, 3 files, a binary
    assert "+35 touches authentication, secrets or CI" in first.reasons
    assert "+5 1 binary, generated or unreviewable files" in first.reasons
    untested = risk([fd("app/x.py", 50, 0)], ("general",))
    assert "+10 code changes without test changes" in untested.reasons
    docs = [fd(f"docs/p{i}.md", 400, 0) for i in range(30)]
    assert risk(docs, categories(docs)).score == 10  # docs-only changes are capped
    big = [fd(f"app/auth/f{i}.py", 500, 500) for i in range(40)] + [fd("db/schema.sql"), fd("pyproject.toml")]
    assert risk(big, categories(big)).score == 100


def test_budget_order_puts_risky_files_first_and_docs_last() -> None:
    files = [fd("docs/a.md"), fd("app/x.py"), fd("app/auth/y.py"), fd("tests/test_x.py")]
    ordered = sorted(files, key=priority)
    assert [f.path for f in ordered] == ["app/auth/y.py", "app/x.py", "tests/test_x.py", "docs/a.md"]


def test_fit_keeps_whole_hunks_and_states_what_it_left() -> None:
    files = [fd("docs/a.md"), fd("app/auth/y.py"), fd("package-lock.json", 900, 10, patch="x")]
    count = len  # one token per character: easy to reason about
    full = fit(files, budget_tokens=10_000, count=count, priority=priority)
    assert full.omitted == ()
    assert full.included_hunks == 4
    assert full.text.index("app/auth/y.py") < full.text.index("docs/a.md")
    assert full.summarised == ("package-lock.json (modified, +900 −10, lock file: not shown)",)
    tight = fit(files, budget_tokens=len(full.summarised[0]) + 200, count=count, priority=priority)
    assert tight.included_hunks < 4
    assert "docs/a.md (2 of 2 hunks omitted)" in tight.omitted
    for hunk in parse_patch(PATCH):  # never half a hunk
        assert hunk.text in tight.text or hunk.header not in tight.text.split("+++ docs/a.md")[-1]


def finding(**kw: Any) -> Finding:
    base = {
        "severity": "high",
        "path": "app/x.py",
        "start_line": 2,
        "end_line": 3,
        "title": "SQL built from input",
        "explanation": "User text reaches the query.",
        "confidence": 0.9,
    }
    return Finding.model_validate({**base, **kw})


@pytest.mark.parametrize(
    ("primary", "secondary", "final", "disagree"),
    [
        ("approve", None, "approve", False),
        ("approve", "approve", "approve", False),
        ("approve", "comment", "comment", True),
        ("block", "approve", "block", True),
        ("comment", "block", "block", True),
    ],
)
def test_consensus_stricter_wins(primary: str, secondary: str | None, final: str, disagree: bool) -> None:
    verdict, note = consensus(primary, secondary)  # type: ignore[arg-type]
    assert verdict == final
    assert (note is not None) == disagree
    if note:
        assert f"the stricter verdict, {final}, stands" in note


def test_floors_drop_noise_and_sort_by_severity() -> None:
    findings = [
        finding(severity="low", title="a"),
        finding(severity="info", title="b"),
        finding(severity="critical", title="c"),
        finding(severity="high", title="d", confidence=0.2),
    ]
    kept = keep(findings, Floors(min_severity="low", min_confidence=0.5))
    assert [f.title for f in kept] == ["c", "a"]
    assert keep(findings, Floors(min_severity="high", min_confidence=0.0))[0].title == "c"


def test_line_comments_only_on_lines_the_diff_shows() -> None:
    files = [fd("app/x.py")]  # commentable: 1-4, 11-13
    on = finding(start_line=2, end_line=4)
    partly = finding(start_line=4, end_line=6, title="spans outside the hunk")
    other_file = finding(path="app/y.py", title="file not in the diff")
    reversed_range = finding(start_line=4, end_line=2, title="end before start")
    placed = place([on, partly, other_file, reversed_range], files, Floors())
    assert placed.line_comments == (on,)
    assert set(placed.in_summary) == {partly, other_file, reversed_range}
    capped = place([on, finding(start_line=11, end_line=11, title="t2")], files, Floors(max_line_comments=1))
    assert len(capped.line_comments) == 1
    assert len(capped.in_summary) == 1


def test_suggestion_only_for_small_replacements() -> None:
    assert "```suggestion\nquery(sql, params)\n```" in comment_body(finding(replacement="query(sql, params)"))
    assert "suggestion" not in comment_body(finding(start_line=1, end_line=20, replacement="x"))
    assert "suggestion" not in comment_body(finding())
    assert comment_body(finding(replacement="```\nx\n```")).count("````suggestion") == 1


def test_fingerprints_survive_moved_lines_and_skip_reported_findings() -> None:
    moved = finding(start_line=40, end_line=41, title="SQL  built from INPUT")
    assert fingerprint(finding()) == fingerprint(moved)
    assert fingerprint(finding()) != fingerprint(finding(path="app/z.py"))
    assert new_findings([finding(), finding(title="new one")], {fingerprint(finding())}) == [
        finding(title="new one")
    ]


def test_annotations_are_batched_by_fifty() -> None:
    batches = annotation_batches([finding(title=f"t{i}") for i in range(120)])
    assert [len(b) for b in batches] == [50, 50, 20]
    assert batches[0][0]["annotation_level"] == "failure"
    assert annotation_batches([]) == []


def test_verdict_to_check_conclusion_and_no_room_for_praise() -> None:
    assert [check_conclusion(v) for v in ("approve", "comment", "block")] == ["success", "neutral", "failure"]  # type: ignore[arg-type]
    assert set(AuditAnswer.model_fields) == {"findings", "verdict", "confidence"}


def test_model_words_in_review_comments_are_neutralised() -> None:
    body = comment_body(
        finding(
            title="Ping @octo-org/security now",
            explanation="See ![x](https://evil.example/a.png) and <script>alert(1)</script>\nSecond line.",
            replacement="x = '````'\n```\n# escaped?",
        )
    )
    assert "@octo-org" not in body
    assert "https://evil.example" not in body
    assert "<script>" not in body
    assert "\nSecond line." in body  # explanations keep their line breaks
    fence_line = next(line for line in body.splitlines() if line.endswith("suggestion"))
    assert fence_line == "`````suggestion"  # longer than any backtick run inside
    assert body.rstrip().endswith("`````")


@pytest.mark.parametrize(
    ("auto", "author", "author_type", "listed", "dependabot_flow", "skip"),
    [
        ("bot_prs", "autopack[bot]", "Bot", [], True, None),  # its own
        ("bot_prs", "renovate[bot]", "Bot", [], True, None),  # any GitHub App
        ("bot_prs", "some-app[bot]", "User", [], True, None),  # the login says it
        ("bot_prs", "ci-helper", "Bot", [], True, None),  # the account type says it
        ("bot_prs", "Copilot", "Bot", [], True, None),  # the Copilot coding agent
        ("bot_prs", "copilot", "User", [], True, None),
        ("bot_prs", "Agent-Smith", "User", ["agent-smith"], True, None),  # audit.bot_authors, any case
        ("bot_prs", "octocat", "User", ["agent-smith"], True, "human_author"),
        ("bot_prs", "octocat[bot]-fan", "User", [], True, "human_author"),  # [bot] must end the login
        ("bot_prs", "dependabot[bot]", "Bot", [], True, "dependabot_flow"),  # its risk summary instead
        ("bot_prs", "dependabot[bot]", "Bot", [], False, None),  # no dependency flow: audited as a bot
        ("all", "octocat", "User", [], True, None),
        ("all", "dependabot[bot]", "Bot", [], True, "dependabot_flow"),
        ("off", "renovate[bot]", "Bot", [], True, "policy"),
        ("off", "autopack[bot]", "Bot", [], True, "policy"),
    ],
)
def test_which_prs_are_audited_without_being_asked(
    auto: Any, author: str, author_type: str, listed: list[str], dependabot_flow: bool, skip: str | None
) -> None:
    assert (
        unasked_skip(
            auto,
            author=author,
            author_type=author_type,
            own_bot="autopack[bot]",
            bot_authors=listed,
            dependabot_flow=dependabot_flow,
        )
        == skip
    )


@pytest.mark.parametrize(
    ("verdict", "fresh", "review"),
    [
        ("approve", 0, False),  # fine: the check run alone
        ("comment", 0, False),  # nothing over the floors, or only what was said before
        ("approve", 1, True),
        ("comment", 2, True),
        ("block", 0, True),  # a block always explains itself
    ],
)
def test_a_review_only_when_there_is_something_new_to_say(verdict: str, fresh: int, review: bool) -> None:
    assert speaks(verdict, fresh=fresh) is review
