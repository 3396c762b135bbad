"""The one fake GitHub of the test suite: one state object and one request handler.

`FakeGitHub` holds a repository's state (issues and comments, labels, files and git data, pull
requests, reviews, check runs, CI, merges) and `handle()` answers any GitHub request from it, the
way httpx's `MockTransport` answers a whole test from one function. Two ways to put it in front of
the code under test:

- component tests and benchmarks: `fake.mount(router)` routes every request to the fake's host
  through respx (`install` is the same call);
- integration tests, where Autopack runs as a real process: `fake.serve()` answers on a free
  127.0.0.1 port through uvicorn (`stop()` ends it). The same fake then also plays GitHub's web
  side of the App manifest flow for the setup page's browser test.

Every request is recorded in `log` as "METHOD path". A request the fake does not know is an
`AssertionError`: a new GitHub call must be taught here, once, for every test. To make one endpoint
misbehave in a test, replace its handler on the instance (`fake._merge = ...`); handlers are
looked up by name on each request.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import re
import secrets
import socket
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import jwt
import respx
import uvicorn
from cryptography.hazmat.primitives import serialization

API = "https://api.github.test"
TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"

_REPO = r"/repos/(?P<full>[^/]+/[^/]+)"

# (method, pattern on the path and query below the API root, handler name); the first match wins.
ROUTES: list[tuple[str, str, str]] = [
    ("GET", r"/app$", "_app"),
    ("GET", _REPO + r"$", "_repository"),
    ("GET", _REPO + r"/installation$", "_installation"),
    ("GET", _REPO + r"/commits\?", "_list_commits"),
    ("GET", _REPO + r"/pulls/(?P<n>\d+)/comments(?:\?|$)", "_pull_review_comments"),
    ("POST", r"/app/installations/\d+/access_tokens$", "_token"),
    ("POST", r"/app-manifests/(?P<code>[^/?]+)/conversions$", "_convert"),
    ("POST", r"/login/oauth/access_token$", "_oauth_token"),
    ("GET", r"/user$", "_user"),
    ("GET", r"/user/memberships/orgs/(?P<org>[^/?]+)$", "_membership"),
    ("GET", _REPO + r"/commits/[^/?]+$", "_head"),
    ("GET", _REPO + r"/commits/(?P<sha>\w+)\?", "_commit"),
    ("GET", _REPO + r"/compare/(?P<spec>[^?]+)", "_compare"),
    ("GET", _REPO + r"/contents/(?P<path>[^?]*)", "_content"),
    ("GET", _REPO + r"/contents\?", "_root_content"),
    ("GET", _REPO + r"/labels", "_list_labels"),
    ("POST", _REPO + r"/labels$", "_create_label"),
    ("POST", _REPO + r"/issues/(?P<n>\d+)/labels", "_add_labels"),
    ("GET", _REPO + r"/issues\?", "_list_issues"),
    ("POST", _REPO + r"/issues$", "_create_issue"),
    ("PATCH", _REPO + r"/issues/(?P<n>\d+)$", "_update_issue"),
    ("GET", _REPO + r"/commits/(?P<sha>\w+)/check-runs", "_list_runs"),
    ("GET", _REPO + r"/pulls/(?P<n>\d+)$", "_pull"),
    ("GET", _REPO + r"/pulls/(?P<n>\d+)/files", "_files"),
    ("GET", _REPO + r"/pulls/(?P<n>\d+)/commits", "_commits"),
    ("GET", _REPO + r"/pulls/(?P<n>\d+)/reviews(?:\?|$)", "_reviews"),
    ("POST", _REPO + r"/pulls/(?P<n>\d+)/reviews$", "_review"),
    ("PUT", _REPO + r"/pulls/(?P<n>\d+)/reviews/(?P<rid>\d+)/dismissals$", "_dismiss"),
    ("GET", _REPO + r"/git/trees/(?P<sha>\w+)", "_get_tree"),
    ("POST", _REPO + r"/git/trees$", "_create_tree"),
    ("POST", _REPO + r"/git/commits$", "_create_commit"),
    ("POST", _REPO + r"/git/refs$", "_create_ref"),
    ("PATCH", _REPO + r"/git/refs/heads/(?P<branch>.+)$", "_update_ref"),
    ("GET", _REPO + r"/pulls\?", "_list_pulls"),
    ("POST", _REPO + r"/pulls$", "_create_pull"),
    ("PATCH", _REPO + r"/pulls/(?P<n>\d+)$", "_update_pull"),
    ("POST", _REPO + r"/pulls/(?P<n>\d+)/requested_reviewers", "_request_reviewers"),
    ("GET", _REPO + r"/pulls/(?P<n>\d+)/reviews/(?P<rid>\d+)/comments", "_review_comments"),
    ("GET", _REPO + r"/commits/(?P<sha>\w+)/status(?:\?|$)", "_status"),
    ("GET", _REPO + r"/check-runs/(?P<rid>\d+)/annotations", "_annotations"),
    ("GET", _REPO + r"/check-runs/(?P<rid>\d+)$", "_get_run"),
    ("POST", r"/graphql$", "_graphql"),
    ("GET", _REPO + r"/pulls/comments/(?P<cid>\d+)$", "_pull_comment"),
    ("POST", _REPO + r"/pulls/comments/(?P<cid>\d+)/reactions", "_react_review"),
    ("GET", r"/search/code", "_search_code"),
    ("GET", _REPO + r"/branches/(?P<branch>[^/?]+)", "_branch"),
    ("PUT", _REPO + r"/pulls/(?P<n>\d+)/merge", "_merge"),
    ("DELETE", _REPO + r"/git/refs/heads/(?P<branch>.+)$", "_delete_ref"),
    ("PATCH", _REPO + r"/check-runs/(?P<rid>\d+)", "_update_run"),
    ("POST", _REPO + r"/check-runs", "_create_run"),
    ("GET", _REPO + r"/collaborators/(?P<user>[^/]+)/permission", "_permission"),
    ("GET", _REPO + r"/environments/(?P<env>[^/?]+)$", "_environment"),
    ("POST", _REPO + r"/issues/comments/(?P<cid>\d+)/reactions", "_react"),
    ("GET", _REPO + r"/issues/(?P<n>\d+)/comments", "_list"),
    ("POST", _REPO + r"/issues/(?P<n>\d+)/comments", "_create"),
    ("PATCH", _REPO + r"/issues/comments/(?P<cid>\d+)", "_edit"),
]
# GitHub's web pages of the App manifest flow (served at the root, beside an `/api/v3` API).
WEB_ROUTES: list[tuple[str, str, str]] = [
    ("POST", r"/settings/apps/new(?:\?|$)", "_new_app"),
    ("POST", r"/organizations/(?P<org>[^/]+)/settings/apps/new(?:\?|$)", "_new_app"),
    ("GET", r"/apps/(?P<slug>[^/]+)/installations/new$", "_install_page"),
    ("GET", r"/login/oauth/authorize\?", "_authorize"),
    ("POST", r"/login/oauth/access_token$", "_oauth_token"),
]
_COMPILED = [(m, re.compile(p), h) for m, p, h in ROUTES]
_WEB_COMPILED = [(m, re.compile(p), h) for m, p, h in WEB_ROUTES]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_in_thread(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    """An ASGI app on a free 127.0.0.1 port, in a daemon thread; returns it once it listens."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", interface="asgi3"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("fake server did not start")
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def _body(request: httpx.Request) -> Any:
    return json.loads(request.content or b"{}")


