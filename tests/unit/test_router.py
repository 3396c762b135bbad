"""The router as tables: task, role, complexity, category, date, soft limits → chain."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from app.llm.config import builtin_catalogue, load_routing, parse_routing
from app.llm.router import TASK_ROLES, route

TODAY = dt.date(2026, 11, 26)
BUILTIN = load_routing()
ASSESSMENT = load_routing(Path(__file__).resolve().parents[1] / "fixtures" / "assessment-models.yaml")
CAT = builtin_catalogue()


def chain(
    routing=BUILTIN,
    *,
    role="builder",
    complexity="medium",
    category="general",
    today=TODAY,  # type: ignore[no-untyped-def]
    soft=frozenset(),
) -> list[str]:
    r = route(
        routing,
        CAT,
        task="x",
        role=role,
        complexity=complexity,
        category=category,
        today=today,
        past_soft_limit=soft,
    )
    return [] if r is None else [c.model for c in r.chain]


@pytest.mark.parametrize(
    ("role", "complexity", "category", "first"),
    [
        ("builder", "low", "general", "gpt-6-luna"),
        ("builder", "medium", "general", "gpt-6.2-sol"),
        ("builder", "high", "general", "gpt-6.2-astra"),
        ("auditor", "low", "general", "claude-haiku-5-5"),
        ("auditor", "medium", "general", "claude-sonnet-5-5"),
        ("auditor", "high", "general", "claude-opus-5-5"),
        ("analyst", "low", "general", "gpt-6-luna"),
        ("analyst", "high", "general", "gpt-6.2-sol"),
        # category overrides beat complexity, both ways
        ("builder", "low", "security_auth_change", "gpt-6.2-astra"),
        ("auditor", "low", "security_auth_change", "claude-opus-5-5"),
        ("builder", "high", "docs", "gpt-6-luna"),
        ("auditor", "high", "docs", "claude-haiku-5-5"),
        ("builder", "medium", "tests", "claude-sonnet-5-5"),
        ("auditor", "medium", "tests", "gpt-6.2-sol"),
        ("builder", "medium", "external_feature_reuse", "gpt-6.2-astra"),
        ("secondary_auditor", "low", "security_auth_change", "gpt-6.2-astra"),
    ],
)
def test_builtin_table(role: str, complexity: str, category: str, first: str) -> None:
    assert chain(role=role, complexity=complexity, category=category)[0] == first


def test_fallback_chain_follows_the_primary() -> None:
    assert chain(complexity="high") == ["gpt-6.2-astra", "claude-opus-5-5"]


@pytest.mark.parametrize(
    "category", ["general", "docs", "tests", "schema_contract_change", "external_feature_reuse"]
)
def test_secondary_auditor_only_where_configured(category: str) -> None:
    assert (
        route(
            BUILTIN,
            CAT,
            task="audit",
            role="secondary_auditor",
            complexity="high",
            category=category,
            today=TODAY,
        )
        is None
    )


def test_analyst_defaults_to_the_tiers_auditor() -> None:
    assert chain(ASSESSMENT, role="analyst", complexity="high", today=dt.date(2026, 11, 1)) == [
        "claude-opus-4-5"
    ]


def test_model_past_shutdown_is_skipped_for_the_next_in_chain() -> None:
    routing = parse_routing(
        {
            "complexity_models": {
                lvl: {"builder": "gpt-5", "auditor": "gpt-4o"} for lvl in ("low", "medium", "high")
            },
            "fallbacks": {"gpt-5": ["claude-opus-5-5"]},
        },
        CAT,
    )
    r = route(routing, CAT, task="build", role="builder", complexity="high", today=dt.date(2026, 12, 11))
    assert r is not None
    assert [c.model for c in r.chain] == [
        "claude-opus-5-5",
        "gpt-6.2-astra",
    ]  # next in chain, then replacement
    assert [(s.model, s.reason) for s in r.skipped] == [("gpt-5", "shut down on 2026-12-11")]
    assert r.chain[1].why == "replacement of gpt-5"
    # The day before its shutdown it is still called.
    assert chain(routing, complexity="high", today=dt.date(2026, 12, 10))[0] == "gpt-5"


@pytest.mark.parametrize(
    ("today", "builder_high", "auditor_high"),
    [
        (dt.date(2026, 11, 26), "gpt-5", "claude-opus-4-5"),
        (dt.date(2026, 12, 11), "gpt-6.2-astra", "claude-opus-4-5"),
        (dt.date(2027, 1, 22), "gpt-6.2-astra", "claude-opus-5-5"),
    ],
)
def test_assessment_routing_over_time(today: dt.date, builder_high: str, auditor_high: str) -> None:
    assert chain(ASSESSMENT, role="builder", complexity="high", today=today)[0] == builder_high
    assert chain(ASSESSMENT, role="auditor", complexity="high", today=today)[0] == auditor_high


def test_retired_model_is_never_in_a_chain() -> None:
    for today in (dt.date(2026, 12, 1), dt.date(2027, 2, 1)):
        for complexity in ("low", "medium", "high"):
            for role in ("builder", "auditor", "analyst"):
                for model in chain(ASSESSMENT, role=role, complexity=complexity, today=today):
                    info = CAT.get(model)
                    assert info is not None
                    assert info.status(today) != "retired"


def test_soft_limit_takes_the_cheaper_model_and_says_so() -> None:
    r = route(
        BUILTIN,
        CAT,
        task="build",
        role="builder",
        complexity="high",
        today=TODAY,
        past_soft_limit=frozenset({"openai"}),
    )
    assert r is not None
    assert [c.model for c in r.chain] == ["gpt-6.2-sol", "claude-opus-5-5"]
    assert r.notes == ("openai is past its soft budget limit: gpt-6.2-sol answers instead of gpt-6.2-astra",)
    assert chain(complexity="high", soft=frozenset({"anthropic"})) == ["gpt-6.2-astra", "claude-sonnet-5-5"]


def test_configured_cheaper_beats_the_catalogue() -> None:
    routing = parse_routing({**BUILTIN.model_dump(), "cheaper": {"gpt-6.2-astra": "gpt-6-luna"}}, CAT)
    assert chain(routing, complexity="high", soft=frozenset({"openai"}))[0] == "gpt-6-luna"


def test_every_task_has_roles() -> None:
    assert set(TASK_ROLES) == {"triage", "build", "audit", "dependency_review", "push_audit", "digest"}
    assert TASK_ROLES["audit"] == ("auditor", "secondary_auditor")
