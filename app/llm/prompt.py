"""Prompt assembly: stable rules first, untrusted data in delimited sections, within a token budget.

The system part is the same for every call (`prompts/system.md`), so provider prompt caching applies
to it. The user part is the task's template, then each data section, sanitised and delimited.

Budget rule (stated in the prompt when it applies): sections are fitted by "water-filling": every
section keeps all of its text if it fits its fair share of what is left; the remaining budget is then
shared equally among the larger sections, whose tails are cut at a token boundary. So a short issue
title is never cut to make room for a long body, and one huge section cannot starve the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from app.llm.tokens import Counter
from app.policy.sanitize import sanitize

SECTION_OVERHEAD = 24  # delimiter lines and the truncation note, in tokens


@cache
def template(name: str) -> str:
    """A prompt file from `app/prompts/` (`triage`, `audit`, …)."""
    return (resources.files("app") / "prompts" / f"{name}.md").read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class Section:
    name: str
    text: str  # raw, untrusted; sanitised when the prompt is built


@dataclass(frozen=True)
class Prompt:
    system: str
    user: str
    input_tokens: int
    truncated: tuple[str, ...] = ()
    raw: dict[str, str] = field(default_factory=dict)  # untrusted originals, for the audit trail


def _fit(texts: list[str], budget: int, counter: Counter) -> list[tuple[str, bool]]:
    sizes = [counter.count(t) for t in texts]
    remaining = max(0, budget)
    allowed = [0] * len(texts)
    pending = sorted(range(len(texts)), key=lambda i: sizes[i])
    while pending:
        share = remaining // len(pending)
        if sizes[pending[0]] <= share:
            i = pending.pop(0)
            allowed[i] = sizes[i]
            remaining -= sizes[i]
        else:
            for i in pending:
                allowed[i] = share
            break
    return [
        (t, False) if allowed[i] >= sizes[i] else (counter.truncate(t, allowed[i]), True)
        for i, t in enumerate(texts)
    ]


def build(
    task_template: str,
    sections: list[Section],
    *,
    counter: Counter,
    budget_tokens: int,
    values: dict[str, str] | None = None,
) -> Prompt:
    """The prompt for one call; `budget_tokens` bounds system + user input tokens."""
    system = template("system")
    task = template(task_template).format(**(values or {}))
    fixed = counter.count(system) + counter.count(task) + SECTION_OVERHEAD * (len(sections) + 1)
    clean = [sanitize(s.text) for s in sections]
    room = budget_tokens - fixed
    for _ in range(4):
        prompt = _assemble(system, task, sections, _fit(clean, room, counter), counter)
        excess = prompt.input_tokens - budget_tokens
        if excess <= 0 or not prompt.truncated:
            return prompt  # fits, or nothing left to cut (the fixed parts alone are over budget)
        room -= excess + 8  # token counts of pieces and of the whole differ at the joins
    return prompt


def _assemble(
    system: str, task: str, sections: list[Section], fitted: list[tuple[str, bool]], counter: Counter
) -> Prompt:
    truncated = tuple(s.name for s, (_, cut) in zip(sections, fitted, strict=True) if cut)
    parts = [task]
    if truncated:
        parts.append(
            "Note: to fit the token budget, these sections were cut at the end: "
            + ", ".join(truncated)
            + ". Reason only about what you can see."
        )
    for section, (text, cut) in zip(sections, fitted, strict=True):
        marker = " (truncated)" if cut else ""
        parts.append(f"<<<DATA {section.name}{marker}>>>\n{text}\n<<<END DATA {section.name}>>>")
    user = "\n\n".join(parts)
    return Prompt(
        system=system,
        user=user,
        input_tokens=counter.count(system) + counter.count(user),
        truncated=truncated,
        raw={s.name: s.text for s in sections},
    )
