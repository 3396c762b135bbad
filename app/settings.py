"""Environment → one typed Settings object (DESIGN §6).

Names follow Probot where it has one. A `.env` file in the working directory is read too; real
environment variables win over it. Every error names the variable and what is wrong in one line and
never echoes a secret's value.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_FIELDS = frozenset(
    {"private_key", "webhook_secret", "github_client_secret", "openai_api_key", "anthropic_api_key"}
)
# The settings the first-run setup page writes; everything else carries over when it completes.
APP_FIELDS = frozenset(
    {
        "app_id",
        "private_key",
        "private_key_path",
        "webhook_secret",
        "github_client_id",
        "github_client_secret",
    }
)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class SettingsError(Exception):
    """A setting is missing or invalid; the message is one line naming the variable."""


class Mode(enum.Enum):
    """How the server runs, derived from which App settings are present."""

    SETUP = "setup"  # nothing configured: first-run page, webhooks refused with 503
    CONFIGURED = "configured"  # App id, private key and webhook secret
    INSECURE = "insecure"  # App credentials without a webhook secret, explicitly allowed


class Settings(BaseSettings):
    """Every knob of the service. Field names are the environment variable names, lowercased."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    app_id: int | None = None
    private_key: SecretStr | None = None
    private_key_path: Path | None = None
    webhook_secret: SecretStr | None = None
    webhook_path: str = "/api/github/webhooks"
    webhook_proxy_url: str | None = None
    github_client_id: str | None = None
    github_client_secret: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    host: str = "0.0.0.0"  # noqa: S104 - a service listens on all interfaces by default
    port: int = Field(default=3000, ge=1, le=65535)
    database_url: str = "sqlite:///autopack.db"
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    autopack_models: Path | None = None
    autopack_catalogue: Path | None = None
    autopack_workers: int = Field(default=16, ge=0, le=256)
    log_level: str = "info"
    log_format: Literal["json", "console"] = "json"

    # Additions of our own, all prefixed AUTOPACK_ and documented in docs/configuration.md.
    autopack_insecure_no_signature: bool = False
    autopack_public_url: str | None = None
    autopack_lease_seconds: float = Field(default=60.0, gt=0)
    autopack_max_attempts: int = Field(default=8, ge=1, le=100)
    autopack_backoff_base_seconds: float = Field(default=5.0, gt=0)
    autopack_backoff_cap_seconds: float = Field(default=900.0, gt=0)
    autopack_poll_seconds: float = Field(default=1.0, gt=0)
    autopack_shutdown_grace_seconds: float = Field(default=25.0, ge=0)
    autopack_retention_days: float = Field(default=14.0, gt=0)
    autopack_github_timeout_seconds: float = Field(default=30.0, gt=0)
    autopack_max_body_bytes: int = Field(default=25 * 1024 * 1024, gt=0)

    @field_validator("private_key")
    @classmethod
    def _unescape_private_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        text = value.get_secret_value().replace("\\n", "\n").strip()
        if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
            raise ValueError("not a PEM private key (expected a -----BEGIN ... PRIVATE KEY----- block)")
        return SecretStr(text + "\n")

    @field_validator("webhook_secret", "github_client_secret", "openai_api_key", "anthropic_api_key")
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return value

    @field_validator("webhook_path")
    @classmethod
    def _path_starts_with_slash(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("github_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("autopack_public_url", "webhook_proxy_url")
    @classmethod
    def _optional_http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return cls._http_url(value.strip())

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.lower()

    # ---- derived values -------------------------------------------------------------------

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read the environment (and `.env`, then `AUTOPACK_SECRETS_DIR`), turning validation errors
        into one-line messages.

        `AUTOPACK_SECRETS_DIR` names a directory with one file per setting (`WEBHOOK_SECRET`,
        `DATABASE_URL`, `PRIVATE_KEY`…), as a Kubernetes Secret mounted as a volume gives: secrets
        in files rather than in the environment, where every child process and crash dump sees them.
        """
        secrets_dir = os.environ.get("AUTOPACK_SECRETS_DIR", "").strip()
        if secrets_dir and "_secrets_dir" not in overrides:
            if not Path(secrets_dir).is_dir():
                raise SettingsError(f"AUTOPACK_SECRETS_DIR: {secrets_dir} is not a directory")
            overrides["_secrets_dir"] = secrets_dir
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise SettingsError(_one_line(exc)) from None

    def private_key_pem(self) -> str | None:
        """The App's private key, from PRIVATE_KEY or the file PRIVATE_KEY_PATH names."""
        if self.private_key is not None:
            return self.private_key.get_secret_value()
        if self.private_key_path is None:
            return None
        try:
            text = self.private_key_path.read_text()
        except OSError as exc:
            raise SettingsError(
                f"PRIVATE_KEY_PATH: cannot read {self.private_key_path}: {exc.strerror}"
            ) from None
        if "-----BEGIN" not in text:
            raise SettingsError(f"PRIVATE_KEY_PATH: {self.private_key_path} is not a PEM private key")
        return text

    def mode(self) -> Mode:
        """Which way the server may run; raises SettingsError for a half-configured App."""
        has_key = self.private_key is not None or self.private_key_path is not None
        has_secret = self.webhook_secret is not None
        if self.app_id is None and not has_key and not has_secret:
            return Mode.SETUP
        if self.app_id is None:
            raise SettingsError("APP_ID: missing (other GitHub App settings are set)")
        if not has_key:
            raise SettingsError("PRIVATE_KEY: missing (set PRIVATE_KEY or PRIVATE_KEY_PATH)")
        self.private_key_pem()  # readable and PEM, or a clear error now rather than at first use
        if has_secret:
            return Mode.CONFIGURED
        if self.autopack_insecure_no_signature:
            return Mode.INSECURE
        raise SettingsError(
            "WEBHOOK_SECRET: missing; webhooks cannot be verified without it "
            "(for local development only, AUTOPACK_INSECURE_NO_SIGNATURE=true skips verification)"
        )

    def carried_over(self) -> dict[str, Any]:
        """The values set for this process other than the App's own, to re-apply when the setup
        page has written the App's settings and they are loaded again."""
        return {name: getattr(self, name) for name in self.model_fields_set - APP_FIELDS}

    def secret_values(self) -> list[str]:
        """Every configured secret, so the log redactor can replace them wherever they appear."""
        values = []
        for name in SECRET_FIELDS:
            secret = getattr(self, name)
            if secret is not None:
                values.append(secret.get_secret_value())
        return values


def _one_line(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "settings"
        message = error["msg"].removeprefix("Value error, ")
        if field not in SECRET_FIELDS and "input" in error and error["type"] != "missing":
            message += f" (got {error['input']!r})"
        parts.append(f"{field.upper()}: {message}")
    return "; ".join(parts)
