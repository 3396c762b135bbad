"""The last pass over everything Autopack writes on GitHub: mentions, links, images and HTML inert. Pure.

Autopack's comments, reviews, check runs, pull-request and issue texts quote what other people and
models wrote: command names, file paths, titles, findings, release notes. Each flow neutralises what
it interpolates (`app.policy.markdown.neutral`), but one forgotten spot, or a value that closes the
code span it was put in (``x`@victim` ``), would let an outsider make the bot ping people, link
anywhere or embed images. So every text the GitHub layer sends goes through `finish()`, which reads
the Markdown the way GitHub does (fenced blocks and code spans are inert there) and everywhere else:

- `@name` and `@org/team` get a word joiner after the `@`: shown the same, pinging nobody
  (Autopack itself never mentions anyone);
- `owner/repo#12` cross-references get one too, so no other repository gets a timeline entry;
- links and autolinks (`https://…`, `www.…`) to hosts other than GitHub's are broken: the text
  stays, nothing is clickable; image syntax is escaped;
- HTML is escaped, except the few tags Autopack writes itself (`<details>`, `<summary>`) and its own
  hidden `<!-- autopack:… -->` markers.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

JOINER = "\u2060"  # word joiner: invisible, breaks mentions and autolinks
DEFAULT_HOSTS = frozenset({"github.com"})

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_MENTION = re.compile(r"(?<![\w`])@(?=[A-Za-z0-9])")
_EMAIL = re.compile(r"(?<=\w)@(?=\w)")  # user@example.com autolinks as mailto:
_CROSS_REF = re.compile(r"\b([A-Za-z0-9][\w.-]*/[\w.-]+)#(?=\d)")
_OWN_LINK = re.compile(r"(!?)\[([^\[\]\n]*)\]\((https://[^)\s]+)\)")
_REF_DEF = re.compile(r"(?<!\\)\[(?=[^\]\n]+\]:)")  # `[label]: url` defines a link, in lists too
_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>()\[\]`]+", re.I)
_WWW = re.compile(r"(?<![\w/.])www\.(?=[\w-])", re.I)
_ALLOWED_TAG = re.compile(r"</?(?:details|summary)>|<!-- autopack:[^<>]*? -->", re.I)
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_IMAGE = re.compile(r"!\[")


def _host_allowed(url: str, hosts: frozenset[str]) -> bool:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return url.lower().startswith("https://") and any(host == h or host.endswith("." + h) for h in hosts)


def _break_url(url: str) -> str:
    return url.replace("://", f":{JOINER}//", 1).replace(".", f".{JOINER}", 1)


def _words(text: str) -> str:
    """Mentions, e-mails, cross-references, `www.`, HTML and image syntax made inert."""
    text = _WWW.sub(f"www.{JOINER}", text)
    text = _TAG_START.sub("&lt;", text)
    text = _IMAGE.sub("!\\[", text)
    text = _MENTION.sub("@" + JOINER, text)
    text = _EMAIL.sub("@" + JOINER, text)
    return _CROSS_REF.sub(lambda m: f"{m.group(1)}{JOINER}#", text)


def _prose(text: str, hosts: frozenset[str]) -> str:
    """Outside code: only Autopack's own links (to GitHub) and markers stay live."""
    kept: list[str] = []

    def keep(value: str) -> str:
        kept.append(value)
        return f"\x00{len(kept) - 1}\x00"

    text = _ALLOWED_TAG.sub(lambda m: keep(m[0]), text)

    def own_link(match: re.Match[str]) -> str:
        if match[1] or not _host_allowed(match[3], hosts):
            return match[0]
        return keep(f"[{_words(match[2])}]({match[3]})")

    text = _OWN_LINK.sub(own_link, text)
    text = text.replace("](", f"]{JOINER}(")  # any other inline link or image: its words only
    text = _REF_DEF.sub("\\\\[", text)
    text = _URL.sub(lambda m: keep(m[0]) if _host_allowed(m[0], hosts) else _break_url(m[0]), text)
    text = _words(text)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m[1])], text)


def _spans(line: str, hosts: frozenset[str]) -> str:
    """One line outside fences: inline code spans kept as they are, the rest as prose."""
    out: list[str] = []
    i = 0
    while i < len(line):
        start = line.find("`", i)
        if start < 0:
            out.append(_prose(line[i:], hosts))
            break
        run = len(line[start:]) - len(line[start:].lstrip("`"))
        ticks = "`" * run
        end = start + run
        close = -1
        while True:
            found = line.find(ticks, end)
            if found < 0:
                break
            after = found + run
            if (found == 0 or line[found - 1] != "`") and (after >= len(line) or line[after] != "`"):
                close = found
                break
            end = found + 1
        if close < 0:  # an unmatched backtick run is literal text
            out.append(_prose(line[i : start + run], hosts))
            i = start + run
            continue
        out.append(_prose(line[i:start], hosts))
        out.append(line[start : close + run])
        i = close + run
    return "".join(out)


def finish(markdown: str, *, hosts: frozenset[str] = DEFAULT_HOSTS) -> str:
    """`markdown` as Autopack may post it: inert outside fenced blocks and code spans."""
    lines = markdown.replace("\x00", "").split("\n")
    out: list[str] = []
    fence: str | None = None
    for line in lines:
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
            out.append(line)
            continue
        if fence is not None:
            closing = _FENCE.match(line)
            if (
                closing
                and closing.group(1)[0] == fence[0]
                and len(closing.group(1)) >= len(fence)
                and not line.strip().strip(fence[0])
            ):
                fence = None
            out.append(line)
            continue
        out.append(_spans(line, hosts))
    return "\n".join(out)


def plain(text: str, *, limit: int = 200) -> str:
    """A short untrusted value (a title, a check-run title) on one line, made inert."""
    return finish(" ".join(str(text).split())[:limit])


def code(text: str, *, limit: int = 200) -> str:
    """An untrusted value shown as inline code (a command name, a path) that cannot close its span."""
    value = " ".join(str(text).split())[:limit]
    longest = max((len(m) for m in re.findall(r"`+", value)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") or not value else ""
    return f"{ticks}{pad}{value}{pad}{ticks}"
