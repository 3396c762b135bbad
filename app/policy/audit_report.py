"""An audit's report, decided from the change and the models' opinions. Pure.

The audit flow (`app.flows.audit`) gathers the change and asks the routed auditors; everything it
then posts — the verdict, which findings are new, above the repository's floors and not dismissed,
where each goes (a line comment or the summary), the review's and the check run's text — is decided
here by `assess`, and rendered by `render_summary`. The same report is stored (`AuditReports`) so a
retry posts what is missing instead of asking the models again, and a proposal's audit before its
push (`app.flows.building`) acts on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.policy import audit, dismissals, hidden_text, secrets
from app.policy.diff import FileDiff
from app.policy.markdown import neutral


@dataclass(frozen=True)
class Scope:
    """What the code alone reads from the change: its categories, complexity and risk, which also
    route the model calls."""

    found: tuple[str, ...]
    level: audit.Complexity
    risk: audit.Risk
    category: str

    @classmethod
    def of(cls, files: list[FileDiff], extra: dict[str, list[str]]) -> Scope:
        found = audit.categories(files, extra)
        return cls(
            found, audit.complexity(files, found), audit.risk(files, found), audit.primary_category(found)
        )


@dataclass(frozen=True)
class Opinion:
    """One auditor's answer, with what it cost (shown in the report's details)."""

    role: str
    model: str
    answer: audit.AuditAnswer
    tokens: int
    cost: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """The change as the auditors saw it: the head, its files, and what the budget left out."""

    head: str
    files: list[FileDiff]
    scope: Scope
    omitted: tuple[str, ...] = ()  # not audited, to fit the budget
    summarised: tuple[str, ...] = ()  # summarised, not sent


@dataclass(frozen=True)
class AuditReport:
    """What one audit of one head posts: a review (when it has something to say) and a check run."""

    verdict: str
    review: bool  # whether a review is posted at all (a quiet approval posts none)
    marker: str  # the review's hidden marker: head, every print reported so far, verdict
    summary: str
    comments: tuple[dict[str, Any], ...]  # line comments, as GitHub's review API takes them
    prints: tuple[str, ...]  # every finding's dismissal print, dismissed or under the floors
    # The summary with the line comments folded in: GitHub may place a line differently than our
    # reading of the diff, and then nothing is lost.
    summary_without_comments: str
    title: str  # the check run's title
    annotations: tuple[dict[str, Any], ...]
    findings: tuple[str, ...]  # medium and above, for a proposal's revise round
    tokens: int = 0
    cost: float = 0.0
    resolve: tuple[str, ...] = ()  # Autopack's threads whose finding the head no longer has

    @property
    def check_summary(self) -> str:
        return self.summary_without_comments or self.summary

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "review": self.review,
            "marker": self.marker,
            "summary": self.summary,
            "comments": list(self.comments),
            "prints": list(self.prints),
            "summary_without_comments": self.summary_without_comments,
            "title": self.title,
            "annotations": list(self.annotations),
            "usage": {"tokens": self.tokens, "cost": self.cost},
            "findings": list(self.findings),
            "resolve": list(self.resolve),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuditReport:
        """A stored report; older records lack the later keys (a review is then assumed)."""
        usage = data.get("usage") or {}
        return cls(
            verdict=str(data["verdict"]),
            review=bool(data.get("review", True)),
            marker=str(data.get("marker") or ""),
            summary=str(data.get("summary") or ""),
            comments=tuple(data.get("comments") or ()),
            prints=tuple(data.get("prints") or ()),
            summary_without_comments=str(data.get("summary_without_comments") or ""),
            title=str(data.get("title") or ""),
            annotations=tuple(data.get("annotations") or ()),
            findings=tuple(data.get("findings") or ()),
            tokens=int(usage.get("tokens") or 0),
            cost=float(usage.get("cost") or 0),
            resolve=tuple(data.get("resolve") or ()),
        )


@dataclass(frozen=True)
class Shown:
    """Everything the summary says besides the findings it places."""

    head: str
    verdict: str
    disagreement: str | None
    scope: Scope
    opinions: Sequence[Opinion]
    omitted: tuple[str, ...]
    summarised: tuple[str, ...]
    repeated: int  # findings reported on an earlier commit that still apply
    left_out: tuple[int, int] = (0, 0)  # (under the floors, dismissed before)


def assess(
    change: Change,
    opinions: Sequence[Opinion],
    *,
    floors: audit.Floors,
    dismissed: set[str],
    reported: set[str],
) -> AuditReport:
    """The report for `change` from its auditors' `opinions` (the first is the routed auditor's):
    the stricter verdict, code-found findings no model can talk away, the floors, the prints this
    repository dismissed, what earlier reviews reported, and where each finding goes."""
    files = change.files
    verdict, disagreement = audit.consensus(
        opinions[0].answer.verdict, opinions[1].answer.verdict if len(opinions) > 1 else None
    )
    # Found by code, so no model can be talked out of them: instructions aimed at the reviewer, and
    # text a reviewer cannot see as it is (bidi controls, invisible characters, homoglyphs).
    instructions = [*audit.reviewer_instructions(files), *hidden_text.findings(files)]
    if instructions and verdict == "approve":
        # The change tries to steer or deceive its reviewer: whatever a model concluded, no approval.
        verdict = "comment"
    by_print: dict[str, audit.Finding] = {}
    for finding in [*instructions, *(f for o in opinions for f in o.answer.findings)]:
        by_print.setdefault(audit.fingerprint(finding), finding)
    prints = {
        key: dismissals.dismissal_print(
            f.title, f.path, dismissals.snippet(f.path, f.start_line, f.end_line, files)
        )
        for key, f in by_print.items()
    }
    over_floors = audit.keep(list(by_print.values()), floors)
    kept = [f for f in over_floors if prints[audit.fingerprint(f)] not in dismissed]
    fresh = audit.new_findings(kept, reported)
    placed = audit.place(fresh, files, floors)
    shown = Shown(
        change.head,
        verdict,
        disagreement,
        change.scope,
        opinions,
        change.omitted,
        change.summarised,
        repeated=len(kept) - len(fresh),
        left_out=(len(by_print) - len(over_floors), len(over_floors) - len(kept)),
    )
    reported_now = ",".join(sorted({*reported, *map(audit.fingerprint, fresh)}))
    return AuditReport(
        verdict=verdict,
        review=audit.speaks(verdict, fresh=len(fresh)),
        marker=f"<!-- autopack:audit:{change.head} fp={reported_now} v={verdict} -->",
        summary=render_summary(shown, placed),
        comments=tuple(line_comment(f, prints[audit.fingerprint(f)]) for f in placed.line_comments),
        prints=tuple(sorted(set(prints.values()))),
        summary_without_comments=render_summary(
            shown, audit.Placement((), (*placed.line_comments, *placed.in_summary))
        ),
        title=f"{verdict}: risk {change.scope.risk.score}/100, {len(fresh)} finding"
        + ("s" if len(fresh) != 1 else ""),
        annotations=tuple(a for batch in audit.annotation_batches(list(fresh)) for a in batch),
        findings=tuple(
            f"{f.severity} {f.path}:{f.start_line}-{f.end_line} {f.title}: {f.explanation}"[:600]
            for f in kept
            if audit.SEVERITY_RANK[f.severity] >= audit.SEVERITY_RANK["medium"]
        ),
        tokens=sum(o.tokens for o in opinions),
        cost=sum(o.cost for o in opinions),
    )


def line_comment(finding: audit.Finding, fp: str) -> dict[str, Any]:
    """A finding on its lines, marked with its dismissal print (a resolved thread, a 👎 or a
    `/autopack dismiss` reply is traced back to the finding by it)."""
    comment: dict[str, Any] = {
        "path": finding.path,
        "line": finding.end_line,
        "side": "RIGHT",
        "body": f"{audit.comment_body(finding)}\n\n{dismissals.marker(fp)}",
    }
    if finding.end_line > finding.start_line:
        comment.update(start_line=finding.start_line, start_side="RIGHT")
    return comment


def render_summary(shown: Shown, placed: audit.Placement) -> str:
    """The review's summary (and the check run's): the verdict and risk first, then the findings
    that have no line of their own, what was left out and why, and the models' details folded."""
    score = shown.scope.risk
    lines = [
        f"**Autopack audit** of `{shown.head[:7]}`: **{shown.verdict}** · risk **{score.score}/100** "
        f"· complexity {shown.scope.level}",
        f"Categories: {', '.join(shown.scope.found)}",
    ]
    if shown.disagreement:
        lines += ["", shown.disagreement]
    if placed.in_summary:
        lines += ["", "Findings outside the lines this diff shows:"]
        lines += [
            f"- **{f.severity}** `{neutral(f.path)}:{f.start_line}` {neutral(f.title)}: "
            f"{neutral(f.explanation)[:300]}"
            for f in placed.in_summary
        ]
    if not placed.line_comments and not placed.in_summary:
        lines += ["", "No new findings."]
    if shown.repeated:
        lines += [
            "",
            f"{shown.repeated} finding{'s' if shown.repeated != 1 else ''} reported on an earlier "
            "commit still apply.",
        ]
    below, dismissed = shown.left_out
    if below or dismissed:
        parts = [f"{below} under this repository's thresholds"] if below else []
        if dismissed:
            parts.append(f"{dismissed} dismissed here before (`/autopack learnings`)")
        lines += ["", f"Left out: {' and '.join(parts)}."]
    details = [f"- {reason}" for reason in score.reasons]
    for o in shown.opinions:
        details.append(
            f"- {o.role.replace('_', ' ')}: `{o.model}` ({o.answer.verdict}, confidence "
            f"{o.answer.confidence:.0%}), {o.tokens:,} tokens, ${o.cost:.4f}"
        )
        details += [f"- {note}" for note in o.notes]
    if shown.omitted:
        details.append("- not audited, to fit the budget: " + "; ".join(shown.omitted))
    if shown.summarised:
        details.append("- summarised, not sent: " + "; ".join(shown.summarised))
    lines += ["", "<details><summary>Risk, models and cost</summary>", "", *details, "", "</details>"]
    return "\n".join(lines)


