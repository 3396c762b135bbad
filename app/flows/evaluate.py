"""`autopack eval triage|audit`: replay a repository's history through triage or the audit, with
writes disabled, and compare with what its maintainers did (`app.policy.evaluation` counts).

Not a webhook flow: the CLI runs it. It goes through the same code as the flows — `triage.analyse`
and `audit.audit_change` — with a GitHub client whose transport keeps every write instead of sending it
(the dry-run transport), and the configured LLM service, so the weekly budgets and the usage
ledger apply. Before spending, it estimates the cost and asks `confirm`; `max_cost` stops it before
a call that would go over. What it reads: issues and their comments (duplicates), merged pull
requests with their files, commits and review comments, and later default-branch commits.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app.events import Comment, Event, Issue, Repository, issues_in
from app.flows import audit as audit_flow
from app.flows import triage as triage_flow
from app.flows.context import FlowContext
from app.github.client import GitHubApp
from app.github.policy_loader import PolicyLoader
from app.github.repo import RepoClient
from app.inbox.models import Job
from app.inbox.store import Inbox
from app.llm.ledger import BudgetExceeded, CallMeta
from app.llm.service import LLM, TASK_INPUT_BUDGET
from app.llm.tokens import counter_for
from app.logs import get_logger
from app.policy import audit, evaluation
from app.settings import Settings

log = get_logger("autopack.eval")
Confirm = Callable[[str], Awaitable[bool]]


@dataclass
class Outcome:
    report: str
    items: int
    stopped: str = ""  # why it stopped early (budget, --max-cost), if it did
    numbers: dict[str, Any] = field(default_factory=dict)


class Evaluation:
    """One evaluation run on one repository."""

    def __init__(
        self,
        github: GitHubApp,
        llm: LLM,
        inbox: Inbox,
        settings: Settings,
        repository: str,
        *,
        since: float,
        limit: int,
        max_cost: float | None,
        confirm: Confirm,
    ) -> None:
        if not github.dry_run:
            raise ValueError("an evaluation needs a GitHub client whose writes are disabled")
        self.github, self.llm, self.inbox, self.settings = github, llm, inbox, settings
        self.repository = repository
        self.since, self.limit, self.max_cost, self.confirm = since, limit, max_cost, confirm
        self.spent = 0.0

    @property
    def since_text(self) -> str:
        return dt.datetime.fromtimestamp(self.since, dt.UTC).strftime("%Y-%m-%d")

    @property
    def web(self) -> str:
        from app.policy.app_manifest import github_web_url

        return github_web_url(self.settings.github_api_url)

    async def _context(self) -> FlowContext:
        owner, name = self.repository.split("/", 1)
        installation = await self.github.client.arequest("GET", f"/repos/{owner}/{name}/installation")
        installation_id = int(installation.json()["id"])
        client = self.github.installation(installation_id, self.repository)
        info = Repository.model_validate((await client.arequest("GET", f"/repos/{self.repository}")).json())
        now = time.time()
        job = Job(
            0,
            "eval",
            self.repository,
            None,
            {},
            "running",
            1,
            1,
            0,
            now,
            now,
            now,
            None,
            None,
            None,
            None,
            None,
        )
        return FlowContext(
            job=job,
            event_name="eval",
            action=None,
            event=Event(repository=info),
            delivery_id=None,
            installation_id=installation_id,
            repository=self.repository,
            inbox=self.inbox,
            github=self.github,
            settings=self.settings,
            log=log,
            llm=self.llm,
            policies=PolicyLoader(self.github),
        )

    def _iso(self) -> str:
        return dt.datetime.fromtimestamp(self.since, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def _go_ahead(self, what: str, estimate: float, model: str) -> bool:
        budget = f"; --max-cost ${self.max_cost:.2f} stops it before going over" if self.max_cost else ""
        return await self.confirm(f"{what}: about ${estimate:.4f} with {model}{budget}. Go ahead?")

    def _over(self, next_cost: float) -> bool:
        return self.max_cost is not None and self.spent + next_cost > self.max_cost

    # ---- triage --------------------------------------------------------------------------------

    async def triage(self) -> Outcome:
        ctx = await self._context()
        repo = await ctx.repo()
        loaded = await ctx.policy()
        rules = loaded.policy
        areas = dict(rules.feedback.areas) or {
            d: [f"{d}/**"] for d in await repo.top_level_dirs(loaded.head_sha)
        }
        issues = await self._issues(repo)
        call = CallMeta(ctx.installation_id, repo.full_name, "triage", "analyst", "general")
        counter = counter_for("openai")
        sizes = [
            counter.count(i.title + (i.body or "")[: rules.feedback.max_body_chars]) + 1_500 for i in issues
        ]
        model, estimate = await self.llm.estimate(call, "analyst", "low", sum(sizes), 600 * len(issues))
        if not issues:
            return Outcome(f"No issues filed in `{self.repository}` since {self.since_text}.\n", 0)
        if not await self._go_ahead(f"Triage {len(issues)} issues of {self.repository}", estimate, model):
            return Outcome("Not run: not confirmed.\n", 0, "not confirmed")
        pairs: list[tuple[evaluation.IssueTruth, evaluation.TriagePrediction]] = []
        stopped = ""
        per_issue = estimate / len(issues)
        for issue in issues:
            if self._over(per_issue):
                stopped = f"stopped at --max-cost ${self.max_cost:.2f} after {len(pairs)} issues"
                break
            truth = evaluation.issue_truth(issue, await self._duplicate_comments(repo, issue), sorted(areas))
            try:
                answer = await triage_flow.analyse(
                    self.llm,
                    call,
                    issue,
                    others=evaluation.open_then(issue, issues),
                    areas=areas,
                    max_body_chars=rules.feedback.max_body_chars,
                )
            except BudgetExceeded as exc:
                stopped = f"stopped by the weekly budget after {len(pairs)} issues: {exc.reason}"
                break
            self.spent += answer.cost
            value = answer.value
            pairs.append(
                (
                    truth,
                    evaluation.TriagePrediction(
                        truth.number,
                        value.category,
                        str(getattr(value, "area", "unknown")),
                        bool(value.questions),
                        tuple(getattr(value, "duplicates", [])),
                        value.confidence,
                        answer.input_tokens + answer.output_tokens,
                        answer.cost,
                    ),
                )
            )
        result = evaluation.evaluate_triage(pairs)
        report = evaluation.triage_report(self.repository, self.web, self.since_text, result)
        if stopped:
            report += f"\nThe run {stopped}.\n"
        numbers = {
            name: {
                "agree": f.agree,
                "total": f.total,
                "confusion": {f"{t}>{p}": n for (t, p), n in f.confusion.items()},
            }
            for name, f in result.fields.items()
        }
        return Outcome(report, len(pairs), stopped, numbers)

    async def _issues(self, repo: RepoClient) -> list[Issue]:
        """Issues (not pull requests, not bots', not Autopack's digests) filed since `since`."""
        listed = await repo.pages(
            "issues",
            limit=max(self.limit * 3, 100),
            params={"state": "all", "sort": "created", "direction": "desc", "since": self._iso()},
        )
        since = self._iso()
        kept = [
            i
            for i in issues_in(listed)
            if (i.created_at or "") >= since
            and (i.user is None or i.user.type != "Bot")
            and "autopack:digest" not in evaluation.label_names(i)
        ]
        return sorted(kept, key=lambda i: i.created_at or "")[-self.limit :]

    async def _duplicate_comments(self, repo: RepoClient, issue: Issue) -> list[Comment]:
        return await repo.issue_comments(issue.number) if evaluation.closed_as_duplicate(issue) else []

    # ---- the audit -----------------------------------------------------------------------------

    async def audit(self) -> Outcome:
        ctx = await self._context()
        repo = await ctx.repo()
        rules = (await ctx.policy()).policy
        extra = {str(k): list(v) for k, v in rules.audit.categories.items()}
        pulls = await self._merged_pulls(repo)
        if not pulls:
            return Outcome(f"No pull requests merged in `{self.repository}` since {self.since_text}.\n", 0)
        files_of = {int(p["number"]): await repo.pull_files(int(p["number"])) for p in pulls}
        estimate, model = 0.0, ""
        for p in pulls:
            files = files_of[int(p["number"])]
            found = audit.categories(files, extra)
            lines = sum(f.additions + f.deletions for f in files)
            call = CallMeta(
                ctx.installation_id, repo.full_name, "audit", "auditor", audit.primary_category(found)
            )
            tokens = min(TASK_INPUT_BUDGET["audit"], 3_000 + 12 * lines)
            model, cost = await self.llm.estimate(
                call, "auditor", audit.complexity(files, found), tokens, 1_500
            )
            estimate += cost
        if not await self._go_ahead(
            f"Audit {len(pulls)} merged pull requests of {self.repository}", estimate, model
        ):
            return Outcome("Not run: not confirmed.\n", 0, "not confirmed")
        later = await repo.pages(
            "commits", limit=1_000, params={"since": min(str(p["merged_at"]) for p in pulls)}
        )
        evaluated: list[evaluation.PullEvaluation] = []
        stopped = ""
        bot = await repo.bot_login()
        for p in pulls:
            number = int(p["number"])
            if self._over(estimate / len(pulls)):
                stopped = f"stopped at --max-cost ${self.max_cost:.2f} after {len(evaluated)} pull requests"
                break
            files = files_of[number]
            commits = await repo.pull_commits(number)
            try:
                report = await audit_flow.audit_change(
                    ctx,
                    repo,
                    rules,
                    files=files,
                    head=str(p["head"]["sha"]),
                    title=str(p.get("title") or ""),
                    body=str(p.get("body") or ""),
                    commit_messages=[c.message for c in commits],
                    reported=set(),
                )
            except BudgetExceeded as exc:
                stopped = f"stopped by the weekly budget after {len(evaluated)} pull requests: {exc.reason}"
                break
            self.spent += report.cost
            after = [c for c in later if _commit_date(c) > str(p["merged_at"])]
            fixes = []
            for commit in evaluation.fixes_of(number, str(p.get("title") or ""), after):
                detail = await repo.gh.arequest(
                    "GET", f"/repos/{repo.full_name}/commits/{commit['sha']}", params={"per_page": 100}
                )
                paths = tuple(str(f["filename"]) for f in detail.json().get("files") or [])
                fixes.append((str(commit["sha"]), paths))
            comments = await repo.pages(f"pulls/{number}/comments", limit=1_000)
            evaluated.append(
                evaluation.PullEvaluation(
                    number,
                    str(p.get("title") or ""),
                    audit.primary_category(audit.categories(files, extra)),
                    tuple(
                        evaluation.Span(str(a["path"]), int(a["start_line"]), int(a["end_line"]))
                        for a in report.annotations
                    ),
                    tuple(evaluation.human_comments(comments, bot)),
                    tuple(fixes),
                    report.tokens,
                    report.cost,
                )
            )
        report_text = evaluation.audit_report(self.repository, self.web, self.since_text, evaluated)
        if stopped:
            report_text += f"\nThe run {stopped}.\n"
        proxies = evaluation.audit_proxies(evaluated)
        numbers = {name: vars(x) for name, x in proxies.items()}
        return Outcome(report_text, len(evaluated), stopped, numbers)

    async def _merged_pulls(self, repo: RepoClient) -> list[dict[str, Any]]:
        listed = await repo.pages(
            "pulls",
            limit=max(self.limit * 3, 100),
            params={"state": "closed", "sort": "updated", "direction": "desc"},
        )
        since = self._iso()
        merged = [p for p in listed if p.get("merged_at") and str(p["merged_at"]) >= since]
        return sorted(merged, key=lambda p: str(p["merged_at"]))[-self.limit :]


def _commit_date(commit: dict[str, Any]) -> str:
    inner = commit.get("commit") or {}
    return str((inner.get("committer") or {}).get("date") or (inner.get("author") or {}).get("date") or "")
