"""The Grafana dashboard and the alert rules in manifests/monitoring load, have the shape their
tools expect, and only read metrics Autopack exports (a renamed metric would silence an alert).
`promtool check rules` runs on the rule groups here when promtool is installed, and in .ci/run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import app.metrics  # noqa: F401 - registers every Autopack metric

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "manifests" / "monitoring"
_NAME = re.compile(r"\b(autopack_[a-z_]+)\b")


def exported() -> set[str]:
    names: set[str] = set()
    for metric in REGISTRY.collect():
        names.add(metric.name)
        names |= {s.name for s in metric.samples}
        if metric.type == "counter":
            names.add(metric.name + "_total")
        if metric.type == "histogram":
            names |= {metric.name + suffix for suffix in ("_bucket", "_sum", "_count")}
    return names


def rules() -> dict[str, object]:
    data = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_the_prometheus_rule_has_the_operators_shape_and_every_alert_asked_for() -> None:
    data = rules()
    assert data["apiVersion"] == "monitoring.coreos.com/v1"
    assert data["kind"] == "PrometheusRule"
    (group,) = data["spec"]["groups"]  # type: ignore[index]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert set(alerts) == {
        "AutopackDeliveriesNotStored",
        "AutopackQueueStuck",
        "AutopackDeadJobs",
        "AutopackBudgetOver80Percent",
        "AutopackGitHubRateLimitLow",
        "AutopackModelShutdownSoon",
    }
    for rule in alerts.values():
        assert rule["expr"].count("(") == rule["expr"].count(")")
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"]
        assert re.fullmatch(r"\d+[smh]", rule["for"])
    assert "600" in alerts["AutopackQueueStuck"]["expr"]
    assert "0.8" in alerts["AutopackBudgetOver80Percent"]["expr"]
    assert "< 0.1" in alerts["AutopackGitHubRateLimitLow"]["expr"]
    assert "< 30" in alerts["AutopackModelShutdownSoon"]["expr"]


def test_the_dashboard_loads_and_shows_every_subject() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for subject in ("deliveries", "latency", "queue depth", "oldest", "job outcomes", "tokens", "cost",
                    "budget", "rate limit", "dead jobs"):  # fmt: skip
        assert subject in titles, subject
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p["targets"] and all(t["expr"] for t in p["targets"]) for p in dashboard["panels"])


def test_every_metric_they_read_is_one_autopack_exports() -> None:
    used = set(_NAME.findall((MONITORING / "prometheus-rules.yaml").read_text()))
    used |= set(_NAME.findall((MONITORING / "grafana-dashboard.json").read_text()))
    assert used
    assert sorted(used - exported()) == []


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool comes from Debian's prometheus package"
)
def test_promtool_accepts_the_rule_groups(tmp_path: Path) -> None:
    groups = tmp_path / "rules.yaml"
    groups.write_text(yaml.safe_dump(rules()["spec"]))
    result = subprocess.run(
        ["promtool", "check", "rules", str(groups)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout
