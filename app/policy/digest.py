"""The weekly feedback digest: when it runs, what the analyst may answer, how clusters rank. Pure.

The analyst groups the listed feedback into themes and estimates how feasible each is; it may only
name issue numbers it was given (the schema's enum, and code drops duplicates). Impact is computed
here from data — distinct reporters, the worst severity, reactions — and the ranking is impact ×
feasibility, so no model sentence decides what comes first.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from app.policy.markdown import neutral

DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_SCHEDULE = re.compile(r"^(MON|TUE|WED|THU|FRI|SAT|SUN) ([01]\d|2[0-3]):([0-5]\d)$")
SEVERITY_WEIGHT = {"critical": 4, "high": 3, "medium": 2, "low": 1}
RECORDS_PER_BATCH = 120


def check_schedule(text: str) -> str:
    if not _SCHEDULE.match(text):
        raise ValueError("use a day and a UTC time like `MON 06:00`")
    return text


def week_start(ts: float) -> dt.datetime:
    day = dt.datetime.fromtimestamp(ts, dt.UTC).date()
    monday = day - dt.timedelta(days=day.weekday())
    return dt.datetime(monday.year, monday.month, monday.day, tzinfo=dt.UTC)


def iso_week(ts: float) -> str:
    year, week, _ = dt.datetime.fromtimestamp(ts, dt.UTC).isocalendar()
    return f"{year}-W{week:02d}"


def due_at(schedule: str, ts: float) -> float:
    """When this week's digest is due (the week of `ts`, Monday 00:00 UTC onwards)."""
    match = _SCHEDULE.match(schedule)
    assert match is not None
    start = week_start(ts) + dt.timedelta(
        days=DAYS.index(match[1]), hours=int(match[2]), minutes=int(match[3])
    )
    return start.timestamp()


# ---- what the analyst sees and answers ---------------------------------------------------------


@dataclass(frozen=True)
class Record:
    number: int
    title: str
    summary: str
    category: str
    severity: str
    area: str
    reactions: int
    reporter: str

    def line(self) -> str:
        return (
            f"#{self.number} [{self.category}/{self.severity}/{self.area}, {self.reactions} reactions] "
            f"{self.title[:120]} — {self.summary[:240]}"
        )


class ClusterBase(BaseModel):
    theme: str = Field(max_length=120, description="The common problem, in a few words.")
    area: str = Field(max_length=60)
    feasibility: int = Field(ge=1, le=5, description="5: a small, clear change; 1: large or unclear.")
    why: str = Field(max_length=300, description="One line: what the issues share.")


def clusters_schema(numbers: list[int]) -> type[BaseModel]:
    """The answer's schema for one batch: clusters may only list the numbers that were sent."""
    literal: Any = Literal
    member = literal.__getitem__(tuple(numbers))
    cluster = create_model(
        "Cluster",
        __base__=ClusterBase,
        issues=(list[member], Field(min_length=1, max_length=50)),  # type: ignore[valid-type]
    )
    return create_model("Clusters", clusters=(list[cluster], Field(max_length=20)))  # type: ignore[valid-type]


@dataclass(frozen=True)
class Cluster:
    theme: str
    area: str
    issues: tuple[int, ...]
    feasibility: int
    why: str
    impact: float = 0.0

    @property
    def score(self) -> float:
        return round(self.impact * self.feasibility, 2)


def impact(records: Iterable[Record]) -> float:
    """From data only: distinct reporters, the worst severity, reactions (dampened)."""
    items = list(records)
    if not items:
        return 0.0
    reporters = len({r.reporter for r in items})
    worst = max(SEVERITY_WEIGHT.get(r.severity, 1) for r in items)
    reactions = sum(r.reactions for r in items)
    return round(reporters + 2 * worst + math.log2(1 + reactions), 2)


