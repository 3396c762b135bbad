"""Secret detection on the labelled corpus, whole-secret redaction, the CLI and the pre-commit hook.

The corpus (`tests/secrets_corpus.py`) holds a secret in context per format and family, and the
placeholders and lookalikes each format's detectors publish as must-not-match cases. Recall and
false positives are measured against detect-secrets and gitleaks by `bench/secrets_recall.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from app.cli import main
from app.policy.diff import from_api
from app.policy.secrets import ALLOW_MARKER, find, redact, scan_diffs
from tests.secrets_corpus import FALSE, TRUE, Sample

ROOT = Path(__file__).resolve().parents[2]


def _id(sample: Sample) -> str:
    return f"{sample.family}/{sample.name}"


@pytest.mark.parametrize("sample", TRUE, ids=_id)
def test_a_secret_in_context_is_found_and_fully_redacted(sample: Sample) -> None:
    assert sample.secret is not None
    start = sample.text.index(sample.secret)
    spans = find(sample.text, sample.path)
    assert any(s.start <= start and s.end >= start + len(sample.secret) for s in spans), spans
    cleaned = redact(sample.text, sample.path)
    assert sample.secret not in cleaned
    # at most a 4-character prefix of it survives anywhere in what a model would receive
    assert not any(sample.secret[i : i + 8] in cleaned for i in range(len(sample.secret) - 8)), cleaned


@pytest.mark.parametrize("sample", FALSE, ids=_id)
def test_a_placeholder_or_lookalike_is_not_flagged(sample: Sample) -> None:
    assert find(sample.text, sample.path) == []
    assert redact(sample.text, sample.path) == sample.text


def test_the_corpus_covers_every_family_it_was_asked_for() -> None:
    families = {s.family for s in TRUE}
    for family in (
        "github",
        "gitlab",
        "aws",
        "google",
        "azure",
        "jwt",
        "private_key",
        "connection",
        "curl",
        "generic",
    ):
        assert family in families
    assert len(TRUE) >= 50
    assert len(FALSE) >= 30
    assert {s.family for s in FALSE} >= {"github", "aws", "private_key", "connection", "generic"}


# ---- redaction: multi-line keys, overlaps, every line of a patch ------------------------------

PEM_BODY = "\n".join(["MIIEowIBAAKCAQEAx3Zq8Lm2Vt9nRb4sHd8PfJc1GyT6uE0aKo5iQwVxBnMl2Cr8SeUg4hYjD7fA9sK"] * 6)
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"


def test_a_private_key_is_redacted_whole_not_only_its_header() -> None:
    text = f"key = '''\n{PEM}\n'''\nnext = 1\n"
    cleaned = redact(text, "app/keys.py")
    assert "MIIEow" not in cleaned
    assert "-----END RSA PRIVATE KEY-----" not in cleaned
    assert cleaned.endswith("'''\nnext = 1\n")


def test_the_key_inside_a_service_account_json_is_redacted_whole() -> None:
    escaped = PEM.replace("\n", "\\n")
    text = json.dumps({"type": "service_account", "private_key": escaped + "\\n", "client_email": "x@y"})
    cleaned = redact(text.replace("\\\\n", "\\n"), "sa.json")
    assert "MIIEow" not in cleaned
    assert "client_email" in cleaned


def test_overlapping_matches_are_redacted_as_their_union() -> None:
    stripe = "sk_live_51" + "Hq3vZ9mWx2LtR8pB4sNc7Kd1FgJy6UeTa0" * 3
    text = f"STRIPE = '{stripe}'"
    (span,) = find(text, "app.py")
    assert text[span.start : span.end] == stripe  # one span: the longest, whole secret
    assert stripe[6:] not in redact(text, "app.py")


def test_removed_and_context_lines_are_redacted_before_a_prompt() -> None:
    from app.llm.prompt import Section, build
    from app.llm.tokens import counter_for

    token = "ghp_" + "Zq4mWv9LtR2xHc7NpB3sKd8fGj1YhU6eTq0w"
    patch = f'@@ -1,3 +1,3 @@\n TOKEN = "{token}"\n-OLD = "{token}"\n+NEW = 1'
    prompt = build(
        "audit",
        [Section("diff", patch, kind="code"), Section("commit_messages", f"rotate {token}")],
        counter=counter_for("openai"),
        budget_tokens=12_000,
        values={"repository": "o/r"},
    )
    assert token not in prompt.user
    assert prompt.user.count("[secret ghp_…") == 3


def test_findings_cover_added_lines_of_every_file_kind_and_list_what_could_not_be_scanned() -> None:
    token = "npm_" + "Zq4mWv9LtR2xHc7NpB3sKd8fGj1YhU6eTq0w"
    files = from_api(
        [
            {
                "filename": "package-lock.json",
                "status": "modified",
                "patch": f'@@ -1 +1,2 @@\n {{\n+"token": "{token}"',
            },
            {"filename": "dist/app.min.js", "status": "modified", "patch": f'@@ -1 +1 @@\n+var t="{token}";'},
            {"filename": "assets/huge.sql", "status": "modified"},  # GitHub gave no patch: too large
            {
                "filename": "app/x.py",
                "status": "modified",
                "patch": f'@@ -1 +1 @@\n+T = "{token}"  # {ALLOW_MARKER}',
            },
        ]
    )
    result = scan_diffs(files, allow_paths=[])
    assert [(f.path, f.line) for f in result.findings] == [("package-lock.json", 2), ("dist/app.min.js", 1)]
    assert result.not_scanned == ["assets/huge.sql"]
    assert all(token not in f.redacted for f in result.findings)


# ---- the command line and the pre-commit hook -------------------------------------------------


def _leaky(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "config.py").write_text(
        'DEBUG = True\nTOKEN = "ghp_Zq4mWv9LtR2xHc7NpB3sKd8fGj1YhU6eTq0w"\n'
    )
    (tmp_path / "src" / "clean.py").write_text("def f():\n    return 1\n")
    (tmp_path / ".env").write_text("DB_PASSWORD=Xk9Lp2Qr7Tz4Vn8W\n")
    return tmp_path


def test_secrets_scan_reports_and_exits_1_or_0(tmp_path: Path) -> None:
    root = _leaky(tmp_path)
    result = CliRunner().invoke(main, ["secrets", "scan", "--format", "json", str(root)])
    assert result.exit_code == 1
    found = json.loads(result.stdout)
    assert [(Path(f["path"]).name, f["line"], f["kind"]) for f in found] == [
        (".env", 1, "Secret assigned to a secret-looking name"),
        ("config.py", 2, "GitHub token"),
    ]
    assert all({"path", "line", "kind", "redacted", "detector"} <= set(f) for f in found)
    assert "Zq4mWv9L" not in result.stdout
    clean = CliRunner().invoke(main, ["secrets", "scan", str(root / "src" / "clean.py")])
    assert clean.exit_code == 0
    missing = CliRunner().invoke(main, ["secrets", "scan", str(root / "nope.py")])
    assert missing.exit_code == 2


def test_secrets_redact_prints_what_a_model_would_receive(tmp_path: Path) -> None:
    root = _leaky(tmp_path)
    result = CliRunner().invoke(main, ["secrets", "redact", "--format", "json", str(root)])
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert sorted(Path(p).name for p in shown) == [".env", "config.py"]  # files with a finding only
    config = next(v for p, v in shown.items() if p.endswith("config.py"))
    assert config == 'DEBUG = True\nTOKEN = "[secret ghp_… (40 characters)]"\n'


def test_the_pre_commit_hook_runs_the_scanner(tmp_path: Path) -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "autopack-secrets"
    assert hook["language"] == "python"
    command = hook["entry"].split()
    assert command[:3] == ["autopack", "secrets", "scan"]
    leaky = _leaky(tmp_path) / "src" / "config.py"
    result = CliRunner().invoke(main, [*command[1:], str(leaky)])  # as pre-commit passes file names
    assert result.exit_code == 1
