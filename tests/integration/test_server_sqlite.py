"""The real `autopack serve` process on SQLite, over real HTTP, with a fake GitHub on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fake_github import FakeGitHub
from tests.integration.server import ServerProcess
from tests.support import SECRET, comment_payload, headers, payload, private_key_pem

pytestmark = pytest.mark.integration
HOOK = "/api/github/webhooks"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    fake.base_url = fake.serve()
    yield fake
    fake.stop()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers; whatever a test leaves running (an assertion failed first) is killed after it."""
    started: list[ServerProcess] = []

    def start(env: dict[str, str], *, wait: bool = True) -> ServerProcess:
        server = ServerProcess(env, tmp_path)
        started.append(server)
        return server.start(wait=wait)

    yield start
    for server in started:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


@pytest.fixture
def env(tmp_path: Path, github: FakeGitHub) -> dict[str, str]:
    return {
        "APP_ID": "12345",
        "PRIVATE_KEY": private_key_pem(),
        "WEBHOOK_SECRET": SECRET,
        "GITHUB_API_URL": github.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'autopack.db'}",
        "AUTOPACK_LEASE_SECONDS": "2",
        "AUTOPACK_POLL_SECONDS": "0.1",
        "LOG_FORMAT": "json",
    }


def send(server: ServerProcess, event: str, data: dict[str, object], delivery: str) -> httpx.Response:
    body = json.dumps(data).encode()
    return httpx.post(f"{server.url}{HOOK}", content=body, headers=headers(event, body, delivery), timeout=10)


