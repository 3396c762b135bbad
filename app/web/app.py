"""The web application: webhook receiver, health, readiness, metrics and `/`.

`create_app` only wires routes to a `Service` (see `app.service`), whose lifespan opens the
database and starts the in-process workers. A POST to the webhook path goes straight to the
receiver (`app.web.receiver`, a plain ASGI app); every other request is starlette's.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app import metrics
from app.service import Service
from app.settings import Mode
from app.status import gather, refresh_gauges
from app.web.pages import status_page
from app.web.receiver import WebhookReceiver
from app.web.setup import SetupRoutes
from app.web.status import StatusRoutes


def create_app(
    service: Service, *, receive_webhooks: bool = True, setup_directory: Path | None = None
) -> ASGIApp:
    """`setup_directory` is where the setup page writes `.env` and the key (default: the working
    directory, where the settings are read from)."""

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "mode": service.mode.value})

    async def readyz(_request: Request) -> Response:
        if service.mode is Mode.SETUP or service.inbox is None:
            return JSONResponse({"status": "setup", "detail": "GitHub App not configured"}, 503)
        try:
            await service.inbox.ping()
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "detail": f"database: {exc}"[:300]}, 503)
        return JSONResponse({"status": "ready"})

    async def metrics_endpoint(_request: Request) -> Response:
        if service.inbox is not None:
            with contextlib.suppress(Exception):
                stats = await service.inbox.stats()
                for status, count in stats.by_status.items():
                    metrics.QUEUE_DEPTH.labels(status).set(count)
                metrics.OLDEST_QUEUED_AGE.set(stats.oldest_due_age)
            with contextlib.suppress(Exception):  # budget shares and model shutdowns, for the alerts
                llm = service.llm
                summary = await gather(service.inbox, llm.routing if llm else None)
                refresh_gauges(summary, llm.routing if llm else None, llm.catalogue if llm else None)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    def make_receiver() -> WebhookReceiver:
        settings = service.settings
        return WebhookReceiver(
            service.inbox,
            service.registry,
            secret=(
                settings.webhook_secret.get_secret_value() if settings.webhook_secret is not None else None
            ),
            max_body_bytes=settings.autopack_max_body_bytes,
            max_attempts=settings.autopack_max_attempts,
            on_queued=service.wake_workers,
        )

    # The receiver is rebuilt once if the setup page configures the App in this process.
    current = {"receiver": make_receiver()}

    async def webhook(scope: Scope, receive: Receive, send: Send) -> None:
        await current["receiver"](scope, receive, send)

    setup = SetupRoutes(
        service,
        setup_directory or Path.cwd(),
        on_configured=lambda: current.update(receiver=make_receiver()),
    )

    async def index(request: Request) -> Response:
        if service.mode is Mode.SETUP:
            return setup.page(request)
        return HTMLResponse(status_page(service.settings.app_id, service.mode is Mode.INSECURE))

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/", index, methods=["GET"]),
        # The operator's page; a worker process serves it read-only (no retry).
        *StatusRoutes(service, read_only=not receive_webhooks).routes(),
    ]
    if receive_webhooks:
        # Setup belongs to the process that takes webhooks: it is the one the App points at.
        routes.extend(setup.routes())

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    web = Starlette(routes=routes, lifespan=lifespan)
    if not receive_webhooks:
        return web
    path = service.settings.webhook_path

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != path:
            await web(scope, receive, send)
        elif scope["method"] == "POST":
            await webhook(scope, receive, send)
        else:
            await PlainTextResponse("Method Not Allowed", 405, {"Allow": "POST"})(scope, receive, send)

    return app
