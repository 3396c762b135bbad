"""A fake GitHub REST API on 127.0.0.1 for tests that run Autopack as a real process.

It serves what the command flow needs (App auth, permissions, issue comments, reactions) and can
hold one request open, so a test can kill the server at an exact point in a job.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_in_thread(app: Starlette) -> tuple[uvicorn.Server, threading.Thread, str]:
    """An ASGI app on a free 127.0.0.1 port, in a daemon thread; returns it once it listens."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("fake server did not start")
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


@dataclass
class FakeGitHub:
    comments: list[dict[str, Any]] = field(default_factory=list)
    reactions: list[tuple[int, str]] = field(default_factory=list)
    edits: int = 0
    hold: str | None = None  # a reaction content whose request is held open
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    base_url: str = ""

    def app(self) -> Starlette:
        async def app_info(_r: Request) -> JSONResponse:
            return JSONResponse({"id": 12345, "slug": "autopack"})

        async def token(_r: Request) -> JSONResponse:
            return JSONResponse(
                {"token": "ghs_fakeinstallationtoken0000000000000000", "expires_at": "2099-01-01T00:00:00Z"},
                201,
            )

        async def permission(r: Request) -> JSONResponse:
            user = r.path_params["user"]
            flags = {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True}
            return JSONResponse(
                {"permission": "admin", "role_name": "admin", "user": {"login": user, "permissions": flags}}
            )

        async def react(r: Request) -> JSONResponse:
            content = (await r.json())["content"]
            cid = int(r.path_params["cid"])
            if self.hold == content:
                self.held.set()
                await asyncio.to_thread(self.release.wait)
                return JSONResponse({"message": "server went away"}, 502)
            if (cid, content) not in self.reactions:
                self.reactions.append((cid, content))
            return JSONResponse({"id": 1, "content": content}, 201)

        async def list_comments(r: Request) -> JSONResponse:
            page = int(r.query_params.get("page", "1"))
            per = int(r.query_params.get("per_page", "30"))
            return JSONResponse(self.comments[(page - 1) * per : page * per])

        async def create_comment(r: Request) -> JSONResponse:
            comment = {
                "id": 70_000 + len(self.comments),
                "body": (await r.json())["body"],
                "user": {"login": "autopack[bot]", "type": "Bot"},
            }
            self.comments.append(comment)
            return JSONResponse(comment, 201)

        async def edit_comment(r: Request) -> JSONResponse:
            for comment in self.comments:
                if comment["id"] == int(r.path_params["cid"]):
                    comment["body"] = (await r.json())["body"]
                    self.edits += 1
                    return JSONResponse(comment)
            return JSONResponse({"message": "Not Found"}, 404)

        repo = "/repos/{owner}/{repo}"
        routes = [
            Route("/app", app_info),
            Route("/app/installations/{iid:int}/access_tokens", token, methods=["POST"]),
            Route(repo + "/collaborators/{user}/permission", permission),
            Route(repo + "/issues/comments/{cid:int}/reactions", react, methods=["POST"]),
            Route(repo + "/issues/{n:int}/comments", list_comments),
            Route(repo + "/issues/{n:int}/comments", create_comment, methods=["POST"]),
            Route(repo + "/issues/comments/{cid:int}", edit_comment, methods=["PATCH"]),
        ]
        return Starlette(routes=routes)

    def serve(self) -> str:
        """Start on a free port in a thread; returns the base URL."""
        self._server, self._thread, url = serve_in_thread(self.app())
        return url

    def stop(self) -> None:
        self.release.set()
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def bot_comments(self) -> list[dict[str, Any]]:
        return [c for c in self.comments if c["user"]["login"] == "autopack[bot]"]
