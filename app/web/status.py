"""`/status`: the operator's page, behind "Sign in with GitHub" with the App's own OAuth client.

Only the App's owner gets in: the user who owns it, or an admin (owner) of the organisation that
owns it, as GitHub says at sign-in. Everyone else who signs in gets a 403 page. The page shows
`app.status.Summary` as plain HTML with small inline SVG charts (no script, no CDN), and one action:
retry a dead job (plus signing out), each a POST with a CSRF token bound to the session.

Cookies are signed with a key derived from the App's client secret, HTTP-only, `SameSite=Lax`,
`Secure` when the page is served over HTTPS; the sign-in state is one-time and expires in ten
minutes. `web/` only reads and acknowledges here too: the one write is re-queueing a job in the
inbox; the GitHub calls are the sign-in's own (token exchange, who is this, who owns the App).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
import time
from urllib.parse import parse_qs, urlencode

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from app.github import oauth
from app.logs import get_logger
from app.service import Service
from app.status import Summary, gather

log = get_logger("autopack.status")
e = html.escape

SESSION = "autopack_session"
STATE = "autopack_oauth_state"
SESSION_SECONDS = 12 * 3600
STATE_SECONDS = 600


class StatusRoutes:
    def __init__(self, service: Service, *, read_only: bool = False) -> None:
        self.service = service
        self.read_only = read_only  # a worker process: no retry button

    def routes(self) -> list[Route]:
        routes = [
            Route("/status", self.page, methods=["GET"]),
            Route("/status/login", self.login, methods=["GET"]),
            Route("/status/callback", self.callback, methods=["GET"]),
            Route("/status/logout", self.logout, methods=["POST"]),
        ]
        if not self.read_only:
            routes.append(Route("/status/retry/{job_id:int}", self.retry, methods=["POST"]))
        return routes

    # ---- signing -------------------------------------------------------------------------

    def _key(self) -> bytes | None:
        secret = self.service.settings.github_client_secret
        if secret is None or self.service.settings.github_client_id is None:
            return None
        return hashlib.sha256(b"autopack status session\x00" + secret.get_secret_value().encode()).digest()

    def _sign(self, value: str) -> str:
        key = self._key()
        assert key is not None
        return value + "|" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()

    def _unsign(self, signed: str | None) -> str | None:
        key = self._key()
        if key is None or not signed or "|" not in signed:
            return None
        value, _, mac = signed.rpartition("|")
        expected = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
        return value if hmac.compare_digest(expected, mac) else None

    def _session(self, request: Request) -> tuple[str, str] | None:
        """(login, nonce) of a valid, unexpired session cookie."""
        value = self._unsign(request.cookies.get(SESSION))
        if value is None:
            return None
        try:
            login, expires, nonce = value.split("|")
        except ValueError:
            return None
        if float(expires) < time.time():
            return None
        return login, nonce

    def _csrf(self, nonce: str) -> str:
        key = self._key()
        assert key is not None
        return hmac.new(key, b"csrf\x00" + nonce.encode(), hashlib.sha256).hexdigest()

    def _cookie(self, response: Response, name: str, value: str, max_age: int, request: Request) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/status",
        )

    def _base(self, request: Request) -> str:
        public = self.service.settings.autopack_public_url
        return (public or str(request.base_url)).rstrip("/")

    # ---- routes --------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        if self._key() is None:
            return HTMLResponse(_unconfigured(), 503)
        session = self._session(request)
        if session is None:
            return RedirectResponse("/status/login", 303)
        if self.service.inbox is None:
            return HTMLResponse(_page("Autopack status", "<p>Autopack is in setup mode.</p>"), 503)
        routing = self.service.llm.routing if self.service.llm is not None else None
        summary = await gather(self.service.inbox, routing)
        login, nonce = session
        return HTMLResponse(
            render(summary, login=login, csrf=self._csrf(nonce), read_only=self.read_only),
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    async def login(self, request: Request) -> Response:
        settings = self.service.settings
        if self._key() is None:
            return HTMLResponse(_unconfigured(), 503)
        state = secrets.token_urlsafe(32)
        query = urlencode(
            {
                "client_id": settings.github_client_id,
                "redirect_uri": self._base(request) + "/status/callback",
                "state": state,
                "allow_signup": "false",
            }
        )
        response = RedirectResponse(f"{oauth.authorize_url(settings.github_api_url)}?{query}", 303)
        self._cookie(
            response, STATE, self._sign(f"{state}|{time.time() + STATE_SECONDS}"), STATE_SECONDS, request
        )
        return response

    async def callback(self, request: Request) -> Response:
        if self._key() is None:
            return HTMLResponse(_unconfigured(), 503)
        expected = self._unsign(request.cookies.get(STATE))
        state, code = request.query_params.get("state", ""), request.query_params.get("code", "")
        fresh = expected is not None and float(expected.split("|")[1]) > time.time()
        if not fresh or not state or not hmac.compare_digest(expected.split("|")[0], state):  # type: ignore[union-attr]
            return _refused(
                "The sign-in could not be checked (a missing, forged or expired state). Try again.", 400
            )
        if not code or len(code) > 100:
            return _refused("GitHub sent no usable code. Try again.", 400)
        settings = self.service.settings
        assert settings.github_client_id is not None
        assert settings.github_client_secret is not None
        assert self.service.github is not None
        try:
            login, token = await oauth.user_of_code(
                settings.github_api_url,
                settings.github_client_id,
                settings.github_client_secret.get_secret_value(),
                code,
                self._base(request) + "/status/callback",
            )
            allowed, why = await oauth.owns_app(self.service.github, settings.github_api_url, login, token)
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            log.warning("status sign-in failed", error=type(exc).__name__)
            return _refused("GitHub could not confirm the sign-in. Try again later.", 502)
        response: Response
        if not allowed:
            log.info("status sign-in refused", user=login, reason=why)
            response = _refused(f"Signed in as {e(login)}. {e(why)}", 403)
        else:
            log.info("status sign-in", user=login)
            response = RedirectResponse("/status", 303)
            session = f"{login}|{time.time() + SESSION_SECONDS}|{secrets.token_urlsafe(16)}"
            self._cookie(response, SESSION, self._sign(session), SESSION_SECONDS, request)
        response.delete_cookie(STATE, path="/status")
        return response

    async def retry(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return _refused("Sign in first.", 401)
        if not hmac.compare_digest(await _csrf_field(request), self._csrf(session[1])):
            return _refused("The form expired or did not come from this page. Reload it and try again.", 403)
        assert self.service.inbox is not None
        job_id = int(request.path_params["job_id"])
        job = await self.service.inbox.get_job(job_id)
        if job is None or job.status not in ("dead", "failed"):
            return _refused(f"Job {job_id} is not dead or failed: nothing to retry.", 409)
        await self.service.inbox.requeue(job_id)
        log.info("job retried from the status page", job=job_id, user=session[0])
        self.service.wake_workers()
        return RedirectResponse("/status", 303)

    async def logout(self, request: Request) -> Response:
        session = self._session(request)
        if session is not None and not hmac.compare_digest(
            await _csrf_field(request), self._csrf(session[1])
        ):
            return _refused("The form expired or did not come from this page.", 403)
        response = RedirectResponse("/status/login", 303)
        response.delete_cookie(SESSION, path="/status")
        return response


async def _csrf_field(request: Request) -> str:
    """The form's `csrf` field (a small urlencoded body; no multipart parser needed)."""
    body = (await request.body())[:4096].decode("utf-8", errors="replace")
    return (parse_qs(body).get("csrf") or [""])[0]


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:1.5rem auto;padding:0 1rem;"
    "line-height:1.45;"
    "color:#1f2328}table{border-collapse:collapse;width:100%;font-size:.92rem}td,th{padding:.3rem .4rem;"
    "border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top}th{background:#f6f8fa}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(13rem,1fr));gap:.8rem}"
    ".card{border:1px solid #d0d7de;border-radius:6px;padding:.6rem .8rem}"
    ".big{font-size:1.6rem;font-weight:600}"
    ".warn{color:#9a6700}.bad{color:#cf222e}code{background:#f6f8fa;padding:0 .2rem;border-radius:4px}"
    "button{cursor:pointer}header{display:flex;justify-content:space-between;align-items:center;gap:1rem}"
    "@media (max-width:40rem){td,th{font-size:.82rem}.hide-small{display:none}}"
)


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _refused(message: str, status: int) -> HTMLResponse:
    return HTMLResponse(_page("Autopack status", f"<h1>Not allowed</h1><p>{message}</p>"), status)


