"""Loading `.github/autopack.yml` from GitHub: cache per head, `_extends`, check runs, the push flow."""

from __future__ import annotations

from typing import Any

import pytest
from githubkit.cache import MemCacheStrategy

from app.github.client import GitHubApp
from app.github.policy_loader import CHECK_NAME, INVALID_TITLE, PolicyLoader, report
from app.github.repo import RepoClient
from app.policy.repo_policy import DEFAULTS
from tests.component.harness import Harness
from tests.fake_github import API, FakeGitHub
from tests.support import payload, private_key_pem

REPO = f"{API}/repos/octo-org/widgets"


def clients() -> tuple[PolicyLoader, RepoClient]:
    app = GitHubApp(1, private_key_pem(), base_url=API, cache_strategy=MemCacheStrategy())
    return PolicyLoader(app), RepoClient(
        app.installation(9, "octo-org/widgets"), "octo-org/widgets", "autopack[bot]"
    )


async def test_no_file_means_defaults(fake_github: FakeGitHub) -> None:
    loader, repo = clients()
    loaded = await loader.load(repo, 9, "main")
    assert (loaded.policy, loaded.source, loaded.error) == (DEFAULTS, "defaults", None)


async def test_cached_per_head_commit(fake_github: FakeGitHub) -> None:
    fake_github.files[("octo-org/widgets", ".github/autopack.yml")] = "feedback: {label: fb}\n"
    loader, repo = clients()
    assert (await loader.load(repo, 9, "main")).policy.feedback.label == "fb"
    assert (await loader.load(repo, 9, "main")).policy.feedback.label == "fb"
    assert (
        fake_github.log.count("GET /repos/octo-org/widgets/contents/.github/autopack.yml") == 1
    )  # second: cache
    fake_github.head = "b" * 40
    fake_github.files[("octo-org/widgets", ".github/autopack.yml")] = "feedback: {label: changed}\n"
    assert (await loader.load(repo, 9, "main")).policy.feedback.label == "changed"  # new head, new read


async def test_invalid_file_reports_a_neutral_check_run_once_and_defaults_apply(
    fake_github: FakeGitHub,
) -> None:
    fake_github.files[("octo-org/widgets", ".github/autopack.yml")] = (
        "feedback:\n  label: fb\n  rate_limt: 3\n"
    )
    loader, repo = clients()
    loaded = await loader.load(repo, 9, "main")
    assert loaded.policy == DEFAULTS
    assert await report(repo, loaded)
    assert not await report(repo, loaded)  # once per commit
    (run,) = fake_github.check_runs
    assert (run["name"], run["conclusion"], run["head_sha"], run["status"]) == (
        CHECK_NAME,
        "neutral",
        fake_github.head,
        "completed",
    )
    assert run["output"]["title"] == INVALID_TITLE
    assert "line 3: feedback.rate_limt: unknown key" in run["output"]["summary"]
    assert run["output"]["annotations"] == [
        {
            "path": ".github/autopack.yml",
            "start_line": 3,
            "end_line": 3,
            "annotation_level": "failure",
            "message": "feedback.rate_limt: unknown key",
        }
    ]


async def test_extends_merges_the_owners_file_through_a_read_only_token(fake_github: FakeGitHub) -> None:
    fake_github.files[("octo-org/.github", ".github/autopack.yml")] = (
        "feedback: {label: org-feedback, rate_limit_per_day: 2}\nmerge: {method: merge}\n"
    )
    fake_github.files[("octo-org/widgets", ".github/autopack.yml")] = (
        "_extends: .github\nfeedback: {rate_limit_per_day: 9}\n"
    )
    loader, repo = clients()
    loaded = await loader.load(repo, 9, "main")
    assert loaded.error is None
    assert (
        loaded.policy.feedback.label,
        loaded.policy.feedback.rate_limit_per_day,
        loaded.policy.merge.method,
    ) == ("org-feedback", 9, "merge")
    assert loaded.source == ".github/autopack.yml extending octo-org/.github:.github/autopack.yml"
    assert {"repositories": [".github"], "permissions": {"contents": "read"}} in fake_github.token_requests


async def test_extends_other_repository_and_path(fake_github: FakeGitHub) -> None:
    fake_github.files[("shared-org/policies", "autopack/base.yml")] = "proposals: {auto: true}\n"
    fake_github.files[("octo-org/widgets", ".github/autopack.yml")] = (
        "_extends: shared-org/policies:autopack/base.yml\n"
    )
    loader, repo = clients()
    assert (await loader.load(repo, 9, "main")).policy.proposals.auto is True


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        (None, "octo-org/.github:.github/autopack.yml does not exist"),
        ("merge: {method: nope}\n", "merge.method"),
    ],
)
async def test_broken_extends_is_reported(fake_github: FakeGitHub, base: str | None, expected: str) -> None:
    if base is not None:
        fake_github.files[("octo-org/.github", ".github/autopack.yml")] = base
    fake_github.files[("octo-org/widgets", ".github/autopack.yml")] = "_extends: .github\n"
    loader, repo = clients()
    loaded = await loader.load(repo, 9, "main")
    assert loaded.policy == DEFAULTS
    assert loaded.error is not None
    assert expected in str(loaded.error)


def push_touching(path: str) -> dict[str, Any]:
    """GitHub's example push of a branch, moved to our default branch and touching `path`."""
    data = payload("push", "with-new-branch.payload.json")
    data["ref"] = "refs/heads/main"
    data["repository"].update(full_name="octo-org/widgets", name="widgets", default_branch="main")
    data["installation"] = {"id": 9, "node_id": "x"}
    for commit in [*data["commits"], data["head_commit"]]:
        commit.update(added=[], removed=[], modified=[path])
    return data


async def test_push_of_a_broken_file_gets_the_check_run(fake_github: FakeGitHub, harness: Harness) -> None:
    fake_github.files[("octo-org/widgets", ".github/autopack.yml")] = "merge:\n  method: yolo\n"
    other = await harness.deliver("push", push_touching("README.md"))
    assert [j.flow for j in other] == ["push_audit"]  # other files: no config check
    jobs = await harness.deliver("push", push_touching(".github/autopack.yml"))
    assert [j.flow for j in jobs] == ["config_check", "push_audit"]
    await harness.inbox.db.run(lambda tx: tx.execute("DELETE FROM jobs WHERE flow = 'push_audit'"))
    await harness.run_next()
    (run,) = fake_github.check_runs
    assert run["conclusion"] == "neutral"
    assert "line 2: merge.method" in run["output"]["summary"]


async def test_push_of_a_valid_file_gets_a_success_check_run(
    fake_github: FakeGitHub, harness: Harness
) -> None:
    fake_github.files[("octo-org/widgets", ".github/autopack.yml")] = "feedback: {label: fb}\n"
    await harness.deliver("push", push_touching(".github/autopack.yml"))
    await harness.inbox.db.run(lambda tx: tx.execute("DELETE FROM jobs WHERE flow = 'push_audit'"))
    await harness.run_next()
    (run,) = fake_github.check_runs
    assert (run["conclusion"], run["output"]["title"]) == ("success", ".github/autopack.yml is valid")
