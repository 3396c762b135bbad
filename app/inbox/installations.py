"""The App's installations and their repositories, as the installation webhooks report them.

The digest schedules a job per installed repository from here; nothing else decides from it (a
job's own installation id comes with its delivery).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from app.inbox.db import Database, Tx


class Installations:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def upsert(
        self,
        installation_id: int,
        account_login: str,
        account_type: str | None,
        target_type: str | None,
        *,
        suspended: bool = False,
        repositories: Iterable[tuple[int, str]] | None = None,
    ) -> None:
        now = self.clock()
        repos = list(repositories) if repositories is not None else None

        def op(tx: Tx) -> None:
            tx.execute(
                """INSERT INTO installations (id, account_login, account_type, target_type,
                   suspended_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET account_login = excluded.account_login,
                   account_type = excluded.account_type, target_type = excluded.target_type,
                   suspended_at = excluded.suspended_at, updated_at = excluded.updated_at""",
                (
                    installation_id,
                    account_login,
                    account_type,
                    target_type,
                    now if suspended else None,
                    now,
                    now,
                ),
            )
            if repos is not None:
                tx.execute(
                    "DELETE FROM installation_repositories WHERE installation_id = ?",
                    (installation_id,),
                )
                self._add_repos(tx, installation_id, repos)

        await self.db.run(op)

    @staticmethod
    def _add_repos(tx: Tx, installation_id: int, repos: Iterable[tuple[int, str]]) -> None:
        for repo_id, full_name in repos:
            tx.execute(
                """INSERT INTO installation_repositories (installation_id, repository_id, full_name)
                   VALUES (?, ?, ?) ON CONFLICT (installation_id, repository_id)
                   DO UPDATE SET full_name = excluded.full_name""",
                (installation_id, repo_id, full_name),
            )

    async def delete(self, installation_id: int) -> None:
        def op(tx: Tx) -> None:
            tx.execute(
                "DELETE FROM installation_repositories WHERE installation_id = ?",
                (installation_id,),
            )
            tx.execute("DELETE FROM installations WHERE id = ?", (installation_id,))

        await self.db.run(op)

    async def change_repositories(
        self,
        installation_id: int,
        added: Iterable[tuple[int, str]],
        removed: Iterable[int],
    ) -> None:
        added_list, removed_list = list(added), list(removed)

        def op(tx: Tx) -> None:
            self._add_repos(tx, installation_id, added_list)
            for repo_id in removed_list:
                tx.execute(
                    "DELETE FROM installation_repositories WHERE installation_id = ? AND repository_id = ?",
                    (installation_id, repo_id),
                )

        await self.db.run(op)

    async def all(self) -> list[dict[str, Any]]:
        def op(tx: Tx) -> list[dict[str, Any]]:
            rows = tx.fetchall("SELECT * FROM installations ORDER BY id")
            for row in rows:
                row["repositories"] = [
                    r["full_name"]
                    for r in tx.fetchall(
                        "SELECT full_name FROM installation_repositories WHERE installation_id = ? "
                        "ORDER BY full_name",
                        (row["id"],),
                    )
                ]
            return rows

        return await self.db.run(op)
