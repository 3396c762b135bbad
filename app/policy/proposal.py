"""Improvement proposals: who may start one, what CI says, what happens next, and the PR body. Pure.

A proposal walks: building → awaiting_test_ci (the tests-only commit is pushed; CI must fail) →
awaiting_fix_ci (the fix is pushed; CI must pass) → auditing → ready. Other ends: not_reproduced
(the test passed without the fix), unverified (no CI, or CI never finished), handed_over (the revise
rounds are spent), failed (nothing was pushed: a guardrail or an edit refused it), and closed or
merged. Every step is decided here from data; the flows (`app.flows.propose`, `verify`, `revise`,
`gate`) carry the decisions out. The statuses are `Status`; `TRANSITIONS` is every move between
them, and `Proposal.move` the only way a flow changes one (a move not in the table is a bug, and
raises rather than being written).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from app.errors import PermanentError
from app.events import CheckRun, CommitStatus, Issue
from app.policy import render
from app.policy.audit import CATEGORY_ORDER, file_categories, primary_category
from app.policy.markdown import neutral

Complexity = Literal["low", "medium", "high"]
BRANCH_PREFIX = "autopack/issue-"


class Status(StrEnum):
    """Where a proposal is. The record stores the value; `TRANSITIONS` says where each may go."""

    BUILDING = "building"  # the builder is writing the change set; nothing is pushed yet
    AWAITING_TEST_CI = "awaiting_test_ci"  # the tests-only commit is pushed: CI must fail
    AWAITING_FIX_CI = "awaiting_fix_ci"  # the fix is pushed: CI must pass
    AUDITING = "auditing"  # verified; the audit is running
    READY = "ready"  # verified and audited: a maintainer reviews it
    NOT_REPRODUCED = "not_reproduced"  # the new test passed without the fix
    UNVERIFIED = "unverified"  # no CI, or CI that never finished
    HANDED_OVER = "handed_over"  # the revise rounds are spent: a human decides
    REVISING = "revising"  # a revision is queued (CI, the audit or a review asked for one)
    FAILED = "failed"  # nothing was pushed: a guardrail or an edit refused it
    SHADOW = "shadow"  # shadow mode: built and audited, never pushed
    CLOSED = "closed"  # the pull request was closed or the proposal rejected
    MERGED = "merged"


OPEN = frozenset(
    {
        Status.BUILDING,
        Status.AWAITING_TEST_CI,
        Status.AWAITING_FIX_CI,
        Status.AUDITING,
        Status.READY,
        Status.NOT_REPRODUCED,
        Status.UNVERIFIED,
        Status.HANDED_OVER,
        Status.REVISING,
    }
)
WAITING = frozenset({Status.AWAITING_TEST_CI, Status.AWAITING_FIX_CI})
# Where a human's approval may lead to a merge (the gate decides): the head is not about to move.
GATED = frozenset({Status.READY, Status.UNVERIFIED, Status.NOT_REPRODUCED, Status.HANDED_OVER})
# Never written back to an open state (the store refuses it); a new proposal may replace them.
ENDED = frozenset({Status.MERGED, Status.CLOSED})

# Every move a flow makes, by the status it leaves. Besides these, a status may always stay as it is
# (a revision pushes a new commit to wait for; a spent revise round hands over what is handed over).
_HUMAN = frozenset({Status.CLOSED, Status.MERGED})  # a maintainer closes or merges the PR at any time
_REVISED = frozenset({Status.AWAITING_TEST_CI, Status.AWAITING_FIX_CI, Status.HANDED_OVER})
TRANSITIONS: dict[Status, frozenset[Status]] = {
    # flows.propose: pushed and waiting for CI, refused, or kept in shadow mode
    Status.BUILDING: frozenset({Status.AWAITING_TEST_CI, Status.FAILED, Status.SHADOW}) | _HUMAN,
    # flows.verify (policy.next_step): the test failed as it must, passed (not reproduced), no CI
    Status.AWAITING_TEST_CI: frozenset({Status.AWAITING_FIX_CI, Status.NOT_REPRODUCED, Status.UNVERIFIED})
    | _REVISED
    | _HUMAN,
    # flows.verify: verified (audit next), no CI on the fix, failed with rounds left or spent
    Status.AWAITING_FIX_CI: frozenset({Status.AUDITING, Status.UNVERIFIED, Status.REVISING})
    | _REVISED
    | _HUMAN,
    # flows.verify after the audit: ready, or blocked (revise, or hand over when rounds are spent)
    Status.AUDITING: frozenset({Status.READY, Status.REVISING}) | _REVISED | _HUMAN,
    # flows.revise (a command, a review, CI or the audit asked): a new commit to verify, or handed over
    Status.READY: _REVISED | _HUMAN,
    Status.NOT_REPRODUCED: _REVISED | _HUMAN,
    Status.UNVERIFIED: _REVISED | _HUMAN,
    Status.HANDED_OVER: _REVISED | _HUMAN,
    Status.REVISING: _REVISED | _HUMAN,
    # inbox.proposals.start: a new proposal replaces an ended record (never an open one)
    Status.FAILED: frozenset({Status.BUILDING}),
    Status.SHADOW: frozenset({Status.BUILDING}),
    Status.CLOSED: frozenset({Status.BUILDING}),
    Status.MERGED: frozenset({Status.BUILDING}),
}


class InvalidTransition(PermanentError):
    """A flow asked for a move `TRANSITIONS` does not have: a bug, which retrying would repeat."""


def may_move(current: Status, to: Status) -> bool:
    return to == current or to in TRANSITIONS[current]


def branch_for(issue: int) -> str:
    return f"{BRANCH_PREFIX}{issue}"


def issue_of_branch(branch: str | None) -> int | None:
    match = re.fullmatch(re.escape(BRANCH_PREFIX) + r"(\d{1,9})", branch or "")
    return int(match[1]) if match else None


# ---- the proposal's record ---------------------------------------------------------------------


@dataclass
class Round:
    number: int
    trigger: str  # "proposal", "ci", "audit", "review", "command"
    summary: str  # what the builder was told (short) and what it changed
    outcome: str = ""  # filled when the round's verification ends


@dataclass
class CheckResult:
    name: str
    state: Literal["pending", "passed", "failed", "ignored"]
    url: str | None = None
    check_run_id: int | None = None
    summary: str = ""


@dataclass
class Verification:
    phase: Literal["test", "fix"]
    sha: str
    outcome: str = "pending"  # pending | failed | passed | none | timed_out
    checks: list[CheckResult] = field(default_factory=list)
    deciding: list[str] = field(default_factory=list)  # the checks whose result decided the outcome


@dataclass
class Usage:
    model: str
    role: str
    tokens: int
    cost: float


@dataclass
class FileChange:
    """One file of the change set, as both commits are built from it."""

    base: str | None  # its text on the base commit (None: a new file)
    current: str | None  # its proposed text (None: deleted)
    part: Literal["test", "fix"]  # the tests-only commit's, or the fix's
    mode: str = "100644"  # its git mode


@dataclass
class Proposal:
    repository: str
    issue: int
    installation_id: int
    status: Status = Status.BUILDING
    base_branch: str = "main"
    base_sha: str = ""
    base_tree: str = ""
    test_tree: str = ""
    pr_number: int | None = None
    pr_node_id: str | None = None
    round: int = 1
    test_sha: str | None = None
    fix_sha: str | None = None
    waiting_sha: str | None = None
    pushed_at: float | None = None
    title: str = ""
    approach: str = ""
    problem: str = ""  # triage's summary
    notes: str = ""  # the maintainer's words with `/autopack propose`
    reporter: str | None = None  # who filed the feedback (cannot be the PR's only approver)
    area: str = ""  # triage's affected area (rejections are remembered per area)
    gate_status: str = ""  # the gate's state as last shown on the PR
    gate_comment_id: int | None = None
    merge_sha: str | None = None
    category: str = "general"
    complexity: Complexity = "medium"
    risk_notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # new dependencies, install hooks
    files: dict[str, FileChange] = field(default_factory=dict)  # path → its change
    context: dict[str, str] = field(default_factory=dict)  # path sent to the builder → why it was chosen
    left_out: list[str] = field(default_factory=list)
    framework: str = "unknown"
    verification: list[Verification] = field(default_factory=list)
    rounds: list[Round] = field(default_factory=list)
    usage: list[Usage] = field(default_factory=list)
    audit_verdict: str | None = None
    comment_id: int | None = None
    error: str | None = None
    version: int = 0  # the database row's version when read (compare-and-set on save)
    base_failing: list[str] | None = None  # checks red on the base commit: no evidence (None: not read)

    def __post_init__(self) -> None:
        # The record (JSON) and callers may give plain values: an unknown status fails here.
        self.status = Status(self.status)
        self.files = {p: f if isinstance(f, FileChange) else FileChange(**f) for p, f in self.files.items()}

    @property
    def branch(self) -> str:
        return branch_for(self.issue)

    def move(self, to: Status) -> None:
        """Change the status along an edge of `TRANSITIONS` (InvalidTransition otherwise)."""
        if not may_move(self.status, to):
            raise InvalidTransition(f"a proposal cannot go from {self.status} to {to}")
        self.status = to

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Proposal:
        data = dict(data)
        data["verification"] = [
            Verification(**{**v, "checks": [CheckResult(**c) for c in v.get("checks", [])]})
            for v in data.get("verification", [])
        ]
        data["rounds"] = [Round(**r) for r in data.get("rounds", [])]
        data["usage"] = [Usage(**u) for u in data.get("usage", [])]
        return cls(**data)

    def current(self, phase: str) -> Verification | None:
        return next((v for v in reversed(self.verification) if v.phase == phase), None)


# ---- may a proposal start? ---------------------------------------------------------------------


@dataclass(frozen=True)
class Eligibility:
    ok: bool
    reason: str


def eligible(
    *,
    issue: Issue,
    triaged: bool,
    rejected: str | None,
    existing: Proposal | None,
    force: bool,
) -> Eligibility:
    """Whether `/autopack propose` (or the automatic trigger) may start a proposal for this issue."""
    if issue.is_pull:
        return Eligibility(False, "`/autopack propose` works on feedback issues, not pull requests.")
    if issue.state != "open":
        return Eligibility(False, "This issue is closed.")
    if not triaged:
        return Eligibility(False, "This issue has not been triaged yet: run `/autopack triage` first.")
    if existing is not None and existing.status == Status.BUILDING:
        return Eligibility(
            False,
            "A proposal for this issue is being written; if its job failed, `/autopack retry` resumes it.",
        )
    if existing is not None and existing.status in OPEN:
        where = f" in #{existing.pr_number}" if existing.pr_number else ""
        return Eligibility(False, f"A proposal for this issue is already open{where} ({existing.status}).")
    if rejected is not None and not force:
        return Eligibility(
            False,
            "An earlier proposal for this issue was rejected"
            + (f" ({neutral(rejected)[:200]})" if rejected else "")
            + ". Ask again with `/autopack propose --force` to try anyway.",
        )
    return Eligibility(True, "ok")


def parse_propose_args(args: str) -> tuple[str, bool]:
    """`/autopack propose [--force] [notes]` → (notes, force)."""
    words = args.split()
    force = "--force" in words
    notes = " ".join(w for w in words if w != "--force")
    return notes[:2_000], force


# ---- what CI says --------------------------------------------------------------------------------

_FAILED = {"failure", "timed_out", "action_required", "startup_failure"}
_PASSED = {"success", "neutral"}


def checks_from(
    check_runs: Iterable[CheckRun], statuses: Iterable[CommitStatus], *, own_app_id: int | None
) -> list[CheckResult]:
    """The commit's CI, from its check runs and commit statuses. Autopack's own check runs are not CI;
    cancelled, skipped and stale runs prove nothing either way."""
    results: list[CheckResult] = []
    latest: dict[str, CheckRun] = {}
    for run in check_runs:
        if own_app_id is not None and run.by_app(own_app_id):
            continue
        name = run.name or "check"
        if name not in latest or (run.id or 0) > (latest[name].id or 0):
            latest[name] = run  # a re-run replaces the earlier result of the same check
    for name, run in sorted(latest.items()):
        conclusion = run.conclusion
        if run.status != "completed":
            state = "pending"
        elif conclusion in _FAILED:
            state = "failed"
        elif conclusion in _PASSED:
            state = "passed"
        else:
            state = "ignored"
        results.append(
            CheckResult(
                name,
                state,  # type: ignore[arg-type]
                run.html_url or run.details_url,
                run.id or None,
                (run.output.title or "")[:200],
            )
        )
    for status in statuses:
        state_map = {"pending": "pending", "success": "passed", "failure": "failed", "error": "failed"}
        results.append(
            CheckResult(
                status.context or "status",
                state_map.get(status.state, "ignored"),  # type: ignore[arg-type]
                status.target_url,
                None,
                (status.description or "")[:200],
            )
        )
    return results


Outcome = Literal["none", "pending", "failed", "passed"]


@dataclass(frozen=True)
class CiVerdict:
    outcome: Outcome
    deciding: tuple[str, ...]  # the checks that decided it (named in the PR's Verification section)
    not_evidence: tuple[str, ...] = ()  # failing here, but red on the base commit too


def ci_outcome(checks: list[CheckResult]) -> Outcome:
    """Every check that proves something, read alone (the Dependabot and gate views use their own)."""
    return verdict(checks).outcome


def verdict(
    checks: list[CheckResult],
    *,
    base_failing: Iterable[str] = (),
    must_pass: Iterable[str] = (),
) -> CiVerdict:
    """What a commit's CI says, comparing like with like.

    - A check that is red on the base commit too is not evidence either way: it is left out.
    - `must_pass` (the fix commit): the checks that failed on the tests-only commit. They decide:
      the fix passes when every one of them passes and nothing else that is not red on the base
      fails; a missing or running one is pending.
    - Otherwise (the tests-only commit): one failure decides, no need to wait for the slow jobs.
    """
    red_on_base = set(base_failing)
    counted = [c for c in checks if c.state != "ignored" and c.name not in red_on_base]
    ignored = tuple(sorted({c.name for c in checks if c.state == "failed" and c.name in red_on_base}))
    failed = tuple(sorted(c.name for c in counted if c.state == "failed"))
    pending = tuple(sorted(c.name for c in counted if c.state == "pending"))
    required = tuple(sorted(set(must_pass) - red_on_base))
    if required:
        state = {c.name: c.state for c in counted}
        broken = tuple(name for name in required if state.get(name) == "failed")
        if broken or failed:
            return CiVerdict("failed", broken or failed, ignored)
        if any(state.get(name) != "passed" for name in required) or pending:
            return CiVerdict("pending", required, ignored)
        return CiVerdict("passed", required, ignored)
    if not counted:
        return CiVerdict("none", (), ignored)
    if failed:
        return CiVerdict("failed", failed, ignored)
    if pending:
        return CiVerdict("pending", pending, ignored)
    return CiVerdict("passed", tuple(sorted(c.name for c in counted)), ignored)


# ---- what to do next ---------------------------------------------------------------------------

Trigger = Literal["event", "no_ci_check", "deadline"]
Step = Literal[
    "wait",  # nothing decided yet
    "push_fix",  # the test failed as it must: push the fix
    "push_fix_unverified",  # no CI on the tests-only commit: push the fix, say it is unverified
    "verified",  # fail → pass: audit it, then ready for review
    "not_reproduced",  # the test passed without the fix
    "revise",  # the fix failed CI and rounds remain
    "hand_over",  # the fix failed CI and the rounds are spent
    "unverified",  # no CI, or CI that never finished, on the fix
    "stale",  # the event is about a commit the proposal no longer waits for
]


def next_step(proposal: Proposal, sha: str, outcome: str, trigger: Trigger, *, max_rounds: int) -> Step:
    if proposal.status not in WAITING or proposal.waiting_sha != sha:
        return "stale"
    phase_test = proposal.status == Status.AWAITING_TEST_CI
    if outcome == "failed":
        if phase_test:
            return "push_fix"
        return "revise" if proposal.round < max_rounds else "hand_over"
    if outcome == "passed":
        return "not_reproduced" if phase_test else "verified"
    if trigger == "event" or (trigger == "no_ci_check" and outcome == "pending"):
        return "wait"
    # no CI at all by the first check, or checks still unfinished at the deadline
    return "push_fix_unverified" if phase_test else "unverified"


# ---- the pull request --------------------------------------------------------------------------

_OUTCOME_TEXT = {
    "verified": "✅ **Verified**: the new test failed without the fix and passes with it.",
    "not_reproduced": "⚠️ **Not reproduced**: the new test passed without the fix, so the problem may "
    "not exist as reported. This pull request stays a draft.",
    "unverified": "⚠️ **Unverified**: the repository's CI gave no result in time, so neither the "
    "failure nor the fix is shown by CI. Review it as an unverified change.",
    "fix_failed": "❌ **Fix failed** CI; Autopack is revising it.",
    "handed_over": "🙋 **Handed over**: Autopack could not get the change through CI and review within "
    "the allowed revise rounds. What was tried is below; a human decides from here.",
}


def _check_line(check: CheckResult) -> str:
    icon = {"failed": "❌", "passed": "✅", "pending": "⏳", "ignored": "➖"}[check.state]
    name = neutral(check.name)[:80]
    link = f"[{name}]({check.url})" if check.url and check.url.startswith("https://") else f"`{name}`"
    return f"  - {icon} {link}" + (f": {neutral(check.summary)[:120]}" if check.summary else "")


def verification_section(proposal: Proposal) -> list[str]:
    lines = ["## Verification", ""]
    labels = {"test": "tests-only commit (must fail)", "fix": "fix commit (must pass)"}
    outcome_words = {
        "pending": "⏳ waiting for CI",
        "failed": "❌ failed",
        "passed": "✅ passed",
        "none": "➖ no CI ran",
        "timed_out": "⌛ CI did not finish in time",
    }
    # The current commits only: earlier rounds are summarised under "Rounds".
    current = [
        v
        for v in (proposal.current("test"), proposal.current("fix"))
        if v is not None and v.sha in (proposal.test_sha, proposal.fix_sha)
    ]
    for v in current:
        lines.append(f"- {labels[v.phase]} `{v.sha[:7]}`: {outcome_words.get(v.outcome, v.outcome)}")
        if v.deciding and v.outcome in ("failed", "passed"):
            names = ", ".join(f"`{neutral(n)[:80]}`" for n in v.deciding[:10])
            lines.append(f"  - deciding: {names}")
        lines += [_check_line(c) for c in v.checks if c.state != "ignored"][:20]
    if proposal.base_failing:
        names = ", ".join(f"`{neutral(n)[:80]}`" for n in proposal.base_failing[:10])
        lines.append(f"- red on `{proposal.base_branch}` before this change too, so not evidence: {names}")
    summary = _OUTCOME_TEXT.get(
        "verified" if proposal.status in (Status.AUDITING, Status.READY) else proposal.status.value,
    )
    if summary:
        lines += ["", summary]
    elif proposal.status in WAITING:
        lines += ["", "CI is running; this section is updated when it reports."]
    return lines


def render_body(proposal: Proposal) -> str:
    """The PR body, rendered from the record every time (never appended to)."""
    test_files = [p for p, f in sorted(proposal.files.items()) if f.part == "test"]
    fix_files = [p for p, f in sorted(proposal.files.items()) if f.part == "fix"]
    lines = [
        f"Proposed by Autopack for #{proposal.issue}. **Draft until verified by CI and reviewed.**",
        "",
        "## Problem",
        "",
        neutral(proposal.problem) or "(see the issue)",
        "",
        "## Approach",
        "",
        neutral(proposal.approach),
        "",
        "## Files",
        "",
        *[f"- test: {render.code(p, limit=300)}" for p in test_files],
        *[
            f"- fix: {render.code(p, limit=300)}"
            + (" (deleted)" if proposal.files[p].current is None else "")
            for p in fix_files
        ],
        "",
        *verification_section(proposal),
    ]
    if proposal.flags or proposal.risk_notes:
        lines += ["", "## Risk notes", ""]
        lines += [f"- ⚠️ {neutral(flag)}" for flag in proposal.flags]
        lines += [f"- {neutral(note)}" for note in proposal.risk_notes]
    if len(proposal.rounds) > 1 or proposal.status == Status.HANDED_OVER:
        lines += ["", "## Rounds", ""]
        lines += [
            f"{r.number}. {r.trigger}: {neutral(r.summary)[:300]}" + (f" → {r.outcome}" if r.outcome else "")
            for r in proposal.rounds
        ]
    tokens = sum(u.tokens for u in proposal.usage)
    cost = sum(u.cost for u in proposal.usage)
    models = sorted({f"`{u.model}` ({u.role})" for u in proposal.usage})
    details = [
        f"- models: {', '.join(models) or 'none'}; {tokens:,} tokens, ${cost:.4f}",
        f"- test framework: {proposal.framework}; base `{proposal.base_sha[:7]}` of `{proposal.base_branch}`",
        "- context sent to the builder: "
        + ("; ".join(f"{path} ({why})" for path, why in proposal.context.items()) or "none"),
    ]
    if proposal.left_out:
        details.append("- left out to fit the budget: " + "; ".join(proposal.left_out[:30]))
    lines += ["", "<details><summary>Context, models and cost</summary>", "", *details, "", "</details>"]
    lines += ["", f"Closes #{proposal.issue}"]
    return "\n".join(lines)


def issue_comment(proposal: Proposal) -> str:
    """The one comment on the feedback issue about its proposal, edited as the proposal moves."""
    pr = f"#{proposal.pr_number}" if proposal.pr_number else "a pull request"
    text = {
        Status.BUILDING: "Autopack is writing a proposal for this issue.",
        Status.AWAITING_TEST_CI: f"Autopack opened {pr} (draft) and is verifying it with this "
        "repository's CI.",
        Status.AWAITING_FIX_CI: f"Autopack's test in {pr} reproduced the problem; CI is checking the fix.",
        Status.AUDITING: f"{pr} passed verification; the audit is running.",
        Status.READY: f"{pr} is verified (its new test failed before the fix and passes after it), audited "
        "and ready for review.",
        Status.NOT_REPRODUCED: f"The test in {pr} passed without any fix, so this improvement may not be "
        "needed as reported. The pull request stays a draft; a maintainer can close it or ask for "
        "`/autopack revise <instructions>`.",
        Status.UNVERIFIED: f"{pr} could not be verified: CI gave no result in time. It stays a draft.",
        Status.HANDED_OVER: f"Autopack handed {pr} over to the maintainers after {proposal.round} "
        f"round{'s' if proposal.round != 1 else ''}; what it tried is listed in the pull request.",
        Status.FAILED: "Autopack could not make a proposal for this issue.",
        Status.MERGED: f"{pr} was approved and merged"
        + (f" as `{proposal.merge_sha[:7]}`" if proposal.merge_sha else "")
        + f" into `{proposal.base_branch}`: this improvement has shipped.",
        Status.CLOSED: f"{pr} was closed without merging. Autopack will not propose this again unless a "
        "writer asks with `/autopack propose --force`.",
    }.get(proposal.status, f"Proposal {pr}: {proposal.status}.")
    lines = [f"**Autopack proposal:** {text}"]
    if proposal.status in (Status.FAILED, Status.CLOSED, Status.HANDED_OVER) and proposal.error:
        lines += ["", neutral(proposal.error)]
    return "\n".join(lines)


def commit_message(proposal: Proposal, phase: Literal["test", "fix"]) -> str:
    title = neutral(proposal.title).replace("\n", " ")[:72] or f"issue #{proposal.issue}"
    if phase == "test":
        return (
            f"Add a failing test for #{proposal.issue}: {title}\n\n"
            "The test reproduces the problem; the next commit fixes it."
        )
    return f"{title} (#{proposal.issue})\n\nRefs #{proposal.issue}; proposed by Autopack."


def routing(
    analysis: dict[str, Any], paths: list[str], extra: dict[str, list[str]] | None = None
) -> tuple[Complexity, str]:
    """The builder's (complexity, risk category): from triage's verdict and the files the feedback
    points at (the riskiest category among the first candidates routes the model)."""
    found: set[str] = set()
    for path in paths[:8]:
        found.update(file_categories(path, extra))
    category = primary_category(tuple(c for c in CATEGORY_ORDER if c in found))
    kind, severity = analysis.get("category"), analysis.get("severity")
    if kind == "feature_request" or severity == "critical" or category == "security_auth_change":
        complexity: Complexity = "high"
    elif category == "docs" or (severity == "low" and kind != "performance"):
        complexity = "low"
    else:
        complexity = "medium"
    return complexity, category
