"""Structured output that real models get right the first time (app.llm.dialects, app.llm.tolerance).

The rule: an answer that fits the schema a provider was given is accepted, or the gap is stated in
that schema. For every schema the app sends and every provider dialect: the rendered schema is one
the dialect accepts, no constraint of the validating model is missing from both its keywords and its
descriptions, and an answer generated from the sent schema alone (one-item lists, strings at the
stated length, numbers at the stated bounds) is accepted without a repair round.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from app.flows.answer_schemas import representatives, role_of
from app.llm import dialects
from app.llm.dialects import DIALECTS, Dialect, check, dialect_for, render, unstated
from app.llm.service import accept, broken_rules
from app.llm.tolerance import cut
from app.policy.triage import analysis_schema

SCHEMAS = representatives()
CASES = [(s, d) for s in SCHEMAS for d in DIALECTS]


def _stated(description: str, pattern: str) -> int | None:
    found = re.search(pattern, description)
    return int(found.group(1)) if found else None


def fitting(node: dict[str, Any], defs: dict[str, Any]) -> Any:
    """The fullest answer the sent schema allows, read from its keywords and its words alone."""
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    description = str(node.get("description", ""))
    if "anyOf" in node:
        branch = next(b for b in node["anyOf"] if b.get("type") != "null")
        return fitting({**branch, "description": description + str(branch.get("description", ""))}, defs)
    if "enum" in node:
        return node["enum"][-1]
    kind = node.get("type")
    if kind == "object":
        return {name: fitting(sub, defs) for name, sub in node["properties"].items()}
    if kind == "array":
        most = node.get("maxItems", _stated(description, r"at most (\d+) items?"))
        count = 1 if most is None else min(1, most) or 0
        count = max(count, node.get("minItems", _stated(description, r"at least (\d+) items?") or 0))
        return [fitting(node["items"], defs) for _ in range(count)]
    if kind == "string":
        most = _stated(description, r"at most (\d+) characters?")
        return "w" * (most or 12)
    if kind in ("number", "integer"):
        bounds = re.search(r"(-?[\d.]+) to (-?[\d.]+)", description)
        high = node.get("maximum", float(bounds.group(2)) if bounds else 1)
        return int(high) if kind == "integer" else high
    if kind == "boolean":
        return True
    raise AssertionError(f"no value for {node}")


@pytest.mark.parametrize(("name", "dialect"), CASES)
def test_every_schema_is_one_the_dialect_accepts(name: str, dialect: str) -> None:
    assert check(render(SCHEMAS[name], DIALECTS[dialect]), DIALECTS[dialect]) == []


@pytest.mark.parametrize(("name", "dialect"), CASES)
def test_no_constraint_is_missing_from_both_keywords_and_words(name: str, dialect: str) -> None:
    assert unstated(SCHEMAS[name], DIALECTS[dialect]) == []


@pytest.mark.parametrize(("name", "dialect"), CASES)
def test_an_answer_fitting_the_sent_schema_is_accepted(name: str, dialect: str) -> None:
    sent = render(SCHEMAS[name], DIALECTS[dialect])
    answer = fitting(sent, sent.get("$defs", {}))
    value, adjustments = accept(SCHEMAS[name], json.dumps(answer))
    assert adjustments == []  # nothing needed fixing: the schema said it all
    assert isinstance(value, BaseModel)


def test_the_checks_catch_what_a_dialect_refuses() -> None:
    anthropic = DIALECTS["anthropic-output-format"]
    refused = {
        "type": "object",
        "properties": {"a": {"type": "number", "maximum": 1}, "b": {"type": "string", "title": "B"}},
        "required": ["a"],
    }
    problems = check(refused, anthropic)
    assert "$: additionalProperties is not false" in problems
    assert "$: not required: b" in problems
    assert "$.a: maximum is not accepted by anthropic-output-format" in problems
    assert "$.b: title is sent" in problems


def test_unstated_sees_a_constraint_dropped_without_words(monkeypatch: pytest.MonkeyPatch) -> None:
    class Bounded(BaseModel):
        score: float = Field(ge=0, le=1)
        note: str = Field(max_length=5)

    plain = Dialect("plain", "enforces nothing", frozenset())
    assert unstated(Bounded, plain) == []  # stated in words: "0 to 1", "at most 5 characters"
    assert render(Bounded, plain)["properties"]["score"]["description"] == "0 to 1."
    monkeypatch.setattr(dialects, "_describe", lambda node, extra: None)  # a renderer that forgets
    assert unstated(Bounded, plain) == [
        "$.score: maximum",
        "$.score: minimum",
        "$.note: maxLength",
    ]


def test_constraint_words() -> None:
    summary = render(analysis_schema(["app"], []), DIALECTS["anthropic-tool"])["properties"]
    assert summary["summary"]["description"] == "Two sentences for a maintainer. (at most 600 characters)"
    assert summary["reasons"]["description"] == "Why (not) warranted, one line each. (at most 3 items)"
    assert summary["confidence"]["description"] == "0 to 1."
    openai = render(analysis_schema(["app"], []), DIALECTS["openai-strict"])["properties"]
    assert (openai["confidence"]["minimum"], openai["confidence"]["maximum"]) == (0, 1)
    assert openai["reasons"]["maxItems"] == 3
    assert "maxLength" not in openai["summary"]  # OpenAI's strict mode does not enforce it


def test_dialect_table() -> None:
    assert dialect_for("openai", "json_schema").name == "openai-strict"  # type: ignore[union-attr]
    assert dialect_for("openai", "json_schema", True).name == "openai-compatible"  # type: ignore[union-attr]
    assert dialect_for("anthropic", "json_schema").name == "anthropic-output-format"  # type: ignore[union-attr]
    assert dialect_for("anthropic", "tool").name == "anthropic-tool"  # type: ignore[union-attr]
    assert dialect_for("mistral", "json_schema") is None
    anthropic = DIALECTS["anthropic-output-format"]
    assert anthropic.enforces("minItems", 1)
    assert not anthropic.enforces("minItems", 2)
    assert anthropic.enforces("format", "uri")
    assert not DIALECTS["openai-strict"].enforces("format", "uri")


def test_roles_of_routing_paths() -> None:
    assert role_of("complexity_models.high.builder") == "builder"
    assert role_of("category_models.security_auth_change.secondary_auditor") == "secondary_auditor"
    assert role_of("category_models.docs.auditor_model_override") == "auditor"
    assert role_of("fallbacks.gpt-6.2-sol[0]") is None


# ---- the cases the issue names ----------------------------------------------------------------

TRIAGE = {
    "category": "bug",
    "severity": "high",
    "summary": "Saving fails for large projects.",
    "warranted": True,
    "confidence": 0.9,
    "reasons": ["Reproducible."],
    "questions": [],
    "area": "app",
}


def test_no_duplicate_candidates_leaves_the_field_out_and_its_answer_is_accepted() -> None:
    schema = analysis_schema(["app"], [])
    for dialect in DIALECTS.values():
        sent = render(schema, dialect)
        assert "duplicates" not in sent["properties"]
        assert "duplicates" not in sent["required"]
    value, _ = accept(schema, json.dumps(TRIAGE))
    assert value.duplicates == []  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):  # a number nobody listed is invented: repair round
        accept(schema, json.dumps({**TRIAGE, "duplicates": [1]}))


def test_candidates_listed_keep_the_field_with_their_numbers() -> None:
    sent = render(analysis_schema(["app"], [3, 5]), DIALECTS["openai-strict"])
    assert sent["properties"]["duplicates"]["items"]["enum"] == [3, 5]
    assert sent["properties"]["duplicates"]["maxItems"] == 5


def test_over_long_summary_is_cut_at_a_word_with_an_ellipsis() -> None:
    long = "Saving a project with many files fails " * 30
    value, adjustments = accept(analysis_schema(["app"], []), json.dumps({**TRIAGE, "summary": long}))
    assert len(value.summary) <= 600
    assert value.summary.endswith("…")
    assert long.startswith(value.summary[:-1])
    assert [(a.field, a.rule) for a in adjustments] == [("summary", "maxLength 600")]


def test_over_full_list_keeps_its_first_items() -> None:
    reasons = ["one", "two", "three", "four", "five"]
    value, adjustments = accept(analysis_schema(["app"], []), json.dumps({**TRIAGE, "reasons": reasons}))
    assert value.reasons == ["one", "two", "three"]
    assert [(a.field, a.rule) for a in adjustments] == [("reasons", "maxItems 3")]


def test_a_confidence_just_outside_its_range_is_clamped_and_far_outside_is_refused() -> None:
    schema = analysis_schema(["app"], [])
    value, adjustments = accept(schema, json.dumps({**TRIAGE, "confidence": 1.2}))
    assert value.confidence == 1.0
    assert [(a.field, a.rule) for a in adjustments] == [("confidence", "maximum 1")]
    low, _ = accept(schema, json.dumps({**TRIAGE, "confidence": -0.1}))
    assert low.confidence == 0.0
    with pytest.raises(ValidationError):  # 85 is a percentage, not a slip: meaning changes
        accept(schema, json.dumps({**TRIAGE, "confidence": 85}))


def test_nested_slips_are_fixed_where_they_are() -> None:
    schema = SCHEMAS["audit"]
    finding = {
        "severity": "high",
        "path": "app/x.py",
        "start_line": 3,
        "end_line": 4,
        "title": "T" * 130,
        "explanation": "why",
        "replacement": None,
        "confidence": 1.1,
    }
    answer = {"findings": [finding], "verdict": "comment", "confidence": 0.7}
    value, adjustments = accept(schema, json.dumps(answer))
    assert value.findings[0].title == "T" * 119 + "…"  # type: ignore[attr-defined]
    assert value.findings[0].confidence == 1.0  # type: ignore[attr-defined]
    assert {a.field for a in adjustments} == {"findings.0.title", "findings.0.confidence"}


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"category": "regression"}, "category: literal_error"),  # an unknown enum value
        ({"area": "billing"}, "area: literal_error"),  # an area nobody listed
        ({"warranted": "maybe"}, "warranted: bool_parsing"),  # a wrong type
        ({"severity": None}, "severity: literal_error"),
    ],
)
def test_what_changes_meaning_still_goes_to_the_repair_round(change: dict[str, Any], rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        accept(analysis_schema(["app"], []), json.dumps({**TRIAGE, **change}))
    assert broken_rules(caught.value) == [rule]  # fields and rules only, never the values


def test_a_missing_field_is_refused() -> None:
    answer = {k: v for k, v in TRIAGE.items() if k != "severity"}
    with pytest.raises(ValidationError) as caught:
        accept(analysis_schema(["app"], []), json.dumps(answer))
    assert broken_rules(caught.value) == ["severity: missing"]


def test_cut() -> None:
    assert cut("short", 10) == "short"
    assert cut("one two three four", 10) == "one two…"
    assert cut("x" * 20, 10) == "x" * 9 + "…"
    assert len(cut("a b " * 100, 50)) <= 50
