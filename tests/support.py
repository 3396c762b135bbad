"""Helpers shared by the tests: real GitHub payloads adapted to githubkit's models, signing, keys."""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

# GitHub's published webhook examples, copied into the repository (see the folder's README).
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "github-webhooks"

SECRET = "test-webhook-secret-0123456789"


@functools.cache
def _raw(event: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / event / name).read_text())


def payload(event: str, name: str = "payload.json", **changes: Any) -> dict[str, Any]:
    """A real example payload (`issue_comment`, `created.payload.json`), deep-copied."""
    data = copy.deepcopy(_raw(event, name))
    data.update(changes)
    return data


def comment_payload(
    body: str,
    *,
    login: str = "octocat",
    user_type: str = "User",
    installation: int = 4242,
    repo: str = "octo-org/widgets",
    number: int = 7,
    comment_id: int = 9001,
    action: str = "created",
) -> dict[str, Any]:
    """`issue_comment.created` from GitHub's example, pointed at our test repository."""
    data = payload(
        "issue_comment",
        "created.payload.json" if action == "created" else "edited.payload.json",
    )
    owner, name = repo.split("/")
    data["action"] = action
    data["installation"] = {"id": installation, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
    data["repository"].update(name=name, full_name=repo)
    data["repository"]["owner"]["login"] = owner
    data["issue"]["number"] = number
    data["comment"].update(id=comment_id, body=body)
    data["comment"]["user"].update(login=login, type=user_type)
    data["sender"].update(login=login, type=user_type)
    return data


def _point_at(data: dict[str, Any], repo: str, number: int) -> None:
    """Point a pull request event of GitHub's examples at our test installation and repository."""
    owner, name = repo.split("/")
    data["installation"] = {"id": 4242, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
    data["repository"].update(name=name, full_name=repo)
    data["repository"]["owner"]["login"] = owner
    data["pull_request"]["number"] = number


def review_comment_payload(
    body: str,
    *,
    in_reply_to: int | None,
    login: str = "maintainer",
    repo: str = "octo-org/widgets",
    number: int = 21,
    comment_id: int = 9101,
) -> dict[str, Any]:
    """`pull_request_review_comment.created` from GitHub's example: a reply in a review thread."""
    data = payload("pull_request_review_comment", "created.payload.json")
    _point_at(data, repo, number)
    data["comment"].update(id=comment_id, body=body, in_reply_to_id=in_reply_to)
    data["comment"]["user"].update(login=login, type="User")
    data["sender"].update(login=login, type="User")
    return data


def thread_resolved_payload(
    first_comment: dict[str, Any],
    *,
    login: str = "maintainer",
    repo: str = "octo-org/widgets",
    number: int = 21,
) -> dict[str, Any]:
    """`pull_request_review_thread.resolved` from GitHub's example, for a thread that starts with
    `first_comment` (a line comment as the fake GitHub stores it)."""
    data = payload("pull_request_review_thread", "resolved.payload.json")
    _point_at(data, repo, number)
    data["thread"]["comments"][0].update(
        id=first_comment["id"], body=first_comment["body"], path=first_comment["path"]
    )
    data["thread"]["comments"][0]["user"].update(first_comment["user"])
    data["sender"].update(login=login, type="User")
    return data


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(event: str, body: bytes, delivery: str, secret: str | None = SECRET) -> dict[str, str]:
    result = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
    }
    if secret is not None:
        result["X-Hub-Signature-256"] = sign(body, secret)
    return result


@functools.cache
def private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def section(prompt: str, name: str) -> str:
    """The text of one data section of a prompt (between its delimiters, which carry an id)."""
    import re

    label = re.escape(name)
    opening = rf"<<<DATA {label} id=(?P<id>[0-9a-f]+)[^>]*>>>\n"
    closing = rf"\n<<<END DATA {label} id=(?P=id)>>>"
    found = re.search(opening + r"(?P<text>.*?)" + closing, prompt, re.S)
    assert found is not None, f"no section {name!r} in the prompt"
    return found["text"]
