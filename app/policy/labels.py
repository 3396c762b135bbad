"""A label the bot may add: name, colour and description (created when the repository lacks it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LabelSpec:
    name: str
    color: str  # six hex digits, no '#'
    description: str
