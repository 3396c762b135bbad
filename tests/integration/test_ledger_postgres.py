"""The usage ledger under several processes on PostgreSQL: no lost counts, no cap overshoot."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from app.inbox.store import Inbox

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]


def run_workers(url: str, processes: int, count: int, tokens: int, cap: int) -> list[tuple[int, int]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration.ledger_worker", url, str(count), str(tokens), str(cap)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        granted, refused = map(int, out.split())
        results.append((granted, refused))
    return results


def totals(url: str) -> dict[str, int]:
    async def go() -> dict[str, int]:
        inbox = Inbox.open(url)
        row = await inbox.db.run(
            lambda tx: tx.fetchone(
                "SELECT COUNT(*) AS calls, COALESCE(SUM(input_tokens + output_tokens), 0) AS tokens, "
                "SUM(CASE WHEN outcome = 'reserved' THEN 1 ELSE 0 END) AS open FROM llm_usage"
            )
        )
        inbox.close()
        assert row is not None
        return {k: int(v) for k, v in row.items()}

    return asyncio.run(go())


def migrate(url: str) -> None:
    async def go() -> None:
        inbox = Inbox.open(url)
        await inbox.migrate()
        inbox.close()

    asyncio.run(go())


def test_concurrent_writes_lose_no_counts(pg_url: str) -> None:
    migrate(pg_url)
    results = run_workers(pg_url, processes=4, count=50, tokens=100, cap=10**9)
    assert all(r == (50, 0) for r in results)
    assert totals(pg_url) == {"calls": 200, "tokens": 200 * 100, "open": 0}


def test_cap_is_never_overshot_under_concurrency(pg_url: str) -> None:
    migrate(pg_url)
    results = run_workers(pg_url, processes=4, count=25, tokens=100, cap=3_050)
    granted = sum(g for g, _ in results)
    refused = sum(r for _, r in results)
    assert granted == 30  # exactly what fits: 30 x 100 <= 3,050 < 31 x 100
    assert refused == 70
    assert totals(pg_url)["tokens"] == 3_000
