"""Digest scheduling, ranking by code and the digest's text."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from app.policy.digest import (
    Cluster,
    Record,
    Rejected,
    Shipped,
    batches,
    check_schedule,
    clusters_schema,
    due_at,
    impact,
    iso_week,
    rank,
    render,
    representative,
)
from app.policy.repo_policy import PolicyError, parse

THURSDAY = dt.datetime(2026, 11, 26, 17, 0, tzinfo=dt.UTC).timestamp()


def record(
    number: int, severity: str = "low", reactions: int = 0, reporter: str = "a", area: str = "x"
) -> Record:
    return Record(number, f"t{number}", "s", "bug", severity, area, reactions, reporter)


def test_schedule_parsing_and_due_times() -> None:
    assert check_schedule("FRI 09:30") == "FRI 09:30"
    for bad in ("fri 09:30", "MON 24:00", "MONDAY 06:00", "MON 6:00"):
        with pytest.raises(ValueError, match="MON 06:00"):
            check_schedule(bad)
    assert dt.datetime.fromtimestamp(due_at("MON 06:00", THURSDAY), dt.UTC) == dt.datetime(
        2026, 11, 23, 6, 0, tzinfo=dt.UTC
    )
    assert dt.datetime.fromtimestamp(due_at("SUN 23:59", THURSDAY), dt.UTC).day == 29
    assert iso_week(THURSDAY) == "2026-W48"
    assert parse("digest:\n  schedule: WED 12:00\n  auto_propose: 2\n").digest.auto_propose == 2
    with pytest.raises(PolicyError, match=r"digest\.schedule"):
        parse("digest:\n  schedule: whenever\n")


def test_the_schema_allows_only_the_listed_numbers() -> None:
    schema = clusters_schema([7, 8])
    ok = {"clusters": [{"theme": "t", "area": "a", "issues": [7], "feasibility": 3, "why": "w"}]}
    assert schema.model_validate(ok)
    with pytest.raises(ValidationError):
        schema.model_validate({"clusters": [{**ok["clusters"][0], "issues": [9]}]})
    with pytest.raises(ValidationError):
        schema.model_validate({"clusters": [{**ok["clusters"][0], "feasibility": 9}]})


def test_impact_comes_from_data() -> None:
    assert impact([record(1, "high", reporter="a"), record(2, "low", reporter="b")]) == 2 + 2 * 3
    assert impact([record(1, reactions=3)]) == 1 + 2 + 2.0
    assert impact([]) == 0.0


def test_rank_merges_batches_drops_unknown_or_repeated_numbers_and_orders_by_score() -> None:
    records = {n: record(n, "critical" if n == 3 else "low", reporter=f"r{n}") for n in (1, 2, 3)}
    answers = [
        {"theme": "Big", "area": "x", "issues": [1, 2, 99], "feasibility": 1, "why": "w"},
        {"theme": "small", "area": "x", "issues": [3, 1], "feasibility": 5, "why": "w"},
        {"theme": "big", "area": "X", "issues": [2], "feasibility": 3, "why": "w"},  # merged into "Big"
    ]
    ranked = rank(answers, records)
    assert [(c.theme, c.issues) for c in ranked] == [("small", (3,)), ("Big", (1, 2))]
    assert ranked[0].score == (1 + 8) * 5
    assert ranked[1].feasibility == 1  # merged clusters keep the lower feasibility


def test_representative_and_batches() -> None:
    records = {1: record(1, "low", 50), 2: record(2, "high", 0), 3: record(3, "high", 2)}
    assert representative(Cluster("t", "a", (1, 2, 3), 3, "w"), records) == 3
    many = [record(n, area="b" if n % 2 else "a") for n in range(250)]
    cut = batches(many, size=120)
    assert [len(b) for b in cut] == [120, 120, 10]
    assert all(r.area == "a" for r in cut[0])


def test_render_neutralises_and_lists_everything() -> None:
    text = render(
        week="2026-W48",
        clusters=[Cluster("Saving @team <b>x</b>", "storage", (7, 8), 4, "w", 9.0)],
        shipped=[Shipped(100, 7, "Retry writes")],
        rejected=[Rejected(101, 9, "see https://evil.test")],
        cost=0.1234,
        tokens=5_000,
        proposed=[7],
        model="gpt-6.2-sol",
    )
    assert "@team" not in text
    assert "<b>" not in text
    assert "evil.test" not in text
    assert "| 1 | Saving" in text
    assert "9 × 4 = **36** |" in text
    assert "#100 (Retry writes), for #7" in text
    assert "5,000 tokens, $0.1234" in text
    assert "Proposals started from this digest: #7." in text


def test_the_trend_chart_is_mermaid_github_renders() -> None:
    from app.policy.digest import WeekPoint, trend_chart

    points = [
        WeekPoint("2026-11-16", 2, 0.01),
        WeekPoint("2026-11-23", 5, 0.25),
        WeekPoint("2026-11-30", 0, 0.0),
    ]
    chart = trend_chart(points)
    assert chart.startswith("```mermaid\nxychart-beta")
    assert 'x-axis ["11-16", "11-23", "11-30"]' in chart
    assert "bar [2, 5, 0]" in chart
    assert "line [0.0100, 0.2500, 0.0000]" in chart
    assert 'y-axis "issues" 0 --> 5' in chart
    assert trend_chart(points[:1]) == ""  # one week is no trend
