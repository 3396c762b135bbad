"""Every schema Autopack asks a model to answer in, by the role that answers it.

The flows build some of them per call (triage's `area` and `duplicates` may only name what was
listed; a digest's clusters only the issues sent), so this module gives a representative of each
for the tests that check every schema against every provider dialect, and for `autopack
check-config`, which prints what each configured model will receive.
"""

from __future__ import annotations

from pydantic import BaseModel

from app.policy.audit import AuditAnswer
from app.policy.changeset import ChangeSet, Revision
from app.policy.dependabot import RiskSummary
from app.policy.digest import clusters_schema
from app.policy.triage import analysis_schema

# The routing's roles and the answers each is asked for (a secondary auditor answers as the auditor).
ROLE_SCHEMAS: dict[str, tuple[str, ...]] = {
    "analyst": ("TriageAnalysis", "RiskSummary", "Clusters"),
    "builder": ("ChangeSet", "Revision"),
    "auditor": ("AuditAnswer",),
    "secondary_auditor": ("AuditAnswer",),
}


def representatives() -> dict[str, type[BaseModel]]:
    """One of each schema as a flow sends it; triage twice (with and without duplicate candidates)."""
    return {
        "triage": analysis_schema(["app", "docs"], [3, 5]),
        "triage, no open feedback": analysis_schema(["app", "docs"], []),
        "audit": AuditAnswer,
        "build": ChangeSet,
        "revise": Revision,
        "dependency review": RiskSummary,
        "digest": clusters_schema([3, 5, 8]),
    }


def role_of(where: str) -> str | None:
    """The role a routing file's YAML path names (`complexity_models.high.builder` → builder)."""
    last = where.rsplit(".", 1)[-1].split("[", 1)[0]
    for role in ("secondary_auditor", "analyst", "builder", "auditor"):
        if last == role or last == f"{role}_model_override":
            return role
    return None
