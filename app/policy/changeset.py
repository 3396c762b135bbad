"""The builder's answer and how its edits are applied, in memory, to the fetched files. Pure.

A change set has two parts: the reproduction test (committed first, alone, so CI can show it fails)
and the fix. Edits are whole-file writes or one exact search/replace that must match exactly once:
no line numbers, no fuzzy patching, so an edit either means one thing or is refused with a reason
the builder can act on in its one repair round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field, model_validator

Part = Literal["test", "fix"]


class Edit(BaseModel):
    op: Literal["create", "replace", "search_replace", "delete"] = Field(
        description="create a new file; replace a whole file; search_replace one exact passage; delete"
    )
    path: str = Field(max_length=300, description="Repository-relative path, forward slashes.")
    content: str | None = Field(description="The whole new file (create, replace); else null.")
    search: str | None = Field(
        description="search_replace: an exact passage of the current file that occurs once; else null."
    )
    replace: str | None = Field(description="search_replace: what replaces it; else null.")

    @model_validator(mode="after")
    def _fields_fit_op(self) -> Edit:
        if self.op in ("create", "replace") and self.content is None:
            raise ValueError(f"{self.op} of {self.path} needs content")
        if self.op == "search_replace" and (not self.search or self.replace is None):
            raise ValueError(f"search_replace of {self.path} needs a non-empty search and a replace")
        return self


class ChangeSet(BaseModel):
    title: str = Field(max_length=100, description="Pull-request title, imperative, no issue number.")
    approach: str = Field(max_length=2_000, description="How the fix works, for the PR body.")
    test_edits: list[Edit] = Field(
        min_length=1, max_length=10, description="Edits that add a test reproducing the problem."
    )
    fix_edits: list[Edit] = Field(min_length=1, max_length=20, description="Edits that fix the problem.")
    risk_notes: list[str] = Field(max_length=5, description="What a reviewer must check, one line each.")


class Revision(ChangeSet):
    """Edits on top of the current change: either part may be empty, not both."""

    test_edits: list[Edit] = Field(max_length=10, description="Edits to the test files; may be empty.")
    fix_edits: list[Edit] = Field(max_length=20, description="Edits to the fix; may be empty.")

    @model_validator(mode="after")
    def _something(self) -> Revision:
        if not self.test_edits and not self.fix_edits:
            raise ValueError("a revision needs at least one edit")
        return self


@dataclass(frozen=True)
class EditProblem:
    part: Part
    index: int  # 1-based, within its part
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.part}_edits[{self.index}] ({self.path}): {self.message}"


class EditError(Exception):
    def __init__(self, problems: list[EditProblem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


@dataclass
class Working:
    """The proposal's files: their content at the base commit and now, and which part owns them.

    `base[path]` is None for a file that does not exist at the base; `current[path]` is None for a
    file the change deletes. Only paths the change touches (or that were loaded to be edited) are here.
    """

    base: dict[str, str | None]
    current: dict[str, str | None] = field(default_factory=dict)
    parts: dict[str, Part] = field(default_factory=dict)

    def text(self, path: str) -> str | None:
        return self.current[path] if path in self.current else self.base.get(path)

    def changed(self) -> dict[str, str | None]:
        """path → new content (None: deleted), for every path whose content differs from the base."""
        return {p: c for p, c in self.current.items() if c != self.base.get(p)}

    def test_state(self) -> dict[str, str | None]:
        """The tests-only commit's changes: every changed path that belongs to the test part."""
        return {p: c for p, c in self.changed().items() if self.parts.get(p) == "test"}


def apply(working: Working, changes: ChangeSet, *, known: set[str]) -> Working:
    """A new Working with the change set applied on top of `working`, or EditError listing every
    edit that does not apply. `known`: paths that exist at the base (the tree), loaded or not."""
    result = Working(dict(working.base), dict(working.current), dict(working.parts))
    problems: list[EditProblem] = []
    for part, edits in (("test", changes.test_edits), ("fix", changes.fix_edits)):
        for index, edit in enumerate(edits, 1):
            problem = _apply_one(result, edit, part, known)  # type: ignore[arg-type]
            if problem:
                problems.append(EditProblem(part, index, edit.path, problem))  # type: ignore[arg-type]
    if problems:
        raise EditError(problems)
    return result


def _exists(working: Working, path: str, known: set[str]) -> bool:
    if path in working.current:
        return working.current[path] is not None
    return path in known or working.base.get(path) is not None


def _apply_one(working: Working, edit: Edit, part: Part, known: set[str]) -> str | None:
    path = edit.path
    owner = working.parts.get(path)
    if owner is not None and owner != part:
        return f"this file is already part of the {owner} edits; a file belongs to one part"
    exists = _exists(working, path, known)
    if edit.op == "create":
        if exists:
            return "create: the file exists already (use replace or search_replace)"
        working.current[path] = edit.content
    elif edit.op == "replace":
        if not exists:
            return "replace: no such file (use create)"
        working.current[path] = edit.content
    elif edit.op == "delete":
        if not exists:
            return "delete: no such file"
        working.current[path] = None
    else:
        if not exists:
            return "search_replace: no such file"
        text = working.text(path)
        if text is None:
            return "search_replace: the file's content was not loaded"
        assert edit.search is not None
        assert edit.replace is not None
        count = text.count(edit.search)
        if count == 0:
            return "search_replace: the search text does not occur in the file (it must match exactly)"
        if count > 1:
            return f"search_replace: the search text occurs {count} times; it must occur exactly once"
        working.current[path] = text.replace(edit.search, edit.replace, 1)
    working.parts[path] = part
    return None


def edited_paths(changes: ChangeSet) -> list[str]:
    """Every path the change set names, in order, once."""
    seen: dict[str, None] = {}
    for edit in (*changes.test_edits, *changes.fix_edits):
        seen.setdefault(edit.path, None)
    return list(seen)
