"""Offline evaluation: how often triage and the audit agree with what a repository's maintainers did.
Pure: the runner (`app.flows.evaluate`) reads the history and asks the models; everything that
counts is here, table-tested.

Triage is compared field by field with the maintainers' labels and closures:
- category: a `type:*` label (Autopack's) or the usual names (`bug`, `enhancement`, `question`, …);
- area: an `area:*` label, or a label that is an area's name;
- needs-info: a needs-info label (`needs-info`, `needs more info`, `waiting for info`, …);
- duplicates: closed as a duplicate (GitHub's state reason or a `duplicate` label), and the issue a
  "Duplicate of #N" comment links.
An issue without a label for a field is left out of that field's numbers (nothing to compare).

The audit is compared, per merged pull request, with the review comments people left (same file and
overlapping lines: agreement) and with later commits whose message says they fix or revert it (a
finding on a file such a commit changed: agreement). Precision is the share of findings that agree
with something; recall the share of those human signals some finding matched. Both are proxies: a
person may have missed what the auditor found.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.events import Comment, Issue
from app.policy.markdown import neutral

CATEGORY_LABELS = {
    "type:bug": "bug",
    "bug": "bug",
    "type:feature": "feature_request",
    "feature": "feature_request",
    "feature request": "feature_request",
    "feature-request": "feature_request",
    "enhancement": "feature_request",
    "type:improvement": "improvement",
    "improvement": "improvement",
    "type:performance": "performance",
    "performance": "performance",
    "type:question": "question",
    "question": "question",
    "type:other": "other",
}
NEEDS_INFO_LABELS = frozenset(
    {
        "autopack:needs-info",
        "needs-info",
        "needs info",
        "needs more info",
        "more-info-needed",
        "more info needed",
        "waiting for info",
        "needs-repro",
        "needs reproduction",
        "needs-reproduction",
    }
)
DUPLICATE_LABELS = frozenset({"duplicate", "autopack:duplicate"})
_DUPLICATE_OF = re.compile(r"\bduplicate of #(\d+)\b", re.IGNORECASE)
WORST = 10


def label_names(issue: Issue) -> list[str]:
    return [label.name.strip().lower() for label in issue.labels]


@dataclass(frozen=True)
class IssueTruth:
    number: int
    title: str
    category: str | None
    area: str | None
    needs_info: bool
    duplicate: bool
    duplicate_of: int | None


def issue_truth(issue: Issue, comments: list[Comment], areas: list[str]) -> IssueTruth:
    """What the maintainers decided for one issue, from its labels, state and comments."""
    names = label_names(issue)
    category = next((CATEGORY_LABELS[n] for n in names if n in CATEGORY_LABELS), None)
    known = {a.lower(): a for a in areas}
    area = next(
        (known.get(n.removeprefix("area:"), n.removeprefix("area:")) for n in names if n.startswith("area:")),
        next((known[n] for n in names if n in known), None),
    )
    duplicate = closed_as_duplicate(issue)
    linked = None
    if duplicate:
        for comment in comments:
            found = _DUPLICATE_OF.search(comment.body or "")
            if found and int(found[1]) != issue.number:
                linked = int(found[1])
    return IssueTruth(
        issue.number,
        issue.title,
        category,
        area,
        any(n in NEEDS_INFO_LABELS for n in names),
        duplicate,
        linked,
    )


def closed_as_duplicate(issue: Issue) -> bool:
    return issue.state_reason == "duplicate" or any(n in DUPLICATE_LABELS for n in label_names(issue))


def open_then(issue: Issue, issues: list[Issue]) -> list[Issue]:
    """The other issues that were open when `issue` was filed (created before it, not closed
    before it): the duplicates triage could have named then."""
    filed = issue.created_at or ""
    return [
        o
        for o in issues
        if o.number != issue.number
        and (o.created_at or "") < filed
        and (not o.closed_at or o.closed_at > filed)
    ]


@dataclass(frozen=True)
class TriagePrediction:
    number: int
    category: str
    area: str
    needs_info: bool
    duplicates: tuple[int, ...]
    confidence: float
    tokens: int
    cost: float


@dataclass
class FieldScore:
    """Agreement of one field, with per-class precision and recall and the confusion counts."""

    name: str
    agree: int = 0
    total: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)  # (truth, predicted) → n

    def add(self, truth: str, predicted: str) -> None:
        self.total += 1
        self.agree += truth == predicted
        self.confusion[(truth, predicted)] += 1

    @property
    def agreement(self) -> float | None:
        return self.agree / self.total if self.total else None

    def classes(self) -> list[str]:
        return sorted({c for pair in self.confusion for c in pair})

    def precision(self, cls: str) -> float | None:
        predicted = sum(n for (_, p), n in self.confusion.items() if p == cls)
        return self.confusion[(cls, cls)] / predicted if predicted else None

    def recall(self, cls: str) -> float | None:
        actual = sum(n for (t, _), n in self.confusion.items() if t == cls)
        return self.confusion[(cls, cls)] / actual if actual else None


@dataclass
class TriageEvaluation:
    fields: dict[str, FieldScore]
    linked_right: int  # duplicates whose linked issue the prediction named
    linked_total: int
    issues: int
    tokens: int
    cost: float
    worst: list[tuple[IssueTruth, TriagePrediction, list[str]]]


def evaluate_triage(pairs: list[tuple[IssueTruth, TriagePrediction]]) -> TriageEvaluation:
    fields = {name: FieldScore(name) for name in ("category", "area", "needs_info", "duplicate")}
    linked_right = linked_total = 0
    wrong: list[tuple[IssueTruth, TriagePrediction, list[str]]] = []
    for truth, predicted in pairs:
        missed: list[str] = []
        if truth.category is not None:
            fields["category"].add(truth.category, predicted.category)
            if truth.category != predicted.category:
                missed.append(f"category: {predicted.category}, maintainers: {truth.category}")
        if truth.area is not None:
            fields["area"].add(truth.area, predicted.area)
            if truth.area != predicted.area:
                missed.append(f"area: {predicted.area}, maintainers: {truth.area}")
        fields["needs_info"].add(_yes(truth.needs_info), _yes(predicted.needs_info))
        if truth.needs_info != predicted.needs_info:
            missed.append(f"needs info: {_yes(predicted.needs_info)}, maintainers: {_yes(truth.needs_info)}")
        fields["duplicate"].add(_yes(truth.duplicate), _yes(bool(predicted.duplicates)))
        if truth.duplicate != bool(predicted.duplicates):
            named = ", ".join(f"#{n}" for n in predicted.duplicates) or "none"
            of = f" of #{truth.duplicate_of}" if truth.duplicate_of else ""
            missed.append(
                f"duplicate: {named}, maintainers: {'duplicate' + of if truth.duplicate else 'none'}"
            )
        if truth.duplicate_of is not None:
            linked_total += 1
            linked_right += truth.duplicate_of in predicted.duplicates
        if missed:
            wrong.append((truth, predicted, missed))
    wrong.sort(key=lambda w: (-len(w[2]), -w[1].confidence, w[0].number))
    return TriageEvaluation(
        fields,
        linked_right,
        linked_total,
        len(pairs),
        sum(p.tokens for _, p in pairs),
        sum(p.cost for _, p in pairs),
        wrong[:WORST],
    )


def _yes(value: bool) -> str:
    return "yes" if value else "no"


# ---- the audit ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    path: str
    start: int
    end: int

    def overlaps(self, other: Span) -> bool:
        return self.path == other.path and self.start <= other.end and other.start <= self.end


def human_comments(comments: list[dict[str, Any]], bot: str) -> list[Span]:
    """Review comments people left on a pull request (not bots', not Autopack's), as spans."""
    spans = []
    for c in comments:
        user = c.get("user") or {}
        login = str(user.get("login") or "")
        if login.lower() == bot.lower() or login.endswith("[bot]") or user.get("type") == "Bot":
            continue
        end = c.get("line") or c.get("original_line")
        if not c.get("path") or not end:
            continue
        start = c.get("start_line") or c.get("original_start_line") or end
        spans.append(Span(str(c["path"]), int(start), int(end)))
    return spans


def fixes_of(number: int, title: str, commits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Later commits whose message says they fix or revert pull request `number`."""
    pr = re.compile(rf"#{number}\b")
    reverted = f'revert "{title.strip().lower()}"' if title.strip() else None
    found = []
    for commit in commits:
        message = str((commit.get("commit") or {}).get("message") or "")
        lower = message.lower()
        says_pr = bool(pr.search(message))
        if (reverted and lower.startswith(reverted)) or (
            says_pr and re.search(r"\b(revert(s|ed)?|fix(es|ed)?|hotfix)\b", lower)
        ):
            found.append(commit)
    return found


