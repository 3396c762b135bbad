"""Runs deliveries through the real dispatcher and flows, against a respx-mocked GitHub."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from githubkit.cache import MemCacheStrategy

from app.flows.dispatch import Dispatcher
from app.flows.registry import default_registry
from app.github.client import GitHubApp
from app.inbox.models import Job, NewDelivery
from app.inbox.store import Inbox
from app.llm.config import builtin_catalogue, load_routing
from app.llm.ledger import Ledger
from app.llm.providers import AnthropicProvider, OpenAIProvider
from app.llm.service import LLM
from app.policy.subjects import installation_id, repository_name, subject_key
from app.settings import Settings
from tests.fake_github import API
from tests.support import private_key_pem


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.settings = Settings.load(
            app_id=12345,
            private_key=private_key_pem(),
            webhook_secret="s3cret-hook",
            github_api_url=API,
            database_url=f"sqlite:///{tmp_path / 'h.db'}",
        )
        self.offset = 0.0  # seconds added to the inbox's clock: scheduled jobs come due
        self.inbox = Inbox.open(self.settings.database_url, clock=lambda: time.time() + self.offset)
        self.inbox.db.run_sync(__import__("app.inbox.schema", fromlist=["migrate"]).migrate)
        self.github = GitHubApp(12345, private_key_pem(), base_url=API, cache_strategy=MemCacheStrategy())
        self.registry = default_registry()
        # The real LLM layer; its HTTP calls are whatever respx answers (tests/component/llm_mock.py).
        self.llm = LLM(
            load_routing(),
            builtin_catalogue(),
            {
                "openai": OpenAIProvider("sk-test-0000000000000000", None, 10),
                "anthropic": AnthropicProvider("sk-ant-test-000000000000", None, 10),
            },
            Ledger(self.inbox.db),
        )
        self.dispatcher = Dispatcher(self.registry, self.inbox, self.github, self.settings, self.llm)

    def use_etag_cache(self) -> None:
        """As `autopack serve` runs: GitHub reads conditional, with the ETags in this database."""
        from app.github.etag_cache import EtagStore

        self.github = GitHubApp(
            12345,
            private_key_pem(),
            base_url=API,
            cache_strategy=MemCacheStrategy(),
            etags=EtagStore(self.inbox.db),
        )
        self.dispatcher = Dispatcher(self.registry, self.inbox, self.github, self.settings, self.llm)

    async def deliver(self, event: str, payload: dict[str, Any], delivery_id: str | None = None) -> list[Job]:
        """Record like the receiver does; returns the jobs created (none if ignored or a duplicate)."""
        delivery_id = delivery_id or str(uuid.uuid4())
        flows = self.registry.flows_for(event, payload.get("action"), payload)
        status = await self.inbox.record_delivery(
            NewDelivery(
                delivery_id,
                event,
                payload.get("action"),
                installation_id(payload),
                repository_name(payload),
                subject_key(event, payload, delivery_id),
                {},
                json.dumps(payload).encode(),
                time.time(),
            ),
            flows,
            max_attempts=3,
        )
        if status == "duplicate":
            return []
        return await self.inbox.jobs_for_delivery(delivery_id)

    async def run_next(self) -> Job:
        job = await self.inbox.claim("test", 60)
        assert job is not None, "no job due"
        await self.dispatcher(job)
        await self.inbox.complete(job)
        return job

    def limit_repository_tokens(self, weekly_tokens: int) -> None:
        """The built-in routing with a weekly token budget per repository."""
        import yaml

        from app.llm.config import parse_routing

        data = yaml.safe_load((Path(__file__).resolve().parents[2] / "app" / "models.yaml").read_text())
        data["budgets"] = {"repository_weekly_tokens": weekly_tokens}
        self.llm.routing = parse_routing(data, builtin_catalogue())

    async def run_all(self) -> list[str]:
        """Run every job that is due, in order (jobs they queue too); returns their flows."""
        flows = []
        while (job := await self.inbox.claim("test", 60)) is not None:
            await self.dispatcher(job)
            await self.inbox.complete(job)
            flows.append(job.flow)
        return flows

    def close(self) -> None:
        self.inbox.close()
