"""Dependabot authenticity (DESIGN §5.6), metadata parsing, the level and the policy decision."""

from __future__ import annotations

from typing import Any

import pytest

from app.policy.dependabot import (
    Dependency,
    RiskSummary,
    Update,
    authentic,
    decide,
    parse,
    render_comment,
    semver_level,
)
from app.policy.repo_policy import Dependabot

REPO = {"full_name": "o/r"}


def pr(**changes: Any) -> dict[str, Any]:
    base = {
        "user": {"login": "dependabot[bot]", "type": "Bot"},
        "head": {"ref": "dependabot/npm_and_yarn/lodash-4.17.21", "repo": REPO},
        "base": {"repo": REPO},
    }
    return {**base, **changes}


GOOD_COMMITS = [{"sha": "a" * 40, "author": {"login": "dependabot[bot]"}}]
GOOD_FILES = [{"filename": "package.json"}, {"filename": "package-lock.json"}]


@pytest.mark.parametrize(
    ("data", "commits", "files", "reason"),
    [
        (pr(user={"login": "dependabot-bot", "type": "Bot"}), GOOD_COMMITS, GOOD_FILES, "author"),
        (pr(user={"login": "dependabot[bot]", "type": "User"}), GOOD_COMMITS, GOOD_FILES, "author"),
        (
            pr(head={"ref": "dependabot/x", "repo": {"full_name": "fork/r"}}),
            GOOD_COMMITS,
            GOOD_FILES,
            "repository",
        ),
        (pr(head={"ref": "main", "repo": REPO}), GOOD_COMMITS, GOOD_FILES, "dependabot/"),
        (pr(), [], GOOD_FILES, "no commits"),
        (pr(), [*GOOD_COMMITS, {"sha": "b" * 40, "author": {"login": "mallory"}}], GOOD_FILES, "bbbbbbb"),
        (pr(), [{"sha": "c" * 40, "author": None}], GOOD_FILES, "ccccccc"),
        (pr(), GOOD_COMMITS, [{"filename": ".github/workflows/ci.yml"}], ".github/workflows/ci.yml"),
        (pr(), GOOD_COMMITS, [{"filename": "x", "previous_filename": ".github/dependabot.yml"}], ".github/"),
    ],
)
def test_anything_short_of_genuine_is_not_dependabot(
    data: dict[str, Any], commits: list[dict[str, Any]], files: list[dict[str, Any]], reason: str
) -> None:
    verdict = authentic(data, commits, files)
    assert not verdict.genuine
    assert reason in verdict.reason


def test_a_genuine_update() -> None:
    assert authentic(pr(), GOOD_COMMITS, GOOD_FILES).genuine


@pytest.mark.parametrize(
    ("old", "new", "level"),
    [
        ("1.2.3", "1.2.4", "patch"),
        ("1.2.3", "1.3.0", "minor"),
        ("1.2.3", "2.0.0", "major"),
        ("^1.2.3", "^1.4.0", "minor"),
        ("~> 2.0", "~> 3.0", "major"),
        ("v4", "v4.1", "minor"),
        ("0.27.0", "0.28.0", "major"),  # before 1.0 a minor bump may break
        ("0.0.3", "0.0.4", "major"),
        ("0.1.2", "0.1.3", "patch"),
        ("latest", "2.0", "unknown"),
        (None, "2.0", "unknown"),
    ],
)
def test_semver_level(old: str | None, new: str | None, level: str) -> None:
    assert semver_level(old, new) == level


def test_the_commit_block_comes_first() -> None:
    message = (
        "Bump lodash from 4.17.20 to 4.17.21\n\n---\nupdated-dependencies:\n"
        "- dependency-name: lodash\n  dependency-version: 4.17.21\n  dependency-type: direct:development\n"
        "  update-type: version-update:semver-minor\n...\n"
    )
    update = parse(
        "Bump lodash from 4.17.20 to 4.17.21 in /web", "", message, "dependabot/npm_and_yarn/web/lodash"
    )
    (dep,) = update.dependencies
    assert dep == Dependency("lodash", "4.17.20", "4.17.21", "minor", "development")  # the block's level wins
    assert update.ecosystem == "npm_and_yarn"
    assert update.directory == "/web"
    assert not update.security


