"""Secrets never reach a log line (DESIGN §5.7)."""

from __future__ import annotations

import json
import logging

import pytest

from app import logs
from tests.support import private_key_pem


@pytest.fixture
def captured(capsys: pytest.CaptureFixture[str]) -> pytest.CaptureFixture[str]:
    logs.configure("debug", "json", ["configured-webhook-secret", private_key_pem()])
    return capsys


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_json_lines_with_context(captured: pytest.CaptureFixture[str]) -> None:
    import structlog

    structlog.contextvars.bind_contextvars(delivery="d-1", subject="o/r#1", attempt=2)
    try:
        logs.get_logger().info("job done")
    finally:
        structlog.contextvars.clear_contextvars()
    (line,) = lines(captured)
    assert line["event"] == "job done"
    assert (line["delivery"], line["subject"], line["attempt"], line["level"]) == ("d-1", "o/r#1", 2, "info")


def test_configured_secrets_and_token_shapes_are_redacted(captured: pytest.CaptureFixture[str]) -> None:
    tokens = [
        "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "sk-proj-abcdefghijklmnopqrstuvwx",
        "sk-ant-api03-abcdefghijklmnopqrstuvwx",
    ]
    log = logs.get_logger()
    log.info("calling with configured-webhook-secret", detail=" ".join(tokens))
    log.info("auth", headers={"Authorization": "token abc", "Accept": "json"}, api_key="plain")
    log.info("key leaked", key=private_key_pem())
    logging.getLogger("uvicorn.error").warning("stdlib says %s", tokens[0])
    try:
        raise RuntimeError(f"boom {tokens[0]}")
    except RuntimeError:
        log.exception("failed")
    text = captured.readouterr().err
    for secret in [*tokens, "configured-webhook-secret", "PRIVATE KEY-----\nMII", "token abc"]:
        assert secret not in text
    assert "plain" not in text
    assert text.count(logs.REDACTED) >= 8
    assert '"Accept": "json"' in text


def test_per_request_http_client_lines_stay_out_of_the_log(captured: pytest.CaptureFixture[str]) -> None:
    """githubkit and the LLM SDKs run on httpx2 (app/__init__.py), which logs every request at
    INFO under its own name: at level info those lines are dropped, warnings still show."""
    logs.configure("info", "json", [])
    for name in ("httpx2", "httpcore2.http11", "httpx", "httpcore.connection"):
        logging.getLogger(name).info("HTTP Request: GET https://api.github.com/repos/o/r 200")
    logging.getLogger("httpx2").warning("retrying")
    assert [line["event"] for line in lines(captured)] == ["retrying"]
