"""Secret detection quality: recall and false positives per family, side by side with the references.

Runs on the labelled corpus in `tests/secrets_corpus.py` (every true sample is a secret in context;
every false sample is a placeholder or a lookalike that must not be reported) and on ordinary code
(the standard library's modules, tests excluded), and prints for each detector:

- recall per family (a true sample counts when a finding covers the whole secret);
- labelled negatives flagged;
- findings per 10,000 lines of ordinary code (each one a false positive there).

References in the same run: detect-secrets with all its default plugins (installed with Autopack),
and gitleaks with its default configuration when a `gitleaks` binary is on PATH.

    python bench/secrets_recall.py [--code-files 1500]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.policy import secrets
from tests.secrets_corpus import FALSE, TRUE, Sample

Detector = Callable[[str, str], list[str]]  # (text, path) → the values it reports


def autopack(text: str, path: str) -> list[str]:
    return [text[s.start : s.end] for s in secrets.find(text, path)]


def detect_secrets_all(text: str, path: str) -> list[str]:
    """detect-secrets as its CLI runs: every default plugin and its default filters, on a file."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        collection = SecretsCollection()
        with default_settings():
            collection.scan_file(str(target))
        return [str(s.secret_value) for _, s in collection if s.secret_value]


def gitleaks(samples: list[tuple[str, str]]) -> list[list[str]] | None:
    """Findings per sample from the gitleaks binary (None when it is not installed)."""
    binary = shutil.which("gitleaks")
    if binary is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        for i, (text, path) in enumerate(samples):
            target = Path(tmp) / str(i) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                binary,
                "detect",
                "--no-git",
                "--source",
                tmp,
                "--report-format",
                "json",
                "--report-path",
                str(report),
            ],
            capture_output=True,
            check=False,
        )
        found: list[list[str]] = [[] for _ in samples]
        for item in json.loads(report.read_text() or "[]"):
            index = int(Path(item["File"]).relative_to(tmp).parts[0])
            found[index].append(str(item.get("Secret") or ""))
        return found


def covered(sample: Sample, values: list[str]) -> bool:
    return sample.secret is not None and any(sample.secret in v or v == sample.secret for v in values if v)


def ordinary_code(limit: int) -> list[tuple[str, str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [
        p
        for p in sorted(root.rglob("*.py"))
        if not {"test", "tests", "idlelib", "site-packages", "dist-packages"} & set(p.relative_to(root).parts)
    ]
    return [(p.read_text(errors="replace"), str(p.relative_to(root))) for p in files[:limit]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--code-files", type=int, default=1500)
    args = parser.parse_args()
    code = ordinary_code(args.code_files)
    lines = sum(text.count("\n") + 1 for text, _ in code)
    detectors: dict[str, Detector] = {
        "autopack": autopack,
        "detect-secrets (all plugins)": detect_secrets_all,
    }
    results: dict[str, dict[str, object]] = {}
    for name, detector in detectors.items():
        started = time.perf_counter()
        true_hits = [covered(s, detector(s.text, s.path)) for s in TRUE]
        false_hits = [bool(detector(s.text, s.path)) for s in FALSE]
        code_findings = sum(len(detector(text, path)) for text, path in code)
        results[name] = {
            "true": true_hits,
            "false": false_hits,
            "code": code_findings,
            "seconds": time.perf_counter() - started,
        }
    leaks_true = gitleaks([(s.text, s.path) for s in TRUE])
    if leaks_true is not None:
        leaks_false = gitleaks([(s.text, s.path) for s in FALSE]) or []
        leaks_code = gitleaks(code) or []
        results["gitleaks (default config)"] = {
            "true": [covered(s, v) for s, v in zip(TRUE, leaks_true, strict=True)],
            "false": [bool(v) for v in leaks_false],
            "code": sum(len(v) for v in leaks_code),
            "seconds": 0.0,
        }

    print(f"corpus: {len(TRUE)} secrets in context, {len(FALSE)} labelled negatives")
    print(f"ordinary code: {lines:,} lines of the standard library")
    print()
    print(
        f"{'detector':32} {'recall':>7} {'negatives flagged':>18} {'per 10k code lines':>19} {'seconds':>8}"
    )
    for name, r in results.items():
        true_hits = r["true"]
        assert isinstance(true_hits, list)
        recall = sum(true_hits) / len(true_hits)
        flagged = sum(r["false"])  # type: ignore[arg-type]
        per_10k = int(r["code"]) / lines * 10_000  # type: ignore[call-overload]
        seconds = float(r["seconds"])  # type: ignore[arg-type]
        print(f"{name:32} {recall:>7.2f} {flagged:>9} of {len(FALSE):<6} {per_10k:>19.1f} {seconds:>8.1f}")
    if "gitleaks (default config)" not in results:
        print("gitleaks: not installed here (no binary on PATH); its numbers are not in this run")
    print()
    families: dict[str, list[int]] = defaultdict(list)
    for i, sample in enumerate(TRUE):
        families[sample.family].append(i)
    names = list(results)
    print(f"{'family':14} {'samples':>7} " + " ".join(f"{n[:16]:>16}" for n in names))
    for family, indexes in sorted(families.items()):
        cells = []
        for n in names:
            hits = results[n]["true"]
            assert isinstance(hits, list)
            cells.append(f"{sum(hits[i] for i in indexes)}/{len(indexes)}")
        print(f"{family:14} {len(indexes):>7} " + " ".join(f"{c:>16}" for c in cells))
    missed = [s for s, hit in zip(TRUE, results["autopack"]["true"], strict=True) if not hit]  # type: ignore[call-overload]
    flagged = [s for s, hit in zip(FALSE, results["autopack"]["false"], strict=True) if hit]  # type: ignore[call-overload]
    for s in missed:
        print(f"autopack missed: {s.family}/{s.name}")
    for s in flagged:
        print(f"autopack flagged a negative: {s.family}/{s.name}")


if __name__ == "__main__":
    main()
