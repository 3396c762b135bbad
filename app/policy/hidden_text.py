"""Text in a change that a reviewer cannot see as it is: found by code, reported, never approved. Pure.

Code reaches the auditor verbatim, so these characters are there for a model to read, but neither a
model nor a person reliably notices them; so code finds them in added lines and reports each as a
finding that keeps an audit from concluding "approve" (like the steering detector):

- **bidirectional controls** (Trojan Source, CVE-2021-42574): embeddings, overrides and isolates
  reorder what an editor shows, so `/* admin */ if (isAdmin)` may compile as something else;
- **zero-width and other invisible characters** (zero-width space / joiners, word joiner, the BOM
  in the middle of a file, Unicode tag characters that smuggle ASCII): two identifiers that look
  identical differ, or text hides in plain sight;
- **homoglyph identifiers**: an identifier that mixes Latin with Cyrillic or Greek letters (`pаypal`
  with a Cyrillic `а`) looks like another one and is not.
"""

from __future__ import annotations

import re
import unicodedata

from app.policy.audit import Finding
from app.policy.diff import FileDiff

BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\u180e\ufeff\u00ad")
_IDENTIFIER = re.compile(r"[^\W\d]\w*", re.UNICODE)
_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE")


def _is_tag(ch: str) -> bool:
    return 0xE0000 <= ord(ch) <= 0xE007F


def _script(ch: str) -> str | None:
    if ch.isascii():
        return "LATIN" if ch.isalpha() else None
    name = unicodedata.name(ch, "")
    return next((s for s in _SCRIPTS if name.startswith(s)), None)


def _codepoints(chars: set[str]) -> str:
    return ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed')}" for c in sorted(chars))


def line_findings(text: str) -> list[tuple[str, str]]:
    """(kind, detail) for what one line hides; empty when it hides nothing."""
    found: list[tuple[str, str]] = []
    bidi = {ch for ch in text if ch in BIDI}
    if bidi:
        found.append(("bidi", _codepoints(bidi)))
    hidden = {ch for ch in text if ch in INVISIBLE or _is_tag(ch)}
    if hidden:
        found.append(("invisible", _codepoints(hidden)))
    for word in _IDENTIFIER.findall(text):
        if word.isascii():
            continue
        scripts = {s for s in map(_script, word) if s}
        if "LATIN" in scripts and len(scripts) > 1:
            foreign = {ch for ch in word if _script(ch) not in (None, "LATIN")}
            shown = word.encode("ascii", "backslashreplace").decode()
            found.append(("homoglyph", f"`{shown}` ({_codepoints(foreign)})"))
    return found


_TITLES = {
    "bidi": "Bidirectional control characters (Trojan Source)",
    "invisible": "Invisible characters in added code",
    "homoglyph": "Identifier mixing scripts (homoglyph)",
}
_EXPLAIN = {
    "bidi": "They reorder how this line is displayed, so what a reviewer reads is not what runs",
    "invisible": "They make text that looks identical differ, or hide text from a reader",
    "homoglyph": "It looks like an ASCII identifier but is a different one",
}


def findings(files: list[FileDiff]) -> list[Finding]:
    """One finding per added line that hides something, with the code points named."""
    found: list[Finding] = []
    for diff in files:
        for hunk in diff.hunks:
            line_no = int(hunk.header.split("+", 1)[1].split(",", 1)[0].split(" ", 1)[0])
            for raw in hunk.lines:
                if raw.startswith("+"):
                    for kind, detail in line_findings(raw[1:]):
                        found.append(
                            Finding(
                                severity="high",
                                path=diff.path,
                                start_line=line_no,
                                end_line=line_no,
                                title=_TITLES[kind],
                                explanation=f"{_EXPLAIN[kind]}: {detail}. Found by code, not by a model; "
                                "a person should check why it is in the change.",
                                confidence=1.0,
                            )
                        )
                if not raw.startswith("-"):
                    line_no += 1
    return found
