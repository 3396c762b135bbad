"""What propose and revise share: the builder's context, its answer applied and guarded, the commits.

The builder's answer is untrusted: it is validated by its schema, applied by code to the fetched
files (an edit that does not apply gets one repair round, then the proposal fails), and the final
change is checked by the guardrails before anything is committed. Commits go through the Git Data
API: the tests-only commit on the base, the fix on top of it; the branch is moved to the commit whose
CI the proposal waits for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from githubkit.exception import RequestFailed

from app.errors import PermanentError
from app.flows.context import FlowContext
from app.github import git
from app.github.repo import RepoClient
from app.inbox.audit_reports import AuditReports
from app.llm.ledger import CallMeta
from app.llm.prompt import Section
from app.llm.tokens import counter_for
from app.logs import redactor
from app.policy import changeset, context, diff, guardrails
from app.policy import proposal as policy
from app.policy.changeset import ChangeSet, EditError, Working
from app.policy.markdown import neutral
from app.policy.repo_policy import RepoPolicy

MANIFESTS = ("pyproject.toml", "package.json")
CONVENTION_CHARS = 3_000
TREE_LINES = 300
BUILD_OUTPUT_TOKENS = 16_000
PREFLIGHT_TOKENS = 2 * (60_000 + BUILD_OUTPUT_TOKENS)  # a build call and its repair round
FILE_OVERHEAD = 16  # tokens of the "=== path ===" header around each file

C = TypeVar("C", bound=ChangeSet)


class Refused(PermanentError):
    """The proposal cannot go on (edits that do not apply, a guardrail); `reason` is for the comment."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def refusal_text(exc: PermanentError) -> str:
    """What the issue or PR is told when the builder's work cannot be used (secrets redacted)."""
    if isinstance(exc, Refused):
        return exc.reason
    first = redactor.text(str(exc)).splitlines()[0][:300] if str(exc) else type(exc).__name__
    return f"The builder could not produce a usable change: {first}"


@dataclass
class Gathered:
    tree: git.Tree
    texts: dict[str, str | None]
    sections: list[Section]


def call_meta(ctx: FlowContext, proposal: policy.Proposal) -> CallMeta:
    return CallMeta(
        ctx.installation_id,
        proposal.repository,
        "build",
        "builder",
        proposal.category,
        ctx.job.id,
        ctx.delivery_id,
    )


def files_section(
    texts: Mapping[str, str | None], paths: list[str], parts: Mapping[str, str] | None = None
) -> str:
    """Files verbatim, each after a `=== FILE path (part) #tag ===` line. The tag is a hash of all
    of them, so no file can contain a line that starts another file."""
    shown = [(p, texts[p]) for p in paths if texts.get(p) is not None]
    digest = hashlib.sha256()
    for path, text in shown:
        digest.update(path.encode() + b"\x00" + str(text).encode() + b"\x00")
    tag = digest.hexdigest()[:8]
    blocks = []
    for path, text in shown:
        part = f" ({parts[path]})" if parts and path in parts else ""
        blocks.append(f"=== FILE {path}{part} #{tag} ===\n{text}")
    return "\n\n".join(blocks) or "(no files)"


async def gather(
    repo: RepoClient,
    proposal: policy.Proposal,
    *,
    title: str,
    body: str,
    area_globs: list[str],
    budget_tokens: int,
) -> Gathered:
    """The base tree, the ranked candidate files fetched and fitted into the budget, the
    conventions. Records what was sent and what was left out on the proposal."""
    tree = await git.tree(repo, proposal.base_sha)
    blobs = tree.blobs()
    entries = [context.Entry(e.path, e.size) for e in blobs.values() if e.type == "blob"]
    plan = context.plan(entries, title=title, body=body, area_globs=area_globs, notes=proposal.notes)
    wanted = [c.path for c in plan.candidates]
    wanted += [p for p in (*plan.conventions, *MANIFESTS) if p in blobs and p not in wanted]
    texts = await git.read_files(repo, proposal.base_sha, wanted) if wanted else {}
    proposal.framework = context.detect_framework(
        set(blobs), {m: texts[m] or "" for m in MANIFESTS if texts.get(m)}
    )
    counter = counter_for("anthropic")  # the conservative estimate fits every builder
    spent = 0
    included: list[str] = []
    proposal.context, proposal.left_out = {}, []
    for candidate in plan.candidates:
        text = texts.get(candidate.path)
        if text is None:
            proposal.left_out.append(f"{candidate.path} (binary)")
            continue
        cost = counter.count(text) + FILE_OVERHEAD
        if spent + cost > budget_tokens:
            proposal.left_out.append(f"{candidate.path} ({candidate.reason})")
            continue
        spent += cost
        included.append(candidate.path)
        proposal.context[candidate.path] = candidate.reason
    proposal.left_out += [f"{p} (too large to send)" for p in plan.too_large]
    if tree.truncated:
        proposal.left_out.append("(the repository tree is larger than GitHub lists at once)")
    conventions = "\n\n".join(
        f"=== {p} (excerpt) ===\n{(texts.get(p) or '')[:CONVENTION_CHARS]}" for p in plan.conventions
    )
    listing = sorted(e.path for e in entries)
    shown = sorted({*included, *(p for p in listing if context.is_test(p))})[:TREE_LINES]
    sections = [
        Section("issue_title", title),
        Section("issue_body", body[:12_000]),
        Section("triage_summary", proposal.problem or "(none)"),
        Section("maintainer_notes", proposal.notes or "(none)"),
        Section("conventions", conventions or "(none)"),
        Section(
            "repository_paths",
            f"{len(listing)} files; shown: the files below and the test files\n" + "\n".join(shown),
        ),
        Section("files", files_section(texts, included), kind="code"),
    ]
    return Gathered(tree, texts, sections)