# ---- the push audit ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckReport:
    """A check run's content: the push audit reports on the pushed commit, where no review exists."""

    conclusion: str
    title: str
    summary: str
    annotations: tuple[dict[str, Any], ...] = ()
    verdict: str | None = None  # the audit's, where the check run reports one


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def assess_push(change: Change, opinion: Opinion, *, floors: audit.Floors) -> CheckReport:
    """The "Autopack audit" check run of a risky push: the auditor's findings over the floors and
    the code-found ones (which no approval outweighs). Every finding is listed: nothing was posted
    on this commit before."""
    by_code = [*audit.reviewer_instructions(change.files), *hidden_text.findings(change.files)]
    kept = [*by_code, *audit.keep(list(opinion.answer.findings), floors)]
    verdict = opinion.answer.verdict
    if by_code and verdict == "approve":
        verdict = "comment"  # found by code: no model's approval outweighs it
    scope = change.scope
    summary = [
        f"**Autopack audit** of push `{change.head[:7]}`: **{verdict}** · risk **{scope.risk.score}/100** · "
        f"complexity {scope.level}",
        f"Categories: {', '.join(scope.found)}",
        "",
        *(
            [f"- **{f.severity}** `{neutral(f.path)}:{f.start_line}` {neutral(f.title)}" for f in kept]
            or ["No findings."]
        ),
        "",
        f"Model `{opinion.model}`, {opinion.tokens:,} tokens, ${opinion.cost:.4f}",
    ]
    return CheckReport(
        conclusion=audit.check_conclusion(verdict),
        title=f"{verdict}: risk {scope.risk.score}/100, {_plural(len(kept), 'finding')}",
        summary="\n".join(summary),
        annotations=tuple(a for batch in audit.annotation_batches(kept) for a in batch),
        verdict=verdict,
    )


