"""The baseline: a minimal starlette receiver that only checks the signature and answers 202.

Run by bench/ingest.py with the same uvicorn settings as `autopack serve`, so the ratio between
the two is what durability (and routing) costs.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SECRET = os.environ["WEBHOOK_SECRET"].encode()


async def receive(request: Request) -> Response:
    body = await request.body()
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("x-hub-signature-256", "")):
        return JSONResponse({"error": "bad signature"}, 401)
    return JSONResponse({"delivery": request.headers.get("x-github-delivery"), "status": "queued"}, 202)


app = Starlette(routes=[Route("/api/github/webhooks", receive, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        server_header=False,
    )
