"""What a delivery is about: the key under which its jobs run one at a time.

Jobs for the same issue or pull request must not run concurrently (two triage runs editing one
comment, a merge racing a revise). Pushes are serialised per ref. Everything else falls back to the
repository, then the installation, then the delivery itself.
"""

from __future__ import annotations

from typing import Any


def _number(payload: dict[str, Any]) -> int | None:
    for key in ("issue", "pull_request"):
        value = payload.get(key)
        if isinstance(value, dict) and isinstance(value.get("number"), int):
            return int(value["number"])
    if isinstance(payload.get("number"), int):
        return int(payload["number"])
    for key in ("check_suite", "check_run"):
        container = payload.get(key)
        if isinstance(container, dict):
            prs = container.get("pull_requests") or (container.get("check_suite", {}) or {}).get(
                "pull_requests"
            )
            if isinstance(prs, list) and prs and isinstance(prs[0], dict):
                number = prs[0].get("number")
                if isinstance(number, int):
                    return number
    return None


def repository_name(payload: dict[str, Any]) -> str | None:
    repo = payload.get("repository")
    if isinstance(repo, dict) and isinstance(repo.get("full_name"), str):
        return str(repo["full_name"])
    return None


def installation_id(payload: dict[str, Any]) -> int | None:
    inst = payload.get("installation")
    if isinstance(inst, dict) and isinstance(inst.get("id"), int):
        return int(inst["id"])
    return None


def subject_key(event: str, payload: dict[str, Any], delivery_id: str) -> str:
    """`owner/repo#12`, `owner/repo@refs/heads/main`, `owner/repo`, `installation:42`, …"""
    repo = repository_name(payload)
    if event.startswith("installation"):
        inst = installation_id(payload)
        return f"installation:{inst}" if inst is not None else f"delivery:{delivery_id}"
    if repo is None:
        inst = installation_id(payload)
        return f"installation:{inst}" if inst is not None else f"delivery:{delivery_id}"
    number = _number(payload)
    if number is not None:
        return f"{repo}#{number}"
    if event == "push" and isinstance(payload.get("ref"), str):
        return f"{repo}@{payload['ref']}"
    if event == "status" and isinstance(payload.get("sha"), str):
        return f"{repo}@{payload['sha']}"
    return repo