def secrets_check(result: secrets.ScanResult, risk: audit.Risk, *, threshold: int, note: str) -> CheckReport:
    """The "Autopack secrets" check run: failing with an annotation per secret (redacted, with how
    to rotate it and how to mark a false positive), neutral when files could not be scanned, and the
    push's risk either way."""
    findings = result.findings
    lines = [
        f"Risk of this push: **{risk.score}/100** "
        + (
            "(the routed audit runs)"
            if risk.score >= threshold
            else f"(below the audit threshold {threshold})"
        ),
        *[f"- {reason}" for reason in risk.reasons],
    ]
    if note:
        lines += ["", f"⚠️ {note}"]
    if result.not_scanned:
        shown = ", ".join(f"`{p}`" for p in result.not_scanned[:20])
        more = f" and {len(result.not_scanned) - 20} more" if len(result.not_scanned) > 20 else ""
        lines += [
            "",
            f"⚠️ **Not scanned** ({len(result.not_scanned)}): {shown}{more}. GitHub gave no text for them "
            "(too large), so nothing is known about secrets in them: check them yourself.",
        ]
    if findings:
        lines = [
            f"**{_plural(len(findings), 'secret')} added by this push.** Values are "
            "shown redacted. Rotate each one now: removing it from the code does not un-leak it, since it "
            "stays in the history. If a value is a test fixture, add `autopack:allow-secret` on its line or "
            "list its path in `push.secrets_allow_paths`.",
            "",
            *[
                f"- `{f.path}:{f.line}` {f.kind} ({f.redacted}); detector: {f.detector}; not a secret? "
                f"add `{secrets.ALLOW_MARKER}` on line {f.line}, or `{f.path}` to `push.secrets_allow_paths`"
                for f in findings[:50]
            ],
            "",
            *lines,
        ]
    annotations = tuple(
        {
            "path": f.path,
            "start_line": f.line,
            "end_line": f.line,
            "annotation_level": "failure",
            "title": f"{f.kind} committed",
            "message": (
                f"A {f.kind} ({f.redacted}) was added here (found by {f.detector}). Rotate it, then "
                f"remove it. A false positive: add `{secrets.ALLOW_MARKER}` on this line, or list the path "
                "in `push.secrets_allow_paths`."
            ),
        }
        for f in findings
    )
    title = f"{_plural(len(findings), 'secret')} found" if findings else "no secrets found"
    if result.not_scanned and not findings:
        title = f"no secrets found; {_plural(len(result.not_scanned), 'file')} not scanned"
    return CheckReport(
        conclusion="failure" if findings else "neutral" if result.not_scanned else "success",
        title=title,
        summary="\n".join(lines),
        annotations=annotations,
    )
