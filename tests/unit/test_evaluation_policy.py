"""`policy.evaluation`: what counts as the maintainers' decision, and the arithmetic of agreement."""

from __future__ import annotations

from typing import Any

import pytest

from app.events import Comment, Issue
from app.policy import evaluation as ev


def issue(number: int = 9, *labels: str, **kw: Any) -> Issue:
    return Issue.model_validate(
        {"number": number, "title": "t", "labels": [{"name": n} for n in labels], **kw}
    )


@pytest.mark.parametrize(
    ("labels", "kw", "expected"),
    [
        (("bug",), {}, ("bug", None, False, False)),
        (("Type:Bug", "area:Web"), {}, ("bug", "web", False, False)),
        (("enhancement", "app"), {}, ("feature_request", "app", False, False)),
        (("question", "needs more info"), {}, ("question", None, True, False)),
        (("autopack:needs-info",), {}, (None, None, True, False)),
        ((), {"state_reason": "duplicate"}, (None, None, False, True)),
        (("duplicate",), {}, (None, None, False, True)),
        (("wontfix",), {}, (None, None, False, False)),
    ],
)
def test_issue_truth(labels: tuple[str, ...], kw: dict[str, Any], expected: tuple[Any, ...]) -> None:
    truth = ev.issue_truth(issue(9, *labels, **kw), [], ["app", "web"])
    assert (truth.category, truth.area, truth.needs_info, truth.duplicate) == expected


def test_a_duplicate_links_the_issue_its_comment_names_never_itself() -> None:
    comments = [Comment(id=1, body="duplicate of #9"), Comment(id=2, body="Closing. Duplicate of #4")]
    assert ev.issue_truth(issue(9, state_reason="duplicate"), comments, []).duplicate_of == 4
    assert ev.issue_truth(issue(9, state_reason="duplicate"), comments[:1], []).duplicate_of is None
    assert ev.issue_truth(issue(9), comments, []).duplicate_of is None  # not closed as a duplicate


def test_open_then_is_what_was_open_when_the_issue_was_filed() -> None:
    issues = [
        Issue(number=1, title="a", created_at="2026-01-01", closed_at=None),
        Issue(number=2, title="b", created_at="2026-01-02", closed_at="2026-01-03"),
        Issue(number=3, title="c", created_at="2026-01-04", closed_at="2026-02-01"),
        Issue(number=4, title="d", created_at="2026-01-05", closed_at=None),
        Issue(number=5, title="e", created_at="2026-01-06", closed_at=None),
    ]
    assert [o.number for o in ev.open_then(issues[3], issues)] == [1, 3]


def test_field_scores() -> None:
    score = ev.FieldScore("category")
    for truth, predicted in [("bug", "bug"), ("bug", "question"), ("question", "question"), ("other", "bug")]:
        score.add(truth, predicted)
    assert (score.agree, score.total, score.agreement) == (2, 4, 0.5)
    assert score.precision("bug") == 0.5
    assert score.recall("bug") == 0.5
    assert score.precision("other") is None
    assert score.recall("other") == 0.0
    assert ev.FieldScore("empty").agreement is None


def test_worst_disagreements_are_the_most_wrong_then_the_most_confident() -> None:
    def pair(n: int, category: str, confidence: float, dup: tuple[int, ...] = ()) -> Any:
        truth = ev.IssueTruth(n, f"#{n}", "bug", None, False, False, None)
        return truth, ev.TriagePrediction(n, category, "unknown", False, dup, confidence, 10, 0.5)

    result = ev.evaluate_triage(
        [
            pair(1, "bug", 0.9),
            pair(2, "question", 0.5),
            pair(3, "question", 0.8),
            pair(4, "question", 0.1, (1,)),
        ]
    )
    assert [t.number for t, _, _ in result.worst] == [4, 3, 2]
    assert (result.issues, result.tokens, result.cost) == (4, 40, 2.0)


@pytest.mark.parametrize(
    ("message", "fixes"),
    [
        ('Revert "Cache settings"\n\nThis reverts commit abc.', True),
        ("Revert #11: it broke startup", True),
        ("Fixes a regression from #11", True),
        ("hotfix for #11", True),
        ("Fix the cache (see #110)", False),
        ("Mention #11 in the changelog", False),
        ('Revert "Cache settings v2"', False),
    ],
)
def test_fixes_of(message: str, fixes: bool) -> None:
    commits = [{"sha": "a", "commit": {"message": message}}]
    assert bool(ev.fixes_of(11, "Cache settings", commits)) is fixes


def test_human_comments_and_overlap() -> None:
    comments = [
        {"path": "a.py", "line": 12, "start_line": 10, "user": {"login": "ann", "type": "User"}},
        {"path": "a.py", "line": None, "original_line": 3, "user": {"login": "bob", "type": "User"}},
        {"path": "a.py", "line": 5, "user": {"login": "ci[bot]", "type": "Bot"}},
        {"path": "a.py", "line": 5, "user": {"login": "autopack", "type": "User"}},
        {"path": None, "line": 5, "user": {"login": "ann", "type": "User"}},
    ]
    assert ev.human_comments(comments, "autopack") == [ev.Span("a.py", 10, 12), ev.Span("a.py", 3, 3)]
    assert ev.Span("a.py", 12, 14).overlaps(ev.Span("a.py", 10, 12))
    assert not ev.Span("a.py", 13, 14).overlaps(ev.Span("a.py", 10, 12))
    assert not ev.Span("b.py", 10, 12).overlaps(ev.Span("a.py", 10, 12))


def test_audit_proxies_per_category() -> None:
    pull = ev.PullEvaluation(
        1,
        "t",
        "general",
        (ev.Span("a.py", 1, 1), ev.Span("b.py", 9, 9)),
        (ev.Span("a.py", 1, 2),),
        (("s", ("b.py",)), ("u", ("c.py",))),
    )
    quiet = ev.PullEvaluation(2, "d", "docs", (), (), ())
    proxies = ev.audit_proxies([pull, quiet])
    assert vars(proxies["all"]) == {"findings": 2, "agreeing": 2, "signals": 3, "matched": 2}
    assert proxies["docs"].precision is None
    assert proxies["docs"].recall is None
