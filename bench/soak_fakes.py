"""GitHub and OpenAI as the soak test needs them, in their own process on 127.0.0.1, with latency.

Serves what the command flow (`/autopack help`) and feedback triage call, per repository and
issue, and records every write with its time so the soak can count effects: one reply per
command comment, one triage comment per issue, and whether two jobs of one subject ever
interleaved their writes. `GET /_soak/state` returns the record.

    python bench/soak_fakes.py PORT [--latency-ms 5-40] [--fail-rate 0.02]

`--fail-rate`: that share of command jobs get a 502 on their last write (the 👍 after the reply),
once: GitHub failing after the effect, so the retried job must find its reply instead of posting
a second one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import time
from collections import defaultdict
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

TOKEN = "ghs_soakinstallationtoken000000000000000"
MARKER = re.compile(r"<!-- autopack:(\S+?) -->")
TRIAGE_ANSWER = {
    "category": "bug",
    "severity": "medium",
    "area": "app",
    "summary": "Saving fails for large projects.",
    "warranted": False,
    "confidence": 0.4,
    "reasons": ["Needs a reproduction."],
    "questions": [],
    "duplicates": [],
}


class Fakes:
    def __init__(self, latency: tuple[float, float], fail_rate: float = 0.0) -> None:
        self.latency = latency
        self.fail_rate = fail_rate
        self.failed: set[tuple[str, int]] = set()  # (repo, comment id) whose 👍 failed once
        self.comments: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        self.next_comment = 5_000_000
        self.reactions: set[tuple[str, int, str]] = set()
        self.labels: dict[str, set[str]] = defaultdict(set)
        self.issue_labels: dict[tuple[str, int], set[str]] = defaultdict(set)
        # (arrival time, repo, issue, job key, what): every write that belongs to one job of one subject.
        self.writes: list[tuple[float, str, int, str, str]] = []
        self.requests = 0
        self.llm_calls = 0
        self.comment_issue: dict[tuple[str, int], int] = {}  # (repo, source comment id) → issue

    async def delay(self) -> None:
        self.requests += 1
        await asyncio.sleep(random.uniform(*self.latency))

    def app(self) -> Starlette:
        def repo_of(r: Request) -> str:
            return f"{r.path_params['owner']}/{r.path_params['repo']}"

        async def app_info(_r: Request) -> Response:
            await self.delay()
            return JSONResponse({"id": 12345, "slug": "autopack"})

        async def token(_r: Request) -> Response:
            await self.delay()
            return JSONResponse({"token": TOKEN, "expires_at": "2099-01-01T00:00:00Z"}, 201)

        async def permission(r: Request) -> Response:
            await self.delay()
            user = r.path_params["user"]
            flags = {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True}
            return JSONResponse(
                {"permission": "admin", "role_name": "admin", "user": {"login": user, "permissions": flags}}
            )

        async def react(r: Request) -> Response:
            arrived = time.time()
            await self.delay()
            repo, cid = repo_of(r), int(r.path_params["cid"])
            content = (await r.json())["content"]
            issue = self.comment_issue.get((repo, cid), 0)
            if content == "+1" and (repo, cid) not in self.failed and random.random() < self.fail_rate:
                self.failed.add((repo, cid))
                self.writes.append((arrived, repo, issue, f"command:{cid}", "failed"))
                return JSONResponse({"message": "Server Error"}, 502)
            self.writes.append((arrived, repo, issue, f"command:{cid}", f"reaction:{content}"))
            existing = (repo, cid, content) in self.reactions
            self.reactions.add((repo, cid, content))
            return JSONResponse({"id": 1, "content": content}, 200 if existing else 201)

        async def list_comments(r: Request) -> Response:
            await self.delay()
            thread = self.comments[(repo_of(r), int(r.path_params["n"]))]
            page = int(r.query_params.get("page", "1"))
            per = int(r.query_params.get("per_page", "30"))
            return JSONResponse(thread[(page - 1) * per : page * per])

        async def create_comment(r: Request) -> Response:
            arrived = time.time()
            await self.delay()
            repo, n = repo_of(r), int(r.path_params["n"])
            body = (await r.json())["body"]
            self.next_comment += 1
            comment = {
                "id": self.next_comment,
                "body": body,
                "user": {"login": "autopack[bot]", "type": "Bot"},
                "created_at": "2026-11-26T00:00:00Z",
            }
            self.comments[(repo, n)].append(comment)
            marker = MARKER.search(body)
            self.writes.append((arrived, repo, n, marker.group(1) if marker else "?", "comment"))
            return JSONResponse(comment, 201)

        async def edit_comment(r: Request) -> Response:
            arrived = time.time()
            await self.delay()
            repo, cid = repo_of(r), int(r.path_params["cid"])
            body = (await r.json())["body"]
            for (owner_repo, n), thread in self.comments.items():
                if owner_repo != repo:
                    continue
                for comment in thread:
                    if comment["id"] == cid:
                        comment["body"] = body
                        marker = MARKER.search(body)
                        self.writes.append((arrived, repo, n, marker.group(1) if marker else "?", "edit"))
                        return JSONResponse(comment)
            return JSONResponse({"message": "Not Found"}, 404)

        async def head(_r: Request) -> Response:
            await self.delay()
            return PlainTextResponse("c0ffee" + "0" * 34)

        async def contents(r: Request) -> Response:
            await self.delay()
            if r.path_params.get("path", "") == "":
                return JSONResponse(
                    [
                        {"name": "app", "type": "dir", "path": "app"},
                        {"name": "docs", "type": "dir", "path": "docs"},
                        {"name": "README.md", "type": "file", "path": "README.md"},
                    ]
                )
            return JSONResponse({"message": "Not Found"}, 404)

        async def list_issues(_r: Request) -> Response:
            await self.delay()
            return JSONResponse([])

        async def list_labels(r: Request) -> Response:
            await self.delay()
            return JSONResponse([{"name": n, "color": "ededed"} for n in sorted(self.labels[repo_of(r)])])

        async def create_label(r: Request) -> Response:
            await self.delay()
            label = await r.json()
            names = self.labels[repo_of(r)]
            if label["name"].lower() in {n.lower() for n in names}:
                return JSONResponse({"message": "Validation Failed"}, 422)
            names.add(label["name"])
            return JSONResponse(label, 201)

        async def add_labels(r: Request) -> Response:
            arrived = time.time()
            await self.delay()
            repo, n = repo_of(r), int(r.path_params["n"])
            current = self.issue_labels[(repo, n)]
            current.update((await r.json())["labels"])
            self.writes.append((arrived, repo, n, "triage", "labels"))
            return JSONResponse([{"name": name} for name in sorted(current)])

        async def chat(r: Request) -> Response:
            await self.delay()
            self.llm_calls += 1
            request = await r.json()
            return JSONResponse(
                {
                    "id": f"chatcmpl-{self.llm_calls}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": request.get("model", "gpt-6-luna"),
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "logprobs": None,
                            "message": {
                                "role": "assistant",
                                "content": json.dumps(TRIAGE_ANSWER),
                                "refusal": None,
                            },
                        }
                    ],
                    "usage": {
                        "prompt_tokens": 900,
                        "completion_tokens": 80,
                        "total_tokens": 980,
                        "prompt_tokens_details": {"cached_tokens": 0},
                    },
                }
            )

        async def register(r: Request) -> Response:
            """The soak tells which issue each command comment is on (GitHub would know it)."""
            for repo, cid, issue in await r.json():
                self.comment_issue[(repo, int(cid))] = int(issue)
            return JSONResponse({"ok": True})

        async def state(_r: Request) -> Response:
            replies: dict[str, int] = defaultdict(int)
            triage: dict[str, int] = defaultdict(int)
            for (repo, n), thread in self.comments.items():
                for comment in thread:
                    marker = MARKER.search(comment["body"])
                    if marker and marker.group(1).startswith("command:"):
                        replies[f"{repo}#{marker.group(1).split(':', 1)[1]}"] += 1
                    elif marker and marker.group(1) == "triage":
                        triage[f"{repo}#{n}"] += 1
            return JSONResponse(
                {
                    "replies": replies,
                    "triage": triage,
                    "writes": self.writes,
                    "requests": self.requests,
                    "llm_calls": self.llm_calls,
                    "injected_failures": len(self.failed),
                }
            )

        repo = "/repos/{owner}/{repo}"
        return Starlette(
            routes=[
                Route("/app", app_info),
                Route("/app/installations/{iid:int}/access_tokens", token, methods=["POST"]),
                Route(repo + "/collaborators/{user}/permission", permission),
                Route(repo + "/issues/comments/{cid:int}/reactions", react, methods=["POST"]),
                Route(repo + "/issues/comments/{cid:int}", edit_comment, methods=["PATCH"]),
                Route(repo + "/issues/{n:int}/comments", list_comments),
                Route(repo + "/issues/{n:int}/comments", create_comment, methods=["POST"]),
                Route(repo + "/issues/{n:int}/labels", add_labels, methods=["POST"]),
                Route(repo + "/issues", list_issues),
                Route(repo + "/commits/{ref}", head),
                Route(repo + "/contents", contents),
                Route(repo + "/contents/{path:path}", contents),
                Route(repo + "/labels", list_labels),
                Route(repo + "/labels", create_label, methods=["POST"]),
                Route("/v1/chat/completions", chat, methods=["POST"]),
                Route("/_soak/comments", register, methods=["POST"]),
                Route("/_soak/state", state),
            ]
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--latency-ms", default="5-40", help="uniform per-request latency range")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of 👍 answered 502 once")
    args = parser.parse_args()
    low, _, high = args.latency_ms.partition("-")
    fakes = Fakes((float(low) / 1000, float(high or low) / 1000), args.fail_rate)
    uvicorn.run(
        fakes.app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False, loop="uvloop"
    )


if __name__ == "__main__":
    main()
