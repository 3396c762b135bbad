"""Untrusted text → data a model may read (DESIGN §5.2). Pure.

Issue, comment, PR and commit text reaches a model only inside delimited data sections, after:
- HTML comments are removed (invisible on GitHub, so a favourite place to hide instructions);
- invisible format characters are removed: zero-width spaces and joiners, the BOM, bidi embeddings,
  overrides and isolates (Trojan-Source style reordering), Unicode tag characters (ASCII smuggling);
- whitespace is normalised (newlines, trailing spaces, runs of blank lines);
- anything that looks like our own section delimiters is defused, so data cannot close its section.
The raw text is kept by the caller for the audit trail.
"""

from __future__ import annotations

import re
import unicodedata

DELIMITER = "<<<"
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+\n")


def _invisible(ch: str) -> bool:
    # Category Cf covers zero-width characters, bidi controls, the BOM and tag characters.
    return unicodedata.category(ch) == "Cf"


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
