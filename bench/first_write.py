"""Delivery to first visible effect: from a delivery's 202 to its first write on GitHub.

Deliveries go out at a fixed rate (default 50/s): `/autopack help` comments, whose first write is
the 👀 reaction, and feedback issues, whose first write is the triage (the model answers at once;
GitHub is faked with the given latency, bench/soak_fakes.py). For each delivery it takes the time
between the receiver's 202 and the fake GitHub's arrival of its first write, and prints p50, p90,
p99 and the maximum, and the CPU the service's processes spent per delivery (what bounds the rate
one process keeps up with), for:

- `autopack serve` as the README starts it (SQLite, workers in the process, woken in-process);
- with a PostgreSQL URL (`--database-url`, default TEST_DATABASE_URL): `autopack serve` with
  `AUTOPACK_WORKERS=0` and one, then two, separate `autopack worker` processes, which learn of new
  jobs by LISTEN/NOTIFY (their poll interval is left at the default, so a missed wake-up would show
  as a second's delay).

    python bench/first_write.py [--rate 50] [--seconds 20] [--latency-ms 5-20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from soak import HOOK, SECRET, Delivery, Process, build_deliveries, free_port, sign  # noqa: E402

from tests.support import private_key_pem  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def first_writes(writes: list[list[Any]]) -> dict[str, float]:
    """Each effect's earliest write: "command:<comment id>" or "triage:<repo>#<issue>"."""
    first: dict[str, float] = {}
    for arrived, repo, issue, key, _what in writes:
        name = f"triage:{repo}#{issue}" if key == "triage" else key
        first[name] = min(arrived, first.get(name, arrived))
    return first


def effect_of(delivery: Delivery) -> str:
    return f"triage:{delivery.repo}#{delivery.issue}" if delivery.key == "triage" else delivery.key


async def send_at_rate(url: str, deliveries: list[Delivery], rate: float) -> dict[str, float]:
    """POST each delivery at its slot (i / rate after the start); returns id → time of its 202."""
    accepted: dict[str, float] = {}
    start = time.monotonic() + 0.2

    async def post(client: httpx.AsyncClient, index: int, d: Delivery) -> None:
        await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
        headers = {
            "content-type": "application/json",
            "x-github-event": d.event,
            "x-github-delivery": d.id,
            "x-hub-signature-256": sign(d.body, SECRET),
        }
        response = await client.post(url + HOOK, content=d.body, headers=headers, timeout=30)
        if response.status_code == 202:
            accepted[d.id] = time.time()

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits) as client:
        await asyncio.gather(*(post(client, i, d) for i, d in enumerate(deliveries)))
    return accepted


async def wait_for_effects(
    client: httpx.AsyncClient, fake_url: str, wanted: set[str], before: int
) -> dict[str, float]:
    deadline = time.monotonic() + 120
    while True:
        writes = (await client.get(fake_url + "/_soak/state", timeout=60)).json()["writes"][before:]
        first = first_writes(writes)
        if wanted <= first.keys() or time.monotonic() > deadline:
            return first
        await asyncio.sleep(0.5)


