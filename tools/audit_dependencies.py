"""Known vulnerabilities in every installed dependency, with pip-audit; fails on any that is not
accepted (with a reason) in tools/accepted-vulnerabilities.txt.

pip-audit asks PyPI's per-release JSON (`/pypi/NAME/VERSION/json`) for each package. Where only the
project-level JSON is reachable (some mirrors and proxies), pip-audit skips every package as "not
found" and would pass having audited nothing. So those packages are audited here from the
project-level JSON, whose `vulnerabilities` describe the latest release: exact for a package
installed at its latest version. Whatever still could not be audited is listed; `--strict` (the
GitHub workflow) fails on it, the default only reports it.

Usage: python tools/audit_dependencies.py [--strict]   (run with the environment's own python)
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCEPTED = Path(__file__).with_name("accepted-vulnerabilities.txt")
NOT_FOUND = "not found on PyPI"


@dataclass
class Report:
    findings: list[str] = field(default_factory=list)  # "name version: ID (fixed in …)"
    accepted: list[str] = field(default_factory=list)
    audited: int = 0
    unaudited: list[str] = field(default_factory=list)


def parse_accepted(text: str) -> dict[str, str]:
    """ID → reason. An entry without a reason is an error: exceptions must be justified."""
    accepted: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        vuln, _, reason = line.partition("#")
        if not reason.strip():
            raise ValueError(f"accepted-vulnerabilities.txt:{number}: {vuln.strip()} has no reason")
        accepted[vuln.strip()] = reason.strip()
    return accepted


def _ids(vuln: dict[str, Any]) -> set[str]:
    return {str(vuln.get("id", "")), *map(str, vuln.get("aliases", []))}


def judge(
    audit: dict[str, Any],
    installed: dict[str, str],
    project_json: dict[str, dict[str, Any] | None],
    accepted: dict[str, str],
) -> Report:
    """Pure: pip-audit's JSON, the installed versions, the project-level PyPI JSON of the packages
    pip-audit could not find, and the accepted IDs → what to report."""
    report = Report()

    def record(name: str, version: str, vulns: list[dict[str, Any]]) -> None:
        for vuln in vulns:
            if vuln.get("withdrawn"):
                continue
            ids = _ids(vuln)
            fixed = vuln.get("fix_versions") or vuln.get("fixed_in") or []
            line = f"{name} {version}: {vuln.get('id')} (fixed in {', '.join(fixed) or 'no release yet'})"
            (report.accepted if ids & accepted.keys() else report.findings).append(line)

    for dep in audit.get("dependencies", []):
        name = dep["name"]
        version = dep.get("version") or installed.get(canonical(name), "?")
        reason = dep.get("skip_reason")
        if reason is None:
            report.audited += 1
            record(name, version, dep.get("vulns", []))
        elif NOT_FOUND in reason:
            project = project_json.get(name)
            if project is not None and project.get("info", {}).get("version") == version:
                report.audited += 1
                record(name, version, project.get("vulnerabilities", []))
            else:
                latest = (project or {}).get("info", {}).get("version", "unknown")
                report.unaudited.append(f"{name} {version} (latest {latest}: no per-release data here)")
        elif "editable" not in reason:
            report.unaudited.append(f"{name} {version}: {reason}")
    return report


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions() -> dict[str, str]:
    return {canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}


def _project_json(name: str) -> dict[str, Any] | None:
    url = f"https://pypi.org/pypi/{name}/json"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data: dict[str, Any] = json.load(response)
            return data
    except (OSError, ValueError):
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strict", action="store_true", help="fail when a package could not be audited")
    args = parser.parse_args()
    accepted = parse_accepted(ACCEPTED.read_text())
    ignore = [f"--ignore-vuln={vuln}" for vuln in accepted]
    run = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "pip_audit",
            "--skip-editable",
            "--format=json",
            "--progress-spinner=off",
            *ignore,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        audit = json.loads(run.stdout)
    except ValueError:
        print(f"pip-audit failed (exit {run.returncode}):\n{run.stderr}", file=sys.stderr)
        return 2
    missing = [d["name"] for d in audit.get("dependencies", []) if NOT_FOUND in (d.get("skip_reason") or "")]
    with ThreadPoolExecutor(8) as pool:
        fetched = dict(zip(missing, pool.map(_project_json, missing), strict=True))
    report = judge(audit, installed_versions(), fetched, accepted)
    # pip-audit leaves accepted findings out; list them from the file so they stay visible.
    for vuln, reason in accepted.items():
        print(f"accepted: {vuln} — {reason}")
    for line in report.accepted:
        print(f"accepted: {line}")
    print(f"audited {report.audited} packages ({len(missing)} from PyPI's project-level data)")
    if report.unaudited:
        print(f"NOT audited ({len(report.unaudited)}):")
        for line in report.unaudited:
            print(f"  {line}")
    if report.findings:
        print(f"KNOWN VULNERABILITIES ({len(report.findings)}):", file=sys.stderr)
        for line in report.findings:
            print(f"  {line}", file=sys.stderr)
        return 1
    if args.strict and report.unaudited:
        print("--strict: every package must be audited", file=sys.stderr)
        return 1
    print("no known vulnerabilities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
