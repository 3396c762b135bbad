"""Loading `.github/autopack.yml` from GitHub: cache per head, `_extends`, check runs, the push flow."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from githubkit.cache import MemCacheStrategy

from app.github.client import GitHubApp
from app.github.policy_loader import CHECK_NAME, INVALID_TITLE, PolicyLoader, report
from app.github.repo import RepoClient
from app.policy.repo_policy import DEFAULTS
from tests.component.github_mock import API, TOKEN
from tests.component.harness import Harness
from tests.support import payload, private_key_pem

REPO = f"{API}/repos/octo-org/widgets"


class FakeRepoFiles:
    """Files per (repo, ref) and the check runs created, over respx."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.heads = {"octo-org/widgets": "a" * 40}
        self.files: dict[tuple[str, str], str] = {}
        self.check_runs: list[dict[str, Any]] = []
        self.token_requests: list[dict[str, Any]] = []
        self.requests: list[str] = []
        router.post(url__regex=rf"{API}/app/installations/\d+/access_tokens").mock(side_effect=self._token)
        router.get(f"{API}/app").respond(200, json={"slug": "autopack"})
        router.get(url__regex=rf"{API}/repos/(?P<repo>[^/]+/[^/]+)/commits/(?P<ref>[^/]+)$").mock(
            side_effect=self._head
        )
        router.get(url__regex=rf"{API}/repos/(?P<repo>[^/]+/[^/]+)/contents/(?P<path>[^?]+)").mock(
            side_effect=self._file
        )
        router.get(url__regex=rf"{API}/repos/(?P<repo>[^/]+/[^/]+)/commits/(?P<sha>\w+)/check-runs").mock(
            side_effect=self._list_runs
        )
        router.post(url__regex=rf"{API}/repos/(?P<repo>[^/]+/[^/]+)/check-runs").mock(
            side_effect=self._create_run
        )

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests.append(json.loads(request.content or b"{}"))
        return httpx.Response(201, json={"token": TOKEN, "expires_at": "2099-01-01T00:00:00Z"})

    def _head(self, request: httpx.Request, repo: str, ref: str) -> httpx.Response:
        self.requests.append(f"head {repo}")
        assert request.headers["accept"] == "application/vnd.github.sha"
        return httpx.Response(200, text=self.heads[repo])

    def _file(self, request: httpx.Request, repo: str, path: str) -> httpx.Response:
        ref = request.url.params.get("ref", "")
        self.requests.append(f"file {repo}:{path}@{ref[:7]}")
        text = self.files.get((repo, path))
        if text is None:
            return httpx.Response(404, json={"message": "Not Found"})
        return httpx.Response(
            200,
            json={
                "type": "file",
                "encoding": "base64",
                "path": path,
                "content": base64.b64encode(text.encode()).decode(),
            },
        )

    def _list_runs(self, request: httpx.Request, repo: str, sha: str) -> httpx.Response:
        runs = [
            r
            for r in self.check_runs
            if r["head_sha"] == sha and r["name"] == request.url.params.get("check_name")
        ]
        return httpx.Response(200, json={"total_count": len(runs), "check_runs": runs})

    def _create_run(self, request: httpx.Request, repo: str) -> httpx.Response:
        run = json.loads(request.content)
        self.check_runs.append(run)
        return httpx.Response(201, json={"id": len(self.check_runs), **run})


@pytest.fixture
def files() -> Iterator[FakeRepoFiles]:
    with respx.mock(assert_all_called=False) as router:
        yield FakeRepoFiles(router)


def clients() -> tuple[PolicyLoader, RepoClient]:
    app = GitHubApp(1, private_key_pem(), base_url=API, cache_strategy=MemCacheStrategy())
    return PolicyLoader(app), RepoClient(
        app.installation(9, "octo-org/widgets"), "octo-org/widgets", "autopack[bot]"
    )


async def test_no_file_means_defaults(files: FakeRepoFiles) -> None:
    loader, repo = clients()
    loaded = await loader.load(repo, 9, "main")
    assert (loaded.policy, loaded.source, loaded.error) == (DEFAULTS, "defaults", None)


async def test_cached_per_head_commit(files: FakeRepoFiles) -> None:
    files.files[("octo-org/widgets", ".github/autopack.yml")] = "feedback: {label: fb}\n"
    loader, repo = clients()
    assert (await loader.load(repo, 9, "main")).policy.feedback.label == "fb"
    assert (await loader.load(repo, 9, "main")).policy.feedback.label == "fb"
    assert files.requests.count("file octo-org/widgets:.github/autopack.yml@aaaaaaa") == 1  # second: cache
    files.heads["octo-org/widgets"] = "b" * 40
    files.files[("octo-org/widgets", ".github/autopack.yml")] = "feedback: {label: changed}\n"
    assert (await loader.load(repo, 9, "main")).policy.feedback.label == "changed"  # new head, new read


async def test_invalid_file_reports_a_neutral_check_run_once_and_defaults_apply(files: FakeRepoFiles) -> None:
    files.files[("octo-org/widgets", ".github/autopack.yml")] = "feedback:\n  label: fb\n  rate_limt: 3\n"
    loader, repo = clients()
    loaded = await loader.load(repo, 9, "main")
    assert loaded.policy == DEFAULTS
    assert await report(repo, loaded)
    assert not await report(repo, loaded)  # once per commit
    (run,) = files.check_runs
    assert (run["name"], run["conclusion"], run["head_sha"], run["status"]) == (
        CHECK_NAME,
        "neutral",
        "a" * 40,
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


async def test_extends_merges_the_owners_file_through_a_read_only_token(files: FakeRepoFiles) -> None:
    files.files[("octo-org/.github", ".github/autopack.yml")] = (
        "feedback: {label: org-feedback, rate_limit_per_day: 2}\nmerge: {method: merge}\n"
    )
    files.files[("octo-org/widgets", ".github/autopack.yml")] = (
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
    assert {"repositories": [".github"], "permissions": {"contents": "read"}} in files.token_requests


async def test_extends_other_repository_and_path(files: FakeRepoFiles) -> None:
    files.files[("shared-org/policies", "autopack/base.yml")] = "proposals: {auto: true}\n"
    files.files[("octo-org/widgets", ".github/autopack.yml")] = (
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
async def test_broken_extends_is_reported(files: FakeRepoFiles, base: str | None, expected: str) -> None:
    if base is not None:
        files.files[("octo-org/.github", ".github/autopack.yml")] = base
    files.files[("octo-org/widgets", ".github/autopack.yml")] = "_extends: .github\n"
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


async def test_push_of_a_broken_file_gets_the_check_run(files: FakeRepoFiles, harness: Harness) -> None:
    files.files[("octo-org/widgets", ".github/autopack.yml")] = "merge:\n  method: yolo\n"
    assert await harness.deliver("push", push_touching("README.md")) == []  # other files: no job
    (job,) = await harness.deliver("push", push_touching(".github/autopack.yml"))
    assert job.flow == "config_check"
    await harness.run_next()
    (run,) = files.check_runs
    assert run["conclusion"] == "neutral"
    assert "line 2: merge.method" in run["output"]["summary"]


async def test_push_of_a_valid_file_gets_a_success_check_run(files: FakeRepoFiles, harness: Harness) -> None:
    files.files[("octo-org/widgets", ".github/autopack.yml")] = "feedback: {label: fb}\n"
    await harness.deliver("push", push_touching(".github/autopack.yml"))
    await harness.run_next()
    (run,) = files.check_runs
    assert (run["conclusion"], run["output"]["title"]) == ("success", ".github/autopack.yml is valid")
