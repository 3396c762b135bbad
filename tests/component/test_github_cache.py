"""Conditional GitHub reads with the shared ETag store: a 304 reuses the stored body, a changed
resource is read again, the merge gate's permission check is never answered from the store, a tree at
a commit is served with no request, and a second process revalidates what the first one read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import respx

from app.github.client import GitHubApp
from app.github.etag_cache import EtagStore
from app.github.repo import RepoClient
from app.inbox.store import Inbox
from app.policy.commands import Permission
from tests.fake_github import API, FakeGitHub
from tests.support import private_key_pem

REPO = "octo-org/widgets"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    repo = FakeGitHub(permissions={"maintainer": "write"})
    repo.labels = {"bug": {"name": "bug", "color": "d73a4a"}}
    with respx.mock(assert_all_called=False) as router:
        repo.install(router)
        yield repo


@pytest.fixture
async def inbox(tmp_path: Path) -> Iterator[Inbox]:
    box = Inbox.open(f"sqlite:///{tmp_path / 'cache.db'}")
    await box.migrate()
    yield box  # type: ignore[misc]
    box.close()


def process(inbox: Inbox) -> RepoClient:
    """One process's App client, sharing the database's ETag store."""
    app = GitHubApp(12345, private_key_pem(), base_url=API, etags=EtagStore(inbox.db))
    return RepoClient(app.installation(4242, REPO), REPO, "autopack[bot]")


async def test_a_304_reuses_the_stored_body_and_a_changed_resource_is_read_again(
    inbox: Inbox, github: FakeGitHub
) -> None:
    repo = process(inbox)
    assert await repo.label_names() == {"bug"}
    assert github.not_modified == []
    assert await repo.label_names() == {"bug"}  # answered 304: the stored body
    assert github.not_modified == [f"GET /repos/{REPO}/labels"]
    github.labels["docs"] = {"name": "docs", "color": "0075ca"}  # the ETag changes
    assert await repo.label_names() == {"bug", "docs"}
    assert len(github.not_modified) == 1
    assert await repo.label_names() == {"bug", "docs"}  # and the new answer is the one stored
    assert len(github.not_modified) == 2


async def test_another_process_revalidates_what_the_first_read(inbox: Inbox, github: FakeGitHub) -> None:
    first, second = process(inbox), process(inbox)
    await first.label_names()
    assert await second.label_names() == {"bug"}
    assert github.not_modified == [f"GET /repos/{REPO}/labels"]


async def test_the_gates_permission_check_is_never_answered_from_the_store(
    inbox: Inbox, github: FakeGitHub
) -> None:
    repo = process(inbox)
    assert await repo.permission("maintainer") is Permission.WRITE
    assert await repo.permission("maintainer") is Permission.WRITE  # a command's: revalidated
    assert github.not_modified == [f"GET /repos/{REPO}/collaborators/maintainer/permission"]
    github.permissions["maintainer"] = "read"
    assert await repo.permission("maintainer", fresh=True) is Permission.READ
    github.permissions["maintainer"] = "write"
    assert await repo.permission("maintainer", fresh=True) is Permission.WRITE
    assert len(github.not_modified) == 1  # the gate's checks sent no ETag: always GitHub's answer
    github.permissions["maintainer"] = "admin"
    assert await repo.permission("maintainer") is Permission.ADMIN  # a change is never hidden


async def test_a_tree_at_a_commit_is_served_with_no_request(inbox: Inbox, github: FakeGitHub) -> None:
    repo = process(inbox)
    sha = "c0ffee" + "0" * 34
    path = f"/repos/{REPO}/git/trees/{sha}"
    first = await repo.gh.arequest("GET", path, params={"recursive": "1"})
    requests = github.log.count(f"GET {path}")
    second = await repo.gh.arequest("GET", path, params={"recursive": "1"})
    assert second.json() == first.json()
    assert github.log.count(f"GET {path}") == requests == 1


async def test_writes_and_uncached_reads_pass_through(inbox: Inbox, github: FakeGitHub) -> None:
    github.pulls[21] = {
        "number": 21,
        "state": "open",
        "head": {"ref": "fix", "sha": "a" * 40},
        "base": {"ref": "main", "sha": "b" * 40},
    }
    repo = process(inbox)
    for _ in range(2):
        await repo.pull(21)
    assert github.log.count(f"GET /repos/{REPO}/pulls/21") == 2
    assert github.not_modified == []
    rows = await inbox.db.run(lambda tx: tx.fetchall("SELECT cache_key FROM github_etags"))
    assert rows == []
