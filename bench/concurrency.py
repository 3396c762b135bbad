"""Concurrency curve: end-to-end throughput as worker concurrency grows, when work waits on the network.

GitHub and the model are faked (bench/soak_fakes.py, its own process) answering each request after
100-300 ms. For each AUTOPACK_WORKERS value, a fresh `autopack serve` (SQLite, as the README starts
it) is given a backlog of deliveries (commands and feedback issues on distinct subjects), and the
bench times how long the effects take to appear on the fake GitHub: throughput in jobs per second,
and the CPU the service used (in cores), which shows where one process stops scaling.

    python bench/concurrency.py [--levels 1,2,4,8,16,32] [--latency-ms 100-300] [--per-worker 12]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from first_write import effect_of, wait_for_effects  # noqa: E402
from soak import HOOK, SECRET, Delivery, Process, build_deliveries, free_port, sign  # noqa: E402

from tests.support import private_key_pem  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def unfinished(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()[0]
        )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


async def run_level(
    workers: int, args: argparse.Namespace, env: dict[str, str], work: Path, fake_url: str
) -> str:
    count = max(20, args.per_worker * workers)
    namespace = argparse.Namespace(seed=workers, repos=8, subjects=count // 2, deliveries=count, bad_rate=0.0)
    deliveries, _ = build_deliveries(namespace)
    tag = uuid.uuid4().hex[:6]
    for d in deliveries:
        d.id = f"{tag}-{d.id}"
    directory = work / f"workers-{workers}"
    directory.mkdir()
    serve = Process(
        f"serve-{workers}",
        "serve",
        {**env, "DATABASE_URL": f"sqlite:///{directory / 'autopack.db'}", "AUTOPACK_WORKERS": str(workers)},
        directory / "serve.log",
    )
    try:
        serve.start()
        await serve.healthy()
        assert serve.proc is not None
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=16)) as client:
            registrations = [
                [d.repo, int(d.key.split(":")[1]), d.issue] for d in deliveries if d.key != "triage"
            ]
            await client.post(fake_url + "/_soak/comments", json=registrations, timeout=60)
            before = len((await client.get(fake_url + "/_soak/state", timeout=60)).json()["writes"])
            cpu_before = cpu_seconds(serve.proc.pid)
            started = time.monotonic()

            async def post(d: Delivery) -> None:
                headers = {
                    "content-type": "application/json",
                    "x-github-event": d.event,
                    "x-github-delivery": d.id,
                    "x-hub-signature-256": sign(d.body, SECRET),
                }
                await client.post(serve.url + HOOK, content=d.body, headers=headers, timeout=60)

            await asyncio.gather(*(post(d) for d in deliveries))
            while unfinished(directory / "autopack.db") and time.monotonic() - started < 600:
                await asyncio.sleep(0.1)
            elapsed = time.monotonic() - started
            cpu = cpu_seconds(serve.proc.pid) - cpu_before
            wanted = {effect_of(d) for d in deliveries}
            first = await wait_for_effects(client, fake_url, wanted, before)
    finally:
        serve.stop()
    seen = len(wanted & first.keys())
    return (
        f"AUTOPACK_WORKERS={workers:<3} {count:4d} jobs done in {elapsed:6.1f} s   "
        f"{count / elapsed:6.1f} jobs/s   service CPU {cpu / elapsed:4.2f} cores   "
        f"(effects seen {seen}/{len(wanted)})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="1,2,4,8,16,32")
    parser.add_argument("--latency-ms", default="100-300")
    parser.add_argument("--per-worker", type=int, default=12, help="deliveries per worker slot")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="autopack-concurrency-"))
    fake_port = free_port()
    fakes = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "soak_fakes.py"),
            str(fake_port),
            f"--latency-ms={args.latency_ms}",
        ],
        stdout=(work / "fakes.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    fake_url = f"http://127.0.0.1:{fake_port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AUTOPACK_", "OPENAI_", "ANTHROPIC_"))},
        "APP_ID": "12345",
        "PRIVATE_KEY": private_key_pem(),
        "WEBHOOK_SECRET": SECRET,
        "GITHUB_API_URL": fake_url,
        "OPENAI_API_KEY": "sk-bench-" + "0" * 40,
        "OPENAI_BASE_URL": fake_url + "/v1",
        "LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT),
    }
    print(
        f"fake GitHub and model answer after {args.latency_ms} ms; a backlog of {args.per_worker} deliveries "
        f"per worker slot (at least 20), commands and feedback issues; {os.cpu_count()} cores"
    )
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    if (await client.get(fake_url + "/_soak/state")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
        for level in (int(x) for x in args.levels.split(",")):
            print(await run_level(level, args, env, work, fake_url), flush=True)
    finally:
        fakes.terminate()
        fakes.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(main())
