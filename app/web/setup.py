"""First-run setup routes (setup mode only): `GET /`, `GET /setup/callback`, `POST /setup/import`.

GitHub's manifest flow, as Probot runs it: `/` renders a form that posts `app.yml` (with this
server's URLs) to GitHub's "new App" page; GitHub sends the browser back to `/setup/callback` with
a one-time code, which `flows.setup` exchanges for the App's credentials and writes to `.env`.
The running service then leaves setup mode in place (`Service.leave_setup`).

Every form and callback must carry a state value this process issued, unexpired and unused; once
the App is configured, the setup routes answer 404. Nothing here logs a credential.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import yaml
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from app.flows import setup as setup_flow
from app.github.app_setup import SetupFailed
from app.logs import get_logger, redactor
from app.policy.app_manifest import (
    ManifestError,
    build_manifest,
    check_code,
    check_org,
    github_web_url,
    new_app_url,
    server_urls,
)
from app.service import Service
from app.settings import Mode
from app.web.pages import SetupView, setup_done_page, setup_error_page, setup_page

log = get_logger("autopack.setup")

STATE_TTL_SECONDS = 3600.0  # GitHub's manifest codes also expire after an hour
MAX_STATES = 256
MAX_FORM_BYTES = 64 * 1024


class OneTimeStates:
    """Random values this process handed out, each accepted once within its lifetime."""

    def __init__(self, ttl: float = STATE_TTL_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl
        self._clock = clock
        self._issued: dict[str, float] = {}

    def issue(self) -> str:
        now = self._clock()
        self._issued = {s: t for s, t in self._issued.items() if now - t < self._ttl}
        while len(self._issued) >= MAX_STATES:  # oldest first: a page reload storm cannot grow this
            self._issued.pop(next(iter(self._issued)))
        state = secrets.token_urlsafe(32)
        self._issued[state] = now
        return state

    def consume(self, state: str) -> bool:
        issued = self._issued.pop(state, None)
        return issued is not None and self._clock() - issued < self._ttl


@cache
def app_yml() -> dict[str, Any]:
    """The App manifest: packaged beside the code in a wheel, at the repository root otherwise."""
    packaged = resources.files("app").joinpath("app.yml")
    path = Path(str(packaged)) if packaged.is_file() else Path(__file__).resolve().parents[2] / "app.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ManifestError(f"{path} is not a mapping")
    return data


class SetupRoutes:
    def __init__(self, service: Service, directory: Path, on_configured: Callable[[], None]) -> None:
        self.service = service
        self.directory = directory
        self.on_configured = on_configured
        self.states = OneTimeStates()
        self._lock = asyncio.Lock()

    def routes(self) -> list[Route]:
        return [
            Route("/setup/callback", self.callback, methods=["GET"]),
            Route("/setup/import", self.import_app, methods=["POST"]),
        ]

    @property
    def active(self) -> bool:
        return self.service.mode is Mode.SETUP

    def page(self, request: Request, error: str | None = None, status: int = 200) -> Response:
        settings = self.service.settings
        urls = server_urls(
            str(request.base_url),
            settings.webhook_path,
            public_url=settings.autopack_public_url,
            webhook_proxy_url=settings.webhook_proxy_url,
        )
        org = request.query_params.get("org", "").strip() or None
        name = request.query_params.get("name", "").strip() or None
        try:
            if org:
                check_org(org)
            manifest = build_manifest(app_yml(), urls, name)
        except ManifestError as exc:
            error, status, org = str(exc), 400, None
            manifest = build_manifest(app_yml(), urls)
        state = self.states.issue()
        view = SetupView(
            settings=settings,
            state=state,
            new_app_url=new_app_url(github_web_url(settings.github_api_url), state, org),
            manifest=manifest,
            webhook_is_local=urls.webhook_is_local,
            org=org,
            error=error,
        )
        return HTMLResponse(setup_page(view), status, headers=_NO_STORE)

    async def callback(self, request: Request) -> Response:
        if not self.active:
            return _gone()
        if not self.states.consume(request.query_params.get("state", "")):
            return _error(
                "this setup link is not valid: it was already used, expired, or not issued "
                "by this server (a restart forgets them). Start again from the setup page.",
                400,
            )
        try:
            code = check_code(request.query_params.get("code", ""))
        except ManifestError as exc:
            return _error(str(exc), 400)
        return await self._finish(
            lambda: setup_flow.from_manifest_code(
                self.service.settings, self.directory, code, self.service.settings.carried_over()
            )
        )

    async def import_app(self, request: Request) -> Response:
        if not self.active:
            return _gone()
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return _error("the form is too large", 413)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if not self.states.consume(form.get("state", "")):
            return self.page(request, "The form expired or was already sent; enter the App again.", 400)
        app_id_text = form.get("app_id", "").strip()
        if not app_id_text.isdigit() or int(app_id_text) <= 0:
            return self.page(request, "App ID must be the App's number (App settings → About).", 400)
        return await self._finish(
            lambda: setup_flow.from_import(
                self.service.settings,
                self.directory,
                app_id=int(app_id_text),
                pem=form.get("private_key", ""),
                webhook_secret=form.get("webhook_secret", ""),
                overrides=self.service.settings.carried_over(),
            ),
            request=request,
        )

    async def _finish(self, run: Callable[[], Any], request: Request | None = None) -> Response:
        async with self._lock:  # one completion at a time; the second finds setup already done
            if not self.active:
                return _gone()
            try:
                done: setup_flow.SetupDone = await run()
            except SetupFailed as exc:
                log.warning("setup failed", reason=str(exc))
                if request is not None:
                    return self.page(request, str(exc), 400)
                return _error(str(exc), 502)
            try:
                await self.service.leave_setup(done.settings)
            except Exception as exc:  # e.g. PostgreSQL not migrated: the files are written
                reason = redactor.text(str(exc))
                log.warning("configured, but could not start", error=reason)
                return _error(
                    f"The App {done.slug} is configured and its settings are in "
                    f"{self.directory / setup_flow.ENV_FILE}, but Autopack could not start with them: "
                    f"{reason}. Fix that (for PostgreSQL, run `autopack migrate`) and restart Autopack; "
                    f"then install the App from {done.install_url}.",
                    500,
                )
            self.on_configured()
            log.info("left setup mode", app_id=done.settings.app_id)
        # To the App's installation page; the body is for a client that does not follow redirects.
        return HTMLResponse(
            setup_done_page(done.slug, done.install_url),
            303,
            headers={"location": done.install_url, **_NO_STORE},
        )


_NO_STORE = {"cache-control": "no-store", "referrer-policy": "no-referrer"}


def _error(message: str, status: int) -> Response:
    return HTMLResponse(setup_error_page(message), status, headers=_NO_STORE)


def _gone() -> Response:
    return _error("Autopack is already configured; the setup routes are closed.", 404)
