"""What Autopack did, waits for, failed at and costs: one summary for `/status` and `autopack status`.

Read from the database every process shares (deliveries, jobs, proposals, the usage ledger, the
installations' rate limits), so a web-only receiver shows the workers' state too. Error texts went
through the log redactor before they were stored; they are redacted again here.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from app.inbox.db import Tx
from app.inbox.store import Inbox
from app.llm.config import Routing
from app.llm.ledger import week_start
from app.logs import redactor
from app.policy import secrets

DAY = 86_400
OPEN_PROPOSAL_STATES = (
    "building", "awaiting_test_ci", "awaiting_fix_ci", "auditing", "ready", "not_reproduced",
    "unverified", "handed_over", "revising",
)  # fmt: skip


@dataclass(frozen=True)
class DeadJob:
    id: int
    flow: str
    subject: str
    attempts: int
    finished_at: float | None
    error: str


@dataclass(frozen=True)
class OpenProposal:
    repository: str
    issue: int
    status: str
    pr_number: int | None
    gate: str


@dataclass(frozen=True)
class Spend:
    key: str  # a provider or a repository
    tokens: int
    cost: float
    cap: int | None = None

    @property
    def share(self) -> float | None:
        return self.tokens / self.cap if self.cap else None


@dataclass(frozen=True)
class RateLimitRow:
    installation_id: int
    account: str
    remaining: int
    limit: int
    reset: float
    seen_at: float


@dataclass(frozen=True)
class Summary:
    generated_at: float
    deliveries_24h: dict[str, int]
    jobs_24h: dict[str, int]
    deliveries_by_hour: list[int]  # 24 values, oldest hour first
    queued_now: int
    oldest_queued_age: float
    dead_jobs: list[DeadJob]
    proposals: list[OpenProposal]
    week: str
    providers: list[Spend]
    repositories: list[Spend]
    rate_limits: list[RateLimitRow] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["providers"] = [{**asdict(s), "share": s.share} for s in self.providers]
        data["repositories"] = [{**asdict(s), "share": s.share} for s in self.repositories]
        return data


def clean(text: str | None) -> str:
    """An error as it may be shown: secrets and credentials out, one short paragraph."""
    return secrets.redact(redactor.text(text or ""))[:600]


async def gather(inbox: Inbox, routing: Routing | None, *, now: float | None = None) -> Summary:
    now = time.time() if now is None else now
    since = now - DAY
    week = week_start(now).isoformat()

    def op(tx: Tx) -> Summary:
        deliveries = {
            r["status"]: int(r["n"])
            for r in tx.fetchall(
                "SELECT status, COUNT(*) AS n FROM deliveries WHERE received_at >= ? GROUP BY status",
                (since,),
            )
        }
        jobs = {
            r["status"]: int(r["n"])
            for r in tx.fetchall(
                "SELECT status, COUNT(*) AS n FROM jobs "
                "WHERE created_at >= ? OR status IN ('queued', 'running') GROUP BY status",
                (since,),
            )
        }
        hours = [0] * 24
        for r in tx.fetchall("SELECT received_at FROM deliveries WHERE received_at >= ?", (since,)):
            index = min(23, int((float(r["received_at"]) - since) // 3600))
            hours[index] += 1
        oldest = tx.fetchone(
            "SELECT MIN(run_at) AS t, COUNT(*) AS n FROM jobs WHERE status = 'queued' AND run_at <= ?", (now,)
        )
        dead = [
            DeadJob(
                int(r["id"]),
                str(r["flow"]),
                str(r["subject"]),
                int(r["attempts"]),
                r["finished_at"],
                clean(r["last_error"]),
            )
            for r in tx.fetchall(
                "SELECT id, flow, subject, attempts, finished_at, last_error FROM jobs WHERE status = 'dead' "
                "ORDER BY finished_at DESC LIMIT 50"
            )
        ]
        marks = ", ".join("?" for _ in OPEN_PROPOSAL_STATES)
        proposals = []
        for r in tx.fetchall(
            f"SELECT repository, issue_number, status, pr_number, data FROM proposals "  # noqa: S608
            f"WHERE status IN ({marks}) ORDER BY updated_at DESC LIMIT 100",
            OPEN_PROPOSAL_STATES,
        ):
            gate = str(json.loads(r["data"]).get("gate_status") or "")
            proposals.append(
                OpenProposal(
                    str(r["repository"]), int(r["issue_number"]), str(r["status"]), r["pr_number"], gate
                )
            )
        counted = "input_tokens + output_tokens"
        by_provider = tx.fetchall(
            f"SELECT provider AS key, COALESCE(SUM({counted}), 0) AS tokens, "  # noqa: S608
            "COALESCE(SUM(cost), 0) AS cost "
            "FROM llm_usage WHERE week = ? AND outcome <> 'reserved' GROUP BY provider ORDER BY provider",
            (week,),
        )
        by_repo = tx.fetchall(
            f"SELECT repository AS key, COALESCE(SUM({counted}), 0) AS tokens, "  # noqa: S608
            "COALESCE(SUM(cost), 0) AS cost "
            "FROM llm_usage WHERE week = ? AND outcome <> 'reserved' AND repository IS NOT NULL "
            "GROUP BY repository ORDER BY tokens DESC LIMIT 50",
            (week,),
        )
        limits = tx.fetchall(
            "SELECT r.installation_id, COALESCE(i.account_login, '') AS account, r.remaining, r.rate_limit, "
            "r.reset_at, r.seen_at FROM github_rate_limits r LEFT JOIN installations i "
            "ON i.id = r.installation_id ORDER BY r.remaining"
        )
        quotas = routing.provider_quotas if routing else {}
        budgets = routing.budgets if routing else None
        return Summary(
            generated_at=now,
            deliveries_24h=deliveries,
            jobs_24h=jobs,
            deliveries_by_hour=hours,
            queued_now=int(oldest["n"]) if oldest else 0,
            oldest_queued_age=max(0.0, now - float(oldest["t"])) if oldest and oldest["t"] else 0.0,
            dead_jobs=dead,
            proposals=proposals,
            week=week,
            providers=[
                Spend(
                    str(r["key"]),
                    int(r["tokens"]),
                    float(r["cost"]),
                    quotas[r["key"]].weekly_token_cap if r["key"] in quotas else None,
                )
                for r in by_provider
            ],
            repositories=[
                Spend(
                    str(r["key"]),
                    int(r["tokens"]),
                    float(r["cost"]),
                    budgets.repositories.get(str(r["key"]), budgets.repository_weekly_tokens)
                    if budgets
                    else None,
                )
                for r in by_repo
            ],
            rate_limits=[
                RateLimitRow(
                    int(r["installation_id"]),
                    str(r["account"]),
                    int(r["remaining"]),
                    int(r["rate_limit"]),
                    float(r["reset_at"]),
                    float(r["seen_at"]),
                )
                for r in limits
            ],
        )

    return await inbox.db.run(op)


def refresh_gauges(summary: Summary, routing: Routing | None, catalogue: Any | None) -> None:
    """The gauges the alerts read: budget shares, and days until each routed model shuts down."""
    from app import metrics

    for kind, rows in (("provider", summary.providers), ("repository", summary.repositories)):
        for row in rows:
            if row.share is not None:
                metrics.LLM_BUDGET_USED.labels(kind, row.key).set(row.share)
    if routing is None or catalogue is None:
        return
    today = dt.datetime.fromtimestamp(summary.generated_at, dt.UTC).date()
    for model in {m for _, m in routing.named_models()}:
        info = catalogue.get(model)
        if info is not None and info.shutdown is not None:
            metrics.MODEL_SHUTDOWN_DAYS.labels(model).set((info.shutdown - today).days)


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def render_text(summary: Summary) -> str:
    """The summary for a terminal (`autopack status`)."""
    when = dt.datetime.fromtimestamp(summary.generated_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Autopack status at {when}", ""]
    lines.append(
        "Last 24 hours: deliveries "
        + (", ".join(f"{k} {v}" for k, v in sorted(summary.deliveries_24h.items())) or "none")
    )
    lines.append("Jobs: " + (", ".join(f"{k} {v}" for k, v in sorted(summary.jobs_24h.items())) or "none"))
    lines.append(
        f"Queued and due now: {summary.queued_now}; oldest waiting {_ago(summary.oldest_queued_age)}"
        if summary.queued_now
        else "Queued and due now: 0"
    )
    lines += ["", f"Dead jobs: {len(summary.dead_jobs)}"]
    for job in summary.dead_jobs[:20]:
        lines.append(f"  #{job.id} {job.flow} {job.subject} after {job.attempts} attempts: {job.error[:200]}")
    lines += ["", f"Open proposals: {len(summary.proposals)}"]
    for p in summary.proposals[:20]:
        pr = f" PR #{p.pr_number}" if p.pr_number else ""
        lines.append(f"  {p.repository}#{p.issue}{pr}: {p.status}" + (f" — {p.gate}" if p.gate else ""))
    lines += ["", f"Budget week {summary.week}:"]
    for s in summary.providers:
        cap = f" of {s.cap:,} ({s.share:.0%})" if s.cap and s.share is not None else ""
        lines.append(f"  {s.key}: {s.tokens:,} tokens{cap}, ${s.cost:.4f}")
    for s in summary.repositories[:20]:
        cap = f" of {s.cap:,} ({s.share:.0%})" if s.cap and s.share is not None else ""
        lines.append(f"  {s.key}: {s.tokens:,} tokens{cap}, ${s.cost:.4f}")
    lines += ["", "GitHub rate limit by installation:"]
    for r in summary.rate_limits or []:
        lines.append(f"  {r.account or r.installation_id}: {r.remaining:,} of {r.limit:,} left")
    if not summary.rate_limits:
        lines.append("  (no response seen yet)")
    return "\n".join(lines)
