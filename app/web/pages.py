"""The HTML a person sees at `/`: the first-run setup page, or a short status page.

The setup page says exactly which settings are missing and how to create the GitHub App from
`app.yml`. (The automated manifest flow comes with the onboarding work.)
"""

from __future__ import annotations

import html

from app.settings import Settings

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5;color:#1f2328}code,pre{background:#f6f8fa;border-radius:4px;padding:.1rem .3rem}"
    "pre{padding:.8rem;overflow:auto}li{margin:.3rem 0}"
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


def setup_page(settings: Settings, base_url: str) -> str:
    rows = "".join(
        f"<li><code>{html.escape(name)}</code>: {html.escape(why)}</li>"
        for name, why in missing_settings(settings)
    )
    webhook = html.escape(base_url.rstrip("/") + settings.webhook_path)
    github = html.escape(
        "https://github.com"
        if settings.github_api_url == "https://api.github.com"
        else settings.github_api_url.removesuffix("/api/v3")
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Autopack setup</title>
<style>{_STYLE}</style></head><body>
<h1>Autopack is in setup mode</h1>
<p>It accepts no webhook deliveries until it knows its GitHub App. These settings are missing:</p>
<ul id="missing">{rows}</ul>
<h2>Create the GitHub App</h2>
<ol>
<li>Open <a href="{github}/settings/apps/new">{github}/settings/apps/new</a>
(or your organisation's <em>Settings → Developer settings → GitHub Apps</em>).</li>
<li>Copy the permissions and events from <code>app.yml</code> in the Autopack repository;
set the webhook URL to <code>{webhook}</code> and choose a random webhook secret
(<code>python -c "import secrets; print(secrets.token_hex(32))"</code>).</li>
<li>Generate a private key and save the <code>.pem</code> file beside Autopack.</li>
<li>Write the settings to <code>.env</code> in Autopack's working directory:
<pre>APP_ID=123456
PRIVATE_KEY_PATH=./autopack.private-key.pem
WEBHOOK_SECRET=…</pre></li>
<li>Restart <code>autopack serve</code>, then install the App on your repositories.</li>
</ol>
</body></html>"""


def status_page(app_id: int | None, insecure: bool) -> str:
    warning = (
        "<p><strong>Webhook signatures are NOT verified</strong> "
        "(AUTOPACK_INSECURE_NO_SIGNATURE). Never run like this on a network.</p>"
        if insecure
        else ""
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Autopack</title>'
        f"<style>{_STYLE}</style></head><body><h1>Autopack is running</h1>"
        f'<p>GitHub App {app_id}. Health: <a href="/healthz">/healthz</a>, '
        f'<a href="/readyz">/readyz</a>, <a href="/metrics">/metrics</a>.</p>{warning}</body></html>'
    )
