"""The GitHub App manifest flow's pure parts: the manifest, GitHub's URLs, and the `.env` merge.

GitHub's "create an App from a manifest" flow (the one Probot uses) takes a JSON manifest posted
from the maintainer's browser, lets them confirm it on GitHub, and redirects back with a one-time
code. Everything here is data in, data out, so each rule is unit-tested without a server:

- the manifest is `app.yml` with the URLs of *this* server filled in (never the example URL);
- github.com or a GitHub Enterprise Server host is derived from `GITHUB_API_URL`;
- organisation names, App names and codes from the browser are checked before they reach a URL;
- `.env` is merged line by line, so the maintainer's other settings and comments survive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

# GitHub's own limits: logins are alphanumeric with single inner hyphens, at most 39 characters.
_ORG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
# Manifest codes are short opaque tokens; anything else never reaches a URL path.
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_ENV_KEY = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
# GitHub App names: at most 34 characters.
MAX_NAME = 34
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})  # noqa: S104 - a name, not a bind

MANIFEST_KEYS = ("name", "url", "description", "public", "default_events", "default_permissions")


class ManifestError(ValueError):
    """Input from the setup page that cannot become a manifest or a GitHub URL."""


@dataclass(frozen=True)
class ServerUrls:
    """Where GitHub must send webhooks, and where it must send the maintainer back."""

    webhook: str
    redirect: str

    @property
    def webhook_is_local(self) -> bool:
        return (urlsplit(self.webhook).hostname or "") in LOCAL_HOSTS


def server_urls(
    base_url: str, webhook_path: str, *, public_url: str | None, webhook_proxy_url: str | None
) -> ServerUrls:
    """`AUTOPACK_PUBLIC_URL` wins over the request's own host; `WEBHOOK_PROXY_URL` (a smee.io
    channel, as in Probot) replaces only the webhook URL, since the browser can reach localhost."""
    base = (public_url or base_url).rstrip("/")
    webhook = webhook_proxy_url or base + webhook_path
    return ServerUrls(webhook=webhook, redirect=base + "/setup/callback")


def github_web_url(api_url: str) -> str:
    """`https://api.github.com` → `https://github.com`; `https://HOST/api/v3` → `https://HOST`."""
    api = api_url.rstrip("/")
    parts = urlsplit(api)
    if parts.hostname == "api.github.com":
        return f"{parts.scheme}://github.com"
    return api.removesuffix("/api/v3")


def check_org(org: str) -> str:
    org = org.strip()
    if not _ORG.match(org):
        raise ManifestError(f"{org[:60]!r} is not a GitHub organisation name")
    return org


def check_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ManifestError("the App needs a name")
    if len(name) > MAX_NAME:
        raise ManifestError(f"GitHub App names have at most {MAX_NAME} characters")
    return name


def check_code(code: str) -> str:
    if not _CODE.match(code):
        raise ManifestError("GitHub's answer carried no valid code")
    return code


def new_app_url(web_url: str, state: str, org: str | None) -> str:
    """Where the browser posts the manifest (a personal App, or one owned by `org`)."""
    owner = f"/organizations/{quote(check_org(org))}" if org else ""
    return f"{web_url}{owner}/settings/apps/new?state={quote(state)}"


def install_url(html_url: str) -> str:
    """The App's installation page, from the `html_url` GitHub returns for it."""
    return html_url.rstrip("/") + "/installations/new"


def build_manifest(app_yml: Mapping[str, Any], urls: ServerUrls, name: str | None = None) -> dict[str, Any]:
    """`app.yml` as GitHub's manifest: its permissions and events exactly, this server's URLs."""
    for key in ("name", "default_events", "default_permissions"):
        if key not in app_yml:
            raise ManifestError(f"app.yml has no {key!r}")
    manifest = {key: app_yml[key] for key in MANIFEST_KEYS if key in app_yml}
    manifest["name"] = check_name(name if name else str(app_yml["name"]))
    manifest["public"] = bool(app_yml.get("public", False))
    manifest["hook_attributes"] = {"url": urls.webhook, "active": True}
    manifest["redirect_url"] = urls.redirect
    return manifest


def merge_env(text: str, updates: Mapping[str, str | None]) -> str:
    """`.env` with `updates` applied: a key's existing line is replaced in place (its first one;
    repeats are dropped), a `None` value removes the key, new keys are appended. Other lines,
    comments included, are kept as they were."""
    for key, value in updates.items():
        if value is not None and ("\n" in value or "\r" in value):
            raise ManifestError(f"{key}: a .env value cannot span lines")
    out: list[str] = []
    written: set[str] = set()
    for line in text.splitlines():
        match = _ENV_KEY.match(line)
        name = match.group(1) if match else None
        if name is None or name not in updates:
            out.append(line)
            continue
        if name not in written and updates[name] is not None:
            out.append(f"{name}={updates[name]}")
        written.add(name)
    added = [f"{k}={v}" for k, v in updates.items() if k not in written and v is not None]
    if added:
        if out and out[-1].strip():
            out.append("")
        out.append("# Written by Autopack's setup page")
        out.extend(added)
    return "\n".join(out) + "\n"
