"""`push` to the default branch (and the policy's `push.branches`) → secrets, risk, outdated models.

the pushed change (`before...after` from the merge base, so a forced push shows what it brings; a
new branch against the default branch; a deleted branch is skipped; over 300 files, commit by
commit, or the truncation is stated) → "Autopack secrets": a failing check run with an annotation
per secret, redacted, or a success → the audit engine's categories and risk score; at or above
`push.risk_threshold`, or touching `push.audit_categories`, the routed audit as an "Autopack audit"
check run on the pushed commit (the diff sent with found secrets redacted) → model configuration
files (`push.model_globs`) checked against the model catalogue: an "Autopack models" check run with
a warning per legacy, deprecated or retired name and its replacement.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from typing import Any

from app.flows.audit import CHECK_NAME
from app.flows.context import FlowContext
from app.flows.registry import Flow
from app.github import git
from app.github.repo import RepoClient
from app.llm.config import builtin_catalogue
from app.llm.ledger import CallMeta
from app.llm.prompt import Section
from app.llm.service import TASK_INPUT_BUDGET
from app.llm.tokens import counter_for
from app.metrics import PUSH_AUDITS
from app.policy import audit, hidden_text, secrets
from app.policy.diff import FileDiff, fit, from_api
from app.policy.markdown import neutral
from app.policy.model_names import ModelStatus, outdated
from app.policy.repo_policy import RepoPolicy

ZERO = "0" * 40
SECRETS_CHECK = "Autopack secrets"
MODELS_CHECK = "Autopack models"
MAX_COMMITS = 20  # commits read one by one when a comparison is truncated (the webhook lists 20)
PROMPT_OVERHEAD = 2_000


def accepts(payload: dict[str, Any]) -> bool:
    return (
        str(payload.get("ref") or "").startswith("refs/heads/")
        and not payload.get("deleted")
        and payload.get("after") not in (None, ZERO)
    )


async def handle(ctx: FlowContext) -> None:
    payload = ctx.payload
    branch = str(payload["ref"]).removeprefix("refs/heads/")
    default = ctx.default_branch
    rules = (await ctx.policy()).policy
    if not rules.push.enabled:
        return
    if branch != default and not any(fnmatch.fnmatchcase(branch, g) for g in rules.push.branches):
        PUSH_AUDITS.labels("skipped_branch").inc()
        return
    repo = await ctx.repo()
    after = str(payload["after"])
    diffs, note = await _changes(repo, payload, branch, default)
    result = secrets.scan_diffs(diffs, allow_paths=rules.push.secrets_allow_paths)
    findings = result.findings
    extra = {str(k): list(v) for k, v in rules.audit.categories.items()}
    found = audit.categories(diffs, extra)
    score = audit.risk(diffs, found)
    await _report_secrets(repo, after, result, score, rules, note)
    PUSH_AUDITS.labels("secrets_found" if findings else "clean").inc()
    ctx.log.info(
        "push audited", branch=branch, after=after, files=len(diffs), secrets=len(findings), risk=score.score
    )
    audited = score.score >= rules.push.risk_threshold or bool(set(found) & set(rules.push.audit_categories))
    if audited and ctx.llm is not None and diffs:
        await _audit(ctx, repo, rules, payload, after, diffs, found, score, extra)
    await _check_models(ctx, repo, after, diffs, rules)


async def _changes(
    repo: RepoClient, payload: dict[str, Any], branch: str, default: str
) -> tuple[list[FileDiff], str]:
    """The pushed change and a note when it could not be read whole."""
    before, after = str(payload.get("before") or ZERO), str(payload["after"])
    if payload.get("created") or before == ZERO:
        if branch == default:  # a new default branch: its commits are all there is
            files: list[dict[str, Any]] = []
            for commit in (payload.get("commits") or [])[:MAX_COMMITS]:
                files += await git.commit_files(repo, str(commit["id"]))
            return from_api(files), ""
        base = default
    else:
        base = before
    files, _commits = await git.compare(repo, base, after)
    if len(files) < git.COMPARE_FILE_LIMIT:
        return from_api(files), ""
    # GitHub stops listing at 300 files: read the pushed commits one by one instead.
    pushed = [str(c["id"]) for c in payload.get("commits") or []]
    by_path: dict[str, dict[str, Any]] = {}
    for sha in pushed[:MAX_COMMITS]:
        for entry in await git.commit_files(repo, sha):
            by_path[str(entry.get("filename"))] = entry  # a later commit's patch of a file wins
    note = ""
    if len(pushed) > MAX_COMMITS or payload.get("size", len(pushed)) > len(pushed):
        note = (
            f"The push changes more than {git.COMPARE_FILE_LIMIT} files and more than {MAX_COMMITS} commits: "
            f"only the first {min(len(pushed), MAX_COMMITS)} commits were scanned."
        )
    return from_api(list(by_path.values())), note


async def _report_secrets(
    repo: RepoClient,
    sha: str,
    result: secrets.ScanResult,
    score: audit.Risk,
    rules: RepoPolicy,
    note: str,
) -> None:
    findings = result.findings
    lines = [
        f"Risk of this push: **{score.score}/100** "
        + (
            "(the routed audit runs)"
            if score.score >= rules.push.risk_threshold
            else f"(below the audit threshold {rules.push.risk_threshold})"
        ),
        *[f"- {reason}" for reason in score.reasons],
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
            f"**{len(findings)} secret{'s' if len(findings) != 1 else ''} added by this push.** Values are "
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
    annotations = [
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
    ]
    title = (
        f"{len(findings)} secret{'s' if len(findings) != 1 else ''} found" if findings else "no secrets found"
    )
    if result.not_scanned and not findings:
        count = len(result.not_scanned)
        title = f"no secrets found; {count} file{'s' if count != 1 else ''} not scanned"
    await repo.report_check(
        sha,
        SECRETS_CHECK,
        conclusion="failure" if findings else "neutral" if result.not_scanned else "success",
        title=title,
        summary="\n".join(lines),
        annotations=annotations,
    )


async def _audit(
    ctx: FlowContext,
    repo: RepoClient,
    rules: RepoPolicy,
    payload: dict[str, Any],
    sha: str,
    diffs: list[FileDiff],
    found: tuple[str, ...],
    score: audit.Risk,
    extra: dict[str, list[str]],
) -> None:
    """The routed audit of a risky push, reported on the pushed commit (no PR: no review comments)."""
    assert ctx.llm is not None
    level = audit.complexity(diffs, found)
    category = audit.primary_category(found)
    fitted = fit(
        diffs,
        budget_tokens=TASK_INPUT_BUDGET["push_audit"] - PROMPT_OVERHEAD,
        count=counter_for("anthropic").count,
        priority=lambda f: audit.priority(f, extra),
    )
    messages = "\n".join(
        str(c.get("message") or "").splitlines()[0][:200] for c in (payload.get("commits") or [])[:50] if c
    )
    answer = await ctx.llm.ask(
        audit.AuditAnswer,
        template="push_audit",
        sections=[
            Section("commit_messages", messages),  # redacted, like every section, when the prompt is built
            # every line, added or not, is redacted when the prompt is built: no secret reaches a model
            Section("diff", fitted.text, kind="code"),
            Section("not_shown", "\n".join((*fitted.summarised, *fitted.omitted)) or "(nothing)"),
        ],
        call=CallMeta(
            ctx.installation_id,
            repo.full_name,
            "push_audit",
            "auditor",
            category,
            ctx.job.id,
            ctx.delivery_id,
        ),
        role="auditor",
        complexity=level,
        values={"repository": repo.full_name},
        max_output=4_000,
    )
    floors = audit.Floors(rules.audit.min_severity, rules.audit.min_confidence, rules.audit.max_line_comments)
    by_code = [*audit.reviewer_instructions(diffs), *hidden_text.findings(diffs)]
    kept = [*by_code, *audit.keep(list(answer.value.findings), floors)]
    verdict = answer.value.verdict
    if by_code and verdict == "approve":
        verdict = "comment"  # found by code: no model's approval outweighs it
    summary = "\n".join(
        [
            f"**Autopack audit** of push `{sha[:7]}`: **{verdict}** · risk **{score.score}/100** · "
            f"complexity {level}",
            f"Categories: {', '.join(found)}",
            "",
            *(
                [f"- **{f.severity}** `{neutral(f.path)}:{f.start_line}` {neutral(f.title)}" for f in kept]
                or ["No findings."]
            ),
            "",
            f"Model `{answer.model}`, {answer.input_tokens + answer.output_tokens:,} tokens, "
            f"${answer.cost:.4f}",
        ]
    )
    await repo.report_check(
        sha,
        CHECK_NAME,
        conclusion=audit.check_conclusion(verdict),
        title=f"{verdict}: risk {score.score}/100, {len(kept)} finding{'s' if len(kept) != 1 else ''}",
        summary=summary,
        annotations=[a for batch in audit.annotation_batches(kept) for a in batch],
    )
    PUSH_AUDITS.labels(f"audited_{verdict}").inc()


async def _check_models(
    ctx: FlowContext, repo: RepoClient, sha: str, diffs: list[FileDiff], rules: RepoPolicy
) -> None:
    configs = [
        d.path
        for d in diffs
        if d.status != "removed" and any(fnmatch.fnmatchcase(d.path, g) for g in rules.push.model_globs)
    ]
    if not configs:
        return
    catalogue = ctx.llm.catalogue if ctx.llm is not None else builtin_catalogue()
    today = dt.datetime.fromtimestamp(ctx.inbox.clock(), dt.UTC).date()
    known = {
        name: ModelStatus(info.status(today), info.shutdown, info.replacement)
        for name, info in catalogue.models.items()
    }
    annotations: list[dict[str, Any]] = []
    for path in configs[:20]:
        text = await repo.file_text(path, sha)
        for item in outdated(text or "", known):
            annotations.append(
                {
                    "path": path,
                    "start_line": item.line,
                    "end_line": item.line,
                    "annotation_level": "warning",
                    "title": f"{item.status} model",
                    "message": item.message(),
                }
            )
    lines = [f"- `{a['path']}:{a['start_line']}` {a['message']}" for a in annotations]
    await repo.report_check(
        sha,
        MODELS_CHECK,
        conclusion="neutral" if annotations else "success",
        title=f"{len(annotations)} outdated model name{'s' if len(annotations) != 1 else ''}"
        if annotations
        else "model names are current",
        summary="\n".join(lines) or "Every model named in " + ", ".join(configs) + " is current.",
        annotations=annotations,
    )


FLOW = Flow(
    name="push_audit",
    triggers=frozenset({("push", None)}),
    handler=handle,
    accepts=accepts,
    section="push",
    background=True,
)
