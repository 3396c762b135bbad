"""Settings from the environment and .env: one-line errors naming the variable, no secret echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Mode, Settings, SettingsError
from tests.support import private_key_pem


def test_defaults_are_the_contract() -> None:
    s = Settings.load()
    assert (s.webhook_path, s.github_api_url, s.host, s.port) == (
        "/api/github/webhooks",
        "https://api.github.com",
        "0.0.0.0",
        3000,
    )
    assert s.database_url == "sqlite:///autopack.db"
    assert (s.log_level, s.log_format) == ("info", "json")
    assert s.mode() is Mode.SETUP


def test_reads_dotenv_and_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("PORT=4000\nLOG_FORMAT=console\n")
    monkeypatch.setenv("PORT", "5000")
    s = Settings.load()
    assert (s.port, s.log_format) == (5000, "console")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "abc", "PORT: "),
        ("PORT", "70000", "PORT: "),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL: must start with sqlite:/// or postgresql://"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL: must be one of"),
        ("WEBHOOK_PATH", "hooks", "WEBHOOK_PATH: must start with '/'"),
        ("AUTOPACK_WORKERS", "-1", "AUTOPACK_WORKERS: "),
    ],
)
def test_invalid_value_names_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        Settings.load()
    text = str(info.value)
    assert text.startswith(message)
    assert "\n" not in text


def test_bad_private_key_is_named_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVATE_KEY", "super-secret-not-a-pem")
    with pytest.raises(SettingsError) as info:
        Settings.load()
    assert str(info.value).startswith("PRIVATE_KEY: not a PEM private key")
    assert "super-secret" not in str(info.value)


def test_escaped_newlines_in_private_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVATE_KEY", private_key_pem().replace("\n", "\\n"))
    assert Settings.load().private_key_pem() == private_key_pem()


def test_private_key_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "key.pem").write_text(private_key_pem())
    monkeypatch.setenv("PRIVATE_KEY_PATH", str(tmp_path / "key.pem"))
    monkeypatch.setenv("APP_ID", "1")
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cr3t-value")
    assert Settings.load().mode() is Mode.CONFIGURED
    monkeypatch.setenv("PRIVATE_KEY_PATH", str(tmp_path / "missing.pem"))
    with pytest.raises(SettingsError, match=r"^PRIVATE_KEY_PATH: cannot read .*missing.pem"):
        Settings.load().mode()


def test_half_configured_app_names_the_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ID", "1")
    with pytest.raises(SettingsError, match=r"^PRIVATE_KEY: missing"):
        Settings.load().mode()
    monkeypatch.delenv("APP_ID")
    monkeypatch.setenv("WEBHOOK_SECRET", "abcdefgh")
    with pytest.raises(SettingsError, match=r"^APP_ID: missing"):
        Settings.load().mode()


def test_app_without_secret_refuses_unless_insecure_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ID", "1")
    monkeypatch.setenv("PRIVATE_KEY", private_key_pem())
    with pytest.raises(SettingsError, match=r"^WEBHOOK_SECRET: missing"):
        Settings.load().mode()
    monkeypatch.setenv("AUTOPACK_INSECURE_NO_SIGNATURE", "true")
    assert Settings.load().mode() is Mode.INSECURE


def test_secret_values_are_known_to_the_redactor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "hook-secret-123")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-abc")
    values = Settings.load().secret_values()
    assert "hook-secret-123" in values
    assert "sk-test-abc" in values
    assert "hook-secret-123" not in repr(Settings.load())


def test_secrets_dir_supplies_settings_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AUTOPACK_SECRETS_DIR: one file per setting, as a mounted Kubernetes Secret gives (file names
    are the variable names; Kubernetes makes them symlinks into a `..data` folder)."""
    from tests.support import private_key_pem

    data = tmp_path / "secrets" / "..2026_11_26"
    data.mkdir(parents=True)
    (data / "APP_ID").write_text("4242\n")
    (data / "WEBHOOK_SECRET").write_text("from-a-file-0123456789\n")
    (data / "PRIVATE_KEY").write_text(private_key_pem())
    (data / "DATABASE_URL").write_text("postgresql://autopack@db/autopack\n")
    (tmp_path / "secrets" / "..data").symlink_to(data.name)
    for name in ("APP_ID", "WEBHOOK_SECRET", "PRIVATE_KEY", "DATABASE_URL"):
        (tmp_path / "secrets" / name).symlink_to(f"..data/{name}")
    monkeypatch.setenv("AUTOPACK_SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.setenv("DATABASE_URL", "sqlite:///env-wins.db")

    settings = Settings.load()
    assert settings.mode() is Mode.CONFIGURED
    assert settings.app_id == 4242
    assert settings.webhook_secret is not None
    assert settings.webhook_secret.get_secret_value() == "from-a-file-0123456789"
    assert settings.database_url == "sqlite:///env-wins.db"  # the environment wins over files

    monkeypatch.setenv("AUTOPACK_SECRETS_DIR", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match=r"AUTOPACK_SECRETS_DIR: .*missing is not a directory"):
        Settings.load()
