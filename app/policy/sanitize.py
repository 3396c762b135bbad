"""Untrusted text → data a model may read (DESIGN §5.2). Pure.

Two kinds of untrusted text reach a model, and they are treated differently:

- **Code** (diffs, files, manifest diffs) is sent verbatim: what a model reviews must be exactly the
  change. Nothing is removed or rewritten (a tab stays a tab, `<!--` stays `<!--`); the prompt's
  section delimiters carry an id derived from the content, so no text inside can close its section.
  Hidden characters in code are reported by code as findings (`app.policy.hidden_text`).
- **Free text** (issue and PR bodies, comments, commit messages, release notes) is normalised by
  `normalise()`: HTML comments (invisible on GitHub, so a favourite place to hide instructions)
  and invisible format characters (zero-width, bidi controls, the BOM, tag characters) are removed,
  whitespace is tidied, and what was removed is counted so the prompt can say so.

`sanitize()` is the older one-string form, kept for hashing and for text Autopack renders itself.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

DELIMITER = "<<<"
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+\n")


def _invisible(ch: str) -> bool:
    # Category Cf covers zero-width characters, bidi controls, the BOM and tag characters.
    return unicodedata.category(ch) == "Cf"


_COMPLETE_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_OPEN_COMMENT = re.compile(r"<!--.*\Z", re.DOTALL)  # GitHub hides everything after an unclosed one
_FRAME = re.compile(r"<<<(\s*(?:END\s+)?DATA\b)", re.IGNORECASE)


@dataclass(frozen=True)
class Normalised:
    text: str
    html_comments: int = 0
    hidden_characters: int = 0

    def removed(self) -> str:
        """What was taken out, in words for the prompt ("" when nothing was)."""
        parts = []
        if self.html_comments:
            parts.append(f"{self.html_comments} HTML comment{'s' if self.html_comments != 1 else ''}")
        if self.hidden_characters:
            n = self.hidden_characters
            parts.append(f"{n} invisible character{'s' if n != 1 else ''}")
        return ", ".join(parts)


def normalise(text: str | None) -> Normalised:
    """Free text as a model should read it: what GitHub shows a person, counted where it differs."""
    if not text:
        return Normalised("")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    comments = len(_COMPLETE_COMMENT.findall(text))
    text = _COMPLETE_COMMENT.sub("", text)
    if _OPEN_COMMENT.search(text):
        comments += 1
        text = _OPEN_COMMENT.sub("", text)
    hidden = sum(1 for ch in text if _invisible(ch))
    text = "".join(ch for ch in text if not _invisible(ch))
    text = _TRAILING.sub("\n", text)
    text = _BLANK_RUNS.sub("\n\n", text)
    return Normalised(defuse(text).strip(), comments, hidden)


def defuse(text: str) -> str:
    """Lines that look like a section frame (`<<<DATA x>>>`, `<<<END DATA x>>>`) made visibly
    different, one character changed and nothing removed."""
    return _FRAME.sub(r"‹<<\1", text)


def sanitize(text: str | None) -> str:
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _HTML_COMMENT.sub("", text)
    text = "".join(ch for ch in text if not _invisible(ch))
    text = text.replace("\t", "    ")
    text = _TRAILING.sub("\n", text)
    text = _BLANK_RUNS.sub("\n\n", text)
    text = text.replace(DELIMITER, "‹‹‹").replace(">>>", "›››")
    return text.strip()
