"""`installation` and `installation_repositories` keep the installations table."""

from __future__ import annotations

from app.inbox.installations import Installations
from tests.component.harness import Harness
from tests.support import payload


async def test_created_then_repositories_changed_then_deleted(harness: Harness) -> None:
    created = payload("installation", "created.payload.json")
    await harness.deliver("installation", created)
    await harness.run_next()
    (inst,) = await Installations(harness.inbox.db).all()
    assert (inst["id"], inst["account_login"]) == (957387, "Codertocat")
    assert inst["repositories"] == sorted(r["full_name"] for r in created["repositories"])

    changed = payload("installation", "created.payload.json")
    changed["action"] = "added"
    changed["repository_selection"] = "selected"
    changed["requester"] = None
    changed["repositories_added"] = [
        {"id": 77, "full_name": "Codertocat/new-repo", "name": "new-repo", "node_id": "x", "private": False}
    ]
    changed["repositories_removed"] = [created["repositories"][0]]
    changed.pop("repositories")
    await harness.deliver("installation_repositories", changed)
    await harness.run_next()
    (inst,) = await Installations(harness.inbox.db).all()
    assert "Codertocat/new-repo" in inst["repositories"]
    assert created["repositories"][0]["full_name"] not in inst["repositories"]

    deleted = payload("installation", "deleted.payload.json")
    deleted["installation"]["id"] = 957387
    await harness.deliver("installation", deleted)
    await harness.run_next()
    assert await Installations(harness.inbox.db).all() == []


async def test_suspend_is_recorded(harness: Harness) -> None:
    data = payload("installation", "created.payload.json")
    data["action"] = "suspend"
    data["installation"]["suspended_at"] = "2026-11-01T00:00:00Z"
    data["installation"]["suspended_by"] = data["sender"]
    await harness.deliver("installation", data)
    await harness.run_next()
    (inst,) = await Installations(harness.inbox.db).all()
    assert inst["suspended_at"] is not None
