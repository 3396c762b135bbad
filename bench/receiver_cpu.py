"""The receiver's CPU per durable delivery, in one process, without HTTP.

`bench/ingest.py` measures the whole path over TCP beside Probot, and on a shared two-core machine
its rates move by a third between runs. This bench isolates the part Autopack's code decides: it
calls the web application's ASGI interface directly (as uvicorn would) with signed `issues.labeled`
deliveries, 16 at a time, against a fresh SQLite inbox with the workers off, and prints the CPU the
process spent per delivery (user and system, all threads: the commit's thread included), which
noise moves far less than a rate.

It runs the same deliveries a second time with the inbox write replaced by a no-op (an
experiment, not a mode), so the difference is what durability costs.

    python bench/receiver_cpu.py [--deliveries 4000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.service import Service  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.web.app import create_app  # noqa: E402
from tests.support import private_key_pem  # noqa: E402

SECRET = "bench-" + uuid.uuid4().hex
PATH = "/api/github/webhooks"
BODY = ROOT / "tests" / "fixtures" / "github-webhooks" / "issues" / "labeled.payload.json"
CONCURRENCY = 16

Request = tuple[bytes, list[tuple[bytes, bytes]]]


def deliveries(count: int) -> list[Request]:
    """Each with its own id and body (the inbox refuses a body it has stored), signed."""
    head = BODY.read_bytes().rstrip()[:-1]
    requests = []
    for n in range(count):
        body = head + b',"autopack_bench":"%d-%s"}' % (n, uuid.uuid4().hex.encode())
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "content-type": "application/json",
            "content-length": str(len(body)),
            "user-agent": "GitHub-Hookshot/bench",
            "x-github-event": "issues",
            "x-github-delivery": f"bench-{n}-{uuid.uuid4().hex[:8]}",
            "x-hub-signature-256": signature,
        }
        requests.append((body, [(k.encode(), v.encode()) for k, v in headers.items()]))
    return requests


async def post(app: Callable[..., Awaitable[None]], body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 3000),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def measure(directory: Path, requests: list[Request], *, store: bool) -> tuple[float, float]:
    """(deliveries per second, CPU µs per delivery) for one fresh service."""
    settings = Settings.load(
        app_id="1",
        private_key=private_key_pem(),
        webhook_secret=SECRET,
        database_url=f"sqlite:///{directory / 'autopack.db'}",
        autopack_workers=0,
        log_level="error",
    )
    service = Service(settings)
    assert service.inbox is not None
    await service.inbox.prepare()
    if not store:

        async def nothing(_delivery: Any, flows: Any, *, max_attempts: int) -> str:
            return "queued" if list(flows) else "ignored"

        service.inbox.record_delivery = nothing  # type: ignore[method-assign]
    app = create_app(service)
    await service.start()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(request: Request) -> int:
        async with gate:
            return await post(app, *request)

    try:
        await asyncio.gather(*(one(r) for r in requests[:200]))  # warm-up
        cpu, wall = time.process_time(), time.perf_counter()
        statuses = await asyncio.gather(*(one(r) for r in requests[200:]))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await service.stop()
    if set(statuses) != {202}:
        raise SystemExit(f"unexpected answers: {sorted(set(statuses))}")
    if store:
        with sqlite3.connect(directory / "autopack.db") as conn:
            (stored,) = conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()
        if stored != len(requests):
            raise SystemExit(f"{len(requests)} deliveries answered 202, {stored} in the inbox")
    count = len(requests) - 200
    return count / wall, cpu / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.pop("DATABASE_URL", None)
    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="autopack-receiver-cpu-") as work:
        for n in range(args.rounds):
            for store in (True, False):  # interleaved, so drift hits both alike
                directory = Path(work) / f"{n}-{store}"
                directory.mkdir()
                requests = deliveries(args.deliveries + 200)
                results[store].append(asyncio.run(measure(directory, requests, store=store)))
    print(
        f"{args.deliveries} signed issues.labeled deliveries ({BODY.stat().st_size} bytes each, "
        f"made unique) through the ASGI app, {CONCURRENCY} at a time, SQLite, workers off, "
        f"{args.rounds} rounds (median)"
    )
    labels = {True: "durable (the inbox, as shipped)", False: "inbox write replaced by a no-op"}
    for store, label in labels.items():
        rate = statistics.median(r for r, _ in results[store])
        cpu = statistics.median(c for _, c in results[store])
        print(f"{label:34} {rate:8.0f} deliveries/s   {cpu:6.0f} µs CPU a delivery")
    durable = statistics.median(c for _, c in results[True])
    free = statistics.median(c for _, c in results[False])
    print(f"durability costs {durable - free:.0f} µs of CPU a delivery ({durable / free:.1f}x the rest)")


if __name__ == "__main__":
    main()
