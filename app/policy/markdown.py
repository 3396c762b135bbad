"""Model-written text made safe to post on GitHub. Pure.

A model's words reach a comment only through `neutral()`: no @-mentions that ping people, no images,
no links or bare URLs, no HTML. Code the model proposes goes only into a fenced block whose fence is
longer than any backtick run inside it, so the content cannot close the block and escape.
"""

from __future__ import annotations

import re

from app.policy.sanitize import sanitize

_MENTION = re.compile(r"@(?=[A-Za-z0-9])")
_LINK = re.compile(r"\]\(")
_URL = re.compile(r"https?://\S+")
_TAG = re.compile(r"</?[A-Za-z!][^>]*>")
_TICKS = re.compile(r"`+")


def neutral(text: str, *, keep_lines: bool = False) -> str:
    text = sanitize(text)
    text = _TAG.sub("", text)
    text = _URL.sub("[link removed]", text)
    text = _MENTION.sub("@\u2060", text)  # a word joiner: shown as "@", pings nobody
    text = text.replace("![", "!\\[")
    text = _LINK.sub("] (", text)
    if keep_lines:
        return "\n".join(line.rstrip() for line in text.splitlines()).strip()
    return " ".join(text.split())


def fence(content: str, info: str = "") -> str:
    """A fenced code block that `content` cannot close."""
    longest = max((len(run) for run in _TICKS.findall(content)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{content}\n{ticks}"
