"""GitHub's side of the App manifest flow, on 127.0.0.1, for the browser test of the setup page.

It plays a GitHub Enterprise Server (web pages at `/`, REST API under `/api/v3`):
- `POST /settings/apps/new?state=…` (and the organisation form) takes the manifest the setup page
  posts, checks it the way GitHub does, and shows a confirmation page with a "Create" button;
- that button redirects the browser to the manifest's `redirect_url` with a one-time code;
- `POST /api/v3/app-manifests/{code}/conversions` turns the code into credentials, once;
- `GET /api/v3/app` answers only to a JWT signed by the App's key (the import path);
- `/apps/{slug}/installations/new` is the installation page the maintainer lands on.
"""

from __future__ import annotations

import html
import json
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.integration.fake_github import serve_in_thread
from tests.support import private_key_pem


@dataclass
class FakeGitHubWeb:
    pem: str = field(default_factory=private_key_pem)
    app_id: int = 9001
    slug: str = "autopack-test"
    manifests: list[dict[str, Any]] = field(default_factory=list)
    owners: list[str | None] = field(default_factory=list)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    conversions: int = 0
    base_url: str = ""

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/v3"

    def credentials(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.app_id,
            "slug": self.slug,
            "name": manifest["name"],
            "html_url": f"{self.base_url}/apps/{self.slug}",
            "client_id": "Iv1.fake",
            "client_secret": secrets.token_hex(20),
            "webhook_secret": secrets.token_hex(20),
            "pem": self.pem,
        }

    def app(self) -> Starlette:
        async def new_app(request: Request) -> Response:
            form = parse_qs((await request.body()).decode())
            try:
                manifest = json.loads(form["manifest"][0])
                assert isinstance(manifest["name"], str)
                assert manifest["hook_attributes"]["url"].startswith("http")
                assert manifest["redirect_url"].startswith("http")
                assert isinstance(manifest["default_permissions"], dict)
            except (KeyError, ValueError, AssertionError, TypeError) as exc:
                return HTMLResponse(f"<h1>Invalid manifest</h1><p>{html.escape(repr(exc))}</p>", 422)
            self.manifests.append(manifest)
            self.owners.append(request.path_params.get("org"))
            code = secrets.token_hex(10)
            self.codes[code] = manifest
            back = (
                manifest["redirect_url"]
                + "?"
                + urlencode({"code": code, "state": request.query_params.get("state", "")})
            )
            return HTMLResponse(
                f"<!doctype html><html><head><title>Create GitHub App</title></head><body>"
                f"<h1>Create GitHub App {html.escape(manifest['name'])}</h1>"
                f'<a id="create" href="{html.escape(back)}">Create GitHub App</a></body></html>'
            )

        async def convert(request: Request) -> Response:
            manifest = self.codes.pop(request.path_params["code"], None)
            if manifest is None:
                return JSONResponse({"message": "Not Found"}, 404)
            self.conversions += 1
            return JSONResponse(self.credentials(manifest), 201)

        async def get_app(request: Request) -> Response:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            public = serialization.load_pem_private_key(self.pem.encode(), None).public_key()
            try:
                claims = jwt.decode(token, public, algorithms=["RS256"])  # type: ignore[arg-type]
            except jwt.PyJWTError:
                return JSONResponse({"message": "A JSON web token could not be decoded"}, 401)
            if str(claims.get("iss")) != str(self.app_id):
                return JSONResponse({"message": "Integration not found"}, 404)
            return JSONResponse(
                {"id": self.app_id, "slug": self.slug, "html_url": f"{self.base_url}/apps/{self.slug}"}
            )

        async def install(request: Request) -> Response:
            slug = html.escape(request.path_params["slug"])
            return HTMLResponse(
                f"<!doctype html><html><head><title>Install {slug}</title></head>"
                f"<body><h1>Install {slug}</h1></body></html>"
            )

        return Starlette(
            routes=[
                Route("/settings/apps/new", new_app, methods=["POST"]),
                Route("/organizations/{org}/settings/apps/new", new_app, methods=["POST"]),
                Route("/api/v3/app-manifests/{code}/conversions", convert, methods=["POST"]),
                Route("/api/v3/app", get_app),
                Route("/apps/{slug}/installations/new", install),
            ]
        )

    def serve(self) -> str:
        self._server, self._thread, self.base_url = serve_in_thread(self.app())
        return self.base_url

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
