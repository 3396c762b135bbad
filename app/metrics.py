"""Prometheus metrics, defined once so every module counts into the same series.

Queue depth and the age of the oldest queued job are read from the database at scrape time
(see `app.web.app`), so they are right even when several processes share one PostgreSQL.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "autopack_deliveries_total",
    "Webhook deliveries by event and outcome (queued, duplicate, ignored, rejected_*)",
    ["event", "outcome"],
)
RECEIVER_LATENCY = Histogram(
    "autopack_receiver_latency_seconds",
    "Time from request start to response for webhook deliveries",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
JOBS = Counter("autopack_jobs_total", "Finished job attempts by flow and outcome", ["flow", "outcome"])
JOBS_DEFERRED = Counter(
    "autopack_jobs_deferred_total",
    "Jobs deferred for their installation's GitHub rate limit: low_budget (background work) or "
    "secondary_limit (every job)",
    ["flow", "kind"],
)
JOB_DURATION = Histogram(
    "autopack_job_duration_seconds",
    "Duration of job attempts by flow",
    ["flow"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
QUEUE_DEPTH = Gauge("autopack_queue_depth", "Jobs by status", ["status"])
OLDEST_QUEUED_AGE = Gauge(
    "autopack_oldest_queued_job_age_seconds", "Age of the oldest due queued job (0 when none)"
)
GITHUB_REQUESTS = Counter(
    "autopack_github_requests_total",
    "GitHub API requests by method and status",
    ["method", "status"],
)
GITHUB_RATE_REMAINING = Gauge(
    "autopack_github_rate_limit_remaining",
    "x-ratelimit-remaining seen on the latest GitHub response, by resource",
    ["resource"],
)
GITHUB_INSTALLATION_RATE = Gauge(
    "autopack_github_installation_rate_limit",
    "The core rate limit GitHub reported on an installation's latest response: remaining and limit",
    ["installation", "kind"],
)
LLM_BUDGET_USED = Gauge(
    "autopack_llm_budget_used_ratio",
    "This budget week's tokens over the weekly cap, by scope (provider) and key",
    ["scope", "key"],
)
MODEL_SHUTDOWN_DAYS = Gauge(
    "autopack_model_shutdown_days",
    "Days until a routed model's shutdown date (negative: past it), for models with one",
    ["model"],
)
LEASES_RECLAIMED = Counter(
    "autopack_leases_reclaimed_total", "Running jobs whose lease expired and were taken back"
)
AUDITS = Counter("autopack_audits_total", "Audits by verdict, or why one was skipped", ["outcome"])
TRIAGE = Counter("autopack_triage_total", "Triage outcomes: triaged, or why it was skipped", ["outcome"])
COMMAND_OUTCOMES = Counter(
    "autopack_commands_total", "Slash commands by command and outcome", ["command", "outcome"]
)

LLM_TOKENS = Counter(
    "autopack_llm_tokens_total",
    "LLM tokens by provider, model, task and kind (input, cached, output)",
    ["provider", "model", "task", "kind"],
)
LLM_COST = Counter("autopack_llm_cost_usd_total", "LLM cost in USD", ["provider", "model", "task"])
LLM_ERRORS = Counter("autopack_llm_provider_errors_total", "Failed LLM calls", ["provider", "kind"])
LLM_FALLBACKS = Counter(
    "autopack_llm_fallbacks_total", "Answers from a model other than the first choice", ["task", "reason"]
)
LLM_SKIPPED = Counter(
    "autopack_llm_models_skipped_total", "Models skipped by the router", ["model", "reason"]
)
LLM_INVALID = Counter(
    "autopack_llm_invalid_answers_total", "Answers that did not fit their schema", ["model", "repaired"]
)
BUDGET_REFUSALS = Counter("autopack_llm_budget_refusals_total", "Calls refused by a weekly budget", ["scope"])
PROPOSALS = Counter(
    "autopack_proposals_total",
    "Proposal steps: started, refused (and why), pushed, verified, not_reproduced, unverified, revised, ...",
    ["outcome"],
)
DEPENDABOT = Counter(
    "autopack_dependabot_total",
    "Dependabot PR evaluations: not_genuine, auto_merge, needs_review, merged",
    ["outcome"],
)
PUSH_AUDITS = Counter(
    "autopack_push_audits_total",
    "Push audits: clean, secrets_found, audited_<verdict>, skipped_branch",
    ["outcome"],
)
DIGESTS = Counter("autopack_digests_total", "Weekly digests: posted, disabled", ["outcome"])