async def ask_and_apply(
    ctx: FlowContext,
    repo: RepoClient,
    proposal: policy.Proposal,
    schema: type[C],
    *,
    template: str,
    sections: list[Section],
    working: Working,
    gathered_tree: git.Tree,
    texts: dict[str, str | None],
) -> tuple[C, Working]:
    """Ask the builder, apply its edits; one repair round with the errors, then Refused."""
    known = set(gathered_tree.blobs())

    async def ask(asked: list[Section], attempt: int) -> tuple[C, Working | EditError]:
        assert ctx.llm is not None
        answer = await ctx.llm.ask(
            schema,
            template=template,
            sections=asked,
            call=call_meta(ctx, proposal),
            role="builder",
            complexity=proposal.complexity,
            values={"repository": repo.full_name, "framework": proposal.framework},
            max_output=BUILD_OUTPUT_TOKENS,
        )
        proposal.usage.append(
            policy.Usage(answer.model, "builder", answer.input_tokens + answer.output_tokens, answer.cost)
        )
        changes = answer.value
        await _load_missing(repo, proposal, working, changes, known, texts)
        try:
            return changes, changeset.apply(working, changes, known=known)
        except EditError as exc:
            ctx.log.warning("builder edits do not apply", problems=len(exc.problems), attempt=attempt)
            return changes, exc

    changes, applied = await ask(sections, 0)
    if isinstance(applied, EditError):
        changes, applied = await ask(
            [
                *sections,
                Section("previous_answer", json.dumps(changes.model_dump(), indent=1)[:40_000], kind="code"),
                Section("edit_errors", "\n".join(f"- {p}" for p in applied.problems)),
            ],
            1,
        )
    if isinstance(applied, EditError):
        raise Refused(
            "The builder's edits did not apply, even after one repair round:\n"
            + "\n".join(f"- {neutral(str(p))}" for p in applied.problems[:10])
        )
    return changes, applied


async def _load_missing(
    repo: RepoClient,
    proposal: policy.Proposal,
    working: Working,
    changes: ChangeSet,
    known: set[str],
    texts: dict[str, str | None],
) -> None:
    """Edited files that exist at the base but were not fetched: fetch them (one request), so an
    edit is applied to, and a deletion compared with, the real content."""
    missing = [
        p
        for p in changeset.edited_paths(changes)
        if p in known and p not in working.base and p not in texts and guardrails.path_problem(p) is None
    ]
    if missing:
        texts.update(await git.read_files(repo, proposal.base_sha, missing[:50]))
    for path in changeset.edited_paths(changes):
        if path not in working.base:
            working.base[path] = texts.get(path)


def guard(proposal: policy.Proposal, working: Working, tree: git.Tree, rules: RepoPolicy) -> None:
    """The guardrails on the final change; records flags; Refused naming each rule broken."""
    modes = {p: e.mode for p, e in tree.blobs().items()}
    changed = working.changed()
    if not any(working.parts.get(p) == "test" for p in changed):
        raise Refused("The change has no test edits left: nothing would show the problem exists.")
    if not any(working.parts.get(p) == "fix" for p in changed):
        raise Refused("The change has no fix edits left: the test alone changes nothing.")
    report = guardrails.check(changed, {p: working.base.get(p) for p in changed}, modes, rules.guardrails)
    if not report.ok:
        raise Refused(
            "The proposed change breaks the repository's guardrails, so nothing was committed:\n"
            + "\n".join(f"- {v}" for v in report.violations)
        )
    words = {"dependency": "new dependency", "install_hook": "install hook", "executes": "runs in CI"}
    proposal.flags = [f"{words.get(f.kind, f.kind)} in `{f.path}`: {f.detail}" for f in report.flags]
    proposal.files = {
        path: policy.FileChange(
            base=working.base.get(path),
            current=content,
            part=working.parts[path],
            mode=modes.get(path, "100644"),
        )
        for path, content in changed.items()
    }


