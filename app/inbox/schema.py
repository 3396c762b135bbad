"""Versioned schema migrations for both backends.

Each migration is a list of statements per dialect. `migrate()` applies the missing ones in order
inside one transaction and records them in `schema_migrations`. On PostgreSQL an advisory lock
keeps replicas that start together from racing. SQLite migrates on start; PostgreSQL deployments
run `autopack migrate` (the server refuses to start on an old schema and says so).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.inbox.db import Tx

_JOBS_COMMON = """
    flow TEXT NOT NULL,
    subject TEXT NOT NULL,
    delivery_id TEXT REFERENCES deliveries(id),
    args TEXT,
    dedupe_key TEXT UNIQUE,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    reschedules INTEGER NOT NULL DEFAULT 0,
    run_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    lease_owner TEXT,
    lease_token TEXT,
    lease_expires_at DOUBLE PRECISION,
    last_error TEXT,
    UNIQUE (delivery_id, flow)
"""

_SHARED_V1 = [
    """CREATE INDEX jobs_due ON jobs (run_at, id) WHERE status = 'queued'""",
    # The database itself guarantees at most one running job per subject, on both backends.
    """CREATE UNIQUE INDEX jobs_one_running_per_subject ON jobs (subject) WHERE status = 'running'""",
    # Indexes an insert (status 'queued') does not touch, for what operators and commands look up:
    # failed and dead jobs by subject (`/autopack retry`) and their counts (/metrics). The claim's
    # per-subject check uses the running index above; lookups by delivery use UNIQUE (delivery_id, flow).
    """CREATE INDEX jobs_unsuccessful ON jobs (subject, finished_at) WHERE status IN ('failed', 'dead')""",
    """CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE status = 'running'""",
    """CREATE INDEX deliveries_received ON deliveries (received_at)""",
    """CREATE TABLE installations (
        id BIGINT PRIMARY KEY,
        account_login TEXT NOT NULL,
        account_type TEXT,
        target_type TEXT,
        suspended_at DOUBLE PRECISION,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE installation_repositories (
        installation_id BIGINT NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
        repository_id BIGINT NOT NULL,
        full_name TEXT NOT NULL,
        PRIMARY KEY (installation_id, repository_id)
    )""",
]

_DELIVERIES = """CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    action TEXT,
    installation_id BIGINT,
    repository TEXT,
    subject TEXT,
    status TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    headers TEXT,
    payload {blob},
    pruned_at DOUBLE PRECISION
)"""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sqlite: list[str]
    postgresql: list[str]


MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "deliveries, jobs, installations",
        sqlite=[
            _DELIVERIES.format(blob="BLOB"),
            f"CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, {_JOBS_COMMON})",
            *_SHARED_V1,
        ],
        postgresql=[
            _DELIVERIES.format(blob="BYTEA"),
            f"CREATE TABLE jobs (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, {_JOBS_COMMON})",
            *_SHARED_V1,
        ],
    ),
]

_USAGE = [
    """CREATE TABLE llm_usage (
        id {id},
        created_at DOUBLE PRECISION NOT NULL,
        week TEXT NOT NULL,
        installation_id BIGINT,
        repository TEXT,
        task TEXT NOT NULL,
        role TEXT NOT NULL,
        category TEXT NOT NULL,
        provider TEXT NOT NULL,
        requested_model TEXT NOT NULL,
        model TEXT,
        input_tokens BIGINT NOT NULL DEFAULT 0,
        cached_tokens BIGINT NOT NULL DEFAULT 0,
        output_tokens BIGINT NOT NULL DEFAULT 0,
        reserved_tokens BIGINT NOT NULL DEFAULT 0,
        cost DOUBLE PRECISION NOT NULL DEFAULT 0,
        job_id BIGINT,
        delivery_id TEXT,
        outcome TEXT NOT NULL
    )""",
    "CREATE INDEX llm_usage_week_provider ON llm_usage (week, provider)",
    "CREATE INDEX llm_usage_week_installation ON llm_usage (week, installation_id)",
    "CREATE INDEX llm_usage_week_repository ON llm_usage (week, repository)",
    "CREATE INDEX llm_usage_created ON llm_usage (created_at)",
    "CREATE INDEX llm_usage_job ON llm_usage (job_id)",  # the per-job call cap
]

MIGRATIONS.append(
    Migration(
        2,
        "LLM usage ledger",
        sqlite=[s.format(id="INTEGER PRIMARY KEY AUTOINCREMENT") for s in _USAGE],
        postgresql=[s.format(id="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY") for s in _USAGE],
    )
)

_TRIAGE = [
    """CREATE TABLE triage_log (
        id {id},
        repository TEXT NOT NULL,
        issue_number BIGINT NOT NULL,
        author TEXT NOT NULL,
        body_hash TEXT NOT NULL,
        body TEXT,
        comment_id BIGINT,
        triaged_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX triage_log_issue ON triage_log (repository, issue_number, id)",
    "CREATE INDEX triage_log_author ON triage_log (repository, author, triaged_at)",
]

