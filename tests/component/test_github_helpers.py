"""The narrow GitHub interface: labels, marked comments across pages, permissions, dry-run, bot login."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import respx
from githubkit.cache import MemCacheStrategy

from app.github.client import GitHubApp
from app.github.repo import RepoClient
from app.policy.commands import Permission
from app.policy.labels import LabelSpec
from tests.fake_github import API, TOKEN
from tests.support import private_key_pem

REPO = f"{API}/repos/octo-org/widgets"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(url__regex=rf"{API}/app/installations/\d+/access_tokens").respond(
            201, json={"token": TOKEN, "expires_at": "2099-01-01T00:00:00Z"}
        )
        mock.get(f"{API}/app").respond(200, json={"slug": "autopack"})
        yield mock


def client(dry_run: list[str] | None = None) -> tuple[GitHubApp, RepoClient]:
    app = GitHubApp(
        1,
        private_key_pem(),
        base_url=API,
        cache_strategy=MemCacheStrategy(),
        dry_run_printer=dry_run.append if dry_run is not None else None,
    )
    return app, RepoClient(app.installation(9, "octo-org/widgets"), "octo-org/widgets", "autopack[bot]")


async def test_labels_are_listed_once_and_only_missing_ones_created(router: respx.MockRouter) -> None:
    listing = router.get(f"{REPO}/labels").respond(200, json=[{"name": "Autopack:Triaged"}, {"name": "docs"}])
    create = router.post(f"{REPO}/labels").respond(201, json={"name": "bug"})
    add = router.post(f"{REPO}/issues/3/labels").respond(200, json=[])
    _, repo = client()
    await repo.add_labels(
        3, [LabelSpec("autopack:triaged", "0e8a16", "Triaged by Autopack"), LabelSpec("bug", "d73a4a", "Bug")]
    )
    assert listing.call_count == 1
    assert create.call_count == 1  # "autopack:triaged" exists (GitHub compares names case-insensitively)
    assert json.loads(create.calls[0].request.content) == {
        "name": "bug",
        "color": "d73a4a",
        "description": "Bug",
    }
    assert json.loads(add.calls[0].request.content) == {"labels": ["autopack:triaged", "bug"]}


async def test_label_created_concurrently_is_fine(router: respx.MockRouter) -> None:
    router.get(f"{REPO}/labels").respond(200, json=[])
    router.post(f"{REPO}/labels").respond(422, json={"message": "Validation Failed"})
    _, repo = client()
    await repo.ensure_labels([LabelSpec("bug", "d73a4a", "Bug")])


async def test_marked_comment_found_on_a_later_page(router: respx.MockRouter) -> None:
    page1 = [{"id": n, "body": "hi", "user": {"login": "someone"}} for n in range(100)]
    page2 = [{"id": 555, "body": "old\n\n<!-- autopack:triage -->", "user": {"login": "autopack[bot]"}}]

    def pages(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=page1 if request.url.params["page"] == "1" else page2)

    router.get(f"{REPO}/issues/3/comments").mock(side_effect=pages)
    edit = router.patch(f"{REPO}/issues/comments/555").respond(200, json={"id": 555})
    create = router.post(f"{REPO}/issues/3/comments").respond(201, json={"id": 1})
    _, repo = client()
    assert await repo.upsert_comment(3, "triage", "new") == 555
    assert edit.call_count == 1
    assert create.call_count == 0
    assert json.loads(edit.calls[0].request.content)["body"] == "new\n\n<!-- autopack:triage -->"


async def test_unchanged_comment_is_not_edited(router: respx.MockRouter) -> None:
    router.get(f"{REPO}/issues/3/comments").respond(
        200, json=[{"id": 9, "body": "same\n\n<!-- autopack:k -->", "user": {"login": "autopack[bot]"}}]
    )
    edit = router.patch(f"{REPO}/issues/comments/9").respond(200, json={})
    _, repo = client()
    await repo.upsert_comment(3, "k", "same")
    assert edit.call_count == 0


async def test_permission_of_a_stranger_is_none(router: respx.MockRouter) -> None:
    router.get(f"{REPO}/collaborators/ghost/permission").respond(404, json={"message": "Not Found"})
    _, repo = client()
    assert await repo.permission("ghost") is Permission.NONE


async def test_bot_login_is_asked_once(router: respx.MockRouter) -> None:
    app, _ = client()
    assert await app.bot_login() == "autopack[bot]"
    assert await app.bot_login() == "autopack[bot]"
    assert router.routes[1].call_count == 1


async def test_dry_run_sends_reads_and_prints_writes(router: respx.MockRouter) -> None:
    printed: list[str] = []
    listing = router.get(f"{REPO}/issues/3/comments").respond(200, json=[])
    create = router.post(f"{REPO}/issues/3/comments").respond(201, json={"id": 1})
    app, repo = client(printed)
    await repo.upsert_comment(3, "k", "hello")
    assert listing.call_count == 1
    assert create.call_count == 0
    assert app.transport is not None
    assert app.transport.writes == [
        ("POST", "/repos/octo-org/widgets/issues/3/comments", {"body": "hello\n\n<!-- autopack:k -->"})
    ]
    assert printed[0].startswith("DRY-RUN would send: POST /repos/octo-org/widgets/issues/3/comments")


async def test_enterprise_base_url(router: respx.MockRouter) -> None:
    ghes = "https://ghe.example.test/api/v3"
    route = router.get(f"{ghes}/app").respond(200, json={"slug": "autopack-ghe"})
    app = GitHubApp(1, private_key_pem(), base_url=ghes, cache_strategy=MemCacheStrategy())
    assert await app.bot_login() == "autopack-ghe[bot]"
    assert route.called


async def test_rate_limit_remaining_and_requests_are_measured(router: respx.MockRouter) -> None:
    from prometheus_client import REGISTRY

    before = (
        REGISTRY.get_sample_value("autopack_github_requests_total", {"method": "GET", "status": "200"}) or 0
    )
    router.get(f"{REPO}/labels").respond(
        200, json=[], headers={"x-ratelimit-remaining": "4321", "x-ratelimit-resource": "core"}
    )
    _, repo = client()
    await repo.label_names()
    assert REGISTRY.get_sample_value("autopack_github_rate_limit_remaining", {"resource": "core"}) == 4321
    after = REGISTRY.get_sample_value("autopack_github_requests_total", {"method": "GET", "status": "200"})
    assert after == before + 1
