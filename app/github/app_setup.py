"""The two GitHub calls of first-run setup, through githubkit like every other call.

- `exchange_manifest_code`: `POST /app-manifests/{code}/conversions` turns the one-time code of
  GitHub's manifest flow into the new App's credentials (no authentication: the code is the proof).
- `fetch_app`: `GET /app` with a JWT signed by an imported key proves that the App id and the key
  belong together before anything is written.

Failures become `SetupFailed` with a sentence a maintainer can act on; no secret is ever part of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from githubkit import AppAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import GitHubException, RequestFailed

from app.github.client import USER_AGENT


class SetupFailed(Exception):
    """GitHub refused or could not be reached; the message is safe to show and to log."""


@dataclass(frozen=True)
class AppInfo:
    """The App as `GET /app` describes it: what setup writes beside the key it was proven with."""

    slug: str
    html_url: str  # "" when GitHub gave none: setup refuses that
    client_id: str | None = None


@dataclass(frozen=True)
class AppCredentials:
    """What Autopack needs to run as the App. `repr` hides every secret."""

    app_id: int
    slug: str
    html_url: str
    pem: str
    webhook_secret: str
    client_id: str | None = None
    client_secret: str | None = None

    def __repr__(self) -> str:
        return f"AppCredentials(app_id={self.app_id}, slug={self.slug!r}, secrets=hidden)"


def _options(api_url: str, timeout: float) -> dict[str, Any]:
    # A private cache: githubkit's default one is process-wide and keeps an App's JWT by App id,
    # so a JWT signed with a wrong key would be reused when the maintainer corrects the key.
    return {
        "cache_strategy": MemCacheStrategy(),
        "base_url": api_url.rstrip("/") + "/",
        "timeout": httpx.Timeout(timeout, connect=min(10.0, timeout)),
        "user_agent": USER_AGENT,
        "auto_retry": False,
        "http_cache": False,
    }


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise SetupFailed(f"GitHub's answer has no {key!r}")
    return value


async def _call(
    client: GitHub[Any], method: str, path: str, api_url: str, *, what: str, refused: dict[int, str]
) -> dict[str, Any]:
    """One request; a status in `refused` becomes its sentence, any other failure a plain one."""
    try:
        response = await client.arequest(method, path)
    except RequestFailed as exc:
        status = exc.response.status_code
        raise SetupFailed(
            refused.get(status, "GitHub answered {status} to " + what).format(status=status)
        ) from None
    except (GitHubException, httpx.HTTPError) as exc:
        raise SetupFailed(f"could not reach GitHub at {api_url}: {type(exc).__name__}") from None
    data = response.json()
    if not isinstance(data, dict):
        raise SetupFailed(f"GitHub's answer to {what} is not an object")
    return data


async def exchange_manifest_code(api_url: str, code: str, *, request_timeout: float = 30.0) -> AppCredentials:
    expired = (
        "GitHub did not accept the code ({status}): it is used once and expires after an hour. "
        "Start again from the setup page."
    )
    data = await _call(
        GitHub(**_options(api_url, request_timeout)),
        "POST",
        f"/app-manifests/{code}/conversions",
        api_url,
        what="the manifest conversion",
        refused={404: expired, 422: expired},
    )
    if not isinstance(data.get("id"), int):
        raise SetupFailed("GitHub's answer to the manifest conversion is not an App")
    return AppCredentials(
        app_id=data["id"],
        slug=_str(data, "slug"),
        html_url=_str(data, "html_url"),
        pem=_str(data, "pem"),
        webhook_secret=_str(data, "webhook_secret"),
        client_id=data.get("client_id") or None,
        client_secret=data.get("client_secret") or None,
    )


async def fetch_app(api_url: str, app_id: int, pem: str, *, request_timeout: float = 30.0) -> AppInfo:
    """The App as GitHub knows it (`slug`, `html_url`, …), authenticated as the App."""
    refused = (
        f"GitHub refused the key for App {app_id} ({{status}}): check the App id and that the private "
        "key was generated for this App and not deleted since"
    )
    data = await _call(
        GitHub(AppAuthStrategy(app_id, pem), **_options(api_url, request_timeout)),
        "GET",
        "/app",
        api_url,
        what="GET /app",
        refused={401: refused, 403: refused, 404: refused},
    )
    if data.get("id") != app_id:
        raise SetupFailed(f"GitHub's GET /app did not describe App {app_id}")
    return AppInfo(
        slug=str(data.get("slug") or f"app-{app_id}"),
        html_url=str(data.get("html_url") or ""),
        client_id=str(data.get("client_id") or "") or None,
    )
