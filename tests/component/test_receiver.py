"""The webhook receiver as DESIGN §6 fixes it: status codes, what is stored, what is not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from app.service import Service
from app.settings import Settings
from app.web.app import create_app
from tests.support import SECRET, comment_payload, headers, payload

PATH = "/api/github/webhooks"


@pytest.fixture
def service(app_env: dict[str, str]) -> Service:
    env = {k.lower(): v for k, v in app_env.items()}
    return Service(Settings.load(**env, autopack_workers=0, autopack_max_body_bytes=64 * 1024))


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service)) as c:
        yield c


def stored(service: Service) -> list[dict[str, Any]]:
    assert service.inbox is not None
    return service.inbox.db.run_sync(lambda tx: tx.fetchall("SELECT * FROM deliveries"))


def jobs(service: Service) -> list[dict[str, Any]]:
    assert service.inbox is not None
    return service.inbox.db.run_sync(lambda tx: tx.fetchall("SELECT * FROM jobs"))


def post(client: TestClient, event: str, body: bytes, delivery: str = "d-1", **kw: Any) -> Any:
    return client.post(PATH, content=body, headers={**headers(event, body, delivery), **kw})


def test_signed_real_payload_is_queued_with_its_headers(client: TestClient, service: Service) -> None:
    body = json.dumps(comment_payload("/autopack help")).encode()
    response = post(client, "issue_comment", body, "d-42")
    assert response.status_code == 202
    assert response.json() == {"delivery": "d-42", "status": "queued"}
    (row,) = stored(service)
    assert bytes(row["payload"]) == body  # the raw bytes, exactly as signed
    assert (row["event"], row["action"], row["subject"]) == ("issue_comment", "created", "octo-org/widgets#7")
    kept = json.loads(row["headers"])
    assert kept["x-github-delivery"] == "d-42"
    assert not any(k.startswith("x-hub-signature") for k in kept)
    (job,) = jobs(service)
    assert (job["flow"], job["status"], job["delivery_id"]) == ("command", "queued", "d-42")


def test_duplicate_delivery_changes_nothing(client: TestClient, service: Service) -> None:
    body = json.dumps(comment_payload("/autopack help")).encode()
    assert post(client, "issue_comment", body, "d-1").json()["status"] == "queued"
    again = post(client, "issue_comment", body, "d-1")
    assert again.status_code == 202
    assert again.json() == {"delivery": "d-1", "status": "duplicate"}
    assert len(stored(service)) == 1
    assert len(jobs(service)) == 1


def test_unhandled_event_is_recorded_and_ignored(client: TestClient, service: Service) -> None:
    body = json.dumps(payload("check_run", "completed.payload.json")).encode()
    response = post(client, "check_run", body, "d-2")
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    (row,) = stored(service)
    assert row["status"] == "ignored"
    assert jobs(service) == []


def test_comment_without_command_is_ignored(client: TestClient, service: Service) -> None:
    body = json.dumps(comment_payload("Looks good to me")).encode()
    assert post(client, "issue_comment", body).json()["status"] == "ignored"
    assert jobs(service) == []


def test_bot_comment_is_ignored(client: TestClient, service: Service) -> None:
    body = json.dumps(comment_payload("/autopack retry", login="autopack[bot]", user_type="Bot")).encode()
    assert post(client, "issue_comment", body).json()["status"] == "ignored"
    assert jobs(service) == []


def test_edited_comment_never_runs_a_command(client: TestClient, service: Service) -> None:
    body = json.dumps(comment_payload("/autopack retry", action="edited")).encode()
    assert post(client, "issue_comment", body).json()["status"] == "ignored"
    assert jobs(service) == []


@pytest.mark.parametrize(
    "signature",
    [
        None,  # missing
        "sha256=" + "0" * 64,  # wrong
        "sha256=zz",  # not hex
        "sha256=",
        "garbage",
    ],
)
def test_bad_or_missing_signature_is_refused_and_nothing_stored(
    client: TestClient, service: Service, signature: str | None
) -> None:
    body = json.dumps(comment_payload("/autopack help")).encode()
    h = headers("issue_comment", body, "d-3", secret=None)
    if signature is not None:
        h["X-Hub-Signature-256"] = signature
    response = client.post(PATH, content=body, headers=h)
    assert response.status_code == 401
    assert stored(service) == []


def test_signature_with_another_secret_is_refused(client: TestClient, service: Service) -> None:
    body = json.dumps(comment_payload("/autopack help")).encode()
    response = client.post(PATH, content=body, headers=headers("issue_comment", body, "d", secret="other"))
    assert response.status_code == 401
    assert stored(service) == []


def test_sha1_only_signature_is_refused(client: TestClient, service: Service) -> None:
    import hashlib
    import hmac

    body = json.dumps(comment_payload("/autopack help")).encode()
    h = headers("issue_comment", body, "d-4", secret=None)
    h["X-Hub-Signature"] = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert client.post(PATH, content=body, headers=h).status_code == 401
    assert stored(service) == []


def test_tampered_body_is_refused(client: TestClient, service: Service) -> None:
    body = json.dumps(comment_payload("/autopack help")).encode()
    h = headers("issue_comment", body, "d-5")
    assert client.post(PATH, content=body.replace(b"help", b"retry"), headers=h).status_code == 401
    assert stored(service) == []


@pytest.mark.parametrize("missing", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_missing_github_header_is_400(client: TestClient, service: Service, missing: str) -> None:
    body = json.dumps(comment_payload("/autopack help")).encode()
    h = headers("issue_comment", body, "d-6")
    del h[missing]
    assert client.post(PATH, content=body, headers=h).status_code == 400
    assert stored(service) == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b""])
def test_malformed_body_is_400(client: TestClient, service: Service, body: bytes) -> None:
    assert post(client, "issues", body).status_code == 400
    assert stored(service) == []


def test_oversized_body_is_413_by_declared_length(client: TestClient, service: Service) -> None:
    body = b'{"pad": "' + b"x" * (65 * 1024) + b'"}'
    assert post(client, "issues", body).status_code == 413
    assert stored(service) == []


def test_oversized_body_is_413_while_streaming(client: TestClient, service: Service) -> None:
    chunks = [b'{"pad": "'] + [b"x" * 8192] * 10 + [b'"}']  # chunked: no Content-Length to trust

    def stream() -> Iterator[bytes]:
        yield from chunks

    h = headers("issues", b"".join(chunks), "d-7")
    response = client.post(PATH, content=stream(), headers=h)
    assert response.status_code == 413
    assert stored(service) == []


def test_ping_is_200_and_not_queued(client: TestClient, service: Service) -> None:
    body = json.dumps(payload("ping")).encode()
    response = post(client, "ping", body, "d-ping")
    assert response.status_code == 200
    assert jobs(service) == []


def test_health_ready_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").status_code == 200
    body = json.dumps(comment_payload("/autopack help")).encode()
    post(client, "issue_comment", body, "d-m")
    post(client, "issue_comment", body, "d-m")
    text = client.get("/metrics").text
    assert 'autopack_deliveries_total{event="issue_comment",outcome="queued"}' in text
    assert 'autopack_deliveries_total{event="issue_comment",outcome="duplicate"}' in text
    assert 'autopack_queue_depth{status="queued"} 1.0' in text
    assert "autopack_receiver_latency_seconds_bucket" in text
    assert "autopack_oldest_queued_job_age_seconds" in text


def test_readyz_fails_when_database_is_gone(client: TestClient, service: Service) -> None:
    assert service.inbox is not None
    service.inbox.db.close()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "database" in response.json()["detail"]


def test_unverified_mode_accepts_unsigned(app_env: dict[str, str]) -> None:
    env = {k.lower(): v for k, v in app_env.items() if k != "WEBHOOK_SECRET"}
    service = Service(Settings.load(**env, autopack_workers=0, autopack_insecure_no_signature=True))
    with TestClient(create_app(service)) as client:
        body = json.dumps(comment_payload("/autopack help")).encode()
        response = client.post(PATH, content=body, headers=headers("issue_comment", body, "d-8", secret=None))
        assert response.status_code == 202
        assert "NOT verified" in client.get("/").text


def test_setup_mode_refuses_deliveries_and_explains() -> None:
    service = Service(Settings.load())
    with TestClient(create_app(service)) as client:
        body = json.dumps(comment_payload("/autopack help")).encode()
        assert post(client, "issue_comment", body).status_code == 503
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        page = client.get("/").text
        for name in ("APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET", "app.yml", "/api/github/webhooks"):
            assert name in page


def test_unverified_event_names_never_become_metric_labels(client: TestClient) -> None:
    from prometheus_client import REGISTRY

    labels = {"event": "unverified", "outcome": "rejected_signature"}
    before = REGISTRY.get_sample_value("autopack_deliveries_total", labels) or 0.0
    body = b"{}"
    for n in range(3):
        h = headers(f"attacker-{n}", body, f"d-{n}", secret="wrong")
        assert client.post(PATH, content=body, headers=h).status_code == 401
    text = client.get("/metrics").text
    assert "attacker-" not in text
    assert REGISTRY.get_sample_value("autopack_deliveries_total", labels) == before + 3


def test_overlong_delivery_id_is_refused(client: TestClient, service: Service) -> None:
    body = json.dumps(comment_payload("/autopack help")).encode()
    assert post(client, "issue_comment", body, "x" * 201).status_code == 400
    assert stored(service) == []


# ---- issue 17: replays, event labels, malformed signatures ------------------------------------


def test_a_captured_body_replayed_under_a_new_delivery_id_is_refused(
    client: TestClient, service: Service
) -> None:
    """A body captured from a public webhook-proxy channel (a writer's `/autopack reject`, say) and
    sent again under a fresh delivery id must not run a second time."""
    from prometheus_client import REGISTRY

    body = json.dumps(comment_payload("/autopack reject not needed", login="maintainer")).encode()
    assert post(client, "issue_comment", body, "d-original").json()["status"] == "queued"
    before = REGISTRY.get_sample_value(
        "autopack_deliveries_total", {"event": "issue_comment", "outcome": "replayed"}
    )
    replay = post(client, "issue_comment", body, "d-replay")
    assert replay.status_code == 202
    assert replay.json() == {"delivery": "d-replay", "status": "duplicate"}
    assert [r["id"] for r in stored(service)] == ["d-original"]  # nothing stored
    assert len(jobs(service)) == 1  # nothing queued
    after = REGISTRY.get_sample_value(
        "autopack_deliveries_total", {"event": "issue_comment", "outcome": "replayed"}
    )
    assert (after or 0) == (before or 0) + 1
    # Positive control: a different body (a new comment) is accepted as usual.
    other = json.dumps(comment_payload("/autopack reject not needed", login="maintainer", comment_id=9002))
    assert post(client, "issue_comment", other.encode(), "d-new").json()["status"] == "queued"


def test_the_digest_goes_with_the_payload_after_retention(client: TestClient, service: Service) -> None:
    import asyncio

    body = json.dumps(comment_payload("/autopack help")).encode()
    post(client, "issue_comment", body, "d-old")
    assert service.inbox is not None
    service.inbox.db.run_sync(lambda tx: tx.execute("UPDATE jobs SET status = 'done'"))
    service.inbox.db.run_sync(lambda tx: tx.execute("UPDATE deliveries SET received_at = 0"))
    assert asyncio.run(service.inbox.prune_payloads(60)) == 1
    (row,) = stored(service)
    assert row["body_sha256"] is None
    assert row["payload"] is None


def test_a_verified_unknown_event_name_shares_one_metric_label(client: TestClient, service: Service) -> None:
    body = json.dumps({"zen": "x", "hook_id": 1}).encode()
    assert post(client, "made_up_event_9f3c", body, "d-odd").status_code == 202
    metrics = client.get("/metrics").text
    assert "made_up_event_9f3c" not in metrics
    assert 'autopack_deliveries_total{event="other",outcome="ignored"}' in metrics


@pytest.mark.parametrize(
    "header",
    [
        "sha256=" + "é" * 64,  # non-ASCII: compare_digest used to raise (a 500)
        "sha256=" + "g" * 64,
        "sha256=" + "a" * 63,
        "sha256=" + "a" * 64 + "00",
        "sha256= ",
        "SHA256=" + "a" * 64,
        "sha256=\u0660" * 10,
    ],
)
def test_any_malformed_signature_header_is_a_401(client: TestClient, service: Service, header: str) -> None:
    body = json.dumps(comment_payload("/autopack help")).encode()
    response = client.post(
        PATH,
        content=body,
        headers=[
            (b"x-github-event", b"issue_comment"),
            (b"x-github-delivery", b"d-sig"),
            (b"content-type", b"application/json"),
            (b"x-hub-signature-256", header.encode("utf-8")),  # raw bytes, as a client may send
        ],
    )
    assert response.status_code == 401
    assert stored(service) == []


def test_other_methods_on_the_webhook_path_are_405_and_store_nothing(
    client: TestClient, service: Service
) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = client.request(method, PATH)
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
    assert client.get("/no-such-page").status_code == 404
    assert stored(service) == []


async def test_a_sender_gone_before_its_body_arrives_gets_no_answer_and_nothing_is_stored(
    service: Service,
) -> None:
    """Straight through the ASGI interface, as uvicorn calls it: the body never comes."""
    from app.web.receiver import WebhookReceiver

    assert service.inbox is not None
    await service.inbox.prepare()
    body = json.dumps(comment_payload("/autopack help")).encode()
    receiver = WebhookReceiver(
        service.inbox, service.registry, secret=SECRET, max_body_bytes=64 * 1024, max_attempts=3
    )
    scope = {
        "type": "http",
        "method": "POST",
        "path": PATH,
        "headers": [
            (k.lower().encode(), v.encode()) for k, v in headers("issue_comment", body, "d-9").items()
        ],
    }
    messages = iter(
        [{"type": "http.request", "body": body[:10], "more_body": True}, {"type": "http.disconnect"}]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await receiver(scope, receive, send)
    assert sent == []
    assert await service.inbox.db.run(lambda tx: tx.fetchall("SELECT id FROM deliveries")) == []
    service.inbox.close()
