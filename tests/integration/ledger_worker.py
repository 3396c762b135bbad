"""A process that makes N ledger reservations of T tokens against a cap and settles each.

Usage: python -m tests.integration.ledger_worker DATABASE_URL N TOKENS CAP
Prints "granted refused".
"""

from __future__ import annotations

import asyncio
import sys

from app.inbox.db import connect
from app.llm.ledger import BudgetExceeded, CallMeta, Caps, Ledger


async def main(url: str, count: int, tokens: int, cap: int) -> None:
    db = connect(url)
    ledger = Ledger(db)
    meta = CallMeta(installation_id=1, repository="o/r", task="audit", role="auditor", category="general")
    granted = refused = 0

    async def one() -> None:
        nonlocal granted, refused
        try:
            reservation = await ledger.reserve(meta, "openai", "gpt-6.2-sol", tokens, Caps(cap, None, None))
        except BudgetExceeded:
            refused += 1
            return
        await ledger.settle(
            reservation,
            outcome="ok",
            model="gpt-6.2-sol",
            input_tokens=tokens - 10,
            output_tokens=10,
            cost=0.001,
        )
        granted += 1

    await asyncio.gather(*(one() for _ in range(count)))
    db.close()
    print(granted, refused)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
