"""`/status` behind "Sign in with GitHub", and `autopack status`: who gets in, what they see, retry.

GitHub (the OAuth endpoints, `/user`, the org membership, `GET /app`) is the one fake GitHub behind
respx; the service is the real one on a fresh SQLite database with seeded rows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import respx
from click.testing import CliRunner
from starlette.testclient import TestClient

from app.cli import main
from app.service import Service
from app.settings import Settings
from app.web.app import create_app
from tests.fake_github import API, FakeGitHub


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    fake.org_roles = {"octo-org": {"alice": "admin", "bob": "member"}}
    with respx.mock(assert_all_called=False) as router:
        fake.mount(router)
        router.route(host="testserver").pass_through()
        yield fake


@pytest.fixture
def service(app_env: dict[str, str]) -> Service:
    env = {k.lower(): v for k, v in app_env.items()}
    return Service(
        Settings.load(
            **env,
            autopack_workers=0,
            github_api_url=API,
            github_client_id="Iv1.testclient",
            github_client_secret="client-secret-for-tests",
        )
    )


@pytest.fixture
def client(service: Service, github: FakeGitHub) -> Iterator[TestClient]:
    with TestClient(create_app(service), follow_redirects=False) as c:
        seed(service)
        yield c


def seed(service: Service) -> None:
    """A day of work: deliveries, a dead job with a secret in its error, a proposal, usage, limits."""
    assert service.inbox is not None
    now = time.time()

    def op(tx: Any) -> None:
        for i in range(6):
            tx.execute(
                "INSERT INTO deliveries (id, event, action, installation_id, repository, subject, status, "
                "received_at) VALUES (?, 'issues', 'opened', 4242, 'octo-org/widgets', ?, 'done', ?)",
                (f"d-{i}", f"octo-org/widgets#{i}", now - i * 3000),
            )
        tx.execute(
            "INSERT INTO jobs (flow, subject, delivery_id, args, status, attempts, max_attempts, run_at, "
            "created_at, finished_at, last_error) "
            "VALUES ('triage', 'octo-org/widgets#3', 'd-3', NULL, 'dead', 8, 8, ?, ?, ?, ?)",
            (
                now,
                now - 100,
                now - 50,
                "RequestFailed: token ghp_Zq4mWv9LtR2xHc7NpB3sKd8fGj1YhU6eTq0w refused",
            ),
        )
        tx.execute(
            "INSERT INTO proposals (repository, issue_number, status, pr_number, data, created_at, "
            "updated_at) VALUES ('octo-org/widgets', 7, 'ready', 100, ?, ?, ?)",
            (json.dumps({"gate_status": "waiting for: approval of `c0ffee0` by a writer"}), now, now),
        )
        from app.llm.ledger import week_start

        tx.execute(
            "INSERT INTO llm_usage (created_at, week, installation_id, repository, task, role, category, "
            "provider, requested_model, model, input_tokens, output_tokens, cost, outcome) VALUES (?, ?, "
            "4242, 'octo-org/widgets', 'triage', 'analyst', 'general', 'openai', 'gpt-6-luna', "
            "'gpt-6-luna', 1500, 300, 0.0021, 'ok')",
            (now, week_start(now).isoformat()),
        )
        tx.execute(
            "INSERT INTO github_rate_limits (installation_id, remaining, rate_limit, reset_at, seen_at) "
            "VALUES (4242, 4100, 5000, ?, ?)",
            (now + 1800, now),
        )

    service.inbox.db.run_sync(op)


def sign_in(client: TestClient, github: FakeGitHub, login: str, *, state: str | None = None) -> Any:
    started = client.get("/status")
    assert started.status_code == 303
    assert started.headers["location"] == "/status/login"
    authorize = client.get("/status/login")
    assert authorize.status_code == 303
    target = urlsplit(authorize.headers["location"])
    query = parse_qs(target.query)
    assert target.path == "/login/oauth/authorize"
    assert query["client_id"] == ["Iv1.testclient"]
    assert query["redirect_uri"] == ["http://testserver/status/callback"]
    github.oauth_codes["c0de"] = login
    return client.get("/status/callback", params={"code": "c0de", "state": state or query["state"][0]})


def test_the_orgs_owner_is_admitted_and_sees_the_page(client: TestClient, github: FakeGitHub) -> None:
    done = sign_in(client, github, "alice")
    assert done.status_code == 303
    assert done.headers["location"] == "/status"
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    page = client.get("/status")
    assert page.status_code == 200
    text = page.text
    assert "Autopack status" in text
    assert "<svg" in text  # the inline chart
    assert "octo-org/widgets#7" in text
    assert "waiting for: approval" in text
    assert "4,100 of 5,000" in text
    assert "openai" in text
    assert "1,800" in text
    assert "ghp_Zq4mWv9L" not in text  # the dead job's error is shown redacted
    assert "Retry" in text
    assert page.headers["cache-control"] == "no-store"


def test_another_user_is_refused(client: TestClient, github: FakeGitHub) -> None:
    refused = sign_in(client, github, "bob")  # a member, not an owner, of the owning organisation
    assert refused.status_code == 403
    assert "Only an owner of the organisation octo-org" in refused.text
    assert client.get("/status").status_code == 303  # still not signed in


def test_a_user_owned_app_admits_only_that_user(client: TestClient, github: FakeGitHub) -> None:
    github.owner = {"login": "carol", "type": "User"}
    assert sign_in(client, github, "alice").status_code == 403
    client.cookies.clear()
    assert sign_in(client, github, "carol").status_code == 303


def test_a_forged_state_is_refused(client: TestClient, github: FakeGitHub) -> None:
    refused = sign_in(client, github, "alice", state="forged-state")
    assert refused.status_code == 400
    assert github.oauth_tokens == {}  # the code was never exchanged


def test_a_tampered_session_cookie_is_refused(client: TestClient, github: FakeGitHub) -> None:
    sign_in(client, github, "alice")
    value = client.cookies.get("autopack_session")
    assert value is not None
    _login, rest = value.split("|", 1)
    client.cookies.clear()
    client.cookies.set("autopack_session", "mallory|" + rest, path="/status")
    assert client.get("/status").status_code == 303  # back to sign-in


def test_retry_requeues_exactly_that_job_and_needs_the_csrf_token(
    client: TestClient, service: Service, github: FakeGitHub
) -> None:
    sign_in(client, github, "alice")
    page = client.get("/status").text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    assert service.inbox is not None
    (dead,) = service.inbox.db.run_sync(lambda tx: tx.fetchall("SELECT id FROM jobs WHERE status = 'dead'"))
    forged = client.post(f"/status/retry/{dead['id']}", data={"csrf": "not-the-token"})
    assert forged.status_code == 403
    done = client.post(f"/status/retry/{dead['id']}", data={"csrf": csrf})
    assert done.status_code == 303
    rows = service.inbox.db.run_sync(lambda tx: tx.fetchall("SELECT id, status, attempts FROM jobs"))
    assert [(r["id"], r["status"]) for r in rows] == [(dead["id"], "queued")]


def test_sign_out_needs_the_csrf_token_and_ends_the_session(client: TestClient, github: FakeGitHub) -> None:
    sign_in(client, github, "alice")
    csrf = client.get("/status").text.split('name="csrf" value="')[1].split('"')[0]
    assert client.post("/status/logout", data={"csrf": "forged"}).status_code == 403
    assert client.get("/status").status_code == 200  # a forged sign-out changed nothing
    out = client.post("/status/logout", data={"csrf": csrf})
    assert out.status_code == 303
    assert client.get("/status").status_code == 303  # back to sign-in


def test_a_worker_serves_the_page_read_only(service: Service, github: FakeGitHub) -> None:
    """Workers (`receive_webhooks=False`) show the page but carry no retry: no button, no route."""
    with TestClient(create_app(service, receive_webhooks=False), follow_redirects=False) as worker:
        seed(service)
        assert sign_in(worker, github, "alice").status_code == 303
        page = worker.get("/status")
        assert page.status_code == 200
        assert "Dead jobs" in page.text
        assert 'name="csrf"' in page.text  # sign-out still needs its token
        assert "Retry" not in page.text
        assert worker.post("/status/retry/1", data={"csrf": "x"}).status_code in (404, 405)
        assert service.inbox is not None
        statuses = service.inbox.db.run_sync(lambda tx: tx.fetchall("SELECT status FROM jobs"))
        assert [r["status"] for r in statuses] == ["dead"]


def test_without_an_oauth_client_the_page_says_what_to_set(app_env: dict[str, str]) -> None:
    env = {k.lower(): v for k, v in app_env.items()}
    service = Service(Settings.load(**env, autopack_workers=0))
    with TestClient(create_app(service)) as plain:
        answer = plain.get("/status")
    assert answer.status_code == 503
    assert "GITHUB_CLIENT_ID" in answer.text


def test_autopack_status_prints_the_same_summary(app_env: dict[str, str], service: Service) -> None:
    with TestClient(create_app(service)):
        seed(service)
    text = CliRunner().invoke(main, ["status"], env=app_env)
    assert text.exit_code == 0, text.output
    assert "Dead jobs: 1" in text.output
    assert "octo-org/widgets#7 PR #100: ready — waiting for: approval" in text.output
    assert "ghp_Zq4mWv9L" not in text.output
    as_json = CliRunner().invoke(main, ["status", "--format", "json"], env=app_env)
    data = json.loads(as_json.output)
    assert sum(data["deliveries_by_hour"]) == 6
    assert data["dead_jobs"][0]["flow"] == "triage"
    assert data["rate_limits"][0]["remaining"] == 4100
    assert data["providers"][0]["tokens"] == 1800
