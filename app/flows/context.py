"""What a flow receives: its delivery's event (`app.events`, parsed once) or its scheduled job's
typed args (`app.flows.jobs`), and the handles it may act through."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from app.errors import PermanentError
from app.events import Event
from app.flows import jobs
from app.github import policy_loader
from app.github.client import DryRunTransport, GitHubApp
from app.github.policy_loader import LoadedPolicy, PolicyLoader
from app.github.repo import RepoClient
from app.inbox.installations import Installations
from app.inbox.models import Job
from app.inbox.store import Inbox
from app.inbox.triage_log import TriageLog
from app.llm.config import Complexity
from app.llm.router import Role
from app.llm.service import LLM
from app.settings import Settings

A = TypeVar("A", bound=jobs.JobArgs)
E = TypeVar("E", bound=Event)


@dataclass
class FlowContext:
    job: Job
    event_name: str
    action: str | None
    event: Event | None  # a delivery's, as its event's model; None for a scheduled job
    delivery_id: str | None
    installation_id: int | None
    repository: str | None
    inbox: Inbox
    github: GitHubApp | None
    settings: Settings
    log: structlog.stdlib.BoundLogger
    llm: LLM | None = None
    policies: PolicyLoader | None = None
    # Shadow mode: the job's GitHub writes are kept here instead of sent (see `app.flows.dispatch`).
    shadow: DryRunTransport | None = None
    args: jobs.JobArgs | None = None  # a scheduled job's, parsed into its flow's model
    _loaded: LoadedPolicy | None = field(default=None, repr=False)

    def event_as(self, kind: type[E]) -> E:
        """This delivery's event as the model the flow handles (a scheduled job has none)."""
        if not isinstance(self.event, kind):
            raise self.unexpected()
        return self.event

    def unexpected(self) -> PermanentError:
        """The error for a job whose event (or lack of one) its flow does not handle."""
        given = type(self.event).__name__ if self.event is not None else "a scheduled job"
        return PermanentError(f"{self.job.flow} does not run on {given}")

    def args_as(self, kind: type[A]) -> A:
        """This scheduled job's args as the flow's model (a delivery's job has none)."""
        if not isinstance(self.args, kind):
            given = type(self.args).__name__ if self.args is not None else "a delivery"
            raise PermanentError(f"{self.job.flow} runs with {kind.__name__}, not {given}")
        return self.args

    async def enqueue(
        self, flow: str, args: jobs.JobArgs, key: str, *, run_at: float | None = None
    ) -> int | None:
        """Queue `flow` for this job's repository once per `key`. The installation, repository and
        default branch are this job's unless `args` names them; the subject comes from `args`."""
        where = {
            "installation_id": self.installation_id,
            "repository": self.repository,
            "default_branch": self.default_branch,
        }
        filled = args.model_copy(update={k: v for k, v in where.items() if getattr(args, k) is None})
        return await jobs.queue(self.inbox, flow, filled, key, run_at=run_at)

    async def know_default_branch(self) -> None:
        """A scheduled job queued without its repository's default branch (the scheduler does not
        know it; a job stored by an older release may lack it) asks GitHub once, before anything
        reads the policy, so `.github/autopack.yml` is read from that branch and not from `main`."""
        if self.args is not None and self.args.default_branch is None:
            branch = await (await self.repo()).default_branch()
            self.args = self.args.model_copy(update={"default_branch": branch})

    async def repo(self) -> RepoClient:
        """The repository client, with a token narrowed to this repository (DESIGN §5.9); in
        shadow mode its writes are kept, not sent."""
        if self.github is None or self.installation_id is None or self.repository is None:
            raise RuntimeError("this job has no installation or repository to act on")
        client = self.github.installation(self.installation_id, self.repository, transport=self.shadow)
        return RepoClient(client, self.repository, self.github.bot_login)

    @property
    def triage_log(self) -> TriageLog:
        return TriageLog(self.inbox.db, clock=self.inbox.clock)

    @property
    def installations(self) -> Installations:
        return Installations(self.inbox.db, clock=self.inbox.clock)

    def llm_has(self, task: str, role: Role, complexity: Complexity, category: str) -> bool:
        """Whether the routing names a model for this role (a secondary auditor is optional)."""
        return self.llm is not None and self.llm.has_role(task, role, complexity, category)

    @property
    def default_branch(self) -> str:
        if self.args is not None:
            return self.args.default_branch or "main"
        if self.event is not None and self.event.repository is not None:
            return self.event.repository.default_branch
        return "main"

    async def policy(self) -> LoadedPolicy:
        """The repository's `.github/autopack.yml` (or the defaults); an invalid file is reported
        as a check run on the default branch's head, and the defaults apply."""
        if self._loaded is not None:  # once per job: the dispatcher reads it for the flow's mode
            return self._loaded
        if self.policies is None or self.installation_id is None:
            raise RuntimeError("this job has no installation to read a policy with")
        repo = await self.repo()
        loaded = await self.policies.load(repo, self.installation_id, self.default_branch)
        if loaded.error is not None:
            await policy_loader.report(repo, loaded)
        self._loaded = loaded
        return loaded