def test_title_forms_groups_and_security() -> None:
    requirement = parse("Update rails requirement from ~> 6.1 to ~> 7.0", "", "", "dependabot/bundler/rails")
    assert requirement.dependencies == (Dependency("rails", "~> 6.1", "~> 7.0", "major"),)
    body = "Updates `requests` from 2.31.0 to 2.32.0\nUpdates `httpx` from 0.27.0 to 0.27.2\n"
    group = parse("Bump the py group with 2 updates", body, "", "dependabot/pip/py-abc")
    assert group.group == "py"
    assert [d.name for d in group.dependencies] == ["requests", "httpx"]
    assert group.level == "minor"
    security = parse(
        "[Security] Bump jinja2 from 3.1.2 to 3.1.3",
        "This update includes a security fix.",
        "",
        "dependabot/pip/x",
    )
    assert security.security
    assert security.level == "patch"
    assert parse("Bump x from 1.0 to 1.1", "This update includes security fixes.", "", "").security


def test_a_requirement_range_is_parsed_by_its_versions() -> None:
    update = parse("Update rails requirement from ~> 6.1 to ~> 7.0", "", "", "dependabot/bundler/rails")
    assert update.level == "major"  # never mistaken for a safe update


def dep(name: str = "lodash", level: str = "patch", kind: str = "production") -> Dependency:
    return Dependency(name, "1", "2", level, kind)  # type: ignore[arg-type]


def update(*deps: Dependency, security: bool = False) -> Update:
    return Update(deps, "npm_and_yarn", None, None, security)


@pytest.mark.parametrize(
    ("the_update", "rules", "auto", "rule", "summarise"),
    [
        (update(dep()), Dependabot(), True, "a patch update within", False),
        (update(dep(level="minor")), Dependabot(), True, "a minor update within", False),
        (update(dep(level="major")), Dependabot(), False, "major update is outside", True),
        (
            update(dep(level="major")),
            Dependabot(auto_merge_levels=["patch", "minor", "major"]),
            True,
            "major",
            False,
        ),
        (
            update(dep(level="minor")),
            Dependabot(auto_merge_levels=["patch"]),
            False,
            "minor update is outside",
            False,
        ),
        (update(dep(), dep("b", "major")), Dependabot(), False, "major update is outside", True),
        (update(dep("FastAPI")), Dependabot(critical=["fastapi"]), False, "`FastAPI` is listed", True),
        (update(dep(level="unknown")), Dependabot(), False, "do not show the update's level", True),
        (update(), Dependabot(), False, "could not be parsed", False),
        (
            update(dep(kind="development")),
            Dependabot(dependency_types=["production"]),
            False,
            "development",
            False,
        ),
        (update(dep(), security=True), Dependabot(), True, "a patch update within", True),
    ],
)
def test_policy_decisions(
    the_update: Update, rules: Dependabot, auto: bool, rule: str, summarise: bool
) -> None:
    decision = decide(the_update, rules)
    assert decision.auto_merge is auto
    assert rule in decision.rule
    assert decision.summarise is summarise
    assert ("autopack:needs-review" in decision.labels) is (not auto and bool(the_update.dependencies))
    assert ("security" in decision.labels) is the_update.security


def test_comment_neutralises_the_models_words_and_names_the_rule() -> None:
    summary = RiskSummary.model_validate(
        {
            "summary": "Merge it @all https://x.test <b>now</b>",
            "breaking_changes": [{"change": "renamed", "affects_this_repository": "unknown", "where": ""}],
            "migration_steps": [],
            "security_fixes": ["CVE-2026-1"],
            "recommendation": "merge",
        }
    )
    the_update = update(dep(level="major"))
    text = render_comment(the_update, decide(the_update, Dependabot()), "waiting for a human", summary, "m")
    assert "@all" not in text
    assert "https://x.test" not in text
    assert "<b>" not in text
    assert "rule: a major update is outside" in text
    assert "advice, not the decision" in text
    assert "CVE-2026-1" in text