MIGRATIONS.append(
    Migration(
        3,
        "triage history (same-body skips, per-reporter rate limit, comment ids)",
        sqlite=[s.format(id="INTEGER PRIMARY KEY AUTOINCREMENT") for s in _TRIAGE],
        postgresql=[s.format(id="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY") for s in _TRIAGE],
    )
)

_PROPOSALS = [
    # One row per feedback issue: the proposal's whole record is `data` (JSON, app.policy.proposal);
    # the columns are what the flows look it up by.
    """CREATE TABLE proposals (
        repository TEXT NOT NULL,
        issue_number BIGINT NOT NULL,
        status TEXT NOT NULL,
        pr_number BIGINT,
        waiting_sha TEXT,
        data TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (repository, issue_number)
    )""",
    "CREATE INDEX proposals_pr ON proposals (repository, pr_number) WHERE pr_number IS NOT NULL",
    "CREATE INDEX proposals_waiting ON proposals (waiting_sha) WHERE waiting_sha IS NOT NULL",
    """CREATE TABLE rejections (
        id {id},
        repository TEXT NOT NULL,
        issue_number BIGINT NOT NULL,
        pr_number BIGINT,
        reason TEXT NOT NULL,
        rejected_by TEXT,
        area TEXT,
        summary TEXT,
        created_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX rejections_issue ON rejections (repository, issue_number, id)",
    "CREATE INDEX rejections_area ON rejections (repository, area, id)",
    "ALTER TABLE triage_log ADD COLUMN analysis TEXT",
    # The weekly digest's themes: the shipped-note loop finds an issue's cluster here.
    """CREATE TABLE digest_clusters (
        repository TEXT NOT NULL,
        week TEXT NOT NULL,
        position INTEGER NOT NULL,
        theme TEXT NOT NULL,
        issues TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (repository, week, position)
    )""",
    # AI risk summaries of Dependabot updates, once per PR and set of versions (Dependabot rebases often)
    """CREATE TABLE dependency_reviews (
        repository TEXT NOT NULL,
        pr_number BIGINT NOT NULL,
        versions TEXT NOT NULL,
        summary TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (repository, pr_number, versions)
    )""",
]

MIGRATIONS.append(
    Migration(
        4,
        "improvement proposals, rejections, triage analyses, dependency risk summaries, digest themes",
        sqlite=[s.format(id="INTEGER PRIMARY KEY AUTOINCREMENT") for s in _PROPOSALS],
        postgresql=[s.format(id="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY") for s in _PROPOSALS],
    )
)

_INTEGRITY = [
    # Compare-and-set on proposals: a writer that read an older version fails and re-reads, so a
    # late job can never overwrite (or reopen) a proposal another job has moved on.
    "ALTER TABLE proposals ADD COLUMN version BIGINT NOT NULL DEFAULT 0",
    # What an audit decided for one head, stored before its review and check run are posted, so a
    # retry after a failure between the two completes what is missing without a second review.
    # A digest of every accepted body, for as long as its payload is kept: a captured delivery
    # replayed under a new delivery id (from a public webhook-proxy channel, say) is refused.
    "ALTER TABLE deliveries ADD COLUMN body_sha256 TEXT",
    "CREATE UNIQUE INDEX deliveries_body ON deliveries (body_sha256) WHERE body_sha256 IS NOT NULL",
    # Each installation's latest GitHub rate limit, for the status page of every process.
    """CREATE TABLE github_rate_limits (
        installation_id BIGINT PRIMARY KEY,
        remaining BIGINT NOT NULL,
        rate_limit BIGINT NOT NULL,
        reset_at DOUBLE PRECISION NOT NULL,
        seen_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE audit_reports (
        repository TEXT NOT NULL,
        pr_number BIGINT NOT NULL,
        head_sha TEXT NOT NULL,
        report TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (repository, pr_number, head_sha)
    )""",
]

MIGRATIONS.append(
    Migration(
        5,
        "proposal versions (compare-and-set), stored audit reports, digests of accepted bodies",
        sqlite=list(_INTEGRITY),
        postgresql=list(_INTEGRITY),
    )
)

_TRUST = [
    # Audit findings a repository's writers dismissed (a resolved thread, a 👎, `/autopack
    # dismiss`), by dismissal print: never posted again there until `/autopack forget`.
    """CREATE TABLE finding_dismissals (
        repository TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        title TEXT NOT NULL,
        path TEXT NOT NULL,
        dismissed_by TEXT NOT NULL,
        source TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (repository, fingerprint)
    )""",
    # What a flow in shadow mode would have written to GitHub, one row per job that decided
    # something; `autopack shadow` and the weekly digest read it.
    """CREATE TABLE shadow_decisions (
        id {id},
        repository TEXT NOT NULL,
        flow TEXT NOT NULL,
        subject TEXT NOT NULL,
        job_id BIGINT NOT NULL,
        delivery_id TEXT,
        writes TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX shadow_decisions_repository ON shadow_decisions (repository, created_at)",
    # ETags and bodies of GitHub reads that repeat (app.policy.github_cache): shared by every process.
    """CREATE TABLE github_etags (
        cache_key TEXT PRIMARY KEY,
        etag TEXT NOT NULL,
        content_type TEXT NOT NULL,
        body TEXT NOT NULL,
        stored_at DOUBLE PRECISION NOT NULL
    )""",
    # After a secondary rate limit, every job of the installation waits until GitHub's retry-after.
    "ALTER TABLE github_rate_limits ADD COLUMN blocked_until DOUBLE PRECISION NOT NULL DEFAULT 0",
]

# PostgreSQL: a job queued (inserted, re-queued, rescheduled) or finishing notifies `autopack_jobs` at
# commit, so workers in other processes wake at once instead of at their next poll. Every path that
# queues a job is covered, whichever code wrote it.
_NOTIFY = [
    """CREATE OR REPLACE FUNCTION autopack_jobs_notify() RETURNS trigger AS $$
    BEGIN
        PERFORM pg_notify('autopack_jobs', '');
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER jobs_queued_notify AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION autopack_jobs_notify()""",
    # A job that stops running may free its subject for the next queued job of that subject.
    """CREATE TRIGGER jobs_changed_notify AFTER UPDATE OF status, run_at ON jobs
    FOR EACH ROW WHEN (NEW.status = 'queued' OR OLD.status = 'running')
    EXECUTE FUNCTION autopack_jobs_notify()""",
]

MIGRATIONS.append(
    Migration(
        6,
        "remembered dismissals of audit findings, shadow-mode decisions, secondary-limit pauses, "
        "GitHub ETags, job notifications (PostgreSQL)",
        sqlite=[s.format(id="INTEGER PRIMARY KEY AUTOINCREMENT") for s in _TRUST],
        postgresql=[s.format(id="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY") for s in _TRUST] + _NOTIFY,
    )
)

LATEST = MIGRATIONS[-1].version

_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)"""


def current_version(tx: Tx) -> int:
    tx.execute(_MIGRATIONS_TABLE)
    row = tx.fetchone("SELECT MAX(version) AS v FROM schema_migrations")
    return int(row["v"]) if row and row["v"] is not None else 0


def migrate(tx: Tx) -> list[int]:
    """Apply every missing migration; returns the versions applied."""
    if tx.dialect == "postgresql":
        tx.execute("SELECT pg_advisory_xact_lock(727274)")  # 'autopack' replicas start together
    version = current_version(tx)
    applied = []
    for migration in MIGRATIONS:
        if migration.version <= version:
            continue
        statements = migration.sqlite if tx.dialect == "sqlite" else migration.postgresql
        for statement in statements:
            tx.execute(statement)
        tx.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.description, time.time()),
        )
        applied.append(migration.version)
    return applied
