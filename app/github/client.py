"""githubkit clients: the App itself and installation clients narrowed to one repository.

- Explicit timeouts (githubkit's default is none) and no built-in retry: githubkit would sleep until
  a rate limit resets, holding a worker slot; the worker turns the exception into a rescheduled job
  instead (`app.github.errors`).
- Installation tokens are cached by githubkit's cache strategy, keyed by installation and
  repository, so each job's token can only touch the repository it acts on (DESIGN §5.9).
- Every response is counted (`autopack_github_requests_total`) and its rate-limit headers recorded.
- In dry-run mode (`autopack receive --dry-run`) and for a flow in shadow mode, reads go to GitHub
  and writes are kept (printed, or recorded) instead of sent, at the transport, so no flow can write
  by going around a helper.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from githubkit import AppAuthStrategy, GitHub
from githubkit.cache import BaseCacheStrategy, MemCacheStrategy

from app import metrics
from app.logs import get_logger

log = get_logger("autopack.github")

USER_AGENT = "autopack"


async def _record_response(response: httpx.Response) -> None:
    # A read answered by GitHub's 304 is counted as one (it costs no rate limit), one served from
    # an immutable stored entry is not a request at all.
    how = response.headers.get("x-autopack-cache")
    if how == "stored":
        return
    status = "304" if how == "revalidated" else str(response.status_code)
    metrics.GITHUB_REQUESTS.labels(response.request.method, status).inc()
    remaining = response.headers.get("x-ratelimit-remaining")
    if remaining is not None and remaining.isdigit():
        resource = response.headers.get("x-ratelimit-resource", "core")
        metrics.GITHUB_RATE_REMAINING.labels(resource).set(int(remaining))


def _is_read(request: httpx.Request) -> bool:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return True
    path = request.url.path
    if request.method == "POST" and path.endswith("/access_tokens") and "/app/installations/" in path:
        return True  # getting a token is needed to read
    if request.method == "POST" and path.endswith("/graphql"):
        try:
            query = str(json.loads(request.content or b"{}").get("query", ""))
        except ValueError:
            return False
        return not query.lstrip().startswith("mutation")
    return False


class SharedTransport(httpx.AsyncBaseTransport):
    """One connection pool, and one TLS context, for every githubkit client of the App.

    Outside `async with`, githubkit opens an httpx client around each request and closes it after.
    With a transport of its own, each request would build a new SSL context (loading the CA bundle:
    the soak measured 80% of a worker's CPU there) and open a new TCP and TLS connection. Closing a
    client therefore leaves this pool open; `GitHubApp.aclose` closes it when the process stops.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=30)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """A githubkit client closing: the pool stays open for the next one."""

    async def close_pool(self) -> None:
        await self._inner.aclose()


