"""Secrets in text and in diffs: found, reported redacted, and removed before a model sees text. Pure.

Two detector sets run on every line (and on whole texts, for multi-line private keys):
- detect-secrets' maintained pattern plugins (Yelp's detectors for AWS, GitHub, GitLab, OpenAI,
  Slack, Stripe, npm, PyPI, SendGrid, Twilio, JWTs, private keys, basic auth and more), configured:
  its high-entropy-string plugins are left out (22.7 findings per 10,000 lines of ordinary code in
  our measurement) and every match passes our placeholder and boundary filters;
- the rules of `app.policy.secret_rules` for the formats no plugin covers (GitLab's other token
  types, Google, Azure, Vault, Hugging Face, Anthropic, connection strings, command lines,
  assignments in settings files, …).

Overlapping matches are merged and the union is what counts: a finding or a redaction always covers
the whole secret. A finding keeps only a redacted form (a prefix of at most four characters and the
length), so the value never reaches a check run, a log line, the database or a model prompt.
`redact()` cleans any text before it is sent anywhere; `scan()` reports what a diff adds.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

from detect_secrets.plugins.artifactory import ArtifactoryDetector
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.cloudant import CloudantDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.ibm_cloud_iam import IbmCloudIamDetector
from detect_secrets.plugins.ibm_cos_hmac import IbmCosHmacDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.npm import NpmDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.private_key import PrivateKeyDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.softlayer import SoftlayerDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector

from app.policy import secret_rules as rules
from app.policy.diff import FileDiff
from app.policy.secret_rules import entropy, placeholder

__all__ = ["ALLOW_MARKER", "SecretFinding", "Span", "entropy", "find", "redact", "redact_value", "scan"]

ALLOW_MARKER = "autopack:allow-secret"
MAX_SCAN_CHARS = 2_000_000  # a text larger than this is reported as not scanned, never as clean
_PLUGINS = (
    ArtifactoryDetector(), AWSKeyDetector(), AzureStorageKeyDetector(), BasicAuthDetector(),
    CloudantDetector(), DiscordBotTokenDetector(), GitHubTokenDetector(), GitLabTokenDetector(),
    IbmCloudIamDetector(), IbmCosHmacDetector(), JwtTokenDetector(), MailchimpDetector(), NpmDetector(),
    OpenAIDetector(), PrivateKeyDetector(), PypiTokenDetector(), SendGridDetector(), SlackDetector(),
    SoftlayerDetector(), SquareOAuthDetector(), StripeDetector(), TelegramBotTokenDetector(),
    TwilioKeyDetector(),
)  # fmt: skip
# detect-secrets' private-key plugin matches the header line alone: the block rule covers the key.
_PLUGIN_PATTERNS = [
    (f"{plugin.secret_type}", pattern)
    for plugin in _PLUGINS
    if not isinstance(plugin, PrivateKeyDetector)
    for pattern in plugin.denylist
]
_TOKEN_CHAR = re.compile(r"[A-Za-z0-9_-]")
_NAMES = rules.CREDENTIAL_WORDS


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str
    detector: str  # "detect-secrets" or "autopack"


@dataclass(frozen=True)
class SecretFinding:
    path: str
    line: int
    kind: str
    redacted: str  # a prefix and the length: never the value
    detector: str = "autopack"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind} ({self.redacted})"


def redact_value(value: str) -> str:
    """What a finding shows of a secret: at most a 4-character prefix, and its length."""
    prefix = value[: min(4, len(value) // 4)]
    return f"{prefix}… ({len(value)} characters)"


def _bounded(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    return not (_TOKEN_CHAR.fullmatch(before or " ") and _TOKEN_CHAR.fullmatch(text[start])) and not (
        _TOKEN_CHAR.fullmatch(after or " ") and _TOKEN_CHAR.fullmatch(text[end - 1])
    )


def _pattern_spans(text: str) -> list[Span]:
    """Matches of the format rules and detect-secrets' plugins, each regex run once over the text."""
    spans: list[Span] = []
    for rule in rules.RULES:
        if rule.multiline:
            continue
        for match in rule.pattern.finditer(text):
            start, end = match.span(rule.group) if rule.group else match.span()
            if "\n" not in text[start:end] and rules.plausible(text[start:end], min_entropy=rule.min_entropy):
                spans.append(Span(start, end, rule.kind, "autopack"))
    for kind, pattern in _PLUGIN_PATTERNS:
        for match in pattern.finditer(text):
            group = 1 if pattern.groups and (match.group(1) or "") else 0
            start, end = match.span(group)
            value = text[start:end]
            if (
                len(value) >= 8
                and "\n" not in value
                and _bounded(text, start, end)
                and not placeholder(value)
            ):
                spans.append(Span(start, end, kind, "detect-secrets"))
    return spans


