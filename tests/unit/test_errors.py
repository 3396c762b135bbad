"""app/errors.py's map of exceptions is complete and true: every exception class defined under `app`
is in exactly one group, the group agrees with its bases (what the worker does follows from them),
and the tree in the module's docstring names it."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import app
from app import errors
from app.errors import PermanentError, Reschedule


def defined_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    root = Path(app.__file__).parent
    for path in sorted(root.rglob("*.py")):
        if path.name == "__main__.py":
            continue  # runs the CLI on import
        name = ".".join(("app", *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == name:
                found[f"{name}.{cls.__qualname__}"] = cls
    return found


def test_every_exception_is_in_exactly_one_group() -> None:
    found = defined_exceptions()
    assert len(found) >= 19  # the walk did find the app's modules
    listed = [name for names in errors.GROUPS.values() for name in names]
    assert sorted(found) == sorted(listed), "add the new exception to app/errors.py's tree and GROUPS"
    assert len(listed) == len(set(listed))


def test_each_group_agrees_with_what_the_worker_does() -> None:
    found = defined_exceptions()
    for group, names in errors.GROUPS.items():
        for name in names:
            cls = found[name]
            rescheduled = issubclass(cls, Reschedule)
            permanent = issubclass(cls, PermanentError) and not rescheduled
            assert rescheduled == (group == "reschedule"), name
            assert permanent == (group == "permanent"), name


def test_the_docstring_tree_names_every_exception() -> None:
    tree = errors.__doc__ or ""
    for name in defined_exceptions():
        assert name.rsplit(".", 1)[1] in tree, name
