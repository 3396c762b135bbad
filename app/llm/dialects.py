"""What each provider's structured-output mode enforces, and the schema each one is sent.

Every answer is validated by its pydantic model, but providers accept different subsets of JSON
Schema: OpenAI's strict mode enforces numeric bounds and item counts but not string lengths;
Anthropic's native JSON outputs enforce neither (and reject the keywords with a 400); a forced tool
call and an OpenAI-compatible server (vLLM, Ollama, LM Studio through `OPENAI_BASE_URL`) enforce
nothing beyond the shape. One rule follows, for every dialect: **a constraint the dialect enforces
is sent as its keyword; every other constraint is written into the field's description in plain
words** ("0 to 1", "at most 600 characters", "at most 3 items"). So an answer that fits the schema
a provider was given is accepted, or its gap was stated in that schema. A field with no possible
value (a list that must stay empty) is left out of the schema altogether; its model default fills it.

`render(model, dialect)` builds the schema; `check(schema, dialect)` states what a dialect accepts
(every property required, `additionalProperties: false` on every object, no keyword it rejects).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel

# Keywords that constrain a value (as opposed to shaping it: type, properties, items, enum, anyOf).
CONSTRAINTS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minItems",
    "maxItems",
    "uniqueItems",
)
# Keywords whose values are schemas in turn.
SUBSCHEMAS = ("items", "anyOf", "allOf", "oneOf", "prefixItems", "additionalProperties")
# Annotations no dialect needs (pydantic adds them; some servers reject them).
DROPPED = frozenset({"title", "default", "examples"})


@dataclass(frozen=True)
class Dialect:
    """One provider mode: the constraint keywords it enforces, and the formats it knows."""

    name: str
    description: str
    enforced: frozenset[str]
    formats: frozenset[str] = frozenset()
    max_min_items: int | None = None  # Anthropic enforces minItems of 0 or 1 only

    def enforces(self, keyword: str, value: Any) -> bool:
        if keyword not in self.enforced:
            return False
        if keyword == "format":
            return value in self.formats
        if keyword == "minItems" and self.max_min_items is not None:
            return int(value) <= self.max_min_items
        return True


DIALECTS: dict[str, Dialect] = {
    d.name: d
    for d in (
        Dialect(
            "openai-strict",
            "OpenAI structured outputs (response_format json_schema, strict)",
            frozenset(
                {
                    "minimum",
                    "maximum",
                    "exclusiveMinimum",
                    "exclusiveMaximum",
                    "multipleOf",
                    "pattern",
                    "format",
                    "minItems",
                    "maxItems",
                }
            ),
            frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}),
        ),
        Dialect(
            "anthropic-output-format",
            "Anthropic structured outputs (output_config.format json_schema)",
            frozenset({"pattern", "format", "minItems"}),
            frozenset(
                {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
            ),
            max_min_items=1,
        ),
        Dialect(
            "anthropic-tool",
            "Anthropic forced tool use (input_schema; the shape guides, nothing is enforced)",
            frozenset(),
        ),
        Dialect(
            "openai-compatible",
            "an OpenAI-compatible server through OPENAI_BASE_URL (json_schema; constraints vary by server)",
            frozenset(),
        ),
    )
}


def dialect_for(provider: str, structured_output: str, compatible_server: bool = False) -> Dialect | None:
    """The dialect a call uses: from the provider, the catalogue's `structured_output`, and whether
    OpenAI's client points at another server. None for a provider this table does not know."""
    if provider == "openai":
        return DIALECTS["openai-compatible" if compatible_server else "openai-strict"]
    if provider == "anthropic":
        return DIALECTS["anthropic-tool" if structured_output == "tool" else "anthropic-output-format"]
    return None


