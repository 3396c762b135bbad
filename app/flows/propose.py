"""`/autopack propose` (or triage's automatic trigger) → a verified-to-be draft pull request.

eligibility (triaged, open, no open proposal, no rejection unless --force) → budget check → the
proposal's record (a compare-and-set: one per issue) → context: tree, ranked files within the token
budget, conventions → the builder's change set, applied in memory (one repair round) → guardrails →
the tests-only commit and the fix commit → branch `autopack/issue-<n>` at the tests-only commit →
a draft PR → wait for CI (`app.flows.verify`). A re-run resumes from the record: a change already
built is not asked for again, an existing PR is found by its branch.
"""

from __future__ import annotations

from typing import Any

from app.errors import PermanentError
from app.events import Issue
from app.flows import proposal_state as state
from app.flows.building import (
    PREFLIGHT_TOKENS,
    ask_and_apply,
    audit_before_push,
    call_meta,
    ci_approval_note,
    gather,
    guard,
    push_commits,
    refusal_text,
)
from app.flows.context import FlowContext
from app.flows.jobs import ProposeArgs
from app.flows.registry import Flow
from app.github import git
from app.github.repo import RepoClient
from app.llm.prompt import Section
from app.metrics import PROPOSALS
from app.policy import proposal as policy
from app.policy.changeset import ChangeSet, Working
from app.policy.markdown import neutral
from app.policy.repo_policy import RepoPolicy


async def handle(ctx: FlowContext) -> None:
    args = ctx.args_as(ProposeArgs)
    issue = args.issue
    number = issue.number
    auto = args.auto
    if ctx.llm is None:
        raise PermanentError("no LLM is configured")
    repo = await ctx.repo()
    loaded = await ctx.policy()
    rules = loaded.policy
    proposals = state.store(ctx)
    existing = await proposals.get(repo.full_name, number)
    if existing is not None and existing.status == policy.Status.BUILDING:
        proposal = existing  # an earlier attempt of this job: go on from its record
    else:
        analysis = await ctx.triage_log.latest_analysis(repo.full_name, number)
        verdict = policy.eligible(
            issue=issue,
            triaged=analysis is not None,
            rejected=await proposals.rejection(repo.full_name, number),
            existing=existing,
            force=args.force,
        )
        if verdict.ok and auto and not _auto_allowed(analysis or {}, rules):
            verdict = policy.Eligibility(False, "not warranted with enough confidence to propose by itself")
        if not verdict.ok:
            PROPOSALS.labels("not_eligible").inc()
            ctx.log.info("proposal not started", issue=number, reason=verdict.reason, auto=auto)
            return
        assert analysis is not None
        proposal = policy.Proposal(
            repository=repo.full_name,
            issue=number,
            installation_id=int(ctx.installation_id or 0),
            base_branch=ctx.default_branch,
            base_sha=loaded.head_sha,
            problem=str(analysis.get("summary") or ""),
            notes=args.notes,
            title=neutral(issue.title)[:100],
            reporter=issue.author or None,
            area=str(analysis.get("area") or ""),
        )
        proposal.complexity, proposal.category = policy.routing(analysis, [], _extra(rules))
        await ctx.llm.preflight(call_meta(ctx, proposal), "builder", proposal.complexity, PREFLIGHT_TOKENS)
        if not await proposals.start(proposal):
            ctx.log.info("a proposal for this issue is open already", issue=number)
            return
        PROPOSALS.labels("started").inc()
        await state.publish(ctx, repo, proposal, body=False)
    try:
        if not proposal.files:
            await _build(ctx, repo, proposal, issue, rules)
        await _push(ctx, repo, proposal, rules)
    except PermanentError as exc:  # Refused, or a builder answer that never fit its schema
        proposal.move(policy.Status.FAILED)
        proposal.error = refusal_text(exc)
        PROPOSALS.labels("refused").inc()
        ctx.log.warning("proposal refused", issue=number, reason=proposal.error.splitlines()[0])
        await state.publish(ctx, repo, proposal, body=False)


