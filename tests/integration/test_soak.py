"""The multi-replica soak, shortened (bench/soak.py runs the full 10,000-delivery version):
2 receivers and 3 workers on one PostgreSQL, 1,000 signed deliveries over 50 subjects with
redeliveries and bad signatures mixed in, GitHub failing some jobs after their effect, one
receiver and one worker killed with SIGKILL and restarted mid-run. Nothing may be lost,
duplicated or run beside another job of its subject."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]


def test_soak_with_sigkill_loses_and_duplicates_nothing(pg_url: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            "--deliveries=1000",
            "--subjects=50",
            "--kill-at=0.4",
            "--json",
            f"--database-url={pg_url}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.stdout.strip(), result.stderr[-3000:]
    report = json.loads(result.stdout)
    facts = {
        "unique": report["deliveries_unique"],
        "accepted": report["accepted"],
        "exactly once": report["processed_exactly_once"],
        "lost": report["lost"],
        "duplicated": report["duplicated_effects"],
        "unexpected": report["unexpected_effects"],
        "overlaps": report["per_subject_overlaps"],
        "stored twice": report["stored_more_than_once"],
        "redeliveries not answered duplicate": report["redeliveries_sent"]
        - report["redeliveries_answered_duplicate"],
        "bad signatures not refused": report["bad_signatures_sent"] - report["bad_signatures_refused_401"],
        "bad signatures stored": report["bad_signatures_stored"],
        "restarts": report["restarts"],
        "jobs": report["jobs"],
    }
    assert facts == {
        "unique": 1000,
        "accepted": 1000,
        "exactly once": 1000,
        "lost": 0,
        "duplicated": 0,
        "unexpected": 0,
        "overlaps": 0,
        "stored twice": 0,
        "redeliveries not answered duplicate": 0,
        "bad signatures not refused": 0,
        "bad signatures stored": 0,
        "restarts": {"web0": 1, "worker0": 1},  # both came back after the SIGKILL
        "jobs": {"done": 1000},  # the killed worker's jobs were taken back and finished
    }, json.dumps(report, indent=1)[:6000]
    assert report["redeliveries_sent"] > 0
    assert report["bad_signatures_sent"] > 0
    assert 0 < report["kill_at_seconds"] < report["sending_seconds"]  # mid-run
    assert report["llm_calls"] >= 50  # every subject's triage asked the model
    # GitHub failed some jobs after their reply was posted; their retries found it instead of
    # posting again (without the marker search, this run reports duplicated effects: checked).
    assert report["github_failures_injected"] > 0
    assert result.returncode == 0
