"""Small slips in a model's answer that are safe to fix in code instead of paying a repair round.

A summary a few words over its length, a list with one item too many, a confidence of 1.2: each
keeps its meaning when cut or clamped, and a second call would cost as much as the first. So,
before validation, and only against the constraint that was broken:

- a string over `maxLength` is cut at a word boundary and ends with an ellipsis;
- a list over `maxItems` keeps its first items;
- a number outside `minimum`..`maximum` by at most a quarter of that range is clamped.

Nothing else is touched. An unknown enum value, an invented issue number or path, a missing field,
a wrong type, or a number far outside its range changes what the answer means: validation rejects
it, and the repair round shows the model its errors. Every adjustment is returned, so the caller
logs which fields were fixed and by which rule (never their values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ELLIPSIS = "…"
CLAMP_SHARE = 0.25  # how far outside its range, as a share of the range, a number is still clamped


_KINDS = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}


@dataclass(frozen=True)
class Adjustment:
    field: str  # dotted path, list positions as numbers: "findings.0.confidence"
    rule: str  # "maxLength 600", "maxItems 3", "maximum 1"


def cut(text: str, limit: int) -> str:
    """`text` within `limit` characters, cut at a word boundary when one is near, with an ellipsis."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return text[:limit]
    head = text[: limit - 1]
    space = head.rfind(" ")
    if space >= limit // 2:
        head = head[:space]
    return head.rstrip(" ,;:.-") + ELLIPSIS


def tolerate(data: Any, schema: dict[str, Any]) -> tuple[Any, list[Adjustment]]:
    """`data` with the safe slips fixed, and what was fixed. `schema` is the model's full JSON
    schema (`model_json_schema()`, with its `$defs`)."""
    defs = schema.get("$defs", {})
    adjustments: list[Adjustment] = []

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = defs.get(node["$ref"].rsplit("/", 1)[-1], {})
        return node

    def branch_for(node: dict[str, Any], value: Any) -> dict[str, Any]:
        """The anyOf branch that describes `value`'s type (Optional fields are anyOf with null)."""
        wanted = _KINDS.get(type(value))
        for option in node.get("anyOf", []):
            option = resolve(option)
            if option.get("type") == wanted or (wanted == "integer" and option.get("type") == "number"):
                return option
        return node

    def fix(value: Any, node: dict[str, Any], path: str) -> Any:
        node = branch_for(resolve(node), value)
        longest = node.get("maxLength")
        if isinstance(value, str) and isinstance(longest, int) and len(value) > longest:
            adjustments.append(Adjustment(path, f"maxLength {longest}"))
            return cut(value, longest)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return clamp(value, node, path)
        if isinstance(value, list):
            items = node.get("items", {})
            limit = node.get("maxItems")
            if isinstance(limit, int) and len(value) > limit > 0:
                adjustments.append(Adjustment(path, f"maxItems {limit}"))
                value = value[:limit]
            return [fix(item, items, f"{path}.{i}") for i, item in enumerate(value)]
        if isinstance(value, dict):
            properties = node.get("properties", {})
            return {
                key: fix(item, properties[key], f"{path}.{key}".lstrip(".")) if key in properties else item
                for key, item in value.items()
            }
        return value

    def clamp(value: float, node: dict[str, Any], path: str) -> float:
        low, high = node.get("minimum"), node.get("maximum")
        if low is None or high is None or high <= low:
            return value
        slack = (high - low) * CLAMP_SHARE
        if high < value <= high + slack:
            adjustments.append(Adjustment(path, f"maximum {high}"))
            return type(value)(high) if isinstance(value, int) else float(high)
        if low - slack <= value < low:
            adjustments.append(Adjustment(path, f"minimum {low}"))
            return type(value)(low) if isinstance(value, int) else float(low)
        return value

    return fix(data, schema, ""), adjustments
