"""`check-config`, `usage`, `/autopack usage`, and a bad routing file at start."""

from __future__ import annotations

import json
import time
from pathlib import Path

import respx
from click.testing import CliRunner

from app.cli import main
from app.inbox.store import Inbox
from app.llm.ledger import week_start
from tests.component.harness import Harness
from tests.fake_github import FakeGitHub
from tests.support import comment_payload

ASSESSMENT = Path(__file__).resolve().parents[1] / "fixtures" / "assessment-models.yaml"


def test_check_config_lists_every_outdated_model_with_date_and_replacement(app_env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["check-config", str(ASSESSMENT)], env=app_env)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 17  # every model reference of the assessment
    assert any(
        line.startswith("warning: complexity_models.high.builder: gpt-5 is ")
        and "2026-12-11" in line
        and line.endswith("replace with gpt-6.2-astra")
        for line in warnings
    )
    assert any("claude-sonnet-4-5" in w and "2026-11-30" in w and "claude-sonnet-5-5" in w for w in warnings)
    assert any("claude-opus-4-5" in w and "2027-01-22" in w and "claude-opus-5-5" in w for w in warnings)
    assert any("gpt-4o-mini" in w and "2027-01-14" in w and "gpt-6-luna" in w for w in warnings)
    assert CliRunner().invoke(main, ["check-config", "--strict", str(ASSESSMENT)], env=app_env).exit_code == 1


def test_check_config_builtin_is_clean(app_env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["check-config", "--strict"], env=app_env)
    assert result.exit_code == 0
    assert "0 warning(s)" in result.output


def test_check_config_shows_the_schemas_each_model_receives_in_its_dialect(
    app_env: dict[str, str], tmp_path: Path
) -> None:
    result = CliRunner().invoke(main, ["check-config"], env=app_env)
    lines = result.output.splitlines()
    assert "  gpt-6.2-astra (openai-strict): ChangeSet, Revision, AuditAnswer" in lines
    assert any(line.startswith("  claude-opus-5-5 (anthropic-output-format): AuditAnswer") for line in lines)
    compatible = CliRunner().invoke(
        main, ["check-config"], env={**app_env, "OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"}
    )
    assert "  gpt-6.2-astra (openai-compatible): ChangeSet, Revision, AuditAnswer" in compatible.output
    local = tmp_path / "models.yaml"
    local.write_text(
        "complexity_models:\n"
        "  low: {builder: llama-4-local, auditor: claude-haiku-5-5}\n"
        "  medium: {builder: llama-4-local, auditor: claude-haiku-5-5}\n"
        "  high: {builder: llama-4-local, auditor: claude-haiku-5-5}\n"
        "providers: {llama-4-local: openai}\n"
    )
    flagged = CliRunner().invoke(main, ["check-config", "--strict", str(local)], env=app_env)
    assert (
        "warning: llama-4-local: structured-output dialect unknown (not in the catalogue); "
        "assumed openai-strict. Add it to the catalogue with its structured_output."
    ) in flagged.output
    assert "  llama-4-local (openai-strict): ChangeSet, Revision" in flagged.output
    assert flagged.exit_code == 1  # --strict: a flag is a warning


def test_check_config_names_the_bad_key(app_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "models.yaml"
    bad.write_text(ASSESSMENT.read_text().replace("secondary_auditor", "secondary_audtor"))
    result = CliRunner().invoke(main, ["check-config", str(bad)], env=app_env)
    assert result.exit_code == 1
    assert "category_models.security_auth_change.secondary_audtor: unknown key" in result.output


def test_serve_refuses_a_bad_routing_file(app_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "models.yaml"
    bad.write_text("complexity_models: {}\n")
    result = CliRunner().invoke(main, ["serve"], env={**app_env, "AUTOPACK_MODELS": str(bad)})
    assert result.exit_code == 2
    assert "complexity_models.low: required key is missing" in result.output


def _seed(url: str) -> None:
    import asyncio

    asyncio.run(_seed_async(url))


async def _seed_async(url: str) -> None:
    inbox = Inbox.open(url)
    await inbox.migrate()
    now = time.time()
    week = week_start(now).isoformat()
    for model, repo, tokens, cost in [
        ("gpt-6.2-sol", "octo-org/widgets", 1200, 0.01),
        ("claude-opus-5-5", "octo-org/widgets", 3000, 0.05),
        ("gpt-6.2-sol", "other/repo", 500, 0.002),
    ]:
        await inbox.db.run(
            lambda tx, m=model, r=repo, t=tokens, c=cost: tx.execute(
                "INSERT INTO llm_usage (created_at, week, installation_id, repository, task, role, category,"
                " provider, requested_model, model, input_tokens, output_tokens, cost, outcome)"
                " VALUES (?, ?, 4242, ?, 'audit', 'auditor', 'general', 'x', ?, ?, ?, 100, ?, 'ok')",
                (now, week, r, m, m, t, c),
            )
        )
    inbox.close()


def test_usage_cli(app_env: dict[str, str]) -> None:
    _seed(app_env["DATABASE_URL"])
    result = CliRunner().invoke(main, ["usage", "--by", "repo"], env=app_env)
    assert result.exit_code == 0, result.output
    assert "octo-org/widgets" in result.output
    assert "0.0620" in result.output  # total cost
    rows = [
        json.loads(x)
        for x in CliRunner()
        .invoke(main, ["usage", "--by", "model", "--json"], env=app_env)
        .output.splitlines()
    ]
    assert {r["key"]: r["input_tokens"] for r in rows} == {"claude-opus-5-5": 3000, "gpt-6.2-sol": 1700}
    bad = CliRunner().invoke(main, ["usage", "--since", "yesterday"], env=app_env)
    assert bad.exit_code == 2


async def test_usage_command_reports_this_repository_only(harness: Harness) -> None:
    await _seed_async(harness.settings.database_url)
    thread = FakeGitHub(permissions={"reader": "read"})
    with respx.mock(assert_all_called=False) as router:
        thread.install(router)
        await harness.deliver("issue_comment", comment_payload("/autopack usage", login="reader"))
        await harness.run_next()
    (reply,) = thread.bot_comments()
    assert "LLM usage of `octo-org/widgets`" in reply["body"]
    assert "| `claude-opus-5-5` | 1 | 3,000 |" in reply["body"]
    assert "**$0.0600**" in reply["body"]
    assert "other/repo" not in reply["body"]


def test_check_config_of_a_policy_file(app_env: dict[str, str], tmp_path: Path) -> None:
    good = tmp_path / "autopack.yml"
    good.write_text("_extends: .github\nfeedback:\n  label: fb\n")
    result = CliRunner().invoke(main, ["check-config", str(good)], env=app_env)
    assert result.exit_code == 0, result.output
    assert "valid policy file" in result.output
    assert "_extends" in result.output
    bad = tmp_path / "autopack-bad.yml"
    bad.write_text("feedback:\n  lable: fb\n")
    result = CliRunner().invoke(main, ["check-config", str(bad)], env=app_env)
    assert result.exit_code == 1
    assert "line 2: feedback.lable: unknown key" in result.output
