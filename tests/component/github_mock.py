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
        router.get(f"{API}/app").respond(200, json={"id": 12345, "slug": "autopack"})
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

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests.append(json.loads(request.content or b"{}"))
        return httpx.Response(201, json={"token": TOKEN, "expires_at": "2099-01-01T00:00:00Z"})

    def _permission(self, request: httpx.Request, user: str) -> httpx.Response:
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
        content = json.loads(request.content)["content"]
        existing = (int(cid), content) in self.reactions
        if not existing:
            self.reactions.append((int(cid), content))
        return httpx.Response(200 if existing else 201, json={"id": 1, "content": content})

    def _list(self, request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        per_page = int(request.url.params.get("per_page", "30"))
        return httpx.Response(200, json=self.comments[(page - 1) * per_page : page * per_page])

    def _create(self, request: httpx.Request) -> httpx.Response:
        comment = {
            "id": 50_000 + len(self.comments),
            "body": json.loads(request.content)["body"],
            "user": {"login": "autopack[bot]", "type": "Bot"},
        }
        self.comments.append(comment)
        return httpx.Response(201, json=comment)

    def _edit(self, request: httpx.Request, cid: str) -> httpx.Response:
        for comment in self.comments:
            if comment["id"] == int(cid):
                comment["body"] = json.loads(request.content)["body"]
                self.edits += 1
                return httpx.Response(200, json=comment)
        return httpx.Response(404, json={"message": "Not Found"})

    def bot_comments(self) -> list[dict[str, Any]]:
        return [c for c in self.comments if c["user"]["login"] == "autopack[bot]"]
