"""The multi-replica soak, shortened (bench/soak.py runs the full 10,000-delivery version):
2 receivers and 3 workers on one PostgreSQL, 1,000 signed deliveries over 50 subjects with
redeliveries and bad signatures mixed in, one receiver and one worker killed with SIGKILL and
restarted mid-run. Nothing may be lost, duplicated or run beside another job of its subject."""

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
    assert report["deliveries_unique"] == 1000
    assert report["accepted"] == 1000
    assert report["processed_exactly_once"] == 1000
    assert report["lost"] == 0
    assert report["duplicated_effects"] == 0
    assert report["unexpected_effects"] == 0
    assert report["per_subject_overlaps"] == 0, report["overlap_examples"]
    assert report["stored_more_than_once"] == 0
    assert report["redeliveries_sent"] > 0
    assert report["redeliveries_answered_duplicate"] == report["redeliveries_sent"]
    assert report["bad_signatures_sent"] > 0
    assert report["bad_signatures_refused_401"] == report["bad_signatures_sent"]
    assert report["bad_signatures_stored"] == 0
    # The kill happened mid-run, both processes came back, and the killed worker's jobs were taken
    # back and finished.
    assert report["restarts"] == {"web0": 1, "worker0": 1}
    assert 0 < report["kill_at_seconds"] < report["sending_seconds"]
    assert report["jobs"] == {"done": 1000}
    assert report["llm_calls"] >= 50  # every subject's triage asked the model
    assert result.returncode == 0
