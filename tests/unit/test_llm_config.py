"""Routing file and model catalogue: formats, YAML-path errors, lifecycle, prices."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from app.llm.config import ConfigError, builtin_catalogue, load_routing, parse_routing

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ASSESSMENT = FIXTURES / "assessment-models.yaml"


def test_builtin_routing_uses_only_current_models() -> None:
    routing = load_routing()
    catalogue = builtin_catalogue()
    for where, model in routing.named_models():
        info = catalogue.get(model)
        assert info is not None, where
        assert info.lifecycle == "current", f"{where}: {model} is {info.lifecycle}"


def test_builtin_keeps_the_assessments_reasoning() -> None:
    routing = load_routing()
    catalogue = builtin_catalogue()
    tiers = {level: catalogue.get(t.builder).tier for level, t in routing.complexity_models.items()}  # type: ignore[union-attr]
    assert tiers == {"low": "fast", "medium": "balanced", "high": "frontier"}
    high = routing.complexity_models["high"]
    # The strongest builder of one provider, audited by the strongest model of the other.
    assert catalogue.get(high.builder).provider != catalogue.get(high.auditor).provider  # type: ignore[union-attr]
    assert catalogue.get(high.auditor).tier == "frontier"  # type: ignore[union-attr]
    security = routing.category_models["security_auth_change"]
    assert security.secondary_auditor is not None
    docs = routing.category_models["docs"]
    assert catalogue.get(docs.builder_model_override).tier == "fast"  # type: ignore[arg-type,union-attr]


def test_assessment_routing_loads_unchanged() -> None:
    routing = load_routing(ASSESSMENT)
    assert routing.complexity_models["high"].auditor == "claude-opus-4-5"
    assert routing.category_models["security_auth_change"].secondary_auditor == "gpt-5"
    assert routing.provider_quotas["anthropic"].weekly_token_cap == 10_000_000


def test_catalogue_knows_every_model_of_both_routings_with_the_providers_dates() -> None:
    catalogue = builtin_catalogue()
    for routing in (load_routing(), load_routing(ASSESSMENT)):
        for _, model in routing.named_models():
            assert catalogue.get(model) is not None, model
    shutdowns = {
        m: catalogue.get(m).shutdown
        for m in (  # type: ignore[union-attr]
            "gpt-4-turbo-2024-04-09",
            "gpt-5",
            "o3",
            "gpt-4o",
            "gpt-4o-mini",
            "claude-sonnet-4-5",
            "claude-opus-4-5",
        )
    }
    assert shutdowns == {
        "gpt-4-turbo-2024-04-09": dt.date(2026, 10, 23),
        "gpt-5": dt.date(2026, 12, 11),
        "o3": dt.date(2026, 12, 11),
        "gpt-4o": dt.date(2027, 1, 14),
        "gpt-4o-mini": dt.date(2027, 1, 14),
        "claude-sonnet-4-5": dt.date(2026, 11, 30),
        "claude-opus-4-5": dt.date(2027, 1, 22),
    }


def test_lifecycle_on_a_date_and_cost() -> None:
    gpt5 = builtin_catalogue().get("gpt-5")
    assert gpt5 is not None
    assert gpt5.status(dt.date(2026, 12, 10)) == "deprecated"
    assert gpt5.status(dt.date(2026, 12, 11)) == "retired"
    sol = builtin_catalogue().get("gpt-6.2-sol")
    assert sol is not None
    # 1M input of which 400k cached, 100k output: 0.6*2 + 0.4*0.2 + 0.1*10
    assert sol.cost(1_000_000, 400_000, 100_000) == pytest.approx(2.28)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"complexity_models": {"low": {"builder": "gpt-6-luna", "auditor": "gpt-6-luna", "buildr": "x"}}},
            "f.yaml: complexity_models.low.buildr: unknown key",
        ),
        (
            {"complexity_models": {"low": {"builder": "gpt-6-luna"}}},
            "f.yaml: complexity_models.low.auditor: required key is missing",
        ),
        (
            {"complexity_models": {}, "category_models": {"secrity": {}}},
            "f.yaml: category_models.secrity: Input should be",
        ),
        (
            {"complexity_models": {}, "provider_quotas": {"openai": {"weekly_token_cap": -1}}},
            "f.yaml: provider_quotas.openai.weekly_token_cap: Input should be greater than 0",
        ),
        ({"complexity_models": {}, "surprise": 1}, "f.yaml: surprise: unknown key"),
        ([1, 2], "f.yaml: (top level): expected a mapping"),
    ],
)
def test_bad_routing_names_the_yaml_path(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_routing(data, builtin_catalogue(), "f.yaml")
    assert message in str(info.value)


def test_missing_tier_and_unknown_model() -> None:
    tiers = {level: {"builder": "gpt-6-luna", "auditor": "gpt-6-luna"} for level in ("low", "medium")}
    with pytest.raises(ConfigError, match=r"complexity_models.high: required key is missing"):
        parse_routing({"complexity_models": tiers}, builtin_catalogue(), "f.yaml")
    tiers["high"] = {"builder": "llama-4-local", "auditor": "gpt-6-luna"}
    with pytest.raises(ConfigError, match=r"complexity_models.high.builder: unknown model 'llama-4-local'"):
        parse_routing({"complexity_models": tiers}, builtin_catalogue(), "f.yaml")
    # An OpenAI-compatible server's model works once its provider is named.
    routing = parse_routing(
        {"complexity_models": tiers, "providers": {"llama-4-local": "openai"}}, builtin_catalogue(), "f.yaml"
    )
    assert routing.providers == {"llama-4-local": "openai"}


def test_invalid_yaml_gives_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "models.yaml"
    bad.write_text("complexity_models:\n  low: {builder: [\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line \d+, column \d+\)"):
        load_routing(bad)


def test_the_shipped_routing_caps_each_installation_and_repository() -> None:
    """One repository cannot spend every installation's week: default caps ship, below the quotas."""
    routing = load_routing()
    budgets = routing.budgets
    assert budgets.installation_weekly_tokens is not None
    assert budgets.repository_weekly_tokens is not None
    assert budgets.repository_weekly_tokens < budgets.installation_weekly_tokens
    smallest_quota = min(q.weekly_token_cap for q in routing.provider_quotas.values())
    assert budgets.installation_weekly_tokens <= 2 * smallest_quota