async def measure(name: str, processes: list[Process], fake_url: str, args: argparse.Namespace) -> str:
    warm_up = int(args.rate * 2)
    namespace = argparse.Namespace(
        seed=args.seed,
        repos=8,
        subjects=max(1, (int(args.rate * args.seconds) + warm_up) // 2),
        deliveries=int(args.rate * args.seconds) + warm_up,
        bad_rate=0.0,
    )
    everything, _ = build_deliveries(namespace)
    # Each run has its own ids, so one fake GitHub serves every configuration.
    tag = uuid.uuid4().hex[:6]
    for d in everything:
        d.id = f"{tag}-{d.id}"
    # Two seconds' worth first, not measured: the first job of each kind imports and builds what
    # the process keeps (githubkit's models, the tokenizer), which a running service has done.
    warm, deliveries = everything[:warm_up], everything[warm_up:]
    try:
        for p in processes:
            p.start()
        await asyncio.gather(*(p.healthy() for p in processes))
        async with httpx.AsyncClient() as client:
            registrations = [
                [d.repo, int(d.key.split(":")[1]), d.issue] for d in everything if d.key != "triage"
            ]
            await client.post(fake_url + "/_soak/comments", json=registrations, timeout=60)
            before = len((await client.get(fake_url + "/_soak/state", timeout=60)).json()["writes"])
            await send_at_rate(processes[0].url, warm, args.rate)
            await wait_for_effects(client, fake_url, {effect_of(d) for d in warm}, before)
            before = len((await client.get(fake_url + "/_soak/state", timeout=60)).json()["writes"])
            cpu_before = sum(p.cpu_seconds() for p in processes)
            accepted = await send_at_rate(processes[0].url, deliveries, args.rate)
            wanted = {effect_of(d) for d in deliveries if d.id in accepted}
            first = await wait_for_effects(client, fake_url, wanted, before)
            # Until the last first write: later writes (the triage's labels) are partly left out.
            cpu_per_delivery = (sum(p.cpu_seconds() for p in processes) - cpu_before) / len(deliveries)
    finally:
        for p in processes:
            p.stop()
    delays = [
        first[effect_of(d)] - accepted[d.id] for d in deliveries if d.id in accepted and effect_of(d) in first
    ]
    # A command on a subject whose earlier job is still running waits for it (one running job per
    # subject); its delay counts from its own 202, so it is never negative.
    delays = [max(0.0, x) for x in delays]
    missing = len(deliveries) - len(delays)
    if not delays:
        return f"{name}: no first writes seen ({missing} missing)"
    return (
        f"{name:52} n={len(delays):<5} p50 {percentile(delays, 0.5) * 1000:7.1f} ms   "
        f"p90 {percentile(delays, 0.9) * 1000:7.1f} ms   p99 {percentile(delays, 0.99) * 1000:7.1f} ms   "
        f"max {max(delays) * 1000:7.1f} ms   CPU {cpu_per_delivery * 1000:5.1f} ms a delivery"
        + (f"   MISSING {missing}" if missing else "")
    )


@contextlib.asynccontextmanager
async def fresh_schema(database_url: str, env: dict[str, str], work: Path) -> AsyncIterator[dict[str, str]]:
    """A migrated PostgreSQL schema for one run, dropped after it; yields the service's environment."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in database_url else "?"
    pg_env = {**env, "DATABASE_URL": f"{database_url}{sep}options=-csearch_path%3D{schema}"}
    try:
        subprocess.run(
            [sys.executable, "-m", "app", "migrate"], env=pg_env, check=True, capture_output=True, cwd=work
        )
        yield pg_env
    finally:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=50.0, help="deliveries per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--latency-ms", default="5-20", help="the fake GitHub's latency per request")
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, help="AUTOPACK_WORKERS (default: the service's default)")
    parser.add_argument(
        "--worker-processes",
        default="1,2",
        help="PostgreSQL: how many `autopack worker` processes, one run per comma-separated count",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="autopack-first-write-"))
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
    if args.workers is not None:
        env["AUTOPACK_WORKERS"] = str(args.workers)
    print(
        f"{args.rate:.0f} deliveries/s for {args.seconds:.0f} s (commands and feedback issues), "
        f"fake GitHub latency {args.latency_ms} ms, model answers at once; "
        f"time from the 202 to the first write on GitHub"
    )
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    if (await client.get(fake_url + "/_soak/state")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
        sqlite_env = {**env, "DATABASE_URL": f"sqlite:///{work / 'autopack.db'}"}
        serve = Process("serve", "serve", sqlite_env, work / "serve.log")
        print(await measure("SQLite: autopack serve (workers in the process)", [serve], fake_url, args))
        if args.database_url:
            for count in [int(n) for n in args.worker_processes.split(",")]:
                # A schema of its own per run: the receiver refuses a body it has already stored.
                async with fresh_schema(args.database_url, env, work) as pg_env:
                    receiver = Process("web", "serve", {**pg_env, "AUTOPACK_WORKERS": "0"}, work / "web.log")
                    workers = [
                        Process(f"worker-{i}", "worker", pg_env, work / f"worker-{i}.log")
                        for i in range(count)
                    ]
                    plural = "es" if count > 1 else ""
                    print(
                        await measure(
                            f"PostgreSQL: serve (no workers) + {count} worker process{plural}",
                            [receiver, *workers],
                            fake_url,
                            args,
                        )
                    )
        else:
            print("PostgreSQL: skipped (no --database-url and no TEST_DATABASE_URL)")
    finally:
        fakes.terminate()
        fakes.wait(timeout=30)
        print(f"logs in {work}" if os.environ.get("BENCH_KEEP") else "", end="")


if __name__ == "__main__":
    asyncio.run(main())
