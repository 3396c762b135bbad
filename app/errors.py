"""Every exception Autopack defines, grouped by what the worker does when a job raises it.

    Exception
    ├── Reschedule ─────────── run the job again at `exc.at`; no attempt is spent
    │   ├── BudgetExceeded         app.llm.ledger      a weekly token budget: wait for its reset
    │   └── StaleProposal          app.inbox.proposals another job saved the proposal first: re-read
    ├── PermanentError ─────── the job ends as failed at once; retrying cannot help
    │   ├── Refused                app.flows.building  an edit does not apply, a guardrail says no
    │   ├── StructuredOutputError  app.llm.service     the answer misses its schema after a repair
    │   ├── CallCapExceeded        app.llm.service     a job asked for more model calls than allowed
    │   ├── InvalidTransition      app.policy.proposal a proposal move its table lacks: a bug
    │   └── Unreadable             app.events          a payload without what Autopack reads of it
    │                                                  (the receiver queues it; dispatch fails it)
    ├── transient ──────────── anything else: retried with backoff, dead-lettered after max attempts
    │   ├── LLMError               app.llm.service     (base of the model failures above)
    │   │   └── NoModelAvailable                       every model of the chain failed
    │   └── DatabaseUnavailable    app.inbox.db        (the receiver answers 503 instead)
    ├── start-up ───────────── raised before any job runs: the command exits 1 with the message
    │   ├── SettingsError          app.settings        a missing or invalid environment variable
    │   ├── ConfigError            app.llm.config      app/models.yaml or its override is invalid
    │   └── SchemaOutOfDate        app.inbox.store     `autopack migrate` has not run
    └── handled where raised ─ never reaches the worker
        ├── PolicyError            app.policy.repo_policy  .github/autopack.yml: a check run shows it
        ├── EditError              app.policy.changeset    the builder is asked again with the problems
        ├── IntegrityError         app.inbox.db            a compare-and-set lost: the caller decides
        ├── ProviderError          app.llm.providers       the next model of the chain is tried
        ├── ManifestError          app.policy.app_manifest the setup page shows it
        ├── SetupFailed            app.github.app_setup    the setup page shows it
        ├── _TooLarge              app.web.receiver        the receiver answers 413
        └── _Disconnected          app.web.receiver        the sender left: nothing stored, no answer

GitHub's own exceptions (githubkit) are mapped in one place, `app.github.errors.classify`: a rate
limit becomes a Reschedule at its reset, 400/404/410/422 a PermanentError, and the rest (5xx,
timeouts, network errors) stay transient. `GROUPS` below is the same tree as data; a test checks
that every exception class under `app` is in exactly one group, and in the one its bases imply.
"""

from __future__ import annotations


class Reschedule(Exception):
    """Run this job again at `at` (epoch seconds) without counting a failed attempt.

    Used for rate-limit resets and for waiting on something external (a CI result), so a worker
    never sleeps on them.
    """

    def __init__(self, at: float, reason: str) -> None:
        super().__init__(reason)
        self.at = at
        self.reason = reason


class PermanentError(Exception):
    """Retrying cannot help (bad input, a 404, a refused action): the job ends as failed."""


# The tree above as data, by qualified name (strings: this module must import nothing of the app).
GROUPS: dict[str, frozenset[str]] = {
    "reschedule": frozenset(
        {"app.errors.Reschedule", "app.llm.ledger.BudgetExceeded", "app.inbox.proposals.StaleProposal"}
    ),
    "permanent": frozenset(
        {
            "app.errors.PermanentError",
            "app.flows.building.Refused",
            "app.llm.service.StructuredOutputError",
            "app.llm.service.CallCapExceeded",
            "app.policy.proposal.InvalidTransition",
            "app.events.Unreadable",
        }
    ),
    "transient": frozenset(
        {"app.llm.service.LLMError", "app.llm.service.NoModelAvailable", "app.inbox.db.DatabaseUnavailable"}
    ),
    "start-up": frozenset(
        {"app.settings.SettingsError", "app.llm.config.ConfigError", "app.inbox.store.SchemaOutOfDate"}
    ),
    "handled where raised": frozenset(
        {
            "app.policy.repo_policy.PolicyError",
            "app.policy.changeset.EditError",
            "app.inbox.db.IntegrityError",
            "app.llm.providers.ProviderError",
            "app.policy.app_manifest.ManifestError",
            "app.github.app_setup.SetupFailed",
            "app.web.receiver._TooLarge",
            "app.web.receiver._Disconnected",
        }
    ),
}