def _unconfigured() -> str:
    return _page(
        "Autopack status",
        "<h1>Status page not configured</h1><p>Sign-in uses the App's OAuth client: set "
        "<code>GITHUB_CLIENT_ID</code> and <code>GITHUB_CLIENT_SECRET</code> (the setup page writes them) "
        "and add <code>&lt;this server&gt;/status/callback</code> as the App's callback URL.</p>",
    )


def _bars(values: list[int], *, width: int = 480, height: int = 90, label: str) -> str:
    """A small bar chart as inline SVG."""
    top = max(values) or 1
    step = width / max(1, len(values))
    bars = "".join(
        f'<rect x="{i * step + 1:.1f}" y="{height - v / top * (height - 14):.1f}" width="{step - 2:.1f}" '
        f'height="{v / top * (height - 14):.1f}" fill="#0969da"><title>{v}</title></rect>'
        for i, v in enumerate(values)
    )
    return (
        f'<svg role="img" aria-label="{e(label)}" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="none">{bars}<text x="2" y="11" font-size="10">{top} max</text></svg>'
    )


def _meter(share: float | None) -> str:
    if share is None:
        return ""
    filled = min(1.0, share)
    colour = "#cf222e" if share >= 0.8 else "#0969da"
    return (
        f'<svg role="img" aria-label="{share:.0%} of the cap" viewBox="0 0 100 8" width="100" height="8">'
        f'<rect width="100" height="8" fill="#eaeef2"/><rect width="{filled * 100:.1f}" height="8" '
        f'fill="{colour}"/></svg> {share:.0%}'
    )


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def render(summary: Summary, *, login: str, csrf: str, read_only: bool) -> str:
    """The status page (all values escaped; errors were redacted when gathered)."""
    delivered = sum(summary.deliveries_24h.values())
    dead = len(summary.dead_jobs)
    cards = [
        ("deliveries, 24 h", f"{delivered:,}", ""),
        ("queued and due", f"{summary.queued_now:,}", "warn" if summary.oldest_queued_age > 600 else ""),
        ("oldest waiting", _ago(summary.oldest_queued_age) if summary.queued_now else "—", ""),
        ("dead jobs", f"{dead}", "bad" if dead else ""),
        ("open proposals", f"{len(summary.proposals)}", ""),
    ]
    parts = [
        "<header><h1>Autopack status</h1>"
        f'<form method="post" action="/status/logout"><input type="hidden" name="csrf" value="{e(csrf)}">'
        f"<span>{e(login)}</span> <button>Sign out</button></form></header>",
        '<div class="grid">'
        + "".join(f'<div class="card"><div class="big {c}">{e(v)}</div>{e(k)}</div>' for k, v, c in cards)
        + "</div>",
        "<h2>Deliveries per hour, last 24 hours</h2>",
        _bars(summary.deliveries_by_hour, label="deliveries per hour"),
        "<p>"
        + e(", ".join(f"{k}: {v}" for k, v in sorted(summary.deliveries_24h.items())) or "No deliveries.")
        + "<br>Jobs: "
        + e(", ".join(f"{k}: {v}" for k, v in sorted(summary.jobs_24h.items())) or "none")
        + "</p>",
        f"<h2>Dead jobs ({dead})</h2>",
    ]
    if summary.dead_jobs:
        rows = []
        for job in summary.dead_jobs:
            action = (
                ""
                if read_only
                else f'<form method="post" action="/status/retry/{job.id}"><input type="hidden" name="csrf" '
                f'value="{e(csrf)}"><button>Retry</button></form>'
            )
            rows.append(
                f"<tr><td>#{job.id}</td><td>{e(job.flow)}</td><td>{e(job.subject)}</td>"
                f'<td class="hide-small">{job.attempts}</td><td><code>{e(job.error[:300])}</code></td>'
                f"<td>{action}</td></tr>"
            )
        parts.append(
            '<table><tr><th>job</th><th>flow</th><th>subject</th><th class="hide-small">attempts</th>'
            "<th>last error</th><th></th></tr>" + "".join(rows) + "</table>"
        )
    else:
        parts.append("<p>None.</p>")
    parts.append(f"<h2>Open proposals ({len(summary.proposals)})</h2>")
    if summary.proposals:
        parts.append(
            "<table><tr><th>issue</th><th>pull request</th><th>state</th><th>gate</th></tr>"
            + "".join(
                f"<tr><td>{e(p.repository)}#{p.issue}</td>"
                f"<td>{f'#{p.pr_number}' if p.pr_number else '—'}</td>"
                f"<td>{e(p.status)}</td><td>{e(p.gate)}</td></tr>"
                for p in summary.proposals
            )
            + "</table>"
        )
    else:
        parts.append("<p>None.</p>")
    parts.append(f"<h2>Tokens and cost, budget week of {e(summary.week)}</h2>")
    spend = [("provider", s) for s in summary.providers] + [("repository", s) for s in summary.repositories]
    if spend:
        parts.append(
            "<table><tr><th></th><th>tokens</th><th>cost</th><th>of the weekly cap</th></tr>"
            + "".join(
                f"<tr><td>{e(kind)} <code>{e(s.key)}</code></td><td>{s.tokens:,}</td><td>${s.cost:.4f}</td>"
                f"<td>{_meter(s.share)}</td></tr>"
                for kind, s in spend
            )
            + "</table>"
        )
    else:
        parts.append("<p>No model calls this week.</p>")
    parts.append("<h2>GitHub rate limit by installation</h2>")
    if summary.rate_limits:
        parts.append(
            "<table><tr><th>installation</th><th>remaining</th><th></th></tr>"
            + "".join(
                f"<tr><td>{e(r.account or str(r.installation_id))}</td>"
                f"<td>{r.remaining:,} of {r.limit:,}</td>"
                f"<td>{_meter(1 - r.remaining / r.limit if r.limit else None)} used</td></tr>"
                for r in summary.rate_limits
            )
            + "</table>"
        )
    else:
        parts.append("<p>No GitHub response seen yet.</p>")
    return _page("Autopack status", "".join(parts))
