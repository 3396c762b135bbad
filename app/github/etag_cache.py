"""Conditional GitHub reads with a shared ETag store (`app.policy.github_cache` says which reads).

A transport in front of the App's connection pool: for a cacheable GET it sends the stored ETag as
`If-None-Match`; GitHub's 304 (which does not count against the rate limit) is answered with the
stored body, and a 200 with an ETag replaces the entry. Entries live in the database
(`github_etags`), so every receiver and worker process revalidates what any of them read. A tree at
a full commit SHA never changes and is served with no request. The `x-autopack-fresh` request header
(the merge gate's permission check) bypasses the store; it is never sent to GitHub.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from app.github.client import SharedTransport
from app.inbox.db import Database
from app.policy import github_cache


@dataclass(frozen=True)
class Entry:
    etag: str
    content_type: str
    body: bytes


class EtagStore:
    """`github_etags`: one row per resource and representation; the newest answer wins."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key: str) -> Entry | None:
        row = await self.db.run(
            lambda tx: tx.fetchone(
                "SELECT etag, content_type, body FROM github_etags WHERE cache_key = ?", (key,)
            )
        )
        if row is None:
            return None
        return Entry(str(row["etag"]), str(row["content_type"]), str(row["body"]).encode())

    async def put(self, key: str, entry: Entry) -> None:
        text = entry.body.decode("utf-8", "replace")
        now = time.time()
        await self.db.run(
            lambda tx: tx.execute(
                "INSERT INTO github_etags (cache_key, etag, content_type, body, stored_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (cache_key) DO UPDATE SET etag = excluded.etag, "
                "content_type = excluded.content_type, body = excluded.body, stored_at = excluded.stored_at",
                (key, entry.etag, entry.content_type, text, now),
            )
        )

    async def prune(self, older_than: float) -> int:
        """Forget entries not refreshed since `older_than` (epoch seconds)."""
        return await self.db.run(
            lambda tx: tx.execute("DELETE FROM github_etags WHERE stored_at < ?", (older_than,))
        )


class ConditionalTransport(SharedTransport):
    """Wraps the App's transport (the shared pool, or the dry run's): conditional cached reads."""

    def __init__(self, inner: SharedTransport, store: EtagStore) -> None:
        super().__init__(inner)
        self._wrapped = inner
        self.store = store

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fresh = request.headers.get(github_cache.FRESH) is not None
        if fresh:
            del request.headers[github_cache.FRESH]
        rule = github_cache.rule_for(request.method, request.url.path, fresh=fresh)
        if rule is None:
            return await self._wrapped.handle_async_request(request)
        key = github_cache.key(
            request.url.path, request.url.query.decode(), request.headers.get("accept", "")
        )
        stored = await self.store.get(key)
        if stored is not None and rule.immutable:
            return self._answer(request, stored, {}, "stored")
        if stored is not None:
            request.headers["If-None-Match"] = stored.etag
        response = await self._wrapped.handle_async_request(request)
        if response.status_code == 304 and stored is not None:
            await response.aclose()
            return self._answer(request, stored, response.headers, "revalidated")
        etag = response.headers.get("etag")
        if response.status_code != 200 or not etag:
            return response
        body = await response.aread()
        if len(body) <= github_cache.MAX_BODY_BYTES:
            await self.store.put(key, Entry(etag, response.headers.get("content-type", ""), body))
        return httpx.Response(
            200, headers=response.headers, content=body, request=request, extensions=response.extensions
        )

    @staticmethod
    def _answer(
        request: httpx.Request, stored: Entry, headers: httpx.Headers | dict[str, str], how: str
    ) -> httpx.Response:
        """The stored body, with the 304's own headers (its rate-limit figures)."""
        merged = {
            k: v
            for k, v in dict(headers).items()
            if k.lower().startswith("x-ratelimit") or k.lower() == "date"
        }
        merged.update(
            {"content-type": stored.content_type, "etag": stored.etag, github_cache.CACHE_STATUS: how}
        )
        return httpx.Response(200, headers=merged, content=stored.body, request=request)

    async def close_pool(self) -> None:
        await self._wrapped.close_pool()
