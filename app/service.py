"""Assembles one process: settings → inbox, GitHub App client, flow registry, workers.

`autopack serve` runs the receiver and the workers together; `autopack worker` the workers with
only health and metrics routes; both share this assembly, and so do the tests.
"""

from __future__ import annotations

import contextlib
import gc
import time
from typing import Any

from app import logs
from app.flows.dispatch import Dispatcher
from app.flows.registry import Registry, default_registry
from app.github.client import GitHubApp
from app.github.etag_cache import EtagStore
from app.inbox.store import Inbox
from app.inbox.worker import WorkerPool
from app.llm.factory import build_llm
from app.llm.service import LLM
from app.llm.tokens import counter_for
from app.logs import get_logger
from app.settings import Mode, Settings, SettingsError

log = get_logger("autopack.service")


class Service:
    def __init__(
        self,
        settings: Settings,
        *,
        run_workers: bool = True,
        registry: Registry | None = None,
        github: GitHubApp | None = None,
        inbox: Inbox | None = None,
        github_options: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.mode = settings.mode()
        self.registry = registry or default_registry()
        self.inbox: Inbox | None = None
        self.github: GitHubApp | None = None
        self.pool: WorkerPool | None = None
        self.llm: LLM | None = None
        self._run_workers = run_workers
        self._github_options = github_options or {}
        if self.mode is not Mode.SETUP:
            self._assemble(inbox, github)

    def _assemble(self, inbox: Inbox | None, github: GitHubApp | None) -> None:
        settings = self.settings
        self.inbox = inbox or Inbox.open(settings.database_url)
        self.llm = build_llm(settings, self.inbox.db)  # ConfigError: a bad routing file stops the start
        if github is None and settings.app_id is not None:
            key = settings.private_key_pem()
            assert key is not None  # mode() checked it
            github = GitHubApp(
                settings.app_id,
                key,
                base_url=settings.github_api_url,
                timeout=settings.autopack_github_timeout_seconds,
                **{"etags": EtagStore(self.inbox.db), **self._github_options},
            )
        self.github = github
        if self._run_workers and settings.autopack_workers > 0:
            self.pool = WorkerPool(
                self.inbox,
                Dispatcher(self.registry, self.inbox, self.github, settings, self.llm),
                concurrency=settings.autopack_workers,
                lease_seconds=settings.autopack_lease_seconds,
                poll_seconds=settings.autopack_poll_seconds,
                backoff_base=settings.autopack_backoff_base_seconds,
                backoff_cap=settings.autopack_backoff_cap_seconds,
                housekeeping=self.housekeeping,
            )

    async def leave_setup(self, settings: Settings) -> None:
        """Switch a running setup-mode process to the App the setup page just configured: the
        same assembly and start a restart would do, so no restart is needed. On failure (a
        PostgreSQL schema not migrated, a bad routing file) the process stays in setup mode and
        the error says what to do."""
        if self.mode is not Mode.SETUP:
            raise RuntimeError("the service is already configured")
        mode = settings.mode()
        if mode is Mode.SETUP:
            raise SettingsError("APP_ID: still missing after setup")
        logs.redactor.add(settings.secret_values())
        previous = self.settings
        self.settings, self.mode = settings, mode
        try:
            self._assemble(None, None)
            await self.start()
        except BaseException:
            if self.inbox is not None:
                self.inbox.close()
            self.inbox, self.llm, self.github, self.pool = None, None, None, None
            self.settings, self.mode = previous, Mode.SETUP
            raise

    async def start(self) -> None:
        if self.mode is Mode.SETUP:
            log.warning("setup mode: no GitHub App configured; webhooks are refused with 503")
            return
        if self.mode is Mode.INSECURE:
            log.warning(
                "INSECURE: AUTOPACK_INSECURE_NO_SIGNATURE is set and there is no WEBHOOK_SECRET; "
                "webhook signatures are NOT verified. Use this only for local development."
            )
        assert self.inbox is not None
        if self.llm is not None and not self.llm.providers:
            log.warning(
                "no LLM provider configured: set OPENAI_API_KEY (or OPENAI_BASE_URL) and/or "
                "ANTHROPIC_API_KEY; flows that need a model will fail until then"
            )
        await self.inbox.prepare()
        await self.housekeeping()
        if self.pool is not None:
            # The o200k vocabulary takes about 0.5 s of CPU to load. Loaded by the first job, it
            # would stall the event loop, and with it every heartbeat of this process (the soak
            # lost leases that way); loaded here, it is also frozen out of the GC below.
            if self.llm is not None and "openai" in self.llm.providers:
                counter_for("openai").count("")
            self.pool.start()
        # Everything loaded so far (SDKs, githubkit's schemas, settings) lives as long as the
        # process: keep it out of the cyclic GC, whose full passes would otherwise stall requests.
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.stop(self.settings.autopack_shutdown_grace_seconds)
        if self.github is not None:
            with contextlib.suppress(Exception):
                await self.github.aclose()
        if self.inbox is not None:
            self.inbox.close()

    def wake_workers(self) -> None:
        if self.pool is not None:
            self.pool.wake()

    async def housekeeping(self) -> None:
        """Drop payloads of finished deliveries past retention (their records stay), and stored
        GitHub answers nobody revalidated in that time."""
        if self.inbox is None:
            return
        pruned = await self.inbox.prune_payloads(self.settings.autopack_retention_days * 86400)
        if pruned:
            log.info("pruned delivery payloads", count=pruned)
        # ETags not revalidated for a retention period describe resources nobody reads any more.
        stale = await EtagStore(self.inbox.db).prune(
            time.time() - self.settings.autopack_retention_days * 86400
        )
        if stale:
            log.info("pruned stored GitHub answers", count=stale)
        if self.mode is not Mode.SETUP:
            from app.flows.digest import schedule_all

            await schedule_all(self.inbox)  # each repository's next weekly digest (deduplicated)
