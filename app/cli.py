"""`autopack`: serve, worker, migrate, receive, deliveries (DESIGN §6)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from app import logs
from app.settings import Mode, Settings, SettingsError

T = TypeVar("T")


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"autopack: {message}", err=True)
    sys.exit(code)


def _settings(**overrides: Any) -> Settings:
    try:
        settings = Settings.load(**overrides)
    except SettingsError as exc:
        _fail(str(exc))
    logs.configure(settings.log_level, settings.log_format, settings.secret_values())
    return settings


def _run(coro_factory: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_factory()

    try:
        return asyncio.run(main())
    except SettingsError as exc:
        _fail(str(exc))


@contextlib.contextmanager
def _inbox(settings: Settings, *, prepare: bool = True) -> Iterator[Any]:
    """The configured inbox, schema checked (SQLite: migrated), closed afterwards."""
    from app.inbox.db import DatabaseUnavailable
    from app.inbox.store import Inbox

    try:
        inbox = Inbox.open(settings.database_url)
    except DatabaseUnavailable as exc:
        _fail(str(exc))
    try:
        if prepare:
            _run(inbox.prepare)
        yield inbox
    finally:
        inbox.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Autopack: a self-hostable GitHub App that triages feedback, proposes verified
    improvement PRs, keeps dependencies patched and audits risky pushes.

    Settings come from the environment and a .env file (see docs/configuration.md).
    """


def _serve(receive_webhooks: bool) -> None:
    import uvicorn

    from app.inbox.db import DatabaseUnavailable
    from app.inbox.store import SchemaOutOfDate
    from app.llm.config import ConfigError
    from app.service import Service
    from app.web.app import create_app

    settings = _settings()
    try:
        service = Service(settings)
    except (SettingsError, DatabaseUnavailable, ConfigError) as exc:
        _fail(str(exc))
    if service.inbox is not None:
        try:
            _run(service.inbox.prepare)  # SQLite migrates; PostgreSQL must be migrated already
        except (SchemaOutOfDate, DatabaseUnavailable) as exc:
            service.inbox.close()
            _fail(str(exc))
    app = create_app(service, receive_webhooks=receive_webhooks)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=int(settings.autopack_shutdown_grace_seconds) + 5,
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        sys.exit(3)


@main.command()
def serve() -> None:
    """Run the webhook receiver and the workers in one process (on HOST:PORT).

    With no GitHub App settings at all it starts in setup mode: / explains what is missing and
    the webhook route answers 503.
    """
    _serve(receive_webhooks=True)


@main.command()
def worker() -> None:
    """Run workers only (several may share one PostgreSQL). Serves /healthz, /readyz and /metrics
    on HOST:PORT, no webhook route."""
    _serve(receive_webhooks=False)


@main.command()
def migrate() -> None:
    """Apply database schema migrations (SQLite also migrates on start)."""
    settings = _settings()
    with _inbox(settings, prepare=False) as inbox:
        applied = _run(inbox.migrate)
    click.echo(f"applied migrations: {applied}" if applied else "schema is up to date")