def _auto_allowed(analysis: dict[str, Any], rules: RepoPolicy) -> bool:
    return (
        rules.proposals.auto
        and bool(analysis.get("warranted"))
        and float(analysis.get("confidence") or 0) >= rules.proposals.min_confidence
    )


def _extra(rules: RepoPolicy) -> dict[str, list[str]]:
    return {str(k): list(v) for k, v in rules.audit.categories.items()}


def _area_globs(rules: RepoPolicy, area: str) -> list[str]:
    if area in rules.feedback.areas:
        return list(rules.feedback.areas[area])
    return [f"{area}/**"] if area and area != "unknown" else []


async def _build(
    ctx: FlowContext, repo: RepoClient, proposal: policy.Proposal, issue: Issue, rules: RepoPolicy
) -> None:
    analysis = await ctx.triage_log.latest_analysis(repo.full_name, proposal.issue) or {}
    gathered = await gather(
        repo,
        proposal,
        title=issue.title,
        body=issue.body or "",
        area_globs=_area_globs(rules, str(analysis.get("area") or "")),
        budget_tokens=rules.proposals.context_tokens,
    )
    # Route by what the feedback points at, now that the files are known.
    proposal.complexity, proposal.category = policy.routing(analysis, list(proposal.context), _extra(rules))
    rejected = (
        await state.store(ctx).rejections_in_area(repo.full_name, proposal.area) if proposal.area else []
    )
    if rejected:
        gathered.sections.append(
            Section(
                "earlier_rejections",
                "\n".join(
                    f"- #{r['issue_number']} ({r['summary']}): rejected because: "
                    f"{r['reason'] or 'no reason given'}"
                    for r in rejected
                ),
            )
        )
    base = {p: t for p, t in gathered.texts.items()}
    changes, working = await ask_and_apply(
        ctx,
        repo,
        proposal,
        ChangeSet,
        template="build",
        sections=gathered.sections,
        working=Working(base=base),
        gathered_tree=gathered.tree,
        texts=gathered.texts,
    )
    proposal.base_tree = gathered.tree.sha
    guard(proposal, working, gathered.tree, rules)
    proposal.title = neutral(changes.title)[:100]  # the PR title and commits carry it
    proposal.approach = changes.approach
    proposal.risk_notes = list(changes.risk_notes)
    proposal.rounds = [policy.Round(1, "proposal", f"first change set: {len(proposal.files)} files")]
    await state.store(ctx).save(proposal)  # built: a retry from here spends no more tokens


async def _push(ctx: FlowContext, repo: RepoClient, proposal: policy.Proposal, rules: RepoPolicy) -> None:
    await push_commits(repo, proposal, previous_tests=None)  # commit objects only: no branch yet
    assert proposal.test_sha is not None
    await audit_before_push(ctx, repo, proposal, rules)  # a blocking audit: Refused, nothing pushed
    if ctx.shadow is not None:
        # Shadow mode: built, guarded and audited; the commits it would push are in the record.
        # Ended here (no branch, no pull request to wait for): a later `act` may propose afresh.
        proposal.move(policy.Status.SHADOW)
        await state.store(ctx).save(proposal)
        PROPOSALS.labels("shadow").inc()
        return
    note = await ci_approval_note(repo, rules)
    if note and note not in proposal.flags:
        proposal.flags.append(note)
    await state.wait_for_ci(ctx, repo, proposal, proposal.test_sha, "test", rules.proposals.no_ci_minutes)
    pr = await git.open_pull_for(repo, proposal.branch)
    fresh = pr is None
    if pr is None:
        pr = await git.create_pull(
            repo,
            title=proposal.title,
            body=policy.render_body(proposal),
            head=proposal.branch,
            base=proposal.base_branch,
            draft=True,
        )
    proposal.pr_number = pr.number
    proposal.pr_node_id = pr.node_id or None
    PROPOSALS.labels("pushed").inc()
    ctx.log.info("proposal pushed", issue=proposal.issue, pr=proposal.pr_number, test=proposal.test_sha)
    await state.publish(ctx, repo, proposal, body=not fresh)  # a new PR has this body already


FLOW = Flow(name="propose", triggers=frozenset(), handler=handle, section="proposals", args=ProposeArgs)