def wait_for(predicate: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def job_states(db: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT flow, status, attempts FROM jobs ORDER BY id").fetchall()


def test_signed_real_payloads_are_accepted(
    spawn: Callable[..., ServerProcess], env: dict[str, str], tmp_path: Path, github: FakeGitHub
) -> None:
    server = spawn(env)
    try:
        cases = [
            ("issues", payload("issues", "opened.payload.json"), "queued"),
            ("pull_request", payload("pull_request", "opened.payload.json"), "queued"),
            ("push", payload("push"), "ignored"),
            ("installation", payload("installation", "created.payload.json"), "queued"),
            ("issue_comment", comment_payload("/autopack help"), "queued"),
        ]
        for n, (event, data, expected) in enumerate(cases):
            response = send(server, event, data, f"real-{n}")
            assert response.status_code == 202, response.text
            assert response.json() == {"delivery": f"real-{n}", "status": expected}
        assert (
            send(server, "issue_comment", comment_payload("/autopack help"), "real-4").json()["status"]
            == "duplicate"
        )
        bad = json.dumps(payload("push")).encode()
        refused = httpx.post(
            f"{server.url}{HOOK}", content=bad, headers=headers("push", bad, "x", secret="wrong")
        )
        assert refused.status_code == 401
        db = tmp_path / "autopack.db"
        wait_for(
            lambda: [s for f, s, _ in job_states(db) if f in ("installation", "command")] == ["done", "done"],
            what="jobs done",
        )
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT id, account_login FROM installations").fetchall() == [
                (957387, "Codertocat")
            ]
            assert conn.execute("SELECT COUNT(*) FROM deliveries").fetchone() == (5,)
        assert len(github.bot_comments()) == 1
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'autopack_jobs_total{flow="command",outcome="done"} 1.0' in metrics
        assert 'autopack_github_requests_total{method="POST",status="201"}' in metrics
    finally:
        assert server.terminate() == 0, server.output()
    # Secrets never reached the log.
    log = server.output()
    assert SECRET not in log
    assert "BEGIN RSA PRIVATE KEY" not in log
    assert "ghs_fakeinstallationtoken" not in log


def test_kill_9_mid_job_then_restart_effect_appears_exactly_once(
    spawn: Callable[..., ServerProcess], env: dict[str, str], tmp_path: Path, github: FakeGitHub
) -> None:
    github.hold = "+1"  # the job's last step hangs: the comment is already posted
    server = spawn(env)
    assert (
        send(server, "issue_comment", comment_payload("/autopack help"), "kill-1").json()["status"]
        == "queued"
    )
    assert github.held.wait(30), server.output()
    assert len(github.bot_comments()) == 1
    server.kill9()
    assert job_states(tmp_path / "autopack.db") == [("command", "running", 1)]

    github.hold = None
    github.release.set()
    restarted = spawn(env)
    try:
        wait_for(lambda: (9001, "+1") in github.reactions, what="the re-run to finish")
        wait_for(lambda: job_states(tmp_path / "autopack.db")[0][1] == "done", what="job done")
    finally:
        assert restarted.terminate() == 0, restarted.output()
    assert job_states(tmp_path / "autopack.db") == [("command", "done", 2)]
    assert len(github.bot_comments()) == 1  # found by its marker, not posted twice
    assert github.reactions.count((9001, "eyes")) == 1
    assert "lease expired; job taken back" in restarted.output()


def test_sigterm_lets_a_running_job_finish(
    spawn: Callable[..., ServerProcess], env: dict[str, str], tmp_path: Path, github: FakeGitHub
) -> None:
    github.hold = "+1"
    server = spawn({**env, "AUTOPACK_SHUTDOWN_GRACE_SECONDS": "10"})
    send(server, "issue_comment", comment_payload("/autopack help"), "term-1")
    assert github.held.wait(30)
    assert server.proc is not None
    server.proc.send_signal(15)
    time.sleep(0.5)
    github.hold = None
    github.release.set()  # the held request now fails (502): the job is retried later, not lost
    assert server.terminate(timeout=30) == 0, server.output()
    ((flow, status, attempts),) = job_states(tmp_path / "autopack.db")
    assert (flow, status, attempts) == ("command", "queued", 1)


def test_setup_mode_and_refusal_to_start_without_secret(
    spawn: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = spawn({"DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"})
    try:
        body = json.dumps(comment_payload("/autopack help")).encode()
        assert (
            httpx.post(
                f"{server.url}{HOOK}", content=body, headers=headers("issue_comment", body, "s")
            ).status_code
            == 503
        )
        assert "WEBHOOK_SECRET" in httpx.get(server.url + "/").text
    finally:
        server.terminate()
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**ServerProcess({}, tmp_path).env, "APP_ID": "1", "PRIVATE_KEY": private_key_pem()},
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("autopack: WEBHOOK_SECRET: missing")
    assert "BEGIN" not in result.stderr


def test_the_receiver_answers_while_every_worker_is_busy(
    spawn: Callable[..., ServerProcess], env: dict[str, str], tmp_path: Path, github: FakeGitHub
) -> None:
    """Saturated workers (each of the two holds a job whose GitHub request hangs) must not keep
    the receiver from taking, storing and acknowledging new deliveries, nor /healthz from answering."""
    github.hold = "+1"  # each command job hangs on its last request
    server = spawn({**env, "AUTOPACK_WORKERS": "2"})
    for n in (1, 2):
        send(
            server,
            "issue_comment",
            comment_payload("/autopack help", number=n, comment_id=9000 + n),
            f"busy-{n}",
        )
    wait_for(lambda: github.held_count == 2, what="both workers to be held")

    answers = [
        send(
            server,
            "issue_comment",
            comment_payload("/autopack help", number=10 + n, comment_id=9100 + n),
            f"more-{n}",
        )
        for n in range(20)
    ]
    assert [a.status_code for a in answers] == [202] * 20
    assert {a.json()["status"] for a in answers} == {"queued"}
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
    # Still saturated when the burst was answered: the two held jobs run, the new ones wait.
    assert github.held_count == 2
    states = [status for _, status, _ in job_states(tmp_path / "autopack.db")]
    assert states.count("running") == 2
    assert states.count("queued") == 20

    github.hold = None
    github.release.set()
    wait_for(
        lambda: all(s != "queued" and s != "running" for _, s, _ in job_states(tmp_path / "autopack.db")),
        what="every job to finish",
    )
    assert server.terminate() == 0, server.output()
    assert len(job_states(tmp_path / "autopack.db")) == 22
