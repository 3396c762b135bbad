"""`autopack eval triage|audit --repo OWNER/NAME`: measure triage or the audit on a repository's own
history before letting them act there (`app.flows.evaluate` runs it, `app.policy.evaluation` counts).

Reads go to GitHub with the App's installation on that repository; every write is kept by the
dry-run transport, never sent. Model calls are real: the cost is estimated first and confirmed
(`--yes` skips the question), `--max-cost` stops before going over, and the weekly budgets apply.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


@click.group("eval")
def eval_group() -> None:
    """Replay a repository's history through triage or the audit and compare with its maintainers."""


def _options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option(
                "--repo", "repository", required=True, help="owner/name, where the App is installed."
            ),
            click.option(
                "--since", "since_text", default="90d", show_default=True, help="How far back: 30d, 12w."
            ),
            click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1_000)),
            click.option(
                "--max-cost",
                type=click.FloatRange(min=0),
                default=None,
                help="Stop before spending more (USD).",
            ),
            click.option(
                "--out",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                help="Write the report here.",
            ),
            click.option("--yes", is_flag=True, help="Do not ask before spending."),
        ]
    ):
        command = option(command)
    return command


@eval_group.command("triage")
@_options
def eval_triage(**options: Any) -> None:
    """Triage past issues again and compare category, area, needs-info and duplicates."""
    _evaluate("triage", **options)


@eval_group.command("audit")
@_options
def eval_audit(**options: Any) -> None:
    """Audit merged pull requests again and compare with review comments and later fixes."""
    _evaluate("audit", **options)


def _evaluate(
    kind: str,
    *,
    repository: str,
    since_text: str,
    limit: int,
    max_cost: float | None,
    out: Path | None,
    yes: bool,
) -> None:
    from app.cli import _fail, _inbox, _run, _settings, _since
    from app.flows.evaluate import Evaluation
    from app.github.client import GitHubApp
    from app.llm.factory import build_llm

    if repository.count("/") != 1 or not all(repository.split("/")):
        _fail(f"--repo: {repository!r} is not owner/name")
    since = _since(since_text)
    settings = _settings()
    key = settings.private_key_pem()
    if settings.app_id is None or key is None:
        _fail("APP_ID and PRIVATE_KEY: missing; `eval` reads the repository with the App's installation")
    github = GitHubApp(
        settings.app_id,
        key,
        base_url=settings.github_api_url,
        timeout=settings.autopack_github_timeout_seconds,
        dry_run_printer=lambda _line: None,  # writes are kept, never sent
    )

    async def confirm(question: str) -> bool:
        click.echo(question)
        return yes or click.confirm("Spend it?", default=False)

    with _inbox(settings) as inbox:
        llm = build_llm(settings, inbox.db)

        async def go() -> Any:
            run = Evaluation(
                github,
                llm,
                inbox,
                settings,
                repository,
                since=since,
                limit=limit,
                max_cost=max_cost,
                confirm=confirm,
            )
            try:
                return await (run.triage() if kind == "triage" else run.audit())
            finally:
                await github.aclose()

        outcome = _run(go)
    click.echo(outcome.report)
    if outcome.stopped == "not confirmed":
        raise SystemExit(1)
    if out is not None:
        out.write_text(outcome.report, encoding="utf-8")
        click.echo(f"Report written to {out}.")
