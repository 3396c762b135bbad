"""Outdated model names in a repository's model configuration files. Pure.

The catalogue's lifecycle data arrives as a mapping (name → status, shutdown, replacement), so this
module stays free of the LLM layer. Every string value of the YAML file is checked, with its line,
so a routing file of any shape (the assessment's, Autopack's, a project's own) is covered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class ModelStatus:
    status: str  # current | legacy | deprecated | retired (as of today)
    shutdown: dt.date | None
    replacement: str | None


@dataclass(frozen=True)
class OutdatedModel:
    line: int
    name: str
    status: str
    shutdown: dt.date | None
    replacement: str | None

    def message(self) -> str:
        when = {
            "retired": f"was shut down on {self.shutdown}" if self.shutdown else "is retired",
            "deprecated": f"is deprecated and shuts down on {self.shutdown}"
            if self.shutdown
            else "is deprecated",
            "legacy": "is a legacy model",
        }.get(self.status, f"is {self.status}")
        advice = f"; use `{self.replacement}` instead" if self.replacement else ""
        return f"`{self.name}` {when}{advice}."


def outdated(text: str, known: Mapping[str, ModelStatus]) -> list[OutdatedModel]:
    """Every string scalar (keys too) naming a model that is not current, with its 1-based line."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return []
    found: list[OutdatedModel] = []

    def walk(node: yaml.Node | None) -> None:
        if isinstance(node, yaml.ScalarNode):
            value = str(node.value).strip()
            info = known.get(value)
            if info is not None and info.status != "current":
                found.append(
                    OutdatedModel(
                        node.start_mark.line + 1, value, info.status, info.shutdown, info.replacement
                    )
                )
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(key)
                walk(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)

    walk(root)
    return found
