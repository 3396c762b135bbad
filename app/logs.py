"""Structured logging: JSON lines (or a console renderer for development) with secrets redacted.

Every log line, our own and the standard-library ones (uvicorn, httpx), passes the same redaction
processor, so a token or key that slips into a message or a field never reaches the log
(DESIGN §5.7). Context (delivery id, event, installation, repository, subject, attempt) is bound
with structlog's contextvars by the worker around each job.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

REDACTED = "[REDACTED]"

# Token shapes worth catching even when we never configured them ourselves.
_PATTERNS = re.compile(
    r"(?:gh[pousr]_[A-Za-z0-9]{20,})"  # GitHub tokens (installation tokens are ghs_)
    r"|(?:github_pat_[A-Za-z0-9_]{20,})"
    r"|(?:sk-(?:ant-)?[A-Za-z0-9_\-]{20,})"  # OpenAI / Anthropic keys
    r"|(?:-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$))"
    r"|(?:(?<=[Bb]earer )[A-Za-z0-9._\-]{16,})"
    r"|(?:(?<=token )[A-Za-z0-9._\-]{30,})",
    re.DOTALL,
)
_SECRET_KEYS = re.compile(r"secret|token|password|private_key|authorization|api_key", re.I)


class Redactor:
    """Replaces configured secret values and well-known token shapes in every event field."""

    def __init__(self) -> None:
        self._values: list[str] = []

    def add(self, values: Iterable[str]) -> None:
        for value in values:
            value = value.strip()
            if len(value) >= 6 and value not in self._values:
                self._values.append(value)
                # A PEM key may also appear with escaped newlines.
                if "\n" in value:
                    self._values.append(value.replace("\n", "\\n"))
        self._values.sort(key=len, reverse=True)

    def text(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return _PATTERNS.sub(REDACTED, text)

    def value(self, key: str, value: Any) -> Any:
        if isinstance(value, str):
            if _SECRET_KEYS.search(key) and value:
                return REDACTED
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(key, v) for v in value]
        if isinstance(value, BaseException):
            return self.text(repr(value))
        return value

    def __call__(
        self, _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event):
            if key == "event" and isinstance(event[key], str):
                event[key] = self.text(event[key])
            else:
                event[key] = self.value(key, event[key])
        return event


redactor = Redactor()


def _redact_rendered_exception(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # Tracebacks are rendered to text by format_exc_info, which runs before the redactor sees them.
    if isinstance(event.get("exception"), str):
        event["exception"] = redactor.text(event["exception"])
    return event


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of the record (it may be swapped)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(level: str = "info", fmt: str = "json", secrets: Iterable[str] = ()) -> None:
    """Set up structlog and route the standard library's logging through the same processors."""
    redactor.add(secrets)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redactor,
    ]
    if fmt == "console":
        renderer: Any = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        final: list[Any] = [renderer]
    else:
        final = [
            structlog.processors.format_exc_info,
            _redact_rendered_exception,
            structlog.processors.JSONRenderer(),
        ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # One line per HTTP request to GitHub or a model is noise (each job logs what it did); httpx2
    # (app/__init__.py) logs under its own names.
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def get_logger(name: str = "autopack") -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