class DryRunTransport(SharedTransport):
    """Sends reads; keeps every write (method, path, JSON body) instead of sending it, and answers it
    with a stand-in success. Used by `autopack receive --dry-run` (which prints each write) and by
    shadow mode (one per job, over the App's shared pool: the flow's writes become its record).

    The stand-in echoes the request body with the ids a flow reads back (`id`, `number`, `sha`,
    `node_id`), so a flow runs on to its end as it would have."""

    def __init__(
        self,
        printer: Callable[[str], None] | None = None,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(inner)
        self._print = printer
        self.writes: list[tuple[str, str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if _is_read(request):
            return await super().handle_async_request(request)
        body: Any = None
        if request.content:
            try:
                body = json.loads(request.content)
            except ValueError:
                body = f"<{len(request.content)} bytes>"
        self.writes.append((request.method, request.url.path, body))
        if self._print is not None:
            self._print(
                f"DRY-RUN would send: {request.method} {request.url.path}"
                + (f"\n{json.dumps(body, indent=2)}" if body is not None else "")
            )
        if request.url.path.endswith("/graphql"):
            return httpx.Response(200, json={"data": {}}, request=request)
        n = len(self.writes)
        stand_in = {
            **(body if isinstance(body, dict) else {}),
            "dry_run": True,
            "id": n,
            "number": n,
            "sha": f"{n:040x}",
            "node_id": f"DRY_RUN_{n}",
        }
        return httpx.Response(200, json=stand_in, request=request)


@dataclass(frozen=True)
class RateLimit:
    """What GitHub said of an installation's core rate limit on its latest response."""

    installation_id: int
    remaining: int
    limit: int
    reset: float  # epoch seconds
    seen_at: float


class GitHubApp:
    """The App's own identity; hands out installation clients. Keep one per process.

    Every installation client's responses update `rate_limits` (the latest core limit seen per
    installation), for the status page, the metrics and work that should wait for a reset."""

    def __init__(
        self,
        app_id: int,
        private_key: str,
        *,
        base_url: str = "https://api.github.com",
        timeout: float = 30.0,
        cache_strategy: BaseCacheStrategy | None = None,
        dry_run_printer: Callable[[str], None] | None = None,
        etags: Any = None,  # an `app.github.etag_cache.EtagStore`: conditional reads, shared
    ) -> None:
        self.app_id = app_id
        self._auth = AppAuthStrategy(app_id, private_key)
        self.dry_run = dry_run_printer is not None
        self.transport: SharedTransport = (
            DryRunTransport(dry_run_printer) if dry_run_printer else SharedTransport()
        )
        if etags is not None:
            from app.github.etag_cache import ConditionalTransport

            self.transport = ConditionalTransport(self.transport, etags)
        self._config: dict[str, Any] = {
            "base_url": base_url.rstrip("/") + "/",
            "timeout": httpx.Timeout(timeout, connect=min(10.0, timeout)),
            "user_agent": USER_AGENT,
            "auto_retry": False,
            "http_cache": False,
            "cache_strategy": cache_strategy or MemCacheStrategy(),
            "async_event_hooks": {"response": [_record_response]},
            "async_transport": self.transport,
        }
        # A strong reference: githubkit clients must outlive the requests made through them.
        self.client: GitHub[Any] = GitHub(self._auth, **self._config)
        self._bot_login: str | None = None
        self.rate_limits: dict[int, RateLimit] = {}

    async def aclose(self) -> None:
        """Close the connection pool (at shutdown)."""
        await self.transport.close_pool()

    async def bot_login(self) -> str:
        """`<slug>[bot]`: the login the App's comments and PRs carry (from `GET /app`)."""
        if self._bot_login is None:
            response = await self.client.arequest("GET", "/app")
            self._bot_login = f"{response.json()['slug']}[bot]"
        return self._bot_login

    def installation(
        self,
        installation_id: int,
        repository: str | None = None,
        *,
        permissions: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> GitHub[Any]:
        """A client whose token is limited to `repository` (`owner/name`) and, when given, to
        `permissions` (e.g. {"contents": "read"}); `transport` replaces the shared one (shadow mode
        keeps a job's writes in a `DryRunTransport` over the shared pool)."""
        options: dict[str, Any] = {}
        if repository:
            options["repositories"] = [repository.split("/", 1)[1]]
        if permissions:
            options["permissions"] = permissions

        async def note_rate_limit(response: httpx.Response) -> None:
            self._note_rate_limit(installation_id, response)

        config = {
            **self._config,
            "async_event_hooks": {"response": [_record_response, note_rate_limit]},
            **({"async_transport": transport} if transport is not None else {}),
        }
        return GitHub(self._auth.as_installation(installation_id, **options), **config)

    def _note_rate_limit(self, installation_id: int, response: httpx.Response) -> None:
        headers = response.headers
        if headers.get("x-ratelimit-resource", "core") != "core":
            return
        remaining, limit, reset = (
            headers.get(f"x-ratelimit-{k}", "") for k in ("remaining", "limit", "reset")
        )
        if not (remaining.isdigit() and limit.isdigit()):
            return
        self.rate_limits[installation_id] = RateLimit(
            installation_id, int(remaining), int(limit), float(reset) if reset.isdigit() else 0.0, time.time()
        )
        metrics.GITHUB_INSTALLATION_RATE.labels(str(installation_id), "remaining").set(int(remaining))
        metrics.GITHUB_INSTALLATION_RATE.labels(str(installation_id), "limit").set(int(limit))