@dataclass(frozen=True)
class PullEvaluation:
    number: int
    title: str
    category: str
    findings: tuple[Span, ...]
    comments: tuple[Span, ...]
    fixes: tuple[tuple[str, tuple[str, ...]], ...]  # (sha, paths it changed)
    tokens: int = 0
    cost: float = 0.0

    def agreeing(self) -> int:
        fixed = {p for _, paths in self.fixes for p in paths}
        return sum(1 for f in self.findings if f.path in fixed or any(f.overlaps(c) for c in self.comments))

    def matched(self) -> int:
        comments = sum(1 for c in self.comments if any(f.overlaps(c) for f in self.findings))
        fixes = sum(1 for _, paths in self.fixes if any(f.path in paths for f in self.findings))
        return comments + fixes

    @property
    def signals(self) -> int:
        return len(self.comments) + len(self.fixes)


@dataclass(frozen=True)
class Proxy:
    findings: int
    agreeing: int
    signals: int
    matched: int

    @property
    def precision(self) -> float | None:
        return self.agreeing / self.findings if self.findings else None

    @property
    def recall(self) -> float | None:
        return self.matched / self.signals if self.signals else None


def audit_proxies(pulls: list[PullEvaluation]) -> dict[str, Proxy]:
    """Per category (the pull request's riskiest) and `all`."""
    groups: dict[str, list[PullEvaluation]] = {"all": list(pulls)}
    for p in pulls:
        groups.setdefault(p.category, []).append(p)
    return {
        name: Proxy(
            sum(len(p.findings) for p in items),
            sum(p.agreeing() for p in items),
            sum(p.signals for p in items),
            sum(p.matched() for p in items),
        )
        for name, items in groups.items()
    }


