"""POST $WEBHOOK_PATH: verify, record, acknowledge — nothing else (DESIGN §3, §5.1, §6).

A plain ASGI application: the one route that takes bursts skips the router, middleware and
request objects the rest of the web app uses (about a tenth of its CPU per delivery).

Order matters: the size cap applies while the body streams in (413 without buffering an oversized
body); the HMAC-SHA256 signature is checked over the raw bytes before anything is parsed (401);
then the GitHub headers and JSON are checked (400). Only after the delivery and its jobs are
committed to the inbox does the sender get 202. The receiver never calls GitHub or an LLM.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable

import orjson
from starlette.types import Receive, Scope, Send

from app import metrics
from app.flows.registry import Registry
from app.inbox.db import DatabaseUnavailable
from app.inbox.models import NewDelivery
from app.inbox.store import Inbox
from app.logs import get_logger
from app.policy.subjects import installation_id, repository_name, subject_key

log = get_logger("autopack.receiver")

KEPT_HEADERS = ("user-agent", "content-type")
UNVERIFIED = "unverified"
MAX_HEADER_VALUE = 200


_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
# Events that may name a metric series; any other name (a verified sender can put anything in the
# header) shares one label, so the number of series stays bounded.
LABELLED_EVENTS = frozenset({"ping", "installation", "installation_repositories", "github_app_authorization"})


def signature_valid(secret: bytes, body: bytes, header: str | None) -> bool:
    """GitHub's `X-Hub-Signature-256: sha256=<hex>`; the legacy SHA-1 header is never accepted.
    A header of any other shape (non-ASCII included) is simply invalid: a 401, never an error."""
    found = _SIGNATURE.fullmatch((header or "").strip())
    if found is None:
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, found.group(1).lower())


Answer = tuple[int, dict[str, object]]


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name; the first of repeated ones, as starlette reads."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return headers


async def _read_capped(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class WebhookReceiver:
    def __init__(
        self,
        inbox: Inbox | None,
        registry: Registry,
        *,
        secret: str | None,
        max_body_bytes: int,
        max_attempts: int,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.inbox = inbox
        self.registry = registry
        self.secret = secret.encode() if secret is not None else None
        self.max_body_bytes = max_body_bytes
        self.max_attempts = max_attempts
        self.on_queued = on_queued
        self.labelled = registry.events() | LABELLED_EVENTS

    def _label(self, event: str) -> str:
        return event if event in self.labelled else "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        try:
            status, answer = await self._handle(_headers(scope), receive)
        except _Disconnected:
            return  # the sender went away before its body arrived: nothing to answer, nothing stored
        body = orjson.dumps(answer)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})
        metrics.RECEIVER_LATENCY.observe(time.perf_counter() - started)

    def _refuse(self, event: str, outcome: str, status: int, message: str) -> Answer:
        metrics.DELIVERIES.labels(event, outcome).inc()
        return status, {"error": message}

    async def _handle(self, headers: dict[str, str], receive: Receive) -> Answer:
        # Until the signature is verified, the event header is anyone's text: it must not become
        # a metric label (unbounded series), so refusals before that point count as "unverified".
        event = UNVERIFIED
        if self.inbox is None:
            return self._refuse(
                event,
                "rejected_setup",
                503,
                "Autopack is in setup mode and accepts no deliveries: open / to configure it",
            )
        try:
            body = await _read_capped(receive, headers, self.max_body_bytes)
        except _TooLarge:
            return self._refuse(event, "rejected_size", 413, "payload too large")
        if self.secret is not None and not signature_valid(
            self.secret, body, headers.get("x-hub-signature-256")
        ):
            return self._refuse(event, "rejected_signature", 401, "bad or missing X-Hub-Signature-256")
        event = headers.get("x-github-event") or ""
        delivery_id = headers.get("x-github-delivery")
        if not event or not delivery_id:
            return self._refuse(
                self._label(event),
                "rejected_headers",
                400,
                "missing X-GitHub-Event or X-GitHub-Delivery header",
            )
        if len(event) > MAX_HEADER_VALUE or len(delivery_id) > MAX_HEADER_VALUE:
            return self._refuse(
                UNVERIFIED, "rejected_headers", 400, "X-GitHub-Event or X-GitHub-Delivery too long"
            )
        label = self._label(event)
        if event == "ping":
            metrics.DELIVERIES.labels(label, "pong").inc()
            return 200, {"delivery": delivery_id, "status": "pong"}
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self._refuse(label, "rejected_json", 400, "body is not valid JSON")
        if not isinstance(payload, dict):
            return self._refuse(label, "rejected_json", 400, "body is not a JSON object")
        action = payload.get("action") if isinstance(payload.get("action"), str) else None
        flows = self.registry.flows_for(event, action, payload)
        delivery = NewDelivery(
            id=delivery_id,
            event=event,
            action=action,
            installation_id=installation_id(payload),
            repository=repository_name(payload),
            subject=subject_key(event, payload, delivery_id),
            headers={k: v for k, v in headers.items() if k.startswith("x-github-") or k in KEPT_HEADERS},
            payload=body,
            received_at=time.time(),
            body_sha256=hashlib.sha256(body).hexdigest(),
        )
        try:
            status = await self.inbox.record_delivery(delivery, flows, max_attempts=self.max_attempts)
        except DatabaseUnavailable as exc:
            log.error("delivery not recorded", delivery=delivery.id, github_event=label, error=str(exc))
            # 503 tells GitHub (and the operator redelivering) that nothing was stored.
            return self._refuse(label, "rejected_database", 503, "inbox unavailable, try again")
        metrics.DELIVERIES.labels(label, status).inc()
        if status == "replayed":
            # The same body under a new id: a captured delivery sent again. Nothing is stored; the
            # answer does not tell the sender more than a redelivery would get.
            log.warning("replayed body refused", delivery=delivery.id, github_event=label)
            return 202, {"delivery": delivery.id, "status": "duplicate"}
        if status == "queued" and self.on_queued is not None:
            self.on_queued()
        return 202, {"delivery": delivery.id, "status": status}