def _plural(n: Any, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _number(value: Any) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def words(node: dict[str, Any], keywords: set[str]) -> list[str]:
    """The plain-words statement of `keywords` of `node` ("0 to 1", "at most 600 characters")."""
    said: list[str] = []
    low, high = node.get("minimum"), node.get("maximum")
    if "minimum" in keywords and "maximum" in keywords:
        said.append(f"{_number(low)} to {_number(high)}")
    elif "minimum" in keywords:
        said.append(f"at least {_number(low)}")
    elif "maximum" in keywords:
        said.append(f"at most {_number(high)}")
    if "exclusiveMinimum" in keywords:
        said.append(f"more than {_number(node['exclusiveMinimum'])}")
    if "exclusiveMaximum" in keywords:
        said.append(f"less than {_number(node['exclusiveMaximum'])}")
    if "multipleOf" in keywords:
        said.append(f"a multiple of {_number(node['multipleOf'])}")
    for low_key, high_key, unit in (
        ("minLength", "maxLength", "character"),
        ("minItems", "maxItems", "item"),
    ):
        if low_key in keywords and high_key in keywords:
            said.append(f"{node[low_key]} to {_plural(node[high_key], unit)}")
        elif low_key in keywords:
            said.append(f"at least {_plural(node[low_key], unit)}")
        elif high_key in keywords:
            said.append(f"at most {_plural(node[high_key], unit)}")
    if "uniqueItems" in keywords and node.get("uniqueItems"):
        said.append("no repeated items")
    if "pattern" in keywords:
        said.append(f"matches the regular expression {node['pattern']}")
    if "format" in keywords:
        said.append(f"format {node['format']}")
    return said


def _describe(node: dict[str, Any], extra: list[str]) -> None:
    if not extra:
        return
    text = "; ".join(extra)
    current = str(node.get("description", "")).rstrip()
    if current and not current.endswith((".", ":", ";")):
        current += "."
    node["description"] = f"{current} ({text})" if current else text[0].upper() + text[1:] + "."


def _never_has_a_value(node: dict[str, Any]) -> bool:
    return node.get("type") == "array" and node.get("maxItems") == 0


def _render(node: Any, dialect: Dialect) -> Any:
    """The node for `dialect`: enforced constraints kept, the others stated in its description."""
    if isinstance(node, list):
        return [_render(item, dialect) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    unenforced: set[str] = set()
    for key, value in node.items():
        if key in DROPPED:
            continue
        if key in CONSTRAINTS:
            if dialect.enforces(key, value):
                out[key] = value
            else:
                unenforced.add(key)
        elif key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {
                name: _render(sub, dialect)
                for name, sub in value.items()
                # a list that must stay empty (no duplicate candidates were listed) is left out
                if not (key == "properties" and isinstance(sub, dict) and _never_has_a_value(sub))
            }
        else:
            out[key] = _render(value, dialect)
    if "required" in out and "properties" in out:
        out["required"] = [name for name in out["required"] if name in out["properties"]]
    _describe(out, words(node, unenforced))
    return out


def render(model: type[BaseModel], dialect: Dialect) -> dict[str, Any]:
    """The JSON schema `dialect` is sent for `model`: strict shape (every property required, no
    extra keys), enforced constraints as keywords, the rest in plain words in descriptions."""
    return dict(_render(copy.deepcopy(to_strict_json_schema(model)), dialect))


def unstated(model: type[BaseModel], dialect: Dialect) -> list[str]:
    """Constraints of `model` that the schema `dialect` is sent neither enforces nor states in
    words ("path: keyword"). Empty is the rule this module keeps."""
    gaps: list[str] = []

    def compare(original: Any, sent: Any, where: str) -> None:
        if isinstance(original, list) and isinstance(sent, list):
            for i, (a, b) in enumerate(zip(original, sent, strict=True)):
                compare(a, b, f"{where}[{i}]")
            return
        if not isinstance(original, dict) or not isinstance(sent, dict):
            return
        description = str(sent.get("description", "")).lower()
        missing = {k for k in CONSTRAINTS if k in original and k not in sent}
        stated = words(original, missing)
        if missing and not (stated and all(w.lower() in description for w in stated)):
            gaps.extend(f"{where}: {keyword}" for keyword in sorted(missing))
        for key, value in original.items():
            if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
                for name, sub in value.items():
                    if name in sent.get(key, {}):
                        compare(sub, sent[key][name], f"{where}.{name}")
                    elif not (key == "properties" and _never_has_a_value(sub)):
                        gaps.append(f"{where}.{name}: left out")
            elif key in SUBSCHEMAS and key in sent:
                compare(value, sent[key], f"{where}/{key}")

    compare(to_strict_json_schema(model), render(model, dialect), "$")
    return gaps


def _walk(node: Any, where: str, visit: Any) -> None:
    if isinstance(node, list):
        for i, item in enumerate(node):
            _walk(item, f"{where}[{i}]", visit)
        return
    if not isinstance(node, dict):
        return
    visit(node, where)
    for key, value in node.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            for name, sub in value.items():
                _walk(sub, f"{where}.{name}" if key == "properties" else f"#{name}", visit)
        elif isinstance(value, (dict, list)) and key not in CONSTRAINTS:
            _walk(value, f"{where}/{key}", visit)


def check(schema: dict[str, Any], dialect: Dialect) -> list[str]:
    """What `dialect` would refuse in `schema`: an object without `additionalProperties: false`, a
    property not required, a constraint keyword it does not enforce. Empty when acceptable."""
    problems: list[str] = []

    def visit(node: dict[str, Any], where: str) -> None:
        if node.get("type") == "object" or "properties" in node:
            if node.get("additionalProperties") is not False:
                problems.append(f"{where}: additionalProperties is not false")
            missing = set(node.get("properties", {})) - set(node.get("required", []))
            if missing:
                problems.append(f"{where}: not required: {', '.join(sorted(missing))}")
        for keyword in CONSTRAINTS:
            if keyword in node and not dialect.enforces(keyword, node[keyword]):
                problems.append(f"{where}: {keyword} is not accepted by {dialect.name}")
        for keyword in DROPPED:
            if keyword in node and not isinstance(node.get(keyword), dict):
                problems.append(f"{where}: {keyword} is sent")

    _walk(schema, "$", visit)
    return problems
