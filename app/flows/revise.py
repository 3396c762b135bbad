"""Revise a proposal: CI failed after the fix, the audit blocked it, a writer requested changes in a
review, or a writer asked with `/autopack revise <instructions>`.

The builder gets the current change (file by file, with its part), what failed (check-run output and
annotations, audit findings, review comments with their paths and lines, or the instructions) and
answers with edits on top of it. The result is checked like a first proposal and verified again:
new tests-only and fix commits on the same base (the tests-only commit is kept when its tests did
not change and CI already saw it fail). Automatic rounds are bounded by `proposals.max_rounds`;
then the proposal is handed over to humans with what was tried.
"""

from __future__ import annotations

from app.errors import PermanentError
from app.flows import proposal_state as state
from app.flows.building import (
    PREFLIGHT_TOKENS,
    ask_and_apply,
    audit_before_push,
    call_meta,
    files_section,
    guard,
    push_commits,
    refusal_text,
    working_of,
)
from app.flows.context import FlowContext
from app.flows.jobs import ReviseArgs
from app.flows.registry import Flow
from app.github import git
from app.github.repo import RepoClient
from app.llm.prompt import Section
from app.metrics import PROPOSALS
from app.policy import proposal as policy
from app.policy.changeset import Revision
from app.policy.markdown import neutral

MAX_FAILED_RUNS = 3
OUTPUT_CHARS = 3_000


async def handle(ctx: FlowContext) -> None:
    args = ctx.args_as(ReviseArgs)
    if ctx.llm is None:
        raise PermanentError("no LLM is configured")
    repo = await ctx.repo()
    rules = (await ctx.policy()).policy
    proposals = state.store(ctx)
    proposal = await proposals.get(repo.full_name, args.issue)
    if proposal is None or proposal.status not in policy.OPEN or not proposal.pr_number or not proposal.files:
        return
    trigger = args.trigger
    if trigger != "command" and proposal.round >= rules.proposals.max_rounds:
        proposal.move(policy.Status.HANDED_OVER)
        PROPOSALS.labels("hand_over").inc()
        await state.publish(ctx, repo, proposal)
        return
    await ctx.llm.preflight(call_meta(ctx, proposal), "builder", proposal.complexity, PREFLIGHT_TOKENS)
    failure = await _failure(repo, proposal, trigger, args)
    working = working_of(proposal)
    previous_tests = {p: c for p, c in working.current.items() if working.parts.get(p) == "test"}
    tree = await git.tree(repo, proposal.base_sha)
    others = [p for p in proposal.context if p not in proposal.files]
    texts = await git.read_files(repo, proposal.base_sha, others) if others else {}
    current = {p: f.current for p, f in proposal.files.items()}
    sections = [
        Section("problem", proposal.problem or proposal.title),
        Section("current_change", files_section(current, sorted(current), working.parts), kind="code"),
        Section("failure", failure),
        Section("instructions", args.instructions or "(none)"),
        Section("other_files", files_section(texts, others), kind="code"),
    ]
    try:
        changes, revised = await ask_and_apply(
            ctx,
            repo,
            proposal,
            Revision,
            template="revise",
            sections=sections,
            working=working,
            gathered_tree=tree,
            texts=texts,
        )
        guard(proposal, revised, tree, rules)
    except PermanentError as exc:  # Refused, or a builder answer that never fit its schema
        proposal.move(policy.Status.HANDED_OVER)
        proposal.error = refusal_text(exc)
        proposal.rounds.append(policy.Round(proposal.round + 1, trigger, _short(failure), "refused"))
        PROPOSALS.labels("revision_refused").inc()
        await state.publish(ctx, repo, proposal)
        return
    proposal.title, proposal.approach = neutral(changes.title)[:100], changes.approach
    proposal.risk_notes = list(changes.risk_notes)
    proposal.round += 1
    proposal.rounds.append(policy.Round(proposal.round, trigger, _short(failure)))
    run_test = await push_commits(repo, proposal, previous_tests=previous_tests)
    try:
        await audit_before_push(ctx, repo, proposal, rules)  # before CI runs the revision
    except PermanentError as exc:
        proposal.move(policy.Status.HANDED_OVER)
        proposal.error = refusal_text(exc)
        proposal.rounds[-1].outcome = "blocked by the audit before the push"
        PROPOSALS.labels("revision_blocked").inc()
        await state.publish(ctx, repo, proposal)
        return
    sha, phase = (proposal.test_sha, "test") if run_test else (proposal.fix_sha, "fix")
    assert sha is not None
    await state.wait_for_ci(ctx, repo, proposal, sha, phase, rules.proposals.no_ci_minutes)
    PROPOSALS.labels("revised").inc()
    ctx.log.info("proposal revised", issue=proposal.issue, round=proposal.round, trigger=trigger)
    await state.publish(ctx, repo, proposal)


def _short(failure: str) -> str:
    first = next((line for line in failure.splitlines() if line.strip()), "")
    return first[:200]


async def _failure(repo: RepoClient, proposal: policy.Proposal, trigger: str, args: ReviseArgs) -> str:
    """What went wrong, in the words of the tools and people that said so (untrusted data)."""
    if trigger == "ci":
        fix = proposal.current("fix")
        lines = ["CI failed on the fix commit."]
        failed = [c for c in (fix.checks if fix else []) if c.state == "failed"]
        for check in failed[:MAX_FAILED_RUNS]:
            lines.append(f"\n## {check.name}")
            if check.check_run_id is None:
                lines.append(check.summary)
                continue
            output = (await git.check_run(repo, check.check_run_id)).output
            lines += [text[:OUTPUT_CHARS] for text in (output.title, output.summary, output.text) if text]
            if output.annotations_count:
                for note in await git.check_annotations(repo, check.check_run_id):
                    where = f"{note.path}:{note.start_line}: {note.annotation_level}"
                    lines.append(f"- {where}: {(note.message or '')[:500]}")
        return "\n".join(lines)
    if trigger == "audit":
        return "The audit blocked the change. Its findings:\n" + "\n".join(f"- {f}" for f in args.findings)
    if trigger == "review":
        lines = ["A maintainer requested changes.", args.review_body]
        if args.review_id and proposal.pr_number:
            for comment in await git.review_comments(repo, proposal.pr_number, args.review_id):
                where = f"{comment.path}:{comment.line or comment.original_line}"
                lines.append(f"- {where}: {(comment.body or '')[:1_000]}")
        return "\n".join(lines)
    return "A maintainer asked for a revision (see instructions)."


FLOW = Flow(name="revise", triggers=frozenset(), handler=handle, section="proposals", args=ReviseArgs)