# ---- reports -----------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def triage_report(repository: str, web: str, since: str, result: TriageEvaluation) -> str:
    """The Markdown report of `autopack eval triage`."""
    lines = [
        f"# Triage evaluation of `{repository}`",
        "",
        f"{result.issues} issues filed since {since}, triaged again with writes disabled and compared "
        "with what the maintainers did. "
        f"Tokens: {result.tokens:,}; cost: ${result.cost:.4f}.",
        "",
        "| field | compared | agreement |",
        "|---|---:|---:|",
    ]
    lines += [f"| {f.name} | {f.total} | {_pct(f.agreement)} |" for f in result.fields.values()]
    if result.linked_total:
        lines += ["", f"Duplicates that named the issue the maintainers linked: "
                  f"{result.linked_right} of {result.linked_total}."]  # fmt: skip
    for score in result.fields.values():
        if not score.total:
            continue
        classes = score.classes()
        lines += ["", f"## {score.name}", "", "| class | precision | recall |", "|---|---:|---:|"]
        lines += [f"| {c} | {_pct(score.precision(c))} | {_pct(score.recall(c))} |" for c in classes]
        lines += ["", "Confusion (rows: maintainers, columns: triage):", ""]
        lines += ["| | " + " | ".join(classes) + " |", "|---|" + "---:|" * len(classes)]
        lines += [
            f"| **{t}** | " + " | ".join(str(score.confusion[(t, p)]) for p in classes) + " |"
            for t in classes
        ]
    lines += ["", "## Worst disagreements", ""]
    lines += [
        f"- [#{t.number}]({web}/{repository}/issues/{t.number}) {neutral(t.title)[:80]} "
        f"(confidence {p.confidence:.0%}): " + "; ".join(missed)
        for t, p, missed in result.worst
    ] or ["- none"]
    return "\n".join(lines) + "\n"


def audit_report(repository: str, web: str, since: str, pulls: list[PullEvaluation]) -> str:
    """The Markdown report of `autopack eval audit`."""
    proxies = audit_proxies(pulls)
    lines = [
        f"# Audit evaluation of `{repository}`",
        "",
        f"{len(pulls)} pull requests merged since {since}, audited again with writes disabled. A finding "
        "agrees when a person commented on an overlapping line of the same file, or a later commit that "
        "fixes or reverts the pull request changed its file. "
        f"Tokens: {sum(p.tokens for p in pulls):,}; cost: ${sum(p.cost for p in pulls):.4f}.",
        "",
        "| category | findings | agreeing | precision | human signals | matched | recall |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ["all", *sorted(n for n in proxies if n != "all")]:
        x = proxies[name]
        lines.append(
            f"| {name} | {x.findings} | {x.agreeing} | {_pct(x.precision)} | {x.signals} | {x.matched} "
            f"| {_pct(x.recall)} |"
        )
    lines += ["", "## Pull requests", ""]
    lines += [
        f"- [#{p.number}]({web}/{repository}/pull/{p.number}) {neutral(p.title)[:80]}: {len(p.findings)} "
        f"findings, {p.agreeing()} agreeing; {len(p.comments)} review comments, {len(p.fixes)} fix or "
        f"revert commits, {p.matched()} matched"
        for p in sorted(pulls, key=lambda p: (p.agreeing() - len(p.findings), p.number))
    ] or ["- none"]
    return "\n".join(lines) + "\n"
