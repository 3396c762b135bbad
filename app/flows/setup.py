"""First-run setup: turn a manifest code or hand-entered credentials into a configured Autopack.

Both paths end the same way: the private key goes to a file only its owner can read (mode 0600,
written to a temporary name and renamed, so a reader never sees half a key), `.env` gets
`APP_ID`, `PRIVATE_KEY_PATH`, `WEBHOOK_SECRET` and the client id/secret (also 0600, merged so the
maintainer's other lines survive), and the settings are read back from the files exactly as the
next start would read them. The web layer then swaps the running service over to those settings.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from app.github.app_setup import AppCredentials, SetupFailed, exchange_manifest_code, fetch_app
from app.logs import get_logger, redactor
from app.policy.app_manifest import install_url, merge_env
from app.settings import Mode, Settings, SettingsError

log = get_logger("autopack.setup")

ENV_FILE = ".env"


@dataclass(frozen=True)
class SetupDone:
    settings: Settings
    install_url: str
    slug: str
    key_file: Path


def check_private_key(pem: str) -> str:
    """A PEM RSA private key (what GitHub generates for Apps), normalised; else SetupFailed."""
    text = pem.replace("\r\n", "\n").strip() + "\n"
    try:
        key = load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        raise SetupFailed(
            "the private key is not a PEM private key (paste the whole .pem file, "
            "from -----BEGIN to -----END)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SetupFailed("GitHub App keys are RSA keys; this PEM holds another kind")
    return text


def _write_private(path: Path, text: str) -> None:
    """Write `text` readable by its owner only, atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)  # O_CREAT's mode only applies to a new file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_credentials(directory: Path, creds: AppCredentials) -> Path:
    """The key file and `.env` in `directory`; returns the key file's path."""
    safe_slug = re.sub(r"[^A-Za-z0-9_.-]", "-", creds.slug) or "autopack"
    key_file = directory / f"{safe_slug}.private-key.pem"
    env_file = directory / ENV_FILE
    try:
        existing = env_file.read_text(encoding="utf-8") if env_file.exists() else ""
        text = merge_env(
            existing,
            {
                "APP_ID": str(creds.app_id),
                "PRIVATE_KEY_PATH": f"./{key_file.name}",
                "PRIVATE_KEY": None,  # a stale inline key would win over the file
                "WEBHOOK_SECRET": creds.webhook_secret,
                "GITHUB_CLIENT_ID": creds.client_id,
                "GITHUB_CLIENT_SECRET": creds.client_secret,
            },
        )
        _write_private(key_file, creds.pem)
        _write_private(env_file, text)
    except OSError as exc:
        raise SetupFailed(
            f"could not write the credentials to {directory} ({exc.strerror or type(exc).__name__}). "
            f"The App {creds.slug} exists on GitHub: make the directory writable, generate a new "
            f"private key and webhook secret on {creds.html_url}, and use the import form."
        ) from None
    return key_file


def _reload(directory: Path, creds: AppCredentials, overrides: dict[str, object]) -> Settings:
    """The settings as the next start will read them (environment first, then `.env`)."""
    try:
        settings = Settings.load(_env_file=directory / ENV_FILE, **overrides)
        if settings.private_key_path is not None and not settings.private_key_path.is_absolute():
            settings.private_key_path = directory / settings.private_key_path
        mode = settings.mode()
    except SettingsError as exc:
        raise SetupFailed(f"the credentials were written, but the settings do not load: {exc}") from None
    if mode is not Mode.CONFIGURED or settings.app_id != creds.app_id:
        raise SetupFailed(
            f"the credentials were written to {directory / ENV_FILE}, but this process's environment "
            "overrides them (APP_ID, PRIVATE_KEY or WEBHOOK_SECRET is set): unset those and restart"
        )
    return settings


def complete(directory: Path, creds: AppCredentials, overrides: dict[str, object] | None = None) -> SetupDone:
    redactor.add([creds.pem, creds.webhook_secret, creds.client_secret or ""])
    key_file = write_credentials(directory, creds)
    settings = _reload(directory, creds, overrides or {})
    log.info("GitHub App configured", app_id=creds.app_id, slug=creds.slug, key_file=str(key_file))
    return SetupDone(settings, install_url(creds.html_url), creds.slug, key_file)


async def from_manifest_code(
    settings: Settings, directory: Path, code: str, overrides: dict[str, object] | None = None
) -> SetupDone:
    creds = await exchange_manifest_code(
        settings.github_api_url, code, request_timeout=settings.autopack_github_timeout_seconds
    )
    return complete(directory, creds, overrides)


async def from_import(
    settings: Settings,
    directory: Path,
    *,
    app_id: int,
    pem: str,
    webhook_secret: str,
    overrides: dict[str, object] | None = None,
) -> SetupDone:
    """An App created by hand: the id and key are proven against GitHub before anything is written."""
    if not webhook_secret.strip():
        raise SetupFailed("the webhook secret is required: the one set on the App's settings page")
    if any(ch.isspace() for ch in webhook_secret.strip()):
        raise SetupFailed("the webhook secret cannot contain spaces or line breaks")
    key = check_private_key(pem)
    redactor.add([key, webhook_secret])
    app = await fetch_app(
        settings.github_api_url, app_id, key, request_timeout=settings.autopack_github_timeout_seconds
    )
    creds = AppCredentials(
        app_id=app_id,
        slug=app.slug,
        html_url=app.html_url,
        pem=key,
        webhook_secret=webhook_secret.strip(),
        client_id=app.client_id,
    )
    if not creds.html_url:
        raise SetupFailed(f"GitHub's GET /app did not give App {app_id}'s page")
    return complete(directory, creds, overrides)
