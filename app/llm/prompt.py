"""Prompt assembly: stable rules first, untrusted data in delimited sections, within a token budget.

The system part is the same for every call (`prompts/system.md`), so provider prompt caching applies
to it. The user part is the task's template, then each data section between
`<<<DATA name id=…>>>` and `<<<END DATA name id=…>>>`. The id is derived from the prompt's whole
content, so data cannot contain its own section's closing line (it would have to contain its own
hash). Code sections (diffs, files) go in verbatim, so the model reviews exactly the change; free
text is normalised (`app.policy.sanitize.normalise`) and the header says what was removed.

Budget rule (stated in the prompt when it applies): sections are fitted by "water-filling": every
section keeps all of its text if it fits its fair share of what is left; the remaining budget is then
shared equally among the larger sections, whose tails are cut at a token boundary. So a short issue
title is never cut to make room for a long body, and one huge section cannot starve the others.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Literal

from app.llm.tokens import Counter
from app.policy import secrets
from app.policy.sanitize import normalise

SECTION_OVERHEAD = 24  # delimiter lines and the truncation note, in tokens


@cache
def template(name: str) -> str:
    """A prompt file from `app/prompts/` (`triage`, `audit`, …)."""
    return (resources.files("app") / "prompts" / f"{name}.md").read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class Section:
    name: str
    text: str  # raw, untrusted; prepared by kind when the prompt is built
    kind: Literal["text", "code"] = "text"  # code is sent verbatim; free text is normalised


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
    prepared = [_prepare(s) for s in sections]
    clean = [text for text, _ in prepared]
    notes = [note for _, note in prepared]
    frame_id = _frame_id(task, [s.name for s in sections], clean)
    room = budget_tokens - fixed
    for _ in range(4):
        prompt = _assemble(system, task, sections, _fit(clean, room, counter), notes, frame_id, counter)
        excess = prompt.input_tokens - budget_tokens
        if excess <= 0 or not prompt.truncated:
            return prompt  # fits, or nothing left to cut (the fixed parts alone are over budget)
        room -= excess + 8  # token counts of pieces and of the whole differ at the joins
    return prompt


def _frame_id(task: str, names: list[str], texts: list[str]) -> str:
    """An id for this prompt's delimiters that no section can contain: a hash of all of them."""
    digest = hashlib.sha256(task.encode())
    for name, text in zip(names, texts, strict=True):
        digest.update(b"\x00" + name.encode() + b"\x00" + text.encode())
    return digest.hexdigest()[:16]


def _prepare(section: Section) -> tuple[str, str]:
    """The text as sent and a note for the header: code verbatim, free text normalised; in both,
    every secret is replaced whole by its redacted form before anything else happens."""
    if section.kind == "code":
        return secrets.redact(section.text.replace("\r\n", "\n")), ""
    clean = normalise(secrets.redact(section.text))
    removed = clean.removed()
    return clean.text, f" (removed: {removed})" if removed else ""


def _assemble(
    system: str,
    task: str,
    sections: list[Section],
    fitted: list[tuple[str, bool]],
    notes: list[str],
    frame_id: str,
    counter: Counter,
) -> Prompt:
    truncated = tuple(s.name for s, (_, cut) in zip(sections, fitted, strict=True) if cut)
    parts = [task]
    if truncated:
        parts.append(
            "Note: to fit the token budget, these sections were cut at the end: "
            + ", ".join(truncated)
            + ". Reason only about what you can see."
        )
    for section, (text, cut), note in zip(sections, fitted, notes, strict=True):
        marker = " (truncated)" if cut else ""
        parts.append(
            f"<<<DATA {section.name} id={frame_id}{marker}{note}>>>\n{text}\n"
            f"<<<END DATA {section.name} id={frame_id}>>>"
        )
    user = "\n\n".join(parts)
    return Prompt(
        system=system,
        user=user,
        input_tokens=counter.count(system) + counter.count(user),
        truncated=truncated,
        raw={s.name: s.text for s in sections},
    )
