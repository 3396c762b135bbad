"""`autopack shadow [--repo R] [--since 7d]`: what flows in shadow mode would have done.

Reads `shadow_decisions` (written by the dispatcher for flows whose policy says `mode: shadow`)
and prints, per decision, when, which repository and thread, which flow, and what it would have
written: labels, comment text, reviews and their line comments, check runs, merges.
"""

from __future__ import annotations

import datetime as dt
import json

import click

from app.policy import shadow


@click.command("shadow")
@click.option("--repo", "repository", default=None, help="Only this repository (owner/name).")
@click.option("--since", "since_text", default="7d", show_default=True, help="How far back: 12h, 7d, 4w.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--full", is_flag=True, help="Every write of each decision, not only its headline.")
def shadow_command(repository: str | None, since_text: str, limit: int, fmt: str, full: bool) -> None:
    """What flows in shadow mode decided and would have written, newest first."""
    from app.cli import _inbox, _run, _settings, _since
    from app.inbox.shadow import ShadowDecisions

    since = _since(since_text)
    settings = _settings()
    with _inbox(settings) as inbox:
        decisions = _run(lambda: ShadowDecisions(inbox.db).since(since, repository, limit))
    if fmt == "json":
        for d in decisions:
            row = {
                "at": d.created_at,
                "repository": d.repository,
                "subject": d.subject,
                "flow": d.flow,
                "job_id": d.job_id,
                "delivery_id": d.delivery_id,
                "writes": [
                    {"method": m, "path": p, "body": b, "summary": shadow.describe((m, p, b))}
                    for m, p, b in d.writes
                ],
            }
            click.echo(json.dumps(row))
        return
    if not decisions:
        click.echo(
            f"No shadow decisions since {since_text} ago" + (f" in {repository}." if repository else ".")
        )
        return
    for d in decisions:
        when = dt.datetime.fromtimestamp(d.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{when}  {d.subject:40}  {d.flow:14}  {shadow.headline(d.writes)}")
        if full:
            for write in d.writes:
                click.echo(f"{'':20}- {shadow.describe(write)}")
    counts = shadow.tally([(d.flow, d.writes) for d in decisions])
    click.echo("")
    for flow, kinds in sorted(counts.items()):
        click.echo(f"{flow}: " + ", ".join(f"{n} {k}" for k, n in kinds.most_common()))