def working_of(proposal: policy.Proposal) -> Working:
    return Working(
        base={p: f.base for p, f in proposal.files.items()},
        current={p: f.current for p, f in proposal.files.items()},
        parts={p: f.part for p, f in proposal.files.items()},
    )


async def push_commits(
    repo: RepoClient, proposal: policy.Proposal, *, previous_tests: dict[str, str | None] | None
) -> bool:
    """Create the tests-only and the fix commits (reusing the tests-only commit when its tests are
    unchanged and CI already saw it fail). Returns True when the test commit's CI must run."""
    tests = {p: (f.current, f.mode) for p, f in proposal.files.items() if f.part == "test"}
    fixes = {p: (f.current, f.mode) for p, f in proposal.files.items() if f.part == "fix"}
    test_state = {p: c for p, (c, _) in tests.items()}
    earlier = proposal.current("test")
    reuse = (
        previous_tests is not None
        and previous_tests == test_state
        and proposal.test_sha is not None
        and proposal.test_tree
        and earlier is not None
        and earlier.outcome == "failed"
    )
    if not reuse:
        proposal.test_sha, proposal.test_tree = await git.commit(
            repo,
            parent=proposal.base_sha,
            base_tree=proposal.base_tree,
            changes=tests,
            message=policy.commit_message(proposal, "test"),
        )
    assert proposal.test_sha is not None
    assert proposal.test_tree
    proposal.fix_sha, _ = await git.commit(
        repo,
        parent=proposal.test_sha,
        base_tree=proposal.test_tree,
        changes=fixes,
        message=policy.commit_message(proposal, "fix"),
    )
    return not reuse


async def audit_before_push(
    ctx: FlowContext, repo: RepoClient, proposal: policy.Proposal, rules: RepoPolicy
) -> None:
    """The audit of the exact change, before its commits are pushed: on the branch, the
    repository's CI would run them with its secrets. A blocking audit stops the proposal here with
    nothing pushed (Refused). Otherwise the report is stored under the fix commit, and the review
    and check run are posted from it once the pull request is verified (no second model call)."""
    from app.flows.audit import audit_change, reported_prints  # the audit flow imports this module's users

    assert proposal.fix_sha is not None
    files = diff.from_texts({p: (f.base, f.current) for p, f in proposal.files.items()})
    reported = await reported_prints(repo, proposal.pr_number) if proposal.pr_number else set()
    report = await audit_change(
        ctx,
        repo,
        rules,
        files=files,
        head=proposal.fix_sha,
        title=proposal.title,
        body=proposal.approach,
        commit_messages=[policy.commit_message(proposal, "test"), policy.commit_message(proposal, "fix")],
        reported=reported,
    )
    if report.verdict == "block":
        findings = "\n".join(f"- {neutral(f)[:300]}" for f in report.findings[:10]) or "- (see the audit)"
        raise Refused(
            "The audit of the change blocked it before anything was pushed, so the repository's CI "
            f"never ran it:\n{findings}"
        )
    await AuditReports(ctx.inbox.db, clock=ctx.inbox.clock).put(
        repo.full_name, proposal.pr_number or 0, proposal.fix_sha, report
    )


async def ci_approval_note(repo: RepoClient, rules: RepoPolicy) -> str | None:
    """Whether CI on `autopack/*` branches waits for a person: the repository has the environment
    `proposals.ci_environment` with required reviewers (docs/security.md explains the set-up).
    A sentence for the pull request when it is missing or cannot be checked; None when it is there."""
    name = rules.proposals.ci_environment
    try:
        response = await repo.gh.arequest("GET", f"/repos/{repo.full_name}/environments/{name}")
    except RequestFailed as exc:
        if exc.response.status_code == 404:
            return (
                f"CI ran this change with the repository's secrets before anyone reviewed it: no "
                f"`{name}` environment with required reviewers gates CI on `autopack/*` branches "
                "(see Autopack's security docs to add one)."
            )
        if exc.response.status_code == 403:
            return (
                f"Autopack could not check that CI on `autopack/*` branches waits for approval (the "
                f"`{name}` environment; the App needs Actions: read to see it)."
            )
        raise
    rules_found = {str(r.get("type")) for r in response.json().get("protection_rules") or []}
    if "required_reviewers" not in rules_found:
        return (
            f"The `{name}` environment has no required reviewers, so CI on `autopack/*` branches runs "
            "the change with its secrets before anyone reviews it."
        )
    return None