@main.command()
@click.option(
    "-e",
    "--event",
    "event",
    required=True,
    help="Event name, e.g. issues or issue_comment (issues.opened also works).",
)
@click.option(
    "-p",
    "--payload",
    "payload_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON file with the webhook payload.",
)
@click.option(
    "--dry-run", is_flag=True, help="Send GitHub reads but print every write instead of sending it."
)
def receive(event: str, payload_path: Path, dry_run: bool) -> None:
    """Run one event through its flows here, with the configured App credentials.

    Nothing is written to the configured database: the delivery goes through a private in-memory
    inbox, so a replay never disturbs the running service.
    """
    from app.flows.dispatch import Dispatcher
    from app.flows.registry import default_registry
    from app.github.client import GitHubApp
    from app.inbox.models import NewDelivery
    from app.inbox.store import Inbox
    from app.llm.factory import build_llm
    from app.policy.subjects import installation_id, repository_name, subject_key

    settings = _settings()
    try:
        mode = settings.mode()
    except SettingsError as exc:
        _fail(str(exc))
    if mode is Mode.SETUP or settings.app_id is None:
        _fail("APP_ID: missing; `receive` runs flows with the App's credentials")
    try:
        payload = json.loads(payload_path.read_bytes())
    except ValueError as exc:
        _fail(f"{payload_path}: not valid JSON ({exc})")
    if not isinstance(payload, dict):
        _fail(f"{payload_path}: not a JSON object")
    name, _, wanted = event.partition(".")
    found = payload.get("action")
    if wanted and found not in (None, wanted):
        _fail(f"the payload's action is {found!r}, not {wanted!r}")
    action: str | None = found if isinstance(found, str) else (wanted or None)
    registry = default_registry()
    flows = registry.flows_for(name, action, payload)
    if not flows:
        click.echo(f"no flow handles {name}{'.' + action if action else ''}: it would be ignored")
        return
    key = settings.private_key_pem()
    assert key is not None
    github = GitHubApp(
        settings.app_id,
        key,
        base_url=settings.github_api_url,
        timeout=settings.autopack_github_timeout_seconds,
        dry_run_printer=click.echo if dry_run else None,
    )

    body = payload_path.read_bytes()

    async def go() -> int:
        inbox = Inbox.open("sqlite:///:memory:")
        try:
            await inbox.migrate()
            delivery_id = f"local-{uuid.uuid4()}"
            await inbox.record_delivery(
                NewDelivery(
                    delivery_id,
                    name,
                    action,
                    installation_id(payload),
                    repository_name(payload),
                    subject_key(name, payload, delivery_id),
                    {},
                    body,
                    time.time(),
                ),
                flows,
                max_attempts=1,
            )
            dispatcher = Dispatcher(registry, inbox, github, settings, build_llm(settings, inbox.db))
            failures = 0
            while (job := await inbox.claim("receive", 3600)) is not None:
                click.echo(f"running flow {job.flow} on {job.subject}")
                try:
                    await dispatcher(job)
                except Exception as exc:
                    failures += 1
                    click.echo(f"flow {job.flow} failed: {logs.redactor.text(str(exc))}", err=True)
                    await inbox.fail(job, str(exc), retry_in=None)
                else:
                    await inbox.complete(job)
                    click.echo(f"flow {job.flow} done")
            return failures
        finally:
            inbox.close()

    sys.exit(1 if _run(go) else 0)


