"""tools/audit_dependencies.py's decision: a known vulnerability fails unless accepted with a
reason; packages pip-audit could not look up are audited from PyPI's project-level data only when
installed at the latest release, and listed otherwise."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

PATH = Path(__file__).resolve().parents[2] / "tools" / "audit_dependencies.py"


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_dependencies", PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


VULN = {"id": "PYSEC-2099-1", "aliases": ["CVE-2099-0001", "GHSA-aaaa-bbbb-cccc"], "fix_versions": ["2.0.1"]}
AUDIT = {
    "dependencies": [
        {"name": "clean", "version": "1.0", "vulns": []},
        {"name": "leaky", "version": "2.0", "vulns": [VULN]},
        {"name": "autopack", "skip_reason": "distribution marked as editable"},
        {
            "name": "at-latest",
            "skip_reason": "Dependency not found on PyPI and could not be audited: at-latest (3.1)",
        },
        {
            "name": "Old_Pkg",
            "skip_reason": "Dependency not found on PyPI and could not be audited: old-pkg (0.9)",
        },
    ]
}
INSTALLED = {"at-latest": "3.1", "old-pkg": "0.9"}


def test_a_known_vulnerability_is_a_finding(tool: ModuleType) -> None:
    projects = {"at-latest": {"info": {"version": "3.1"}, "vulnerabilities": []}, "Old_Pkg": None}
    report = tool.judge(AUDIT, INSTALLED, projects, {})
    assert report.findings == ["leaky 2.0: PYSEC-2099-1 (fixed in 2.0.1)"]
    assert report.audited == 3
    assert report.unaudited == ["Old_Pkg 0.9 (latest unknown: no per-release data here)"]


def test_an_accepted_alias_is_reported_not_failed(tool: ModuleType) -> None:
    report = tool.judge(AUDIT, INSTALLED, {}, {"GHSA-aaaa-bbbb-cccc": "not reachable from our code"})
    assert report.findings == []
    assert report.accepted == ["leaky 2.0: PYSEC-2099-1 (fixed in 2.0.1)"]


def test_project_level_data_counts_only_for_the_latest_release(tool: ModuleType) -> None:
    advisory = {"id": "GHSA-x", "aliases": [], "fixed_in": ["3.2"], "withdrawn": None}
    withdrawn = {"id": "GHSA-w", "aliases": [], "fixed_in": [], "withdrawn": "2099-01-01"}
    projects = {
        "at-latest": {"info": {"version": "3.1"}, "vulnerabilities": [advisory, withdrawn]},
        "Old_Pkg": {"info": {"version": "1.0"}, "vulnerabilities": [advisory]},
    }
    report = tool.judge(AUDIT, INSTALLED, projects, {})
    assert "at-latest 3.1: GHSA-x (fixed in 3.2)" in report.findings
    assert not any("GHSA-w" in line for line in report.findings)
    assert not any(line.startswith("Old_Pkg") for line in report.findings)  # 0.9 is not 1.0's data
    assert report.unaudited == ["Old_Pkg 0.9 (latest 1.0: no per-release data here)"]


def test_accepted_entries_need_a_reason(tool: ModuleType) -> None:
    assert tool.parse_accepted("# header\n\nPYSEC-1  # only in a dev tool\n") == {
        "PYSEC-1": "only in a dev tool"
    }
    with pytest.raises(ValueError, match="PYSEC-2 has no reason"):
        tool.parse_accepted("PYSEC-2\n")
    assert tool.parse_accepted(PATH.with_name("accepted-vulnerabilities.txt").read_text()) == {}
