"""Trojan Source and hidden text in added lines become findings, found by code."""

from __future__ import annotations

import pytest

from app.policy.diff import from_api
from app.policy.hidden_text import findings, line_findings


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ('if access_level != "user\u202e \u2066// Check if admin\u2069 \u2066":', "bidi"),  # CVE-2021-42574
        ("/* \u202d begin admin only */", "bidi"),
        ("x = 'a\u061cb'", "bidi"),  # Arabic letter mark
        ("is_admin\u200b = True", "invisible"),  # zero-width space
        ("token = get_token\u200d()", "invisible"),
        ("name = 'ok'\u2060", "invisible"),
        ("value = 1\ufeff", "invisible"),  # a BOM in the middle of a file
        (
            "# \U000e0069\U000e0067\U000e006e\U000e006f\U000e0072\U000e0065 rules",
            "invisible",
        ),  # tag characters
        ("def p\u0430yment(): pass", "homoglyph"),  # Cyrillic а in a Latin identifier
        ("if is\u03bfwner: return", "homoglyph"),  # Greek ο
    ],
)
def test_each_kind_is_found(line: str, kind: str) -> None:
    assert [k for k, _ in line_findings(line)] == [kind]


@pytest.mark.parametrize(
    "line",
    [
        "def payment(): return 'ok'",
        "größe = berechne(länge)",  # Latin with diacritics is one script
        "привет = 'мир'",  # a wholly Cyrillic identifier is not a lookalike of an ASCII one
        "名前 = 'テスト'",
        "π = 3.14159",
        "s = 'naïve café'  # — em dash, “quotes”",
        "html = '<!-- a comment marker in a string -->'",
    ],
)
def test_ordinary_text_is_not_flagged(line: str) -> None:
    assert line_findings(line) == []


def test_findings_point_at_the_added_line_and_name_the_code_points() -> None:
    patch = "@@ -1,2 +1,3 @@\n ok = 1\n-old = 2\n+acc\u200bess = 3\n+fine = 4\n"
    (finding,) = findings(from_api([{"filename": "app/x.py", "status": "modified", "patch": patch}]))
    assert (finding.path, finding.start_line, finding.severity) == ("app/x.py", 2, "high")
    assert "U+200B ZERO WIDTH SPACE" in finding.explanation
    assert finding.confidence == 1.0


def test_removed_and_context_lines_are_not_findings() -> None:
    patch = "@@ -1,2 +1,1 @@\n ctx\u202e = 1\n-gone\u200b = 2\n"
    assert findings(from_api([{"filename": "a.py", "status": "modified", "patch": patch}])) == []
