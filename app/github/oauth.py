"""Sign in with GitHub for the status page: the code exchange and the questions asked of GitHub.

The App's own OAuth client (`GITHUB_CLIENT_ID`/`SECRET`). The user's token is used only here, to
ask who they are and whether they own the App (its owner, or an admin of the owning organisation),
and is then forgotten.
"""

from __future__ import annotations

from typing import Any

import httpx

from app.github.client import GitHubApp
from app.policy.app_manifest import github_web_url

TIMEOUT = 15.0


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}


def authorize_url(api_url: str) -> str:
    return f"{github_web_url(api_url)}/login/oauth/authorize"


async def user_of_code(
    api_url: str, client_id: str, client_secret: str, code: str, redirect_uri: str
) -> tuple[str, str]:
    """(login, user token) for the code GitHub sent back to the callback."""
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        exchanged = await client.post(
            f"{github_web_url(api_url)}/login/oauth/access_token",
            data={
                "client_id": client_id,
                "client_secret": client_secret,
                "code": code,
                "redirect_uri": redirect_uri,
            },
            headers={"Accept": "application/json"},
        )
        exchanged.raise_for_status()
        token = str(exchanged.json()["access_token"])
        user = await client.get(f"{api_url}/user", headers=_auth(token))
        user.raise_for_status()
        return str(user.json()["login"]), token


async def owns_app(github: GitHubApp, api_url: str, login: str, token: str) -> tuple[bool, str]:
    """Whether `login` owns the App: the owning user, or an admin of the owning organisation."""
    app = (await github.client.arequest("GET", "/app")).json()
    owner = app.get("owner") or {}
    owner_login, owner_type = str(owner.get("login") or ""), str(owner.get("type") or "")
    if owner_type == "User":
        if owner_login.lower() == login.lower():
            return True, "owner"
        return False, f"Only the App's owner ({owner_login}) may see this page."
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        membership = await client.get(f"{api_url}/user/memberships/orgs/{owner_login}", headers=_auth(token))
    data: dict[str, Any] = membership.json() if membership.status_code == 200 else {}
    if data.get("state") == "active" and data.get("role") == "admin":
        return True, "organisation owner"
    return (
        False,
        f"Only an owner of the organisation {owner_login}, which owns the App, may see this page.",
    )
