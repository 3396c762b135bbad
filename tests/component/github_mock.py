"""A respx-mocked GitHub for component tests: App auth, and an issue thread with comments."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import respx

API = "https://api.github.test"
TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"


@dataclass
class FakeThread:
    """Comments and reactions on `octo-org/widgets#7`, with the permissions of each user."""

    permissions: dict[str, str] = field(default_factory=lambda: {"octocat": "admin"})
    comments: list[dict[str, Any]] = field(default_factory=list)
    reactions: list[tuple[int, str]] = field(default_factory=list)
    edits: int = 0
    token_requests: list[dict[str, Any]] = field(default_factory=list)

    def install(self, router: respx.MockRouter, repo: str = "octo-org/widgets") -> None:
        router.get(f"{API}/app").mock(side_effect=self._app)
        router.post(url__regex=rf"{API}/app/installations/\d+/access_tokens").mock(side_effect=self._token)
        router.get(url__regex=rf"{API}/repos/{repo}/collaborators/(?P<user>[^/]+)/permission").mock(
            side_effect=self._permission
        )
        router.post(url__regex=rf"{API}/repos/{repo}/issues/comments/(?P<cid>\d+)/reactions").mock(
            side_effect=self._react
        )
        router.get(url__regex=rf"{API}/repos/{repo}/issues/\d+/comments").mock(side_effect=self._list)
        router.post(url__regex=rf"{API}/repos/{repo}/issues/\d+/comments").mock(side_effect=self._create)
        router.patch(url__regex=rf"{API}/repos/{repo}/issues/comments/(?P<cid>\d+)").mock(
            side_effect=self._edit
        )

    def _note(self, request: httpx.Request) -> None:
        """Called for every request; FakeRepo records them."""

    def _app(self, request: httpx.Request) -> httpx.Response:
        self._note(request)
        return httpx.Response(200, json={"id": 12345, "slug": "autopack"})

    def _token(self, request: httpx.Request) -> httpx.Response:
        self._note(request)
        self.token_requests.append(json.loads(request.content or b"{}"))
        return httpx.Response(201, json={"token": TOKEN, "expires_at": "2099-01-01T00:00:00Z"})

    def _permission(self, request: httpx.Request, user: str) -> httpx.Response:
        self._note(request)
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

    def _react(self, request: httpx.Request, cid: str) -> httpx.Response:
        self._note(request)
        content = json.loads(request.content)["content"]
        existing = (int(cid), content) in self.reactions
        if not existing:
            self.reactions.append((int(cid), content))
        return httpx.Response(200 if existing else 201, json={"id": 1, "content": content})

    def _list(self, request: httpx.Request) -> httpx.Response:
        self._note(request)
        page = int(request.url.params.get("page", "1"))
        per_page = int(request.url.params.get("per_page", "30"))
        return httpx.Response(200, json=self.comments[(page - 1) * per_page : page * per_page])

    def _create(self, request: httpx.Request) -> httpx.Response:
        self._note(request)
        comment = {
            "id": 50_000 + len(self.comments),
            "body": json.loads(request.content)["body"],
            "user": {"login": "autopack[bot]", "type": "Bot"},
        }
        self.comments.append(comment)
        return httpx.Response(201, json=comment)

    def _edit(self, request: httpx.Request, cid: str) -> httpx.Response:
        self._note(request)
        for comment in self.comments:
            if comment["id"] == int(cid):
                comment["body"] = json.loads(request.content)["body"]
                self.edits += 1
                return httpx.Response(200, json=comment)
        return httpx.Response(404, json={"message": "Not Found"})

    def bot_comments(self) -> list[dict[str, Any]]:
        return [c for c in self.comments if c["user"]["login"] == "autopack[bot]"]


class FakeRepo(FakeThread):
    """A whole repository for flow tests: the issue thread plus labels, issues, files, check runs.

    Every request is recorded in `log` as "METHOD path", so tests and the GitHub-calls benchmark
    can count them.
    """

    def __init__(self, repo: str = "octo-org/widgets", **kw: Any) -> None:
        super().__init__(**kw)
        self.repo = repo
        self.head = "c0ffee" + "0" * 34
        self.files: dict[tuple[str, str], str] = {}
        self.dirs = ["app", "docs", "web"]
        self.labels: dict[str, dict[str, Any]] = {}
        self.issue_labels: dict[int, list[str]] = {}
        self.open_issues: list[dict[str, Any]] = []
        self.check_runs: list[dict[str, Any]] = []
        self.closed: list[int] = []
        self.log: list[str] = []
        self.pulls: dict[int, dict[str, Any]] = {}
        self.pull_files: dict[int, list[dict[str, Any]]] = {}
        self.reviews: dict[int, list[dict[str, Any]]] = {}
        self.check_updates: list[dict[str, Any]] = []

    def install(self, router: respx.MockRouter, repo: str | None = None) -> None:
        repo = repo or self.repo
        base = rf"{API}/repos/(?P<full>[^/]+/[^/]+)"
        router.get(url__regex=rf"{base}/commits/[^/?]+$").mock(side_effect=self._head)
        router.get(url__regex=rf"{base}/contents/(?P<path>[^?]*)").mock(side_effect=self._content)
        router.get(url__regex=rf"{base}/contents\?").mock(
            side_effect=lambda r, full: self._content(r, full, "")
        )
        router.get(url__regex=rf"{base}/labels").mock(side_effect=self._list_labels)
        router.post(url__regex=rf"{base}/labels$").mock(side_effect=self._create_label)
        router.post(url__regex=rf"{base}/issues/(?P<n>\d+)/labels").mock(side_effect=self._add_labels)
        router.get(url__regex=rf"{base}/issues\?").mock(side_effect=self._list_issues)
        router.patch(url__regex=rf"{base}/issues/(?P<n>\d+)$").mock(side_effect=self._update_issue)
        router.get(url__regex=rf"{base}/commits/\w+/check-runs").mock(side_effect=self._list_runs)
        router.get(url__regex=rf"{base}/pulls/(?P<n>\d+)$").mock(side_effect=self._pull)
        router.get(url__regex=rf"{base}/pulls/(?P<n>\d+)/files").mock(side_effect=self._files)
        router.get(url__regex=rf"{base}/pulls/(?P<n>\d+)/commits").mock(side_effect=self._commits)
        router.get(url__regex=rf"{base}/pulls/(?P<n>\d+)/reviews").mock(side_effect=self._reviews)
        router.post(url__regex=rf"{base}/pulls/(?P<n>\d+)/reviews").mock(side_effect=self._review)
        router.patch(url__regex=rf"{base}/check-runs/(?P<rid>\d+)").mock(side_effect=self._update_run)
        router.post(url__regex=rf"{base}/check-runs").mock(side_effect=self._create_run)
        super().install(router, repo)
        router.route(host="api.github.test").mock(side_effect=self._unexpected)

    def _unexpected(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    def _note(self, request: httpx.Request) -> None:
        self.log.append(f"{request.method} {request.url.path}")

    def _head(self, request: httpx.Request, full: str) -> httpx.Response:
        self._note(request)
        return httpx.Response(200, text=self.head)

    def _content(self, request: httpx.Request, full: str, path: str) -> httpx.Response:
        import base64

        self._note(request)
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
        self._note(request)
        return httpx.Response(200, json=list(self.labels.values()))

    def _create_label(self, request: httpx.Request, full: str) -> httpx.Response:
        self._note(request)
        label = json.loads(request.content)
        if label["name"].lower() in {n.lower() for n in self.labels}:
            return httpx.Response(422, json={"message": "Validation Failed"})
        self.labels[label["name"]] = label
        return httpx.Response(201, json=label)

    def _add_labels(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        current = self.issue_labels.setdefault(int(n), [])
        for name in json.loads(request.content)["labels"]:
            if name not in current:
                current.append(name)
        return httpx.Response(200, json=[{"name": name} for name in current])

    def _list_issues(self, request: httpx.Request, full: str) -> httpx.Response:
        self._note(request)
        wanted = request.url.params.get("labels")
        return httpx.Response(200, json=[i for i in self.open_issues if wanted in i.get("labels", [wanted])])

    def _update_issue(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        if json.loads(request.content).get("state") == "closed":
            self.closed.append(int(n))
        return httpx.Response(200, json={"number": int(n)})

    def _list_runs(self, request: httpx.Request, full: str) -> httpx.Response:
        self._note(request)
        return httpx.Response(200, json={"total_count": len(self.check_runs), "check_runs": self.check_runs})

    def _page(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        per = int(request.url.params.get("per_page", "30"))
        return httpx.Response(200, json=items[(page - 1) * per : page * per])

    def _pull(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        return httpx.Response(200, json=self.pulls[int(n)])

    def _files(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        return self._page(request, self.pull_files.get(int(n), []))

    def _commits(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        return self._page(
            request, [{"sha": "1" * 40, "commit": {"message": "Retry writes on lock\n\nDetails."}}]
        )

    def _reviews(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        return self._page(request, self.reviews.get(int(n), []))

    def _review(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        review = json.loads(request.content)
        review.update(
            id=len(self.reviews.get(int(n), [])) + 1, user={"login": "autopack[bot]", "type": "Bot"}
        )
        self.reviews.setdefault(int(n), []).append(review)
        return httpx.Response(200, json=review)

    def _update_run(self, request: httpx.Request, full: str, rid: str) -> httpx.Response:
        self._note(request)
        self.check_updates.append({"id": int(rid), **json.loads(request.content)})
        return httpx.Response(200, json={"id": int(rid)})

    def _create_run(self, request: httpx.Request, full: str) -> httpx.Response:
        self._note(request)
        self.check_runs.append(json.loads(request.content))
        return httpx.Response(201, json={"id": len(self.check_runs)})
