"""The HTML a person sees: the first-run setup page, its result pages, and a short status page.

Plain server-rendered HTML with no script: the manifest button is an ordinary form that posts to
GitHub, so the page works in any browser and its output is easy to test. Every value that came
from outside (the request's host, an organisation name, an error) is escaped.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

from app.settings import Settings

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5;color:#1f2328}code,pre{background:#f6f8fa;border-radius:4px;padding:.1rem .3rem}"
    "pre{padding:.8rem;overflow:auto}li{margin:.3rem 0}label{display:block;margin:.6rem 0 .2rem}"
    "input[type=text],textarea{width:100%;box-sizing:border-box;font-family:ui-monospace,monospace}"
    "button{font-size:1rem;padding:.5rem 1rem;margin-top:.8rem;cursor:pointer}"
    ".warn{background:#fff8c5;padding:.6rem .8rem;border-radius:6px}"
    ".error{background:#ffebe9;padding:.6rem .8rem;border-radius:6px}"
)

e = html.escape


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>"
    )


def missing_settings(settings: Settings) -> list[tuple[str, str]]:
    missing = []
    if settings.app_id is None:
        missing.append(("APP_ID", "the App's numeric id (App settings → General → About)"))
    if settings.private_key is None and settings.private_key_path is None:
        missing.append(
            (
                "PRIVATE_KEY or PRIVATE_KEY_PATH",
                "a private key generated on the App's settings page",
            )
        )
    if settings.webhook_secret is None:
        missing.append(("WEBHOOK_SECRET", "the secret you enter as the App's webhook secret"))
    return missing


@dataclass(frozen=True)
class SetupView:
    """Everything the setup page shows, computed by the route."""

    settings: Settings
    state: str
    new_app_url: str
    manifest: dict[str, Any]
    webhook_is_local: bool
    org: str | None
    error: str | None = None


def setup_page(view: SetupView) -> str:
    rows = "".join(
        f"<li><code>{e(name)}</code>: {e(why)}</li>" for name, why in missing_settings(view.settings)
    )
    manifest = view.manifest
    owner = f"the organisation <strong>{e(view.org)}</strong>" if view.org else "your account"
    error = f'<p class="error" id="error">{e(view.error)}</p>' if view.error else ""
    local = (
        '<p class="warn" id="local-warning">The webhook URL points at this machine, which GitHub '
        "cannot reach. Set <code>AUTOPACK_PUBLIC_URL</code> to the address GitHub should use, or "
        '<code>WEBHOOK_PROXY_URL</code> to a <a href="https://smee.io/new">smee.io</a> channel '
        "for local development, then reload this page. (You can also fix the URL later in the "
        "App's settings.)</p>"
        if view.webhook_is_local
        else ""
    )
    permissions = "".join(
        f"<li><code>{e(str(k))}</code>: {e(str(v))}</li>"
        for k, v in manifest.get("default_permissions", {}).items()
    )
    events = ", ".join(f"<code>{e(str(ev))}</code>" for ev in manifest.get("default_events", []))
    return _page(
        "Autopack setup",
        f"""<h1>Autopack is in setup mode</h1>
{error}
<p>It accepts no webhook deliveries until it knows its GitHub App. These settings are missing:</p>
<ul id="missing">{rows}</ul>

<h2>Create the GitHub App</h2>
<p>GitHub will show you the App <strong>{e(str(manifest["name"]))}</strong>, owned by {owner},
with the permissions and events of <code>app.yml</code>. When you confirm, GitHub sends you back
here; Autopack writes its credentials to <code>.env</code> and a private-key file beside it, starts
taking deliveries, and takes you to the App's installation page.</p>
<ul>
<li>Webhook URL: <code id="webhook-url">{e(manifest["hook_attributes"]["url"])}</code></li>
<li>Returns to: <code id="redirect-url">{e(manifest["redirect_url"])}</code></li>
<li>Events: {events}</li>
</ul>
<details><summary>Permissions</summary><ul>{permissions}</ul></details>
{local}
<form id="create-app" method="post" action="{e(view.new_app_url)}">
<input type="hidden" name="manifest" value="{e(json.dumps(manifest))}">
<button type="submit">Create the GitHub App</button>
</form>

<form id="owner" method="get" action="/">
<label for="org">Create it under an organisation instead (optional)</label>
<input type="text" id="org" name="org" value="{e(view.org or "")}" placeholder="my-org">
<label for="name">App name (GitHub App names are unique across GitHub)</label>
<input type="text" id="name" name="name" value="{e(str(manifest["name"]))}" maxlength="34">
<button type="submit">Update</button>
</form>

<h2>Or import an App you created by hand</h2>
<p>Create it with the permissions and events of <code>app.yml</code> and the webhook URL above,
then enter its id, a private key generated on its settings page, and its webhook secret. Autopack
checks the id and key with GitHub before it writes anything.</p>
<form id="import-app" method="post" action="/setup/import">
<input type="hidden" name="state" value="{e(view.state)}">
<label for="app_id">App ID</label>
<input type="text" id="app_id" name="app_id" inputmode="numeric" required>
<label for="private_key">Private key (the whole <code>.pem</code> file)</label>
<textarea id="private_key" name="private_key" rows="6" required
 placeholder="-----BEGIN RSA PRIVATE KEY-----"></textarea>
<label for="webhook_secret">Webhook secret</label>
<input type="text" id="webhook_secret" name="webhook_secret" autocomplete="off" required>
<button type="submit">Import the App</button>
</form>
<p>Prefer to configure by hand? Set <code>APP_ID</code>, <code>PRIVATE_KEY_PATH</code> and
<code>WEBHOOK_SECRET</code> in the environment or <code>.env</code> and restart.</p>""",
    )


def setup_error_page(message: str) -> str:
    return _page(
        "Autopack setup failed",
        f'<h1>Setup did not complete</h1><p class="error" id="error">{e(message)}</p>'
        '<p><a href="/">Back to the setup page</a></p>',
    )


def setup_done_page(slug: str, install_url: str) -> str:
    """Shown only when the browser does not follow the redirect to the installation page."""
    return _page(
        "Autopack is configured",
        f"<h1>Autopack is configured as {e(slug)}</h1>"
        f'<p>Next, <a id="install" href="{e(install_url)}">install the App</a> on your repositories.</p>',
    )


def status_page(app_id: int | None, insecure: bool) -> str:
    warning = (
        "<p><strong>Webhook signatures are NOT verified</strong> "
        "(AUTOPACK_INSECURE_NO_SIGNATURE). Never run like this on a network.</p>"
        if insecure
        else ""
    )
    return _page(
        "Autopack",
        f"<h1>Autopack is running</h1>"
        f'<p>GitHub App {app_id}. Health: <a href="/healthz">/healthz</a>, '
        f'<a href="/readyz">/readyz</a>, <a href="/metrics">/metrics</a>.</p>{warning}',
    )
