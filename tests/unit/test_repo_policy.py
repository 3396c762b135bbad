"""`.github/autopack.yml`: schema, errors with lines, `_extends` forms, deep merge."""

from __future__ import annotations

import pytest

from app.policy.repo_policy import DEFAULTS, Extends, PolicyError, merge, parse, parse_extends

FULL = """\
feedback:
  label: feedback
  rate_limit_per_day: 3
  max_body_chars: 5000
  triage_on_edit: true
  close_duplicates: false
  areas:
    storage: ["app/storage/**"]
    ui: ["web/**", "app/ui/**"]
proposals: {auto: true, min_confidence: 0.9}
audit: {enabled: true}
dependabot: {enabled: false}
push: {enabled: true, branches: [release]}
guardrails: {allow_paths: [docs/]}
merge: {method: rebase, required_approvals: 2, reporter_can_approve: false, delete_branch: false}
budgets: {repository_weekly_tokens: 2000000}
"""


def test_every_section_parses() -> None:
    policy = parse(FULL)
    assert policy.feedback.label == "feedback"
    assert policy.feedback.areas["ui"] == ["web/**", "app/ui/**"]
    assert (policy.proposals.auto, policy.merge.method, policy.merge.required_approvals) == (
        True,
        "rebase",
        2,
    )
    assert policy.budgets.repository_weekly_tokens == 2_000_000
    assert policy.push.branches == ["release"]


def test_empty_file_is_the_defaults() -> None:
    assert parse("") == DEFAULTS
    assert DEFAULTS.feedback.label == "user-feedback"
    assert DEFAULTS.feedback.rate_limit_per_day == 5
    assert DEFAULTS.merge.required_approvals == 1
    assert DEFAULTS.merge.reporter_can_approve is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "feedback:\n  label: x\n  rate_limit_per_dya: 3\n",
            "line 3: feedback.rate_limit_per_dya: unknown key",
        ),
        ("merge:\n  method: yolo\n", "line 2: merge.method: Input should be 'merge', 'squash' or 'rebase'"),
        (
            "proposals:\n  min_confidence: 2\n",
            "line 2: proposals.min_confidence: Input should be less than or equal to 1",
        ),
        ("secrets:\n  token: x\n", "line 1: secrets: unknown key"),
        (
            "feedback:\n  areas:\n    ui: []\n",
            "line 2: feedback.areas: area 'ui' needs at least one path glob",
        ),
        ("feedback: [1, 2\n", "(file): not valid YAML"),
        ("- just\n- a list\n", "line 1: (file): expected a mapping of sections"),
    ],
)
def test_errors_name_the_key_and_line(text: str, expected: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse(text)
    assert any(expected in str(p) for p in info.value.problems), [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (".github", Extends("octo", ".github", ".github/autopack.yml")),
        ("octo-org/.github", Extends("octo-org", ".github", ".github/autopack.yml")),
        (".github:configs/autopack.yml", Extends("octo", ".github", "configs/autopack.yml")),
        ("other/shared:base.yml", Extends("other", "shared", "base.yml")),
    ],
)
def test_extends_forms(value: str, expected: Extends) -> None:
    assert parse_extends(value, "octo") == expected


@pytest.mark.parametrize(
    "value", ["", "   ", 3, None, ".github:../../etc/passwd", ".github:/abs.yml", "owner/"]
)
def test_bad_extends(value: object) -> None:
    with pytest.raises(ValueError, match="_extends"):
        parse_extends(value, "octo")


def test_deep_merge() -> None:
    base = {
        "feedback": {"label": "fb", "rate_limit_per_day": 2, "areas": {"a": ["x/**"]}},
        "merge": {"method": "merge"},
    }
    override = {"feedback": {"rate_limit_per_day": 9, "areas": {"b": ["y/**"]}}, "proposals": {"auto": True}}
    assert merge(base, override) == {
        "feedback": {"label": "fb", "rate_limit_per_day": 9, "areas": {"a": ["x/**"], "b": ["y/**"]}},
        "merge": {"method": "merge"},
        "proposals": {"auto": True},
    }
    assert base["feedback"]["rate_limit_per_day"] == 2  # inputs untouched
