"""Ingest benchmark: durable webhook deliveries per second and latency percentiles.

Starts `autopack serve` (SQLite, WAL, synchronous=FULL, group commit) and a minimal
signature-only starlette receiver side by side, then drives each with wrk (a Lua script gives every
request a unique X-GitHub-Delivery) at concurrency 1, 16 and 64, and prints throughput, p50 and
p99 for both and the ratio. Everything runs on 127.0.0.1.

    python bench/ingest.py [--seconds 10] [--payload issues/labeled.payload.json]

Needs `wrk` (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "github-webhooks"
SECRET = "bench-secret-" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            httpx.post(url, content=b"{}", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def run_wrk(url: str, body_file: Path, event: str, concurrency: int, seconds: int) -> dict[str, float]:
    body = body_file.read_bytes()
    env = {
        **os.environ,
        "BENCH_BODY_FILE": str(body_file),
        "BENCH_SIGNATURE": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        "BENCH_EVENT": event,
        "BENCH_PATH": "/api/github/webhooks",
        "BENCH_RUN": uuid.uuid4().hex[:8],
    }
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "-s",
            str(ROOT / "bench" / "deliveries.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--payload", default="issues/labeled.payload.json")
    parser.add_argument("--concurrency", default="1,16,64")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    payload = FIXTURES / args.payload
    event = args.payload.split("/")[0]
    levels = [int(c) for c in args.concurrency.split(",")]
    work = Path(tempfile.mkdtemp(prefix="autopack-bench-"))
    db = work / "autopack.db"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        .decode()
    )
    base_env = {**os.environ, "WEBHOOK_SECRET": SECRET, "LOG_LEVEL": "warning"}
    servers = {}
    procs = []
    try:
        port = free_port()
        autopack = subprocess.Popen(
            [sys.executable, "-m", "app", "serve"],
            cwd=work,
            env={
                **base_env,
                "APP_ID": "1",
                "PRIVATE_KEY": key,
                "DATABASE_URL": f"sqlite:///{db}",
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "GITHUB_API_URL": "http://127.0.0.1:9",
                # Receiver only: the benchmark measures ingest (verify, commit the delivery and its
                # job, answer), not the flows, whose jobs would compete for the same two cores.
                "AUTOPACK_WORKERS": "0",
            },
        )
        procs.append(autopack)
        servers["autopack serve (durable)"] = (f"http://127.0.0.1:{port}/api/github/webhooks", autopack)
        port2 = free_port()
        minimal = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "minimal_receiver.py")],
            cwd=work,
            env={**base_env, "PORT": str(port2)},
        )
        procs.append(minimal)
        servers["minimal signature-only"] = (f"http://127.0.0.1:{port2}/api/github/webhooks", minimal)
        for url, proc in servers.values():
            wait_healthy(url, proc)
        print(
            f"payload {args.payload} ({payload.stat().st_size} bytes), {args.seconds}s per run, "
            f"wrk -t1, client and servers on this machine ({os.cpu_count()} cores)"
        )
        results: dict[tuple[str, int], dict[str, float]] = {}
        for concurrency in levels:
            for name, (url, _) in servers.items():
                run_wrk(url, payload, event, concurrency, 2)  # warm-up
                results[(name, concurrency)] = r = run_wrk(url, payload, event, concurrency, args.seconds)
                print(
                    f"{name:26} c={concurrency:<3} {r['rps']:9.0f} req/s   p50 {r['p50_ms']:6.2f} ms   "
                    f"p99 {r['p99_ms']:6.2f} ms   errors {int(r['errors'])}"
                )
        print()
        for concurrency in levels:
            a = results[("autopack serve (durable)", concurrency)]
            m = results[("minimal signature-only", concurrency)]
            print(f"c={concurrency:<3} durable/minimal throughput ratio {a['rps'] / m['rps']:.2f}")
        with sqlite3.connect(db) as conn:
            stored = conn.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM deliveries").fetchone()
            jobs = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
            states = dict(conn.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall())
        answered = sum(
            r["requests"] - r["non2xx"] for (n, _), r in results.items() if n.startswith("autopack")
        )
        print(
            f"deliveries stored: {stored[0]} (distinct {stored[1]}; by status {states}; {jobs} jobs); "
            f"2xx answers in the measured runs (warm-ups not counted): {int(answered)}"
        )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
