"""The CLI: receive (with --dry-run), deliveries list/show/retry, migrate, settings errors."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import respx
from click.testing import CliRunner

from app.cli import main
from app.inbox.models import NewDelivery
from app.inbox.store import Inbox
from tests.fake_github import API, FakeGitHub
from tests.support import comment_payload


@pytest.fixture
def env(app_env: dict[str, str]) -> dict[str, str]:
    return {**app_env, "GITHUB_API_URL": API, "LOG_LEVEL": "warning"}


def test_receive_dry_run_reads_but_prints_writes(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps(comment_payload("/autopack help")))
    thread = FakeGitHub()
    with respx.mock(assert_all_called=False) as router:
        thread.install(router)
        args = ["receive", "-e", "issue_comment", "-p", "c.json", "--dry-run"]
        result = CliRunner().invoke(main, args, env=env)
        requests = [c.request for c in router.calls]
    reads = [r for r in requests if r.method == "GET"]
    writes = [r for r in requests if r.method != "GET" and "access_tokens" not in r.url.path]
    assert result.exit_code == 0, result.output
    assert reads  # permission and comment lookups really went to GitHub
    assert writes == []  # nothing was written
    assert thread.comments == []
    assert thread.reactions == []
    assert "DRY-RUN would send: POST /repos/octo-org/widgets/issues/comments/9001/reactions" in result.output
    assert "DRY-RUN would send: POST /repos/octo-org/widgets/issues/7/comments" in result.output
    assert "flow command done" in result.output


def test_receive_without_dry_run_writes(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps(comment_payload("/autopack help")))
    thread = FakeGitHub()
    with respx.mock(assert_all_called=False) as router:
        thread.install(router)
        args = ["receive", "-e", "issue_comment.created", "-p", "c.json"]
        result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    assert len(thread.bot_comments()) == 1
    assert not Path(env["DATABASE_URL"].removeprefix("sqlite:///")).exists()  # replay leaves no trace


def test_receive_unhandled_event(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps(comment_payload("no command here")))
    result = CliRunner().invoke(main, ["receive", "-e", "issue_comment", "-p", "c.json"], env=env)
    assert result.exit_code == 0
    assert "no flow handles issue_comment.created" in result.output


def test_receive_wrong_action(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps(comment_payload("/autopack help")))
    result = CliRunner().invoke(main, ["receive", "-e", "issue_comment.deleted", "-p", "c.json"], env=env)
    assert result.exit_code == 2
    assert "not 'deleted'" in result.output


def test_settings_error_is_one_line_and_exit_2(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["deliveries", "list"], env={**env, "PORT": "nope"})
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert result.output.startswith("autopack: PORT:")


def _seed(url: str) -> None:
    async def go() -> None:
        inbox = Inbox.open(url)
        await inbox.migrate()
        payload = json.dumps(comment_payload("/autopack help")).encode()
        now = time.time()
        await inbox.record_delivery(
            NewDelivery(
                "d-1",
                "issue_comment",
                "created",
                4242,
                "octo-org/widgets",
                "octo-org/widgets#7",
                {},
                payload,
                now,
            ),
            ["command"],
            max_attempts=1,
        )
        await inbox.record_delivery(
            NewDelivery(
                "d-2",
                "issues",
                "labeled",
                4242,
                "octo-org/widgets",
                "octo-org/widgets#8",
                {},
                b"{}",
                now + 1,
            ),
            [],
            max_attempts=1,
        )
        job = await inbox.claim("w", 30)
        assert job is not None
        await inbox.fail(job, "GitHub 502", retry_in=1)
        inbox.close()

    asyncio.run(go())


def test_deliveries_list_show_retry(env: dict[str, str]) -> None:
    _seed(env["DATABASE_URL"])
    runner = CliRunner()
    listing = runner.invoke(main, ["deliveries", "list"], env=env)
    assert listing.exit_code == 0, listing.output
    assert "dead" in listing.output
    assert "ignored" in listing.output
    dead = runner.invoke(main, ["deliveries", "list", "--status", "dead", "--json"], env=env)
    assert [json.loads(line)["id"] for line in dead.output.splitlines()] == ["d-1"]
    shown = runner.invoke(main, ["deliveries", "show", "d-1"], env=env)
    assert "last error: GitHub 502" in shown.output
    assert "attempts 1/1" in shown.output
    retried = runner.invoke(main, ["deliveries", "retry", "d-1"], env=env)
    assert retried.exit_code == 0
    assert "re-queued job(s) 1" in retried.output
    assert "queued" in runner.invoke(main, ["deliveries", "show", "d-1"], env=env).output
    missing = runner.invoke(main, ["deliveries", "show", "nope"], env=env)
    assert missing.exit_code == 1


def test_migrate(env: dict[str, str]) -> None:
    runner = CliRunner()
    assert "applied migrations: [1, 2, 3, 4, 5, 6]" in runner.invoke(main, ["migrate"], env=env).output
    assert "schema is up to date" in runner.invoke(main, ["migrate"], env=env).output


def test_serve_refuses_an_unmigrated_postgresql(env: dict[str, str], pg_url: str) -> None:
    result = CliRunner().invoke(main, ["serve"], env={**env, "DATABASE_URL": pg_url})
    assert result.exit_code == 2
    assert "run `autopack migrate`" in result.output
    assert (
        "applied migrations: [1, 2, 3, 4, 5, 6]"
        in CliRunner().invoke(main, ["migrate"], env={**env, "DATABASE_URL": pg_url}).output
    )
