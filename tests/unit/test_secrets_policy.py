"""Secret detection in added lines, redaction, allowlists; outdated model names in configs."""

from __future__ import annotations

import datetime as dt

import pytest

from app.policy.diff import from_api
from app.policy.model_names import ModelStatus, outdated
from app.policy.secrets import ALLOW_MARKER, entropy, find_in_line, redact_text, redact_value, scan

# Fake credentials in the shapes real ones have (none of them is live).
SECRETS = {
    "GitHub Token": "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "GitHub OAuth": "gho_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2",
    "GitHub App installation": "ghs_" + "16C7e42F292c6912E7710c838347Ae178B4a",
    "GitHub fine-grained": "github_pat_"
    + "11AQ3EGRIYL7HDN2Y7P9vz"
    + "_"
    + "k3Lq9ZtWm2Xv7RbN4sHd8PfJc1GyT6uE0aKo5iQwVxBnMl2Cr8SeUg4hYjQ",
    "AWS Access Key": "AKIA" + "Q3EGRIYLXHDN2Y7P",
    "OpenAI project key": "sk-proj-" + "Xq3v9TzL2mN8pR4sW6yB1cD5fG7hJ0kA3eU8iO2qZ4xC6vB9nM1l",
    "OpenAI legacy key": "sk-" + "Zq4mWv9LtR2xHc7NpB3s" + "T3BlbkFJ" + "Kd8fGj1YhU6eTq0wOa5r",
    "Anthropic API Key": "sk-ant-api03-" + "Ab1_Cd2-Ef3" * 9,
    "Slack Token": "xoxb-" + "281945736201-4719283746512-Qm7vXz2LpT9wKc4NbR8sHd3F",
    "Stripe Access Key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_each_kind_is_detected_in_an_assignment(kind: str) -> None:
    value = SECRETS[kind]
    found = find_in_line(f'    config["token"] = "{value}"  # {kind}')
    assert [v for _, v in found] == [value], found


def test_private_key_blocks_and_secret_looking_names() -> None:
    assert find_in_line("-----BEGIN RSA PRIVATE KEY-----") == []  # a stub header is no key
    block = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        + "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" * 4
        + "\n-----END OPENSSH PRIVATE KEY-----"
    )
    assert [k for k, _ in find_in_line(block)] == ["Private key"]
    assert (
        find_in_line('DB_PASSWORD = "Zq8#vL2!pX9@mK4$tR7"')[0][0]
        == "Secret assigned to a secret-looking name"
    )
    for harmless in (
        'password = "changeme"',
        'password = "${DB_PASSWORD}"',
        'api_key = "xxxxxxxxxxxx"',
        'token = os.environ["TOKEN"]',
        "name = 'aaaaaaaaaaaa'",
        "sha = 6113728f27ae82c7b1a177c8d03f9e96e0adf246",
    ):
        assert find_in_line(harmless) == [], harmless


def test_redaction_keeps_a_prefix_and_the_length_only() -> None:
    value = SECRETS["GitHub Token"]
    assert redact_value(value) == "ghp_… (40 characters)"
    assert value not in redact_text(f"x = {value}; y = {value}", {value})
    assert redact_text("nothing here", {value}) == "nothing here"
    assert entropy("aaaa") == 0.0


def patch_adding(*lines: str) -> str:
    return f"@@ -1,1 +1,{len(lines) + 1} @@\n context\n" + "\n".join(f"+{line}" for line in lines)


def test_scan_reports_file_and_line_and_honours_the_allowlist_and_the_marker() -> None:
    token = SECRETS["GitHub Token"]
    files = from_api(
        [
            {"filename": "app/settings.py", "status": "modified", "additions": 3, "deletions": 0,
             "patch": patch_adding("ok = 1", f'TOKEN = "{token}"', f'FIXTURE = "{token}"  # {ALLOW_MARKER}')},
            {"filename": "tests/fixtures/keys.py", "status": "added", "additions": 1, "deletions": 0,
             "patch": patch_adding(f'KEY = "{SECRETS["AWS Access Key"]}"')},
        ]
    )  # fmt: skip
    findings, _ = scan(files, allow_paths=["tests/fixtures/**"])
    assert [(f.path, f.line, f.kind) for f in findings] == [("app/settings.py", 3, "GitHub token")]
    assert token not in str(findings[0])
    everything, _ = scan(files, allow_paths=[])
    assert len(everything) == 2


def test_removed_lines_are_not_scanned() -> None:
    files = from_api(
        [{"filename": "a.py", "status": "modified", "additions": 0, "deletions": 1,
          "patch": f"@@ -1,2 +1,1 @@\n keep\n-TOKEN = \"{SECRETS['GitHub Token']}\""}]
    )  # fmt: skip
    assert scan(files, allow_paths=[])[0] == []


KNOWN = {
    "gpt-4-turbo-2024-04-09": ModelStatus("retired", dt.date(2026, 10, 23), "gpt-6.2-sol"),
    "gpt-4o": ModelStatus("deprecated", dt.date(2027, 1, 14), "gpt-6.2-sol"),
    "claude-sonnet-4-5": ModelStatus("legacy", None, "claude-sonnet-5-5"),
    "gpt-6.2-sol": ModelStatus("current", None, None),
}


def test_outdated_model_names_with_lines_and_replacements() -> None:
    text = (
        "complexity_models:\n"
        "  high: {builder: gpt-4-turbo-2024-04-09, auditor: gpt-6.2-sol}\n"
        "  medium:\n"
        "    builder: gpt-4o\n"
        "fallbacks:\n"
        "  - claude-sonnet-4-5\n"
    )
    found = outdated(text, KNOWN)
    assert [(f.line, f.name, f.status) for f in found] == [
        (2, "gpt-4-turbo-2024-04-09", "retired"),
        (4, "gpt-4o", "deprecated"),
        (6, "claude-sonnet-4-5", "legacy"),
    ]
    assert (
        found[0].message()
        == "`gpt-4-turbo-2024-04-09` was shut down on 2026-10-23; use `gpt-6.2-sol` instead."
    )
    assert outdated("not: [valid", KNOWN) == []
