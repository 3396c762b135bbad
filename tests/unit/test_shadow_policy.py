"""`policy.shadow`: each write a flow in shadow mode kept, in the words a maintainer reads."""

from __future__ import annotations

import pytest

from app.policy import shadow
from app.policy.repo_policy import parse

R = "/repos/o/r"


@pytest.mark.parametrize(
    ("write", "kind", "line"),
    [
        (
            ("POST", f"{R}/issues/7/labels", {"labels": ["type:bug", "area:app"]}),
            "label",
            "label #7: type:bug, area:app",
        ),
        (
            ("POST", f"{R}/labels", {"name": "type:bug", "color": "d73a4a"}),
            "create label",
            "create label type:bug",
        ),
        (
            ("POST", f"{R}/issues/7/comments", {"body": "**Triage** bug\n\n<!-- autopack:triage -->"}),
            "comment",
            "comment #7: **Triage** bug",
        ),
        (("PATCH", f"{R}/issues/comments/55", {"body": "edited"}), "comment", "comment: edited"),
        (
            ("PATCH", f"{R}/issues/7", {"state": "closed", "state_reason": "duplicate"}),
            "issue",
            "update issue #7: state=closed, state_reason=duplicate",
        ),
        (("POST", f"{R}/issues", {"title": "Digest 2026-W49"}), "issue", "open issue: Digest 2026-W49"),
        (
            ("POST", f"{R}/pulls/21/reviews", {"event": "COMMENT", "body": "Audit", "comments": [{}, {}]}),
            "review",
            "review #21: COMMENT with 2 line comments: Audit",
        ),
        (
            ("POST", f"{R}/pulls/21/reviews", {"event": "APPROVE", "comments": [{}]}),
            "review",
            "review #21: APPROVE with 1 line comment: ",
        ),
        (
            ("PUT", f"{R}/pulls/40/merge", {"merge_method": "squash", "sha": "d" * 40}),
            "merge",
            "merge #40 (squash) at ddddddd",
        ),
        (
            (
                "POST",
                f"{R}/check-runs",
                {"name": "Autopack audit", "conclusion": "neutral", "output": {"title": "2 findings"}},
            ),
            "check run",
            "check run Autopack audit: neutral: 2 findings",
        ),
        (
            ("POST", f"{R}/pulls", {"title": "Retry on lock"}),
            "pull request",
            "open pull request: Retry on lock",
        ),
        (
            ("POST", f"{R}/pulls/5/requested_reviewers", {"reviewers": ["ann"], "team_reviewers": ["sec"]}),
            "reviewers",
            "request reviewers #5: ann, team sec",
        ),
        (("POST", f"{R}/issues/comments/9/reactions", {"content": "+1"}), "reaction", "react +1"),
        (
            ("POST", f"{R}/git/refs", {"ref": "refs/heads/autopack/issue-7"}),
            "branch",
            "create branch refs/heads/autopack/issue-7",
        ),
        (
            ("DELETE", f"{R}/git/refs/heads/autopack/issue-7", None),
            "branch",
            "delete branch autopack/issue-7",
        ),
        (
            ("POST", f"{R}/git/commits", {"message": "Test: locked save"}),
            "git object",
            "create commit: Test: locked save",
        ),
        (
            (
                "POST",
                "/graphql",
                {"query": "mutation($id: ID!) { enablePullRequestAutoMerge(input: {}) { x } }"},
            ),
            "auto-merge",
            "auto-merge",
        ),
        (("POST", "/graphql", {"query": "mutation { somethingNew { x } }"}), "somethingNew", "somethingNew"),
        (("DELETE", f"{R}/unknown", None), f"DELETE {R}/unknown", f"DELETE {R}/unknown"),
    ],
)
def test_describe(write: shadow.Write, kind: str, line: str) -> None:
    assert shadow.kind(write) == kind
    assert shadow.describe(write) == line


def test_long_text_is_cut_and_hidden_markers_dropped() -> None:
    line = shadow.describe(("POST", f"{R}/issues/7/comments", {"body": "word " * 100}))
    assert len(line) == len("comment #7: ") + 160
    assert line.endswith("…")


def test_headline_leaves_plumbing_out_and_tally_counts_kinds() -> None:
    writes: list[shadow.Write] = [
        ("POST", f"{R}/labels", {"name": "a"}),
        ("POST", f"{R}/issues/7/labels", {"labels": ["a"]}),
        ("POST", f"{R}/issues/comments/9/reactions", {"content": "eyes"}),
        ("POST", f"{R}/issues/7/comments", {"body": "hi"}),
    ]
    assert shadow.headline(writes) == "label #7: a; comment #7: hi"
    assert shadow.headline(writes[:1]) == "create label a"
    many = [("POST", f"{R}/issues/{n}/comments", {"body": "x"}) for n in range(5)]
    assert shadow.headline(many).endswith("; +2 more")
    counts = shadow.tally([("triage", writes), ("triage", writes[1:2]), ("audit", [])])
    assert counts["triage"]["label"] == 2
    assert counts["audit"] == {}


@pytest.mark.parametrize("section", ["feedback", "audit", "dependabot", "proposals", "push"])
@pytest.mark.parametrize(
    ("text", "mode"), [("act", "act"), ("shadow", "shadow"), ("off", "off"), ("'off'", "off")]
)
def test_every_flow_section_has_a_mode_and_yaml_off_means_off(section: str, text: str, mode: str) -> None:
    policy = parse(f"{section}:\n  mode: {text}\n")
    assert getattr(policy, section).mode == mode


def test_an_unknown_mode_is_an_error_naming_its_line() -> None:
    from app.policy.repo_policy import PolicyError

    with pytest.raises(PolicyError) as caught:
        parse("audit:\n  mode: loud\n")
    assert "audit.mode" in str(caught.value)
