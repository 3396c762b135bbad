"""The inbox's records and the outcomes a job attempt can have."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # a permanent error: retrying would not help
    DEAD = "dead"  # retries exhausted


TERMINAL = (JobStatus.DONE, JobStatus.FAILED, JobStatus.DEAD)


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"  # at least one flow handles it
    IGNORED = "ignored"  # recorded, no flow handles it


@dataclass(frozen=True)
class NewDelivery:
    """A verified webhook delivery as the receiver records it."""

    id: str
    event: str
    action: str | None
    installation_id: int | None
    repository: str | None
    subject: str
    headers: dict[str, str]
    payload: bytes
    received_at: float
    body_sha256: str | None = None  # the raw body's digest: the same body is accepted once


@dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    action: str | None
    installation_id: int | None
    repository: str | None
    subject: str | None
    status: str
    received_at: float
    headers: dict[str, str] | None
    payload: bytes | None
    pruned_at: float | None


@dataclass(frozen=True)
class Job:
    id: int
    flow: str
    subject: str
    delivery_id: str | None
    args: dict[str, Any]
    status: str
    attempts: int
    max_attempts: int
    reschedules: int
    run_at: float
    created_at: float
    started_at: float | None
    finished_at: float | None
    lease_owner: str | None
    lease_token: str | None
    lease_expires_at: float | None
    last_error: str | None


@dataclass(frozen=True)
class QueueStats:
    by_status: dict[str, int] = field(default_factory=dict)
    oldest_due_age: float = 0.0