class FakeGitHub:
    """One repository's GitHub (`octo-org/widgets` unless told), with the permissions of each user."""

    def __init__(
        self,
        repo: str = "octo-org/widgets",
        *,
        permissions: dict[str, str] | None = None,
        api_prefix: str = "",
    ) -> None:
        self.repo = repo
        self.api_prefix = api_prefix  # "/api/v3" when served as a GitHub Enterprise Server
        self.base_url = API
        self.log: list[str] = []
        # The App and its installation tokens
        self.app_id = 12345
        self.slug = "autopack"
        self.app_key: str | None = None  # when set, GET /app answers only a JWT signed by this key
        self.owner = {"login": "octo-org", "type": "Organization"}  # who owns the App
        # Sign-in with GitHub (the status page): code → login, token → login, org → {login: role}
        self.oauth_codes: dict[str, str] = {}
        self.oauth_tokens: dict[str, str] = {}
        self.org_roles: dict[str, dict[str, str]] = {}
        self.signs_in_as: str | None = None  # the browser's user on the authorize page
        self.token_requests: list[dict[str, Any]] = []
        # Issue threads: comments, reactions, permissions
        self.permissions: dict[str, str] = permissions if permissions is not None else {"octocat": "admin"}
        self.comments: list[dict[str, Any]] = []
        self.reactions: list[tuple[int, str]] = []
        self.edits = 0
        # Issues, labels, files
        self.head = "c0ffee" + "0" * 34
        self.default_branch = "main"
        self.files: dict[tuple[str, str], str] = {}
        self.dirs = ["app", "docs", "web"]
        self.labels: dict[str, dict[str, Any]] = {}
        self.issue_labels: dict[int, list[str]] = {}
        self.open_issues: list[dict[str, Any]] = []
        self.closed: list[int] = []
        # Check runs, pull requests, reviews
        self.check_runs: list[dict[str, Any]] = []
        self.check_updates: list[dict[str, Any]] = []
        self.pulls: dict[int, dict[str, Any]] = {}
        self.pull_files: dict[int, list[dict[str, Any]]] = {}
        self.reviews: dict[int, list[dict[str, Any]]] = {}
        # Git data, pull requests and CI (the proposal flows)
        self.modes: dict[str, str] = {}  # path → mode in the base tree (symlinks: 120000)
        self.trees: dict[str, dict[str, Any]] = {}
        self.commits: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, str] = {}
        self.ref_writes: list[tuple[str, str]] = []  # (branch, sha) in order
        self.created_pulls: list[dict[str, Any]] = []
        self.pull_updates: list[dict[str, Any]] = []
        self.ready: list[str] = []  # node ids marked ready for review
        self.requested_reviewers: list[dict[str, Any]] = []
        self.ci: dict[str, list[dict[str, Any]]] = {}  # sha → check runs of other apps
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.annotations: dict[int, list[dict[str, Any]]] = {}
        self.review_comments: dict[int, list[dict[str, Any]]] = {}
        # Review threads per pull request: each {id, isResolved, isOutdated, resolvedBy, path,
        # comments: [review comment ids], thumbs_down: [logins]}; line comments by id
        self.threads: dict[int, list[dict[str, Any]]] = {}
        self.line_comments: dict[int, dict[str, Any]] = {}
        self.resolved_threads: list[str] = []
        # History (offline evaluation): review comments per pull request, default-branch commits
        self.pull_review_comments: dict[int, list[dict[str, Any]]] = {}
        self.history: list[dict[str, Any]] = []
        self.review_reactions: list[tuple[int, str]] = []
        self.graphql_reads = 0
        self.not_modified: list[str] = []  # GETs answered 304 (conditional requests)
        self.conditional: list[str] = []  # GETs that carried an ETag (If-None-Match)
        self.required_checks: list[str] | None = None  # the base branch's protection
        self.merges: list[dict[str, Any]] = []
        self.merge_refusals: list[int] = []  # statuses the next merge calls answer (409: head moved)
        self.deleted_branches: list[str] = []
        self.pr_commits: dict[int, list[dict[str, Any]]] = {}
        self.auto_merge_allowed = True
        self.auto_merge: list[dict[str, Any]] = []  # enablePullRequestAutoMerge variables, in order
        self.auto_merge_disabled: list[str] = []  # node ids
        self.dismissals: list[dict[str, Any]] = []
        self.environments: dict[str, list[str]] = {}  # Actions environment → its protection rule types
        self.code_search: dict[str, list[str]] = {}  # package → paths that mention it
        self.compares: dict[str, list[dict[str, Any]]] = {}  # "base...head" → files
        self.commit_file_lists: dict[str, list[dict[str, Any]]] = {}  # sha → files
        # The App manifest flow (setup page)
        self.manifests: list[dict[str, Any]] = []
        self.owners: list[str | None] = []
        self.codes: dict[str, dict[str, Any]] = {}
        self.conversions = 0
        # Served as a process: a reaction whose request is held open until `release` is set
        self.hold: str | None = None
        self.held = threading.Event()
        self.held_count = 0  # requests being held open right now
        self.release = threading.Event()
        self._lock = threading.Lock()

    # ---- the one handler -------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one GitHub request from the state above."""
        target = request.url.raw_path.decode()
        routes = _COMPILED
        if self.api_prefix:
            if target.startswith(self.api_prefix + "/"):
                target = target[len(self.api_prefix) :]
            else:
                routes = _WEB_COMPILED
        for method, pattern, name in routes:
            match = pattern.match(target)
            if match and method == request.method:
                self.log.append(f"{request.method} {request.url.path}")
                handler = getattr(self, name)
                response: httpx.Response = handler(request, **match.groupdict())
                return self._conditional(request, response)
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    def _conditional(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        """GitHub's ETags: every 200 to a GET carries one; a matching `If-None-Match` gets a 304
        with no body (which GitHub does not count against the rate limit)."""
        if request.method != "GET" or response.status_code != 200:
            return response
        if request.headers.get("if-none-match"):
            self.conditional.append(f"GET {request.url.path}")
        etag = '"' + hashlib.sha1(response.content).hexdigest() + '"'  # noqa: S324 - an ETag, not a secret
        if request.headers.get("if-none-match") == etag:
            self.not_modified.append(f"GET {request.url.path}")
            return httpx.Response(304, headers={"etag": etag, "x-ratelimit-remaining": "4999"})
        response.headers["etag"] = etag
        return response

    def mount(self, router: respx.MockRouter, host: str = "api.github.test") -> None:
        """Route every request to `host` through `handle` (component tests)."""
        router.route(host=host).mock(side_effect=self.handle)

    install = mount

    def serve(self) -> str:
        """Answer on a free 127.0.0.1 port in a thread (integration tests); returns the base URL."""
        self._server, self._thread, url = serve_in_thread(self._asgi)
        self.base_url = url
        return url

    def stop(self) -> None:
        self.release.set()
        self._server.should_exit = True
        self._thread.join(timeout=10)

    @property
    def api_url(self) -> str:
        return self.base_url + self.api_prefix

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """ASGI in front of `handle`: the same answers over real HTTP."""
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = scope.get("query_string", b"").decode()
        url = self.base_url + scope["path"] + (f"?{query}" if query else "")
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]]
        request = httpx.Request(scope["method"], url, headers=headers, content=body)
        held = request.method == "POST" and request.url.path.endswith("/reactions")
        if self.hold and held and _body(request).get("content") == self.hold:
            self.held_count += 1
            self.held.set()
            await asyncio.to_thread(self.release.wait)
            self.held_count -= 1
            await self._send(send, httpx.Response(502, json={"message": "server went away"}))
            return
        try:
            response = await asyncio.to_thread(self._locked, request)
        except AssertionError as exc:
            response = httpx.Response(501, json={"message": str(exc)})
        await self._send(send, response)

    def _locked(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            return self.handle(request)

    @staticmethod
    async def _send(send: Any, response: httpx.Response) -> None:
        content = response.content
        headers = [(k.encode(), v.encode()) for k, v in response.headers.items() if k != "content-length"]
        headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    # ---- the App ---------------------------------------------------------------------------

    def _app(self, request: httpx.Request) -> httpx.Response:
        info = {
            "id": self.app_id,
            "slug": self.slug,
            "html_url": f"{self.base_url}/apps/{self.slug}",
            "owner": self.owner,
        }
        if self.app_key is None:
            return httpx.Response(200, json=info)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        public = serialization.load_pem_private_key(self.app_key.encode(), None).public_key()
        try:
            claims = jwt.decode(token, public, algorithms=["RS256"])  # type: ignore[arg-type]
        except jwt.PyJWTError:
            return httpx.Response(401, json={"message": "A JSON web token could not be decoded"})
        if str(claims.get("iss")) != str(self.app_id):
            return httpx.Response(404, json={"message": "Integration not found"})
        return httpx.Response(200, json=info)

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests.append(_body(request))
        return httpx.Response(201, json={"token": TOKEN, "expires_at": "2099-01-01T00:00:00Z"})

    # ---- sign in with GitHub ----------------------------------------------------------------

    def _oauth_token(self, request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        login = self.oauth_codes.pop(form.get("code", [""])[0], None)
        if login is None or form.get("client_secret", [""])[0] != "client-secret-for-tests":
            return httpx.Response(200, json={"error": "bad_verification_code"})
        token = f"ghu_{secrets.token_hex(18)}"
        self.oauth_tokens[token] = login
        return httpx.Response(200, json={"access_token": token, "token_type": "bearer", "scope": ""})

    def _authorize(self, request: httpx.Request) -> httpx.Response:
        """GitHub's authorize page, approved at once for `signs_in_as`: back to the App with a code."""
        if self.signs_in_as is None:
            return httpx.Response(403, html="<h1>Not signed in to GitHub</h1>")
        code = secrets.token_hex(8)
        self.oauth_codes[code] = self.signs_in_as
        back = (
            request.url.params["redirect_uri"]
            + "?"
            + urlencode({"code": code, "state": request.url.params["state"]})
        )
        return httpx.Response(302, headers={"location": back})

    def _login_of(self, request: httpx.Request) -> str | None:
        return self.oauth_tokens.get(request.headers.get("authorization", "").removeprefix("Bearer "))

    def _user(self, request: httpx.Request) -> httpx.Response:
        login = self._login_of(request)
        if login is None:
            return httpx.Response(401, json={"message": "Bad credentials"})
        return httpx.Response(200, json={"login": login, "id": 1, "type": "User"})

    def _membership(self, request: httpx.Request, org: str) -> httpx.Response:
        login = self._login_of(request)
        role = self.org_roles.get(org, {}).get(login or "")
        if login is None or role is None:
            return httpx.Response(404, json={"message": "Not Found"})
        return httpx.Response(200, json={"state": "active", "role": role, "organization": {"login": org}})

    # ---- issue threads ---------------------------------------------------------------------

    def _permission(self, request: httpx.Request, full: str, user: str) -> httpx.Response:
        level = self.permissions.get(user, "read")
        flags = {
            "admin": level == "admin",
            "maintain": level in ("admin", "maintain"),
            "push": level in ("admin", "maintain", "write"),
            "triage": level in ("admin", "maintain", "write", "triage"),
            "pull": True,
        }
        return httpx.Response(
            200,
            json={"permission": level, "role_name": level, "user": {"login": user, "permissions": flags}},
        )

    def _react(self, request: httpx.Request, full: str, cid: str) -> httpx.Response:
        content = _body(request)["content"]
        existing = (int(cid), content) in self.reactions
        if not existing:
            self.reactions.append((int(cid), content))
        return httpx.Response(200 if existing else 201, json={"id": 1, "content": content})

    def _list(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        # Comments the bot created belong to one thread; those a test adds belong to every thread.
        thread = [c for c in self.comments if c.get("issue_number", int(n)) == int(n)]
        return self._page(request, thread)

    def _create(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        comment = {
            "id": 50_000 + len(self.comments),
            "issue_number": int(n),
            "body": _body(request)["body"],
            "user": {"login": "autopack[bot]", "type": "Bot"},
        }
        self.comments.append(comment)
        return httpx.Response(201, json=comment)

    def _edit(self, request: httpx.Request, full: str, cid: str) -> httpx.Response:
        for comment in self.comments:
            if comment["id"] == int(cid):
                comment["body"] = _body(request)["body"]
                self.edits += 1
                return httpx.Response(200, json=comment)
        return httpx.Response(404, json={"message": "Not Found"})

    def bot_comments(self) -> list[dict[str, Any]]:
        return [c for c in self.comments if c["user"]["login"] == "autopack[bot]"]

    # ---- repository contents, labels, issues, check runs, pull requests --------------------

    def _head(self, request: httpx.Request, full: str) -> httpx.Response:
        return httpx.Response(200, text=self.head)

    def _root_content(self, request: httpx.Request, full: str) -> httpx.Response:
        return self._content(request, full, "")

    def _content(self, request: httpx.Request, full: str, path: str) -> httpx.Response:
        if path == "":
            return httpx.Response(
                200,
                json=[{"name": d, "type": "dir", "path": d} for d in self.dirs]
                + [{"name": "README.md", "type": "file", "path": "README.md"}],
            )
        text = self.files.get((full, path))
        if text is None:
            return httpx.Response(404, json={"message": "Not Found"})
        return httpx.Response(
            200,
            json={
                "type": "file",
                "path": path,
                "encoding": "base64",
                "content": base64.b64encode(text.encode()).decode(),
            },
        )

    def _list_labels(self, request: httpx.Request, full: str) -> httpx.Response:
        return httpx.Response(200, json=list(self.labels.values()))

    def _create_label(self, request: httpx.Request, full: str) -> httpx.Response:
        label = _body(request)
        if label["name"].lower() in {n.lower() for n in self.labels}:
            return httpx.Response(422, json={"message": "Validation Failed"})
        self.labels[label["name"]] = label
        return httpx.Response(201, json=label)

    def _add_labels(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        current = self.issue_labels.setdefault(int(n), [])
        for name in _body(request)["labels"]:
            if name not in current:
                current.append(name)
        return httpx.Response(200, json=[{"name": name} for name in current])

    def _list_issues(self, request: httpx.Request, full: str) -> httpx.Response:
        wanted = request.url.params.get("labels")
        state = request.url.params.get("state", "open")

        def names(issue: dict[str, Any]) -> list[str]:
            return [str(lb["name"] if isinstance(lb, dict) else lb) for lb in issue.get("labels", [])]

        found = [
            {**i, "labels": [{"name": name} for name in names(i)]}  # GitHub lists label objects
            for i in self.open_issues
            if (wanted is None or wanted in names(i)) and (state == "all" or i.get("state", "open") == state)
        ]
        return self._page(request, found)

    def _create_issue(self, request: httpx.Request, full: str) -> httpx.Response:
        data = _body(request)
        issue = {
            "number": 200 + len(self.open_issues),
            "title": data["title"],
            "body": data["body"],
            "labels": data.get("labels", []),
            "state": "open",
            "user": {"login": "autopack[bot]", "type": "Bot"},
        }
        self.open_issues.append(issue)
        return httpx.Response(201, json={**issue, "labels": [{"name": n} for n in issue["labels"]]})

    def _update_issue(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        data = _body(request)
        if data.get("state") == "closed":
            self.closed.append(int(n))
        for issue in self.open_issues:
            if issue["number"] == int(n):
                issue.update(data)
        return httpx.Response(200, json={"number": int(n)})

    def _list_runs(self, request: httpx.Request, full: str, sha: str) -> httpx.Response:
        runs = [r for r in self.check_runs if r.get("head_sha") in (sha, self.head)] + self.ci.get(sha, [])
        page = int(request.url.params.get("page", "1"))
        per = int(request.url.params.get("per_page", "30"))
        shown = runs[(page - 1) * per : page * per]
        return httpx.Response(200, json={"total_count": len(runs), "check_runs": shown})

    def _page(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        per = int(request.url.params.get("per_page", "30"))
        return httpx.Response(200, json=items[(page - 1) * per : page * per])

    def _pull(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        return httpx.Response(200, json=self.pulls[int(n)])

    def _files(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        return self._page(request, self.pull_files.get(int(n), []))

    def _commits(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        default = [{"sha": "1" * 40, "commit": {"message": "Retry writes on lock\n\nDetails."}}]
        return self._page(request, self.pr_commits.get(int(n), default))

    def _reviews(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        return self._page(request, self.reviews.get(int(n), []))

    def _review(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        review = _body(request)
        review.update(
            id=len(self.reviews.get(int(n), [])) + 1,
            user={"login": "autopack[bot]", "type": "Bot"},
            state={"APPROVE": "APPROVED", "COMMENT": "COMMENTED"}.get(review.get("event"), "PENDING"),
        )
        self.reviews.setdefault(int(n), []).append(review)
        for comment in review.get("comments") or []:
            self.add_thread(int(n), comment["path"], comment["body"], line=comment.get("line"))
        return httpx.Response(200, json=review)

    def add_thread(
        self, number: int, path: str, body: str, *, author: str = "autopack[bot]", line: int | None = None
    ) -> dict[str, Any]:
        """A review thread opened by a line comment (the bot's, when a review posts comments)."""
        cid = 700_000 + len(self.line_comments)
        self.line_comments[cid] = {
            "id": cid,
            "path": path,
            "line": line,
            "body": body,
            "user": {"login": author, "type": "Bot" if author.endswith("[bot]") else "User"},
        }
        thread = {
            "id": f"PRRT_{cid}",
            "isResolved": False,
            "isOutdated": False,
            "resolvedBy": None,
            "path": path,
            "comments": [cid],
            "thumbs_down": [],
        }
        self.threads.setdefault(number, []).append(thread)
        return thread

    def thread_of(self, number: int, title: str) -> dict[str, Any]:
        """The review thread whose first comment has `title` in it."""
        return next(
            t for t in self.threads.get(number, []) if title in self.line_comments[t["comments"][0]]["body"]
        )

    def _pull_comment(self, request: httpx.Request, full: str, cid: str) -> httpx.Response:
        comment = self.line_comments.get(int(cid))
        if comment is None:
            return httpx.Response(404, json={"message": "Not Found"})
        return httpx.Response(200, json=comment)

    def _react_review(self, request: httpx.Request, full: str, cid: str) -> httpx.Response:
        self.review_reactions.append((int(cid), _body(request)["content"]))
        return httpx.Response(201, json={"id": len(self.review_reactions)})

    def _thread_nodes(self, number: int) -> list[dict[str, Any]]:
        """Threads as GitHub's GraphQL API gives them (it names an App's login without `[bot]`)."""
        nodes = []
        for thread in self.threads.get(number, []):
            first = self.line_comments[thread["comments"][0]]
            login = str(first["user"]["login"]).removesuffix("[bot]")
            nodes.append(
                {
                    "id": thread["id"],
                    "isResolved": thread["isResolved"],
                    "isOutdated": thread["isOutdated"],
                    "path": thread["path"],
                    "resolvedBy": {"login": thread["resolvedBy"]} if thread["resolvedBy"] else None,
                    "comments": {
                        "nodes": [
                            {
                                "body": first["body"],
                                "path": first["path"],
                                "author": {"login": login},
                                "reactions": {
                                    "nodes": [{"user": {"login": who}} for who in thread["thumbs_down"]]
                                },
                            }
                        ]
                    },
                }
            )
        return nodes

    def _environment(self, request: httpx.Request, full: str, env: str) -> httpx.Response:
        if env not in self.environments:
            return httpx.Response(404, json={"message": "Not Found"})
        rules = [{"id": i, "type": t} for i, t in enumerate(self.environments[env], 1)]
        return httpx.Response(200, json={"name": env, "protection_rules": rules})

    def _dismiss(self, request: httpx.Request, full: str, n: str, rid: str) -> httpx.Response:
        data = _body(request)
        self.dismissals.append({"number": int(n), "review_id": int(rid), **data})
        for review in self.reviews.get(int(n), []):
            if review["id"] == int(rid):
                review["state"] = "DISMISSED"
                return httpx.Response(200, json=review)
        return httpx.Response(404, json={"message": "Not Found"})

    def _update_run(self, request: httpx.Request, full: str, rid: str) -> httpx.Response:
        self.check_updates.append({"id": int(rid), **_body(request)})
        return httpx.Response(200, json={"id": int(rid)})

    def _create_run(self, request: httpx.Request, full: str) -> httpx.Response:
        run = _body(request)
        run.update(id=len(self.check_runs) + 1, app={"id": 12345, "slug": "autopack"})
        self.check_runs.append(run)
        return httpx.Response(201, json={"id": len(self.check_runs)})

    # ---- git data, pull requests, CI --------------------------------------------------------

    def base_files(self) -> dict[str, str]:
        return {path: text for (full, path), text in self.files.items() if full == self.repo}

    def _get_tree(self, request: httpx.Request, full: str, sha: str) -> httpx.Response:
        entries = [
            {"path": p, "mode": self.modes.get(p, "100644"), "type": "blob", "size": len(t.encode())}
            for p, t in sorted(self.base_files().items())
        ]
        entries += [
            {"path": p, "mode": m, "type": "blob", "size": 10}
            for p, m in self.modes.items()
            if p not in self.base_files()
        ]
        return httpx.Response(200, json={"sha": "7ree" + sha[4:], "tree": entries, "truncated": False})

    def _create_tree(self, request: httpx.Request, full: str) -> httpx.Response:
        data = _body(request)
        sha = f"{len(self.trees) + 1:040x}"
        self.trees[sha] = data
        return httpx.Response(201, json={"sha": sha})

    def _create_commit(self, request: httpx.Request, full: str) -> httpx.Response:
        data = _body(request)
        sha = f"c{len(self.commits) + 1:039x}"
        self.commits[sha] = data
        return httpx.Response(201, json={"sha": sha})

    def _create_ref(self, request: httpx.Request, full: str) -> httpx.Response:
        data = _body(request)
        branch = data["ref"].removeprefix("refs/heads/")
        if branch in self.refs:
            return httpx.Response(422, json={"message": "Reference already exists"})
        self.refs[branch] = data["sha"]
        self.ref_writes.append((branch, data["sha"]))
        return httpx.Response(201, json={"ref": data["ref"], "object": {"sha": data["sha"]}})

    def _update_ref(self, request: httpx.Request, full: str, branch: str) -> httpx.Response:
        data = _body(request)
        if branch not in self.refs:
            return httpx.Response(422, json={"message": "Reference does not exist"})
        self.refs[branch] = data["sha"]
        self.ref_writes.append((branch, data["sha"]))
        for pull in self.pulls.values():
            if pull["head"]["ref"] == branch:
                pull["head"]["sha"] = data["sha"]
        return httpx.Response(200, json={"ref": f"refs/heads/{branch}", "object": {"sha": data["sha"]}})

    def _repository(self, request: httpx.Request, full: str) -> httpx.Response:
        _owner, name = full.split("/")
        return httpx.Response(
            200, json={"full_name": full, "name": name, "default_branch": self.default_branch}
        )

    def _installation(self, request: httpx.Request, full: str) -> httpx.Response:
        return httpx.Response(200, json={"id": 4242, "app_id": self.app_id})

    def _list_commits(self, request: httpx.Request, full: str) -> httpx.Response:
        since = request.url.params.get("since", "")
        found = [c for c in self.history if c["commit"]["committer"]["date"] >= since]
        return self._page(request, found)

    def _pull_review_comments(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        return self._page(request, self.pull_review_comments.get(int(n), []))

    def _list_pulls(self, request: httpx.Request, full: str) -> httpx.Response:
        if "head" not in request.url.params:  # a listing by state
            state = request.url.params.get("state", "open")
            found = [p for p in self.pulls.values() if state == "all" or p["state"] == state]
            return self._page(request, found)
        head = request.url.params.get("head", "")
        branch = head.split(":", 1)[-1]
        found = [p for p in self.pulls.values() if p["head"]["ref"] == branch and p["state"] == "open"]
        return httpx.Response(200, json=found)

    def _create_pull(self, request: httpx.Request, full: str) -> httpx.Response:
        data = _body(request)
        number = 100 + len(self.created_pulls)
        pull = {
            "number": number,
            "node_id": f"PR_node{number}",
            "state": "open",
            "draft": data.get("draft", False),
            "title": data["title"],
            "body": data["body"],
            "head": {"ref": data["head"], "sha": self.refs.get(data["head"]), "repo": {"full_name": full}},
            "base": {
                "ref": data["base"],
                "sha": self.refs.get(data["base"]) or self.head,
                "repo": {"full_name": full},
            },
            "user": {"login": "autopack[bot]", "type": "Bot"},
        }
        self.created_pulls.append(data)
        self.pulls[number] = pull
        return httpx.Response(201, json=pull)

    def _update_pull(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        data = _body(request)
        self.pull_updates.append({"number": int(n), **data})
        if int(n) in self.pulls:
            self.pulls[int(n)].update(data)
        return httpx.Response(200, json=self.pulls.get(int(n), {"number": int(n)}))

    def _request_reviewers(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self.requested_reviewers.append({"number": int(n), **_body(request)})
        return httpx.Response(201, json={"number": int(n)})

    def _review_comments(self, request: httpx.Request, full: str, n: str, rid: str) -> httpx.Response:
        listed = self.review_comments.get(int(rid), [])
        return httpx.Response(
            200, json=[{"id": 8000 + i, **c} for i, c in enumerate(listed)]
        )  # ids, as GitHub

    def _status(self, request: httpx.Request, full: str, sha: str) -> httpx.Response:
        statuses = self.statuses.get(sha, [])
        return httpx.Response(200, json={"state": "pending", "sha": sha, "statuses": statuses})

    def _annotations(self, request: httpx.Request, full: str, rid: str) -> httpx.Response:
        return httpx.Response(200, json=self.annotations.get(int(rid), []))

    def _get_run(self, request: httpx.Request, full: str, rid: str) -> httpx.Response:
        runs = [r for rs in self.ci.values() for r in rs if r["id"] == int(rid)]
        return (
            httpx.Response(200, json=runs[0]) if runs else httpx.Response(404, json={"message": "Not Found"})
        )

    def _pulls_of_node(self, node_id: str) -> list[dict[str, Any]]:
        return [pull for pull in self.pulls.values() if pull.get("node_id") == node_id]

    def _graphql(self, request: httpx.Request) -> httpx.Response:
        body = _body(request)
        query, variables = body["query"], body.get("variables") or {}
        if "enablePullRequestAutoMerge" in query:
            if not self.auto_merge_allowed:
                return httpx.Response(
                    200,
                    json={
                        "data": {"enablePullRequestAutoMerge": None},
                        "errors": [{"type": "UNPROCESSABLE", "message": "Auto merge is not allowed"}],
                    },
                )
            self.auto_merge.append(variables)
            for pull in self._pulls_of_node(variables["id"]):
                pull["auto_merge"] = {
                    "enabled_by": {"login": "autopack[bot]", "type": "Bot"},
                    "merge_method": variables["method"].lower(),
                    "expected_head": variables.get("head"),
                }
            return httpx.Response(
                200, json={"data": {"enablePullRequestAutoMerge": {"clientMutationId": None}}}
            )
        if "disablePullRequestAutoMerge" in query:
            self.auto_merge_disabled.append(variables["id"])
            for pull in self._pulls_of_node(variables["id"]):
                pull["auto_merge"] = None
            return httpx.Response(
                200, json={"data": {"disablePullRequestAutoMerge": {"clientMutationId": None}}}
            )
        if "reviewThreads" in query:
            nodes = self._thread_nodes(int(variables["number"]))
            page = {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": nodes}
            return httpx.Response(
                200, json={"data": {"repository": {"pullRequest": {"reviewThreads": page}}}}
            )
        if "resolveReviewThread" in query:
            self.resolved_threads.append(variables["id"])
            for thread in (t for ts in self.threads.values() for t in ts):
                if thread["id"] == variables["id"]:
                    thread.update(isResolved=True, resolvedBy="autopack")
            return httpx.Response(200, json={"data": {"resolveReviewThread": {"thread": {}}}})
        if "markPullRequestReadyForReview" in query:
            self.ready.append(variables["id"])
            for pull in self._pulls_of_node(variables["id"]):
                pull["draft"] = False
            return httpx.Response(200, json={"data": {"markPullRequestReadyForReview": {}}})
        self.graphql_reads += 1
        files = self.base_files()
        found: dict[str, Any] = {}
        for key, expression in variables.items():
            if not key.startswith("e"):
                continue
            path = expression.split(":", 1)[1]
            text = files.get(path)
            found[f"f{key[1:]}"] = None if text is None else {"text": text, "isBinary": False}
        return httpx.Response(200, json={"data": {"repository": found}})

    def _branch(self, request: httpx.Request, full: str, branch: str) -> httpx.Response:
        protection: dict[str, Any] = {"enabled": self.required_checks is not None}
        if self.required_checks is not None:
            protection["required_status_checks"] = {
                "enforcement_level": "everyone",
                "contexts": self.required_checks,
                "checks": [{"context": c, "app_id": None} for c in self.required_checks],
            }
        return httpx.Response(
            200,
            json={"name": branch, "protected": self.required_checks is not None, "protection": protection},
        )

    def _merge(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        data = _body(request)
        pull = self.pulls[int(n)]
        if self.merge_refusals:
            status = self.merge_refusals.pop(0)
            return httpx.Response(
                status, json={"message": "Head branch was modified. Review and try the merge again."}
            )
        if data["sha"] != pull["head"]["sha"]:
            return httpx.Response(409, json={"message": "Head branch was modified."})
        self.merges.append({"number": int(n), **data})
        pull.update(state="closed", merged=True)
        return httpx.Response(
            200, json={"sha": "m" * 40, "merged": True, "message": "Pull Request successfully merged"}
        )

    def _delete_ref(self, request: httpx.Request, full: str, branch: str) -> httpx.Response:
        self.deleted_branches.append(branch)
        self.refs.pop(branch, None)
        return httpx.Response(204)

    def _commit(self, request: httpx.Request, full: str, sha: str) -> httpx.Response:
        return httpx.Response(200, json={"sha": sha, "files": self.commit_file_lists.get(sha, [])})

    def _compare(self, request: httpx.Request, full: str, spec: str) -> httpx.Response:
        if spec not in self.compares:
            return httpx.Response(404, json={"message": "Not Found"})
        return httpx.Response(200, json={"files": self.compares[spec], "commits": [], "status": "ahead"})

    def _search_code(self, request: httpx.Request) -> httpx.Response:
        query = request.url.params.get("q", "")
        name = query.split('"')[1] if '"' in query else ""
        items = [{"path": p} for p in self.code_search.get(name, [])]
        return httpx.Response(200, json={"total_count": len(items), "items": items})

    def file_at(self, commit_sha: str, path: str) -> str | None:
        """A file's content at one of the commits the flow created (walking parents to the base)."""
        sha: str | None = commit_sha
        while sha in self.commits:
            tree = self.trees[self.commits[sha]["tree"]]
            for entry in tree["tree"]:
                if entry["path"] == path:
                    return entry.get("content") if "content" in entry else None
            sha = self.commits[sha]["parents"][0]
        return self.base_files().get(path)

    # ---- GitHub's side of the App manifest flow (the setup page) ---------------------------

    def credentials(self, manifest: dict[str, Any]) -> dict[str, Any]:
        assert self.app_key is not None, "set app_key to play the manifest flow"
        return {
            "id": self.app_id,
            "slug": self.slug,
            "name": manifest["name"],
            "html_url": f"{self.base_url}/apps/{self.slug}",
            "client_id": "Iv1.fake",
            "client_secret": secrets.token_hex(20),
            "webhook_secret": secrets.token_hex(20),
            "pem": self.app_key,
        }

    def _new_app(self, request: httpx.Request, org: str | None = None) -> httpx.Response:
        """The "new App" form: checks the posted manifest as GitHub does, then a confirm page."""
        form = parse_qs(request.content.decode())
        try:
            manifest = json.loads(form["manifest"][0])
            assert isinstance(manifest["name"], str)
            assert manifest["hook_attributes"]["url"].startswith("http")
            assert manifest["redirect_url"].startswith("http")
            assert isinstance(manifest["default_permissions"], dict)
        except (KeyError, ValueError, AssertionError, TypeError) as exc:
            return httpx.Response(422, html=f"<h1>Invalid manifest</h1><p>{html.escape(repr(exc))}</p>")
        self.manifests.append(manifest)
        self.owners.append(org)
        code = secrets.token_hex(10)
        self.codes[code] = manifest
        state = request.url.params.get("state", "")
        back = manifest["redirect_url"] + "?" + urlencode({"code": code, "state": state})
        return httpx.Response(
            200,
            html=(
                "<!doctype html><html><head><title>Create GitHub App</title></head><body>"
                f"<h1>Create GitHub App {html.escape(manifest['name'])}</h1>"
                f'<a id="create" href="{html.escape(back)}">Create GitHub App</a></body></html>'
            ),
        )

    def _convert(self, request: httpx.Request, code: str) -> httpx.Response:
        manifest = self.codes.pop(code, None)
        if manifest is None:
            return httpx.Response(404, json={"message": "Not Found"})
        self.conversions += 1
        return httpx.Response(201, json=self.credentials(manifest))

    def _install_page(self, request: httpx.Request, slug: str) -> httpx.Response:
        slug = html.escape(slug)
        return httpx.Response(
            200,
            html=(
                f"<!doctype html><html><head><title>Install {slug}</title></head>"
                f"<body><h1>Install {slug}</h1></body></html>"
            ),
        )
