"""Ingest benchmark: durable webhook deliveries per second and latency, beside Probot and a floor.

Runs, on 127.0.0.1 and in one run so the machine's noise hits all of them alike:

- `autopack serve` as the README starts it (SQLite, WAL, synchronous=FULL, workers on), with
  GitHub and OpenAI faked with latency (bench/soak_fakes.py), so its workers triage the deliveries
  while it takes new ones;
- the same with `AUTOPACK_WORKERS=0` (the receiver alone), to show what the workers cost it;
- a minimal signature-only starlette receiver (the floor: verify and answer, nothing stored);
- Probot 14 with a handler that does nothing (installed from the npm registry into the bench's
  temporary directory when `node` and `npm` are available; it keeps nothing either).

wrk drives each at the given concurrencies; every request is a new delivery with its own id and its
own body, signed per request (bench/deliveries.lua), because Autopack refuses a body it has
already stored. At the end it checks durability: every delivery answered 2xx is in the database.

    python bench/ingest.py [--seconds 10] [--concurrency 16] [--payload issues/labeled.payload.json]

Needs `wrk` (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "github-webhooks"
SECRET = "bench-secret-" + uuid.uuid4().hex
PROBOT = "probot@14"
INSTALLATION = 4242
LUA = ROOT / "bench" / "deliveries.lua"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        .decode()
    )


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    port: int = field(default_factory=free_port)
    db: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/github/webhooks"

    def start(self, log: Path) -> None:
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env={**self.env, "PORT": str(self.port)},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def wait_healthy(self) -> None:
        assert self.proc is not None
        url = self.url if self.name != "fakes" else f"http://127.0.0.1:{self.port}/_soak/state"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.proc.returncode}")
            try:
                httpx.request("GET" if self.name == "fakes" else "POST", url, content=b"{}", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit(f"{self.name} did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def run_wrk(url: str, body_file: Path, event: str, concurrency: int, seconds: int) -> dict[str, float]:
    env = {
        **os.environ,
        "BENCH_BODY_FILE": str(body_file),
        "BENCH_SECRET": SECRET,
        "BENCH_EVENT": event,
        "BENCH_PATH": "/api/github/webhooks",
        "BENCH_RUN": uuid.uuid4().hex[:8],
    }
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "5s", "-s", str(LUA), url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def install_probot(work: Path) -> Path | None:
    """Probot from the npm registry, into the bench's own directory (never into the repository)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        print("node/npm not found: Probot is left out of the comparison")
        return None
    target = work / "probot"
    target.mkdir()
    (target / "package.json").write_text('{"name": "autopack-bench-probot", "private": true}')
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", PROBOT],
        cwd=target,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        print(f"npm install {PROBOT} failed, Probot is left out: {done.stderr.strip()[-300:]}")
        return None
    shutil.copy(ROOT / "bench" / "probot_receiver.mjs", target / "probot_receiver.mjs")
    return target


