"""Everything Autopack writes is inert: no mention, link, image or HTML an outsider chose survives.

Each of GitHub's mention and autolink forms is fed through every template that renders text for
GitHub, then through the GitHub layer's last pass (`render.finish`, as `RepoClient.md` applies it),
and the result is rendered by an independent Markdown engine (markdown-it with GitHub-style
autolinks). The HTML may hold no link to a foreign host, no image, no raw HTML, and its text (code
aside) no live mention, cross-reference, e-mail or `www.` autolink.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from markdown_it import MarkdownIt

from app.flows.commands import render_learnings
from app.inbox.dismissals import Dismissal
from app.policy import audit, dependabot, digest, render, triage
from app.policy import audit_report as report
from app.policy import proposal as prop
from app.policy.gate import GateDecision
from app.policy.markdown import neutral
from app.policy.repo_policy import RepoPolicy

# GitHub's mention and autolink forms, and ways out of a code span or into HTML.
FORMS = [
    "@victim",
    "@octo-org/security-team",
    "cc @victim please",
    "octo-org/other-repo#42",
    "https://evil.example/phish",
    "http://evil.example",
    "HTTPS://EVIL.EXAMPLE/x",
    "www.evil.example",
    "<https://evil.example>",
    "mail me: victim@evil.example",
    "[click here](https://evil.example)",
    "[ok](javascript:alert(1))",
    "![tracker](https://evil.example/pixel.png)",
    '<img src="https://evil.example/p.png">',
    "<a href='https://evil.example'>x</a>",
    "<script>alert(1)</script>",
    "<details open><summary>@victim</summary></details>",
    "x`@victim`",
    "``@victim``",
    "` @victim",
    "[ref]: https://evil.example",
    "<!-- hidden @victim -->",
    "&lt;img src=x&gt;",
]

MD = MarkdownIt("gfm-like", {"linkify": True, "html": True})
MD.linkify.set({"fuzzy_link": True, "fuzzy_email": True})
_CODE = re.compile(r"<(code|pre)>.*?</\1>", re.S)
_TAG = re.compile(r"<(/?)([a-zA-Z0-9]+)([^>]*)>")
SAFE_TAGS = {
    "p", "ul", "ol", "li", "strong", "em", "h1", "h2", "h3", "h4", "details", "summary",
    "table", "thead", "tbody", "tr", "th", "td", "br", "hr", "blockquote", "del", "s",
}  # fmt: skip


def problems(markdown: str) -> list[str]:
    """What is still live in `markdown` once GitHub renders it."""
    html = _CODE.sub("", MD.render(markdown))
    found = []
    for closing, tag, attrs in _TAG.findall(html):
        if tag == "a":
            href = re.search(r'href="([^"]*)"', attrs)
            if href and not href.group(1).startswith("https://github.com/"):
                found.append(f"link to {href.group(1)}")
        elif tag == "img":
            found.append("image")
        elif tag not in SAFE_TAGS:
            found.append(f"raw HTML <{closing}{tag}>")
    text = re.sub(r"<[^>]+>", " ", html)
    for pattern, what in [
        (r"(?<![\w`])@[A-Za-z0-9]", "mention"),
        (r"\b[\w.-]+/[\w.-]+#\d", "cross-reference"),
        (r"\w@\w", "e-mail"),
        (r"(?<![\w/.])www\.\w", "www autolink"),
        (r"(?i)\b(?:https?)://(?!github\.com/)\w", "bare link"),
    ]:
        if re.search(pattern, text):
            found.append(what)
    return found


def _proposal(h: str) -> prop.Proposal:
    check = prop.CheckResult(h, "failed", "https://evil.example/run", 1, h)
    p = prop.Proposal(
        "octo-org/widgets",
        7,
        1,
        status="ready",
        pr_number=100,
        title=neutral(h),
        approach=h,
        problem=h,
        risk_notes=[h],
        flags=[h],
        files={h: {"base": None, "current": "x", "part": "fix", "mode": "100644"}},
        context={h: h},
        left_out=[h],
        test_sha="a" * 40,
        fix_sha="b" * 40,
        base_failing=[h],
    )
    p.verification = [prop.Verification("test", "a" * 40, "failed", [check], [h])]
    p.rounds = [prop.Round(1, "proposal", h, h), prop.Round(2, "review", h, h)]
    return p


def _finding(h: str) -> audit.Finding:
    return audit.Finding(
        severity="high",
        path=h,
        start_line=1,
        end_line=2,
        title=h[:120],
        explanation=h,
        replacement=h,
        confidence=1,
    )


def _triage(h: str) -> str:
    model = triage.analysis_schema(["app"], [3])
    analysis = model(
        category="bug",
        severity="high",
        summary=h[:600],
        warranted=True,
        confidence=0.9,
        reasons=[h],
        questions=[h],
        area="app",
        duplicates=[3],
    )
    return triage.render_comment(analysis, policy=RepoPolicy(), model="m", tokens=1, cost=0.0, notes=(h,))


def _dependabot(h: str) -> str:
    update = dependabot.Update((dependabot.Dependency(h, h, h, "patch"),), h, h, h, True)
    decision = dependabot.Decision(False, h, True)
    summary = dependabot.RiskSummary.model_validate(
        {
            "summary": h[:600],
            "breaking_changes": [{"change": h[:300], "affects_this_repository": "yes", "where": h[:200]}],
            "migration_steps": [h],
            "security_fixes": [h],
            "recommendation": "merge",
        }
    )
    return dependabot.render_comment(update, decision, h, summary, h) + dependabot.render_withdrawn(
        "c" * 40, h
    )


def _audit_summary(h: str) -> str:
    risk = audit.Risk(10, (h,))
    placed = audit.Placement((), (_finding(h),))
    scope = report.Scope((h,), "low", risk, h)
    shown = report.Shown("d" * 40, "comment", h, scope, [], (h,), (h,), repeated=1, left_out=(2, 1))
    return report.render_summary(shown, placed)


def _digest(h: str) -> str:
    return digest.render(
        week="2026-W49",
        clusters=[digest.Cluster(h, h, (1, 2), 3, h, 2.0)],
        shipped=[digest.Shipped(5, 1, h)],
        rejected=[digest.Rejected(6, 2, h)],
        cost=0.0,
        tokens=0,
        proposed=[],
        model=h,
    )


TEMPLATES: dict[str, Callable[[str], str]] = {
    "pull request body": lambda h: prop.render_body(_proposal(h)),
    "issue's proposal comment": lambda h: prop.issue_comment(_proposal(h)),
    "triage comment": _triage,
    "Dependabot comment": _dependabot,
    "audit line comment": lambda h: audit.comment_body(_finding(h)),
    "audit summary and check run": _audit_summary,
    "weekly digest": _digest,
    "gate comment": lambda h: GateDecision("wait", (f"changes requested by @{h}", h), (), 0, 1).status_line(
        "e" * 40
    ),
    "learnings table": lambda h: render_learnings(h, [Dismissal("0" * 12, h, h, h, "command", h, 0.0)]),
    "unknown command": lambda h: f"Unknown command {render.code(h, limit=40)}.",
    "a path as code": lambda h: f"- fix: {render.code(h)}",
}


def test_the_oracle_sees_what_is_live() -> None:
    assert problems("hello @victim") == ["mention"]
    assert problems("see https://evil.example") == ["link to https://evil.example", "bare link"]
    assert problems("![x](https://e.example/p.png)") == ["image"]
    assert problems("`@victim` and [run](https://github.com/o/r/runs/1)") == []


@pytest.mark.parametrize("template", sorted(TEMPLATES))
@pytest.mark.parametrize("form", FORMS)
def test_every_form_through_every_template_is_inert(template: str, form: str) -> None:
    posted = render.finish(TEMPLATES[template](form))
    assert problems(posted) == []


def test_own_links_markers_and_details_survive() -> None:
    text = (
        "**Autopack audit**: see [tests](https://github.com/octo-org/widgets/runs/5)\n\n"
        "<details><summary>Risk</summary>\n\n- fine\n\n</details>\n\n<!-- autopack:audit:abc v=comment -->"
    )
    assert render.finish(text) == text


def test_code_spans_and_fences_are_left_exactly_as_written() -> None:
    text = (
        "use `@pytest.fixture` here\n\n```python\n@decorator\nurl = 'https://evil.example'\n```\n"
        "after @victim"
    )
    finished = render.finish(text)
    assert "`@pytest.fixture`" in finished
    assert "@decorator\nurl = 'https://evil.example'" in finished
    assert finished.endswith("after @\u2060victim")


def test_a_value_cannot_close_its_code_span() -> None:
    assert render.code("x`@victim`") == "`` x`@victim` ``"  # a longer fence, padded: one span
    assert problems(render.finish(f"Unknown command {render.code('x`@victim`')}.")) == []
    assert render.code("push") == "`push`"


def test_github_enterprise_links_to_its_own_host_stay() -> None:
    hosts = render.DEFAULT_HOSTS | {"github.example.com"}
    text = "[run](https://github.example.com/o/r/runs/1) and https://evil.example"
    finished = render.finish(text, hosts=hosts)
    assert "[run](https://github.example.com/o/r/runs/1)" in finished
    assert "https://evil.example" not in finished