@main.group()
def deliveries() -> None:
    """Inspect and re-run recorded webhook deliveries."""


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@deliveries.command("list")
@click.option(
    "--status",
    type=click.Choice(["queued", "running", "done", "failed", "dead", "ignored"]),
    help="Only deliveries in this state.",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_deliveries(status: str | None, limit: int, as_json: bool) -> None:
    """Most recent deliveries first, with the state of their jobs."""
    settings = _settings()
    with _inbox(settings) as inbox:
        rows = _run(lambda: inbox.list_deliveries(state=status, limit=limit))
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    click.echo(f"{'received (UTC)':19}  {'state':8}  {'event':28}  {'subject':40}  delivery")
    for row in rows:
        event = row["event"] + (f".{row['action']}" if row["action"] else "")
        click.echo(
            f"{_when(row['received_at']):19}  {row['state']:8}  {event[:28]:28}  "
            f"{(row['subject'] or '-')[:40]:40}  {row['id']}"
        )


@deliveries.command("show")
@click.argument("delivery_id")
@click.option("--payload", "show_payload", is_flag=True, help="Print the stored payload too.")
def show_delivery(delivery_id: str, show_payload: bool) -> None:
    """One delivery: headers, jobs with attempts and errors, and optionally its payload."""
    settings = _settings()
    with _inbox(settings) as inbox:
        delivery = _run(lambda: inbox.get_delivery(delivery_id))
        jobs = _run(lambda: inbox.jobs_for_delivery(delivery_id))
    if delivery is None:
        _fail(f"no delivery {delivery_id}", code=1)
    click.echo(f"delivery   {delivery.id}")
    click.echo(f"event      {delivery.event}{'.' + delivery.action if delivery.action else ''}")
    click.echo(f"received   {_when(delivery.received_at)} UTC")
    click.echo(f"repository {delivery.repository or '-'}  installation {delivery.installation_id}")
    click.echo(f"subject    {delivery.subject}")
    click.echo(f"status     {delivery.status}")
    if delivery.pruned_at:
        click.echo(f"payload    pruned at {_when(delivery.pruned_at)} UTC")
    elif delivery.payload is not None:
        click.echo(f"payload    {len(delivery.payload)} bytes")
    for job in jobs:
        click.echo(
            f"job {job.id:<6} {job.flow:14} {job.status:8} attempts {job.attempts}/{job.max_attempts}"
            f"  run_at {_when(job.run_at)}  finished {_when(job.finished_at)}"
        )
        if job.last_error:
            click.echo(f"           last error: {job.last_error}")
    if show_payload and delivery.payload is not None:
        click.echo(json.dumps(json.loads(delivery.payload), indent=2))


@deliveries.command("retry")
@click.argument("delivery_id")
def retry_delivery(delivery_id: str) -> None:
    """Run a delivery's flows again (finished jobs are re-queued with fresh attempts)."""
    from app.flows.registry import default_registry

    settings = _settings()
    with _inbox(settings) as inbox:
        delivery = _run(lambda: inbox.get_delivery(delivery_id))
        if delivery is None:
            _fail(f"no delivery {delivery_id}", code=1)
        payload = json.loads(delivery.payload) if delivery.payload else {}
        flows = default_registry().flows_for(delivery.event, delivery.action, payload)
        try:
            ids = _run(
                lambda: inbox.retry_delivery(delivery_id, flows, max_attempts=settings.autopack_max_attempts)
            )
        except ValueError as exc:
            _fail(str(exc), code=1)
    if ids:
        click.echo(f"re-queued job(s) {', '.join(map(str, ids))}; a running worker will pick them up")
    else:
        click.echo("nothing to retry: its jobs are still queued or running, or no flow handles it")


_DURATION = {"h": 3600, "d": 86400, "w": 7 * 86400}


def _since(text: str) -> float:
    """`7d`, `12h`, `2w` → a timestamp that long ago."""
    unit = text[-1:].lower()
    if unit not in _DURATION or not text[:-1].isdigit():
        raise click.BadParameter("use a number and h, d or w, e.g. 7d", param_hint="--since")
    return time.time() - int(text[:-1]) * _DURATION[unit]


@main.command()
@click.option("--since", "since_text", default="7d", show_default=True, help="How far back: 12h, 7d, 4w.")
@click.option(
    "--by",
    type=click.Choice(["provider", "model", "task", "category", "repo", "installation"]),
    default="model",
    show_default=True,
    help="How to group the calls.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def usage(since_text: str, by: str, as_json: bool) -> None:
    """LLM calls, tokens and cost from the usage ledger."""
    from app.llm.ledger import Ledger

    since = _since(since_text)
    settings = _settings()
    with _inbox(settings) as inbox:
        rows = _run(lambda: Ledger(inbox.db).summary(since=since, by=by))
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    click.echo(
        f"{by:32}  {'calls':>6}  {'ok':>5}  {'input':>12}  {'cached':>12}  {'output':>11}  {'cost USD':>10}"
    )
    total = 0.0
    for row in rows:
        total += float(row["cost"])
        key = str(row["key"] if row["key"] is not None else "-")[:32]
        click.echo(
            f"{key:32}  {row['calls']:>6}  {row['ok']:>5}  "
            f"{row['input_tokens']:>12,}  {row['cached_tokens']:>12,}  {row['output_tokens']:>11,}  "
            f"{float(row['cost']):>10.4f}"
        )
    calls = sum(int(r["calls"]) for r in rows)
    click.echo(f"{'total':32}  {calls:>6}  {'':>5}  {'':>12}  {'':>12}  {'':>11}  {total:>10.4f}")


@main.command("status")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def status(fmt: str) -> None:
    """What Autopack did in the last 24 hours, what waits, what failed, what it costs (as /status)."""
    from app.llm.config import ConfigError, builtin_catalogue, load_catalogue, load_routing
    from app.status import gather, render_text

    settings = _settings()
    try:
        catalogue = (
            load_catalogue(settings.autopack_catalogue)
            if settings.autopack_catalogue
            else builtin_catalogue()
        )
        routing = load_routing(settings.autopack_models, catalogue)
    except ConfigError:
        routing = None
    with _inbox(settings) as inbox:
        summary = _run(lambda: gather(inbox, routing))
    click.echo(json.dumps(summary.to_json(), indent=2) if fmt == "json" else render_text(summary))


def _add_subcommands() -> None:
    """Command groups that live in modules of their own."""
    from app.eval_cli import eval_group
    from app.secrets_cli import secrets_group
    from app.shadow_cli import shadow_command

    main.add_command(secrets_group)
    main.add_command(shadow_command)
    main.add_command(eval_group)


_add_subcommands()


@main.command("check-config")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Exit 1 on warnings (legacy, deprecated or retired models) too.")
def check_config(path: Path | None, strict: bool) -> None:
    """Validate a routing file (default: AUTOPACK_MODELS or the built-in one) or a repository
    policy file (.github/autopack.yml).

    Every error names the YAML path (and, for policy files, the line) of the bad key. Every legacy,
    deprecated or retired model is listed with its shutdown date and replacement.
    """
    import datetime as dt

    from app.llm.config import ConfigError, builtin_catalogue, load_catalogue, load_routing

    settings = _settings()
    if path is not None and _is_policy_file(path):
        _check_policy(path)
        return
    try:
        catalogue = (
            load_catalogue(settings.autopack_catalogue)
            if settings.autopack_catalogue
            else builtin_catalogue()
        )
        source = path or settings.autopack_models
        routing = load_routing(source, catalogue)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    today = dt.datetime.now(dt.UTC).date()
    warnings = 0
    for where, model in routing.named_models():
        info = catalogue.get(model)
        if info is None or info.status(today) == "current":
            continue
        warnings += 1
        status = info.status(today)
        when = ""
        if info.shutdown is not None:
            days = (info.shutdown - today).days
            when = (
                f", shut down on {info.shutdown}"
                if days <= 0
                else f", shuts down on {info.shutdown} (in {days} days)"
            )
        instead = f"; replace with {info.replacement}" if info.replacement else ""
        click.echo(f"warning: {where}: {model} is {status}{when}{instead}")
    warnings += _print_answer_schemas(routing, catalogue, bool(settings.openai_base_url))
    name = str(source) if source else "built-in routing"
    click.echo(f"{name}: valid, {len(routing.named_models())} model references, {warnings} warning(s)")
    if strict and warnings:
        sys.exit(1)


def _print_answer_schemas(routing: Any, catalogue: Any, compatible_server: bool) -> int:
    """Which answer schemas each model will receive, in which provider dialect; a model whose
    dialect is unknown (not in the catalogue) is flagged. Returns the number of flags."""
    from app.flows.answer_schemas import ROLE_SCHEMAS, role_of
    from app.llm.dialects import dialect_for

    roles: dict[str, list[str]] = {}
    stand_ins: list[tuple[str, str]] = []  # (model, the model it stands in for)
    for where, model in routing.named_models():
        role = role_of(where)
        if role is not None:
            roles.setdefault(model, []).append(role)
        else:  # fallbacks.<primary>[i] and cheaper.<model> answer whatever their model is asked
            stand_ins.append((model, where.split(".", 1)[1].split("[", 1)[0]))
    for model, primary in stand_ins:
        roles.setdefault(model, []).extend(roles.get(primary, []))
    schemas: dict[str, list[str]] = {}
    for model, its_roles in roles.items():
        listed = schemas.setdefault(model, [])
        listed.extend(n for role in its_roles for n in ROLE_SCHEMAS[role] if n not in listed)
    flags = 0
    click.echo("answers by model (provider dialect):")
    for model, names in schemas.items():
        info = catalogue.get(model)
        provider = info.provider if info else routing.providers.get(model)
        structured = info.structured_output if info else "json_schema"
        dialect = dialect_for(str(provider), structured, compatible_server)
        if info is None or dialect is None:
            flags += 1
            assumed = dialect.name if dialect else "none"
            click.echo(
                f"warning: {model}: structured-output dialect unknown (not in the catalogue); "
                f"assumed {assumed}. Add it to the catalogue with its structured_output."
            )
        label = dialect.name if dialect else "unknown"
        click.echo(f"  {model} ({label}): {', '.join(names)}")
    return flags


def _is_policy_file(path: Path) -> bool:
    """A routing file has `complexity_models`; anything else is read as a repository policy."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return path.name.startswith("autopack")
    return not (isinstance(data, dict) and "complexity_models" in data)


def _check_policy(path: Path) -> None:
    from app.policy.repo_policy import PolicyError, load_text, validate

    try:
        text = path.read_text()
    except OSError as exc:
        _fail(f"{path}: cannot read: {exc.strerror}", code=1)
    try:
        data = load_text(text, str(path))
        validate(data, text, str(path))
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(f"{path}: {problem}", err=True)
        sys.exit(1)
    if "_extends" in data:
        click.echo(f"note: _extends: {data['_extends']!r} is resolved on GitHub, not checked here")
    click.echo(f"{path}: valid policy file")