def bench_payload(source: Path, work: Path) -> Path:
    """The fixture with an installation (as every App delivery has), so the workers act on it."""
    payload = json.loads(source.read_text())
    payload["installation"] = {"id": INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI0Mg=="}
    target = work / "payload.json"
    target.write_text(json.dumps(payload))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--payload", default="issues/labeled.payload.json")
    parser.add_argument("--concurrency", default="16")
    parser.add_argument("--latency-ms", default="50-150", help="the fake GitHub's and model's latency")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    event = args.payload.split("/")[0]
    levels = [int(c) for c in args.concurrency.split(",")]
    work = Path(tempfile.mkdtemp(prefix="autopack-bench-"))
    payload = bench_payload(FIXTURES / args.payload, work)
    key = private_key()
    base_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AUTOPACK_", "OPENAI_", "ANTHROPIC_"))},
        "WEBHOOK_SECRET": SECRET,
        "LOG_LEVEL": "error",
        "PYTHONPATH": str(ROOT),
    }
    fake_port = free_port()
    fakes = Server(
        "fakes",
        [
            sys.executable,
            str(ROOT / "bench" / "soak_fakes.py"),
            str(fake_port),
            f"--latency-ms={args.latency_ms}",
        ],
        base_env,
        work,
        port=fake_port,
    )
    fake_url = f"http://127.0.0.1:{fakes.port}"
    servers: list[Server] = []
    for name, workers in (("autopack serve (workers on)", None), ("autopack serve, AUTOPACK_WORKERS=0", "0")):
        directory = work / f"autopack-{len(servers)}"
        directory.mkdir()
        env = {
            **base_env,
            "APP_ID": "1",
            "PRIVATE_KEY": key,
            "DATABASE_URL": f"sqlite:///{directory / 'autopack.db'}",
            "HOST": "127.0.0.1",
            "GITHUB_API_URL": fake_url,
            "OPENAI_API_KEY": "sk-bench-" + "0" * 40,
            "OPENAI_BASE_URL": fake_url + "/v1",
        }
        if workers is not None:
            env["AUTOPACK_WORKERS"] = workers
        servers.append(
            Server(name, [sys.executable, "-m", "app", "serve"], env, directory, db=directory / "autopack.db")
        )
    servers.append(
        Server(
            "floor: signature-only starlette",
            [sys.executable, str(ROOT / "bench" / "minimal_receiver.py")],
            base_env,
            work,
        )
    )
    probot_dir = install_probot(work)
    if probot_dir is not None:
        servers.append(
            Server(
                "Probot 14 (nothing stored)",
                ["node", "probot_receiver.mjs"],
                {**base_env, "PRIVATE_KEY": key, "BENCH_EVENT": event},
                probot_dir,
            )
        )
    try:
        fakes.start(work / "fakes.log")
        for server in servers:
            server.start(work / f"{server.port}.log")
        for server in [fakes, *servers]:
            server.wait_healthy()
        print(
            f"payload {args.payload} ({payload.stat().st_size} bytes, a new body per request), "
            f"{args.seconds}s per run after a 2s warm-up, wrk -t1, fake GitHub/model latency "
            f"{args.latency_ms} ms, client and servers on this machine ({os.cpu_count()} cores)"
        )
        results: dict[tuple[str, int], dict[str, float]] = {}
        answered: dict[str, int] = {}
        for concurrency in levels:
            for server in servers:
                runs = [run_wrk(server.url, payload, event, concurrency, 2)]  # warm-up
                runs.append(run_wrk(server.url, payload, event, concurrency, args.seconds))
                results[(server.name, concurrency)] = r = runs[-1]
                answered[server.name] = answered.get(server.name, 0) + int(
                    sum(x["requests"] - x["non2xx"] for x in runs)
                )
                print(
                    f"{server.name:36} c={concurrency:<3} {r['rps']:8.0f} req/s   "
                    f"p50 {r['p50_ms']:6.2f} ms   p99 {r['p99_ms']:6.2f} ms   errors {int(r['errors'])}"
                )
        print()
        reference = (
            "Probot 14 (nothing stored)" if probot_dir is not None else "floor: signature-only starlette"
        )
        for concurrency in levels:
            base = results[(reference, concurrency)]["rps"]
            for server in servers:
                if server.name != reference:
                    ratio = results[(server.name, concurrency)]["rps"] / base
                    print(f"c={concurrency:<3} {server.name:36} {ratio:5.2f} x {reference}")
        for server in servers:
            if server.db is None:
                continue
            with sqlite3.connect(server.db) as conn:
                stored = conn.execute(
                    "SELECT COUNT(*), COUNT(DISTINCT body_sha256) FROM deliveries"
                ).fetchone()
                jobs = dict(conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
            verdict = "every 2xx is stored" if stored[0] >= answered[server.name] else "LOST DELIVERIES"
            print(
                f"{server.name}: {stored[0]} deliveries stored ({stored[1]} distinct bodies) for "
                f"{answered[server.name]} answered 2xx ({verdict}); jobs by status {jobs}"
            )
    finally:
        for server in [*servers, fakes]:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
