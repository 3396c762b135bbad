"""Dependabot authenticity (DESIGN §5.6), metadata parsing, the level and the policy decision."""

from __future__ import annotations

from typing import Any

import pytest

from app.events import Commit, PullRequest
from app.policy.dependabot import (
    Authenticity,
    Dependency,
    RiskSummary,
    Update,
    authentic,
    decide,
    level_of,
    parse,
    render_comment,
    semver_level,
)
from app.policy.diff import from_api
from app.policy.repo_policy import Dependabot

REPO = {"full_name": "o/r"}


def pr(**changes: Any) -> dict[str, Any]:
    base = {
        "number": 7,
        "state": "open",
        "user": {"login": "dependabot[bot]", "type": "Bot"},
        "head": {"ref": "dependabot/npm_and_yarn/lodash-4.17.21", "sha": "a" * 40, "repo": REPO},
        "base": {"ref": "main", "sha": "0" * 40, "repo": REPO},
    }
    return {**base, **changes}


def judge(data: dict[str, Any], commits: list[dict[str, Any]], files: list[dict[str, Any]]) -> Authenticity:
    """`authentic` on the typed objects the pulls API's answers become."""
    return authentic(
        PullRequest.model_validate(data), [Commit.model_validate(c) for c in commits], from_api(files)
    )


def commit(sha: str = "a" * 40, **changes: Any) -> dict[str, Any]:
    """A commit as GitHub lists Dependabot's: authored by dependabot[bot], committed and signed by
    GitHub (web-flow), verified."""
    base = {
        "sha": sha,
        "author": {"login": "dependabot[bot]"},
        "committer": {"login": "web-flow"},
        "commit": {"verification": {"verified": True, "reason": "valid"}},
    }
    return {**base, **changes}


GOOD_COMMITS = [commit()]
GOOD_FILES = [{"filename": "package.json"}, {"filename": "package-lock.json"}]


@pytest.mark.parametrize(
    ("data", "commits", "files", "reason"),
    [
        (pr(user={"login": "dependabot-bot", "type": "Bot"}), GOOD_COMMITS, GOOD_FILES, "author"),
        (pr(user={"login": "dependabot[bot]", "type": "User"}), GOOD_COMMITS, GOOD_FILES, "author"),
        (
            pr(head={"ref": "dependabot/x", "sha": "a" * 40, "repo": {"full_name": "fork/r"}}),
            GOOD_COMMITS,
            GOOD_FILES,
            "repository",
        ),
        (pr(head={"ref": "main", "sha": "a" * 40, "repo": REPO}), GOOD_COMMITS, GOOD_FILES, "dependabot/"),
        (pr(), [], GOOD_FILES, "no commits"),
        (pr(), [*GOOD_COMMITS, {"sha": "b" * 40, "author": {"login": "mallory"}}], GOOD_FILES, "bbbbbbb"),
        (pr(), [{"sha": "c" * 40, "author": None}], GOOD_FILES, "ccccccc"),
        # An author e-mail anyone can set: GitHub shows the login, but did not commit or sign it.
        (pr(), [commit("d" * 40, committer={"login": "mallory"})], GOOD_FILES, "not committed by GitHub"),
        (
            pr(),
            [commit("e" * 40, commit={"verification": {"verified": False, "reason": "unsigned"}})],
            GOOD_FILES,
            "signature GitHub verified",
        ),
        (pr(), [commit("f" * 40, commit={})], GOOD_FILES, "signature GitHub verified"),
        (
            pr(),
            [commit("e" * 40, commit={"verification": {"verified": "true"}})],  # a string is not true
            GOOD_FILES,
            "signature GitHub verified",
        ),
        (pr(), [*GOOD_COMMITS, commit("9" * 40, committer=None)], GOOD_FILES, "9999999"),
        (pr(), GOOD_COMMITS, [{"filename": ".github/workflows/ci.yml"}], ".github/workflows/ci.yml"),
        (pr(), GOOD_COMMITS, [{"filename": "x", "previous_filename": ".github/dependabot.yml"}], ".github/"),
    ],
)
def test_anything_short_of_genuine_is_not_dependabot(
    data: dict[str, Any], commits: list[dict[str, Any]], files: list[dict[str, Any]], reason: str
) -> None:
    verdict = judge(data, commits, files)
    assert not verdict.genuine
    assert reason in verdict.reason


def test_a_genuine_update() -> None:
    assert judge(pr(), GOOD_COMMITS, GOOD_FILES).genuine


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


@pytest.mark.parametrize(
    ("metadata", "old", "new", "level"),
    [
        ("minor", "0.3.1", "0.4.0", "major"),  # Dependabot says minor; below 1.0 it may break
        ("patch", "0.0.3", "0.0.4", "major"),
        ("patch", "0.3.1", "0.3.2", "patch"),
        ("minor", None, "0.4.0", "major"),  # the old version unknown: the new one alone says 0.y
        ("patch", None, "0.0.9", "major"),
        ("patch", None, "0.4.2", "patch"),
        ("minor", "1.2.0", "1.3.0", "minor"),
        ("minor", "0.9.0", "1.0.0", "major"),
        (None, "0.27.0", "0.28.0", "major"),
    ],
)
def test_below_one_the_versions_decide_whatever_the_metadata_says(
    metadata: str | None, old: str | None, new: str, level: str
) -> None:
    assert level_of(metadata, old, new) == level  # type: ignore[arg-type]


def test_a_zero_major_update_with_minor_metadata_is_not_auto_merged() -> None:
    message = (
        "Bump httpx from 0.27.0 to 0.28.0\n\n---\nupdated-dependencies:\n"
        "- dependency-name: httpx\n  dependency-version: 0.28.0\n  dependency-type: direct:production\n"
        "  update-type: version-update:semver-minor\n...\n"
    )
    update = parse("Bump httpx from 0.27.0 to 0.28.0", "", message, "dependabot/pip/httpx")
    assert update.level == "major"
    assert not decide(update, Dependabot()).auto_merge
    grouped = parse(
        "Bump the py group with 2 updates",
        "Updates `requests` from 2.31.0 to 2.31.1\nUpdates `httpx` from 0.27.0 to 0.28.0\n",
        "",
        "dependabot/pip/py",
    )
    assert grouped.level == "major"  # a group takes its highest level


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