def rank(answers: Iterable[dict[str, Any]], records: dict[int, Record]) -> list[Cluster]:
    """Merge the batches' clusters (same area and theme), drop numbers not sent or already placed,
    compute impact, and order by impact × feasibility (ties: more issues first, then theme)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    placed: set[int] = set()
    for item in answers:
        issues = [n for n in item["issues"] if n in records and n not in placed]
        if not issues:
            continue
        placed.update(issues)
        key = (str(item["area"]).strip().lower(), str(item["theme"]).strip().lower())
        if key in merged:
            merged[key]["issues"] += issues
            merged[key]["feasibility"] = min(merged[key]["feasibility"], int(item["feasibility"]))
        else:
            merged[key] = {**item, "issues": issues}
    clusters = [
        Cluster(
            theme=str(c["theme"]),
            area=str(c["area"]),
            issues=tuple(c["issues"]),
            feasibility=int(c["feasibility"]),
            why=str(c["why"]),
            impact=impact(records[n] for n in c["issues"]),
        )
        for c in merged.values()
    ]
    return sorted(clusters, key=lambda c: (-c.score, -len(c.issues), c.theme.lower()))


def representative(cluster: Cluster, records: dict[int, Record]) -> int:
    """The issue a proposal for the cluster starts from: the worst severity, then most reactions."""
    return max(
        cluster.issues,
        key=lambda n: (SEVERITY_WEIGHT.get(records[n].severity, 1), records[n].reactions, -n),
    )


def batches(records: list[Record], size: int = RECORDS_PER_BATCH) -> list[list[Record]]:
    """Records grouped by area (so a theme rarely spans batches), cut to `size`."""
    ordered = sorted(records, key=lambda r: (r.area, r.number))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


# ---- the digest issue ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Shipped:
    pr: int
    issue: int
    title: str


@dataclass(frozen=True)
class Rejected:
    pr: int | None
    issue: int
    reason: str


@dataclass(frozen=True)
class WeekPoint:
    week: str  # the Monday, ISO date
    feedback: int  # feedback issues triaged that week
    cost: float  # LLM cost of the repository that week, USD


def trend_chart(points: list[WeekPoint]) -> str:
    """Feedback volume and cost per week as Mermaid charts (GitHub renders them in issues)."""
    if len(points) < 2:
        return ""
    labels = ", ".join(f'"{p.week[5:]}"' for p in points)  # MM-DD of each Monday
    top_issues = max(1, max(p.feedback for p in points))
    top_cost = max(0.01, max(p.cost for p in points))
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            '    title "Feedback issues triaged per week"',
            f"    x-axis [{labels}]",
            f'    y-axis "issues" 0 --> {top_issues}',
            f"    bar [{', '.join(str(p.feedback) for p in points)}]",
            "```",
            "",
            "```mermaid",
            "xychart-beta",
            '    title "LLM cost per week (USD)"',
            f"    x-axis [{labels}]",
            f'    y-axis "USD" 0 --> {top_cost:.2f}',
            f"    line [{', '.join(f'{p.cost:.4f}' for p in points)}]",
            "```",
        ]
    )


def render(
    *,
    week: str,
    clusters: list[Cluster],
    shipped: list[Shipped],
    rejected: list[Rejected],
    cost: float,
    tokens: int,
    proposed: list[int],
    model: str | None,
    trend: list[WeekPoint] | None = None,
    shadow: dict[str, dict[str, int]] | None = None,
) -> str:
    lines = [
        f"Autopack's digest of this repository's user feedback for **{week}**: themes ranked by "
        "impact (reporters, severity, reactions) × feasibility.",
        "",
        "## Themes",
        "",
    ]
    if clusters:
        lines += ["| # | theme | area | issues | impact × feasibility |", "|---:|---|---|---|---:|"]
        for i, c in enumerate(clusters, 1):
            issues = ", ".join(f"#{n}" for n in c.issues[:15]) + (" …" if len(c.issues) > 15 else "")
            lines.append(
                f"| {i} | {neutral(c.theme)} | {neutral(c.area)} | {issues} | "
                f"{c.impact:g} × {c.feasibility} = **{c.score:g}** |"
            )
    else:
        lines.append("No open feedback to group this week.")
    if proposed:
        lines += ["", "Proposals started from this digest: " + ", ".join(f"#{n}" for n in proposed) + "."]
    lines += ["", "## Shipped last week", ""]
    lines += [f"- #{s.pr} ({neutral(s.title)}), for #{s.issue}" for s in shipped] or ["- nothing"]
    lines += ["", "## Rejected last week", ""]
    lines += [
        f"- {f'#{r.pr}' if r.pr else 'a proposal'} for #{r.issue}: "
        f"{neutral(r.reason)[:200] or 'no reason given'}"
        for r in rejected
    ] or ["- nothing"]
    if shadow:
        lines += [
            "",
            "## In shadow mode this week",
            "",
            "What flows in shadow mode decided and would have written (nothing was written; "
            "`autopack shadow --repo` lists each decision):",
            "",
        ]
        lines += [
            f"- {neutral(flow)}: " + ", ".join(f"{n} {neutral(kind)}" for kind, n in kinds.items())
            for flow, kinds in sorted(shadow.items())
        ]
    chart = trend_chart(trend or [])
    if chart:
        lines += ["", "## Feedback and cost per week", "", chart]
    lines += [
        "",
        f"<details><summary>Cost</summary>\n\nThis week's LLM use for this repository so far: "
        f"{tokens:,} tokens, ${cost:.4f}"
        + (f"; the digest's model: `{model}`" if model else "")
        + ".\n\n</details>",
    ]
    return "\n".join(lines)
