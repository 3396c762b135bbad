"""`policy.github_cache`: which reads are conditional, which are immutable, which are never cached."""

from __future__ import annotations

import pytest

from app.policy import github_cache

R = "/repos/octo-org/widgets"


@pytest.mark.parametrize(
    ("method", "path", "fresh", "rule", "immutable"),
    [
        ("GET", f"{R}/contents/.github/autopack.yml", False, "policy file", False),
        ("GET", f"/api/v3{R}/contents/.github/autopack.yaml", False, "policy file", False),
        ("GET", f"{R}/contents/", False, "root folder listing", False),
        ("GET", f"{R}/contents", False, "root folder listing", False),
        ("GET", f"{R}/contents/app/settings.py", False, None, False),  # files may hold credentials
        ("GET", f"{R}/contents/.github/workflows/ci.yml", False, None, False),
        ("GET", f"{R}/labels", False, "labels", False),
        ("GET", f"{R}/issues", False, "issues listing", False),
        ("GET", f"{R}/commits/main", False, "branch head", False),
        ("GET", f"{R}/collaborators/ann/permission", False, "collaborator permission", False),
        ("GET", f"{R}/collaborators/ann/permission", True, None, False),  # the gate: always fresh
        ("GET", f"{R}/git/trees/{'a' * 40}", False, "tree at a commit", True),
        ("GET", f"{R}/git/trees/main", False, None, False),  # a branch name moves
        ("POST", f"{R}/labels", False, None, False),
        ("GET", f"{R}/pulls/3", False, None, False),
        ("GET", f"{R}/pulls/3/reviews", False, None, False),
        ("GET", f"{R}/commits/{'a' * 40}/check-runs", False, None, False),
    ],
)
def test_rules(method: str, path: str, fresh: bool, rule: str | None, immutable: bool) -> None:
    found = github_cache.rule_for(method, path, fresh=fresh)
    assert (found.name if found else None) == rule
    assert (found.immutable if found else False) is immutable


def test_keys_tell_representations_and_queries_apart() -> None:
    base = github_cache.key(f"{R}/commits/main", "", "application/vnd.github.sha")
    assert base != github_cache.key(f"{R}/commits/main", "", "application/json")
    assert github_cache.key(f"{R}/issues", "labels=a", "") != github_cache.key(f"{R}/issues", "labels=b", "")
