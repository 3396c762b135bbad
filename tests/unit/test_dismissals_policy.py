"""`policy.dismissals`: prints that survive moved lines, the signals read from review threads, which
threads a re-audit resolves, and the bounded list the auditor is told."""

from __future__ import annotations

import pytest

from app.policy import dismissals
from app.policy.diff import from_texts
from app.policy.dismissals import Signal, Thread

BEFORE = "def save(rows):\n    return rows\n"
AFTER = 'def save(rows):\n    query = "INSERT " + rows\n    db.execute(query)\n    return rows\n'
SQL = "SQL built by string concatenation"


def print_at(text: str, start: int, end: int, title: str = SQL) -> str:
    files = from_texts({"app/save.py": (BEFORE, text)})
    return dismissals.dismissal_print(
        title, "app/save.py", dismissals.snippet("app/save.py", start, end, files)
    )


def test_the_same_code_on_other_lines_keeps_its_print_and_changed_code_gets_a_new_one() -> None:
    moved = "# a header\n\n" + AFTER.replace("    query", "        query")  # moved and re-indented
    assert print_at(AFTER, 2, 3) == print_at(moved, 4, 5)
    fixed = AFTER.replace('"INSERT " + rows', '"INSERT ?", (rows,)')
    assert print_at(fixed, 2, 3) != print_at(AFTER, 2, 3)
    assert print_at(AFTER, 2, 3, title="  sql BUILT by string   concatenation") == print_at(AFTER, 2, 3)
    assert print_at(AFTER, 2, 3, title="Query logged") != print_at(AFTER, 2, 3)


def test_a_snippet_is_what_the_diff_shows_and_is_bounded() -> None:
    files = from_texts({"app/save.py": (BEFORE, AFTER)})
    assert dismissals.snippet("app/save.py", 2, 3, files) == 'query = "INSERT " + rows db.execute(query)'
    assert dismissals.snippet("app/other.py", 2, 3, files) == ""  # a file the diff does not show
    long = "".join(f"line{n}\n" for n in range(1, 40))
    many = from_texts({"a.py": ("", long)})
    assert dismissals.snippet("a.py", 1, 30, many) == " ".join(f"line{n}" for n in range(1, 7))


def test_markers_and_titles_are_read_back_from_a_line_comment() -> None:
    body = f"**high: {SQL}**\n\nExplanation.\n\n{dismissals.marker('0123456789ab')}"
    assert dismissals.print_in(body) == "0123456789ab"
    assert dismissals.title_in(body) == SQL
    assert dismissals.print_in("**high: x**") is None
    assert dismissals.print_in("<!-- autopack:finding:XYZ -->") is None
    assert dismissals.title_in("no title") == ""


def thread(**kw: object) -> Thread:
    base: dict[str, object] = {
        "id": "T1",
        "resolved": False,
        "outdated": False,
        "resolved_by": None,
        "path": "app/save.py",
        "author": "autopack",
        "body": f"**high: {SQL}**\n\n{dismissals.marker('0123456789ab')}",
        "thumbs_down": (),
    }
    return Thread(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "kw", "expected"),
    [
        (
            "resolved by a person, code unchanged",
            {"resolved": True, "resolved_by": "ann"},
            [("ann", "resolved")],
        ),
        ("resolved after the code changed", {"resolved": True, "outdated": True, "resolved_by": "ann"}, []),
        ("resolved by Autopack itself", {"resolved": True, "resolved_by": "autopack"}, []),
        ("resolved by Autopack, REST login", {"resolved": True, "resolved_by": "autopack[bot]"}, []),
        ("open, no reaction", {}, []),
        ("👎 by a person", {"thumbs_down": ("bob",)}, [("bob", "thumbs_down")]),
        ("👎 twice by one person", {"thumbs_down": ("bob", "bob")}, [("bob", "thumbs_down")]),
        ("👎 by another bot", {"thumbs_down": ("renovate[bot]",)}, []),
        ("a person's thread", {"author": "ann", "resolved": True, "resolved_by": "bob"}, []),
        ("Autopack's comment without a finding marker", {"body": "**high: x**", "thumbs_down": ("bob",)}, []),
        (
            "resolved and 👎",
            {"resolved": True, "resolved_by": "ann", "thumbs_down": ("bob",)},
            [("ann", "resolved"), ("bob", "thumbs_down")],
        ),
    ],
)
def test_signals(case: str, kw: dict[str, object], expected: list[tuple[str, str]]) -> None:
    found = dismissals.signals([thread(**kw)], "autopack[bot]")
    assert [(s.by, s.source) for s in found] == expected, case
    assert all(s == Signal("0123456789ab", SQL, "app/save.py", s.by, s.source) for s in found)


def test_only_autopacks_open_threads_whose_print_is_gone_are_resolved() -> None:
    other = dismissals.marker("ffffffffffff")
    threads = [
        thread(id="gone"),
        thread(id="still", body=f"**low: y**\n\n{other}"),
        thread(id="done", resolved=True, resolved_by="ann"),
        thread(id="human", author="ann"),
        thread(id="plain", body="**high: no marker**"),
    ]
    assert dismissals.no_longer_apply(threads, "autopack[bot]", {"ffffffffffff"}) == ["gone"]


def test_the_auditor_is_told_a_bounded_list() -> None:
    assert dismissals.for_prompt([]) == "(none)"
    kinds = [(f"Finding {n}\nwith a newline", f"f{n}.py", "x" * 400) for n in range(30)]
    text = dismissals.for_prompt(kinds)
    lines = text.splitlines()
    assert len(lines) == dismissals.PROMPT_LIMIT + 1
    assert lines[0] == f"- Finding 0 with a newline (f0.py): {'x' * 160}"
    assert lines[-1] == "- … and 10 more"


def test_a_thread_from_the_api_shape() -> None:
    node = {
        "id": "PRRT_1",
        "isResolved": True,
        "isOutdated": False,
        "path": "a.py",
        "resolvedBy": {"login": "ann"},
        "comments": {
            "nodes": [
                {
                    "body": "b",
                    "author": {"login": "autopack"},
                    "reactions": {"nodes": [{"user": {"login": "bob"}}, {"user": None}]},
                }
            ]
        },
    }
    assert Thread.from_api(node) == Thread("PRRT_1", True, False, "ann", "a.py", "autopack", "b", ("bob", ""))
    assert Thread.from_api({"id": "x", "comments": {"nodes": []}}).body == ""
