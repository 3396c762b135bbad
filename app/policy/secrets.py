"""Secrets in added lines, reported redacted. Pure: diff lines in, findings out.

Detection uses Yelp's detect-secrets (a maintained, widely used detector set): its pattern plugins
for AWS, GitHub, OpenAI, Slack, Stripe and private-key blocks, and its keyword plugin for values
assigned to secret-looking names (kept only when the value has enough entropy to be a real secret,
not a placeholder). Two kinds it does not cover are added here: GitHub fine-grained tokens
(`github_pat_`) and Anthropic keys (`sk-ant-`), plus OpenAI's project and service-account keys.

A finding keeps only a redacted form — a short prefix and the length — so the value never reaches a
check run, a log line, the database or a model prompt (`redact_text` cleans text before it is sent).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.keyword import KeywordDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.private_key import PrivateKeyDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.stripe import StripeDetector

from app.policy.diff import FileDiff

ALLOW_MARKER = "autopack:allow-secret"
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (plugin.secret_type, pattern)
    for plugin in (
        GitHubTokenDetector(),
        AWSKeyDetector(),
        OpenAIDetector(),
        SlackDetector(),
        StripeDetector(),
        PrivateKeyDetector(),
    )
    for pattern in plugin.denylist
] + [
    ("GitHub Token", re.compile(r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}")),
    ("Anthropic API Key", re.compile(r"sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{80,}")),
    ("OpenAI Token", re.compile(r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}")),
    ("Stripe Access Key", re.compile(r"(?:r|s)k_test_[0-9a-zA-Z]{24,}")),
]
_KEYWORDS = KeywordDetector()
_PLACEHOLDER = re.compile(r"^(?:\$\{?|<|\{\{|%\(|x{4,}|\*{3,}|changeme|example|dummy|test|placeholder)", re.I)
MIN_KEYWORD_ENTROPY = 3.0
MIN_KEYWORD_LENGTH = 8


@dataclass(frozen=True)
class SecretFinding:
    path: str
    line: int
    kind: str
    redacted: str  # a prefix and the length: never the value

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind} ({self.redacted})"


def redact(value: str) -> str:
    prefix = value[:4] if len(value) >= 16 else value[:2]
    return f"{prefix}… ({len(value)} characters)"


def entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values()) if value else 0.0


def find_in_line(line: str, path: str = "") -> list[tuple[str, str]]:
    """(kind, value) for each secret in one line; overlapping matches are reported once."""
    found: dict[str, str] = {}
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(line):
            value = match.group(1) if pattern.groups and len(match.group(1) or "") >= 16 else match.group(0)
            if not any(value in seen or seen in value for seen in found):
                found[value] = kind
    if not found:
        for potential in _KEYWORDS.analyze_line(filename=path or "file", line=line, line_number=0):
            value = potential.secret_value or ""
            if (
                len(value) >= MIN_KEYWORD_LENGTH
                and entropy(value) >= MIN_KEYWORD_ENTROPY
                and not _PLACEHOLDER.match(value)
            ):
                found[value] = "Secret assigned to a secret-looking name"
    return [(kind, value) for value, kind in found.items()]


def scan(files: Iterable[FileDiff], *, allow_paths: list[str]) -> tuple[list[SecretFinding], set[str]]:
    """Findings in the added lines, and the secret values themselves (for `redact_text` only: the
    caller must not store, log or send them)."""
    findings: list[SecretFinding] = []
    values: set[str] = set()
    for diff in files:
        if any(fnmatch.fnmatchcase(diff.path, glob) for glob in allow_paths):
            continue
        for hunk in diff.hunks:
            for number, text in hunk.added:
                if ALLOW_MARKER in text:
                    continue
                for kind, value in find_in_line(text, diff.path):
                    findings.append(SecretFinding(diff.path, number, kind, redact(value)))
                    values.add(value)
    return findings, values


def redact_text(text: str, values: set[str]) -> str:
    """`text` with every found secret replaced by its redacted form."""
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, f"[secret {redact(value)}]")
    return text