def _assignment_spans(line: str, offset: int, settings_file: bool) -> list[Span]:
    """Values assigned to secret-looking names on one line."""
    spans: list[Span] = []
    for pattern, quoted in ((rules.QUOTED_ASSIGNMENT, True), (rules.PLAIN_ASSIGNMENT, False)):
        for match in pattern.finditer(line):
            start, end = match.span("s")
            value = line[start:end].strip()
            if rules.generic_value_ok(value, settings_file=settings_file, quoted=quoted):
                spans.append(
                    Span(offset + start, offset + start + len(value), rules.GENERIC_KIND, "autopack")
                )
    return spans


def _merge(spans: Iterable[Span]) -> list[Span]:
    """Overlapping matches become one span covering their union (the longest match's kind)."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            longer = span if span.end - span.start > last.end - last.start else last
            merged[-1] = Span(last.start, max(last.end, span.end), longer.kind, longer.detector)
        else:
            merged.append(span)
    return merged


def find(text: str, path: str = "") -> list[Span]:
    """Every secret in `text`, as merged spans (multi-line private keys included)."""
    settings_file = bool(rules.SETTINGS_FILES.search(path))
    spans = _pattern_spans(text)
    found_at = sorted(span.start for span in spans)
    allowed: list[tuple[int, int]] = []
    offset = 0
    for line in text.split("\n"):
        end = offset + len(line)
        if ALLOW_MARKER in line:
            allowed.append((offset, end))
        elif not any(offset <= start <= end for start in found_at) and _NAMES.search(line):
            spans += _assignment_spans(line, offset, settings_file)
        offset = end + 1
    for rule in rules.RULES:
        if rule.multiline:
            for match in rule.pattern.finditer(text):
                start, end = match.span(rule.group) if rule.group else match.span()
                if len(re.sub(r"\\\\[rn]|\s", "", text[start:end])) >= 100:  # a key, not a stub header
                    spans.append(Span(start, end, rule.kind, "autopack"))
    if allowed:  # `autopack:allow-secret` on a line: nothing on that line is reported
        spans = [s for s in spans if not any(a <= s.start <= b for a, b in allowed)]
    return _merge(spans)


def redact(text: str, path: str = "") -> str:
    """`text` with every secret in it replaced whole by its redacted form."""
    if not text:
        return text
    if len(text) > MAX_SCAN_CHARS:
        return "[not sent: too large to scan for secrets]"
    out, last = [], 0
    for span in find(text, path):
        out.append(text[last : span.start])
        out.append(f"[secret {redact_value(text[span.start : span.end])}]")
        last = span.end
    out.append(text[last:])
    return "".join(out)


def redact_text(text: str, values: set[str]) -> str:
    """`text` with every secret replaced whole: the found values, and anything else that is one."""
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, f"[secret {redact_value(value)}]")
    return redact(text)


@dataclass(frozen=True)
class ScanResult:
    findings: list[SecretFinding]
    not_scanned: list[str]  # changed files whose text GitHub did not give (too large) or too large here


def scan_diffs(files: Iterable[FileDiff], *, allow_paths: list[str]) -> ScanResult:
    """What the added lines of every changed file hold, whatever its type (lock files, minified and
    generated files included); the files that could not be scanned are listed, never called clean."""
    findings: list[SecretFinding] = []
    not_scanned: list[str] = []
    for diff in files:
        if any(fnmatch.fnmatchcase(diff.path, glob) for glob in allow_paths):
            continue
        added = diff.added_lines()
        if added is None:
            if diff.status != "removed" and diff.kind != "binary":
                not_scanned.append(diff.path)
            continue
        text = "\n".join(line for _, line in added)
        if len(text) > MAX_SCAN_CHARS:
            not_scanned.append(diff.path)
            continue
        starts, offset = [], 0
        for _, line in added:
            starts.append(offset)
            offset += len(line) + 1
        for span in find(text, diff.path):
            index = max(i for i, s in enumerate(starts) if s <= span.start)
            value = text[span.start : span.end]
            findings.append(
                SecretFinding(diff.path, added[index][0], span.kind, redact_value(value), span.detector)
            )
    return ScanResult(findings, not_scanned)


def scan(files: Iterable[FileDiff], *, allow_paths: list[str]) -> tuple[list[SecretFinding], set[str]]:
    """Findings in the added lines (the older two-value form: the values are not returned)."""
    return scan_diffs(files, allow_paths=allow_paths).findings, set()


def find_in_line(line: str, path: str = "") -> list[tuple[str, str]]:
    """(kind, value) for each secret in one line."""
    return [(s.kind, line[s.start : s.end]) for s in find(line, path)]
