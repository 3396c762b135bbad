"""Shared fixtures. No test reaches the internet: GitHub is mocked at the HTTP layer (respx) or,
for tests that start real server processes, served by a local fake GitHub on 127.0.0.1."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import SECRET, private_key_pem

PG_URL = os.environ.get("TEST_DATABASE_URL")

# Tests read settings only from what they pass in: neither this shell's variables nor a .env file.
_SETTING_VARS = [
    *("APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "WEBHOOK_SECRET", "WEBHOOK_PATH", "GITHUB_API_URL"),
    *("HOST", "PORT", "DATABASE_URL", "LOG_LEVEL", "LOG_FORMAT", "AUTOPACK_WORKERS"),
    "AUTOPACK_INSECURE_NO_SIGNATURE",
    *("AUTOPACK_PUBLIC_URL", "WEBHOOK_PROXY_URL", "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET"),
    *("AUTOPACK_MODELS", "AUTOPACK_SECRETS_DIR"),
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in _SETTING_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def app_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a fully configured App on a fresh SQLite file."""
    return {
        "APP_ID": "12345",
        "PRIVATE_KEY": private_key_pem(),
        "WEBHOOK_SECRET": SECRET,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'autopack.db'}",
    }


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A private schema in the TEST_DATABASE_URL database, dropped afterwards."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1/test)")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
