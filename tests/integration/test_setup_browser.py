"""The first-run setup page in a real headless Chromium, against the real `autopack serve` process
and a fake GitHub Enterprise Server on 127.0.0.1: the page renders, its form carries a valid
manifest for this server's URLs, and both paths (manifest flow, import form) end on the App's
installation page with the server out of setup mode — without a restart.

Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them) and selenium (dev extra).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fake_github import FakeGitHub
from tests.integration.server import ServerProcess
from tests.support import comment_payload, headers, private_key_pem

pytestmark = pytest.mark.integration
HOOK = "/api/github/webhooks"
# Debian's chromium and chromium-driver (what .ci/run installs); GitHub's runners have Google
# Chrome and put ChromeDriver in $CHROMEWEBDRIVER.
CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
    "/usr/bin/chromium",
)
CHROMEDRIVER = (
    shutil.which("chromedriver")
    or shutil.which("chromedriver", path=os.environ.get("CHROMEWEBDRIVER", ""))
    or "/usr/bin/chromedriver"
)

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extra")
if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    pytest.skip(
        "browser tests need Chromium and ChromeDriver (apt install chromium chromium-driver; .ci/run does)",
        allow_module_level=True,
    )

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """GitHub Enterprise Server's web pages at `/` and its API under `/api/v3`."""
    fake = FakeGitHub(api_prefix="/api/v3")
    fake.app_id, fake.slug, fake.app_key = 9001, "autopack-test", private_key_pem()
    fake.serve()
    yield fake
    fake.stop()


@pytest.fixture
def server(tmp_path: Path, github: FakeGitHub) -> Iterator[ServerProcess]:
    process = ServerProcess(
        {
            "GITHUB_API_URL": github.api_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'autopack.db'}",
            "AUTOPACK_POLL_SECONDS": "0.1",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "debug",
        },
        tmp_path,
    ).start()
    yield process
    if process.proc is not None and process.proc.poll() is None:
        process.terminate()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def other_key() -> str:
    """A valid RSA key that is not the App's (the shared test key is cached)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def wait_for_title(driver: WebDriver, text: str) -> None:
    WebDriverWait(driver, 30).until(expected_conditions.title_contains(text))


def assert_configured(server: ServerProcess, tmp_path: Path, secret: str) -> None:
    env = (tmp_path / ".env").read_text()
    assert "APP_ID=9001" in env
    assert f"WEBHOOK_SECRET={secret}" in env
    key = tmp_path / "autopack-test.private-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # The same process now takes signed deliveries: no restart happened.
    assert httpx.get(server.url + "/readyz").status_code == 200
    body = json.dumps(comment_payload("/autopack help")).encode()
    signed = headers("issue_comment", body, "after-setup", secret=secret)
    assert httpx.post(server.url + HOOK, content=body, headers=signed).status_code == 202
    assert (
        httpx.post(server.url + HOOK, content=body, headers=headers("issue_comment", body, "x")).status_code
        == 401
    )
    log = server.output()
    assert "left setup mode" in log
    assert secret not in log
    assert "PRIVATE KEY-----\nMII" not in log
    assert "Started server process" in log
    assert log.count("Started server process") == 1


@pytest.fixture
def driver(browser: WebDriver, server: ServerProcess) -> WebDriver:
    """The browser on the server's setup page."""
    browser.get(server.url + "/")
    wait_for_title(browser, "Autopack setup")
    return browser


def test_manifest_flow_in_chromium(
    driver: WebDriver, server: ServerProcess, github: FakeGitHub, tmp_path: Path
) -> None:
    (tmp_path / "setup-page.png").write_bytes(driver.get_screenshot_as_png())
    form = driver.find_element(By.ID, "create-app")
    action = form.get_attribute("action")
    assert action.startswith(f"{github.base_url}/settings/apps/new?state=")
    manifest = json.loads(form.find_element(By.NAME, "manifest").get_attribute("value"))
    assert manifest["hook_attributes"]["url"] == server.url + HOOK
    assert manifest["redirect_url"] == server.url + "/setup/callback"
    assert driver.find_element(By.ID, "local-warning").is_displayed()

    form.find_element(By.TAG_NAME, "button").click()
    wait_for_title(driver, "Create GitHub App")
    assert github.manifests == [manifest]  # GitHub received exactly what the page showed
    driver.find_element(By.ID, "create").click()

    wait_for_title(driver, "Install autopack-test")
    assert driver.current_url == f"{github.base_url}/apps/autopack-test/installations/new"
    assert github.conversions == 1
    secret = next(
        line.split("=", 1)[1]
        for line in (tmp_path / ".env").read_text().splitlines()
        if line.startswith("WEBHOOK_SECRET=")
    )
    assert_configured(server, tmp_path, secret)

    # Back on the page: it is the status page now, and the old link is dead.
    driver.get(server.url + "/")
    wait_for_title(driver, "Autopack")
    assert "Autopack is running" in driver.page_source


def test_organisation_and_import_in_chromium(
    driver: WebDriver, server: ServerProcess, github: FakeGitHub, tmp_path: Path
) -> None:
    driver.find_element(By.ID, "org").send_keys("acme-eng")
    driver.find_element(By.CSS_SELECTOR, "#owner button").click()
    WebDriverWait(driver, 30).until(lambda d: "org=acme-eng" in d.current_url)
    action = driver.find_element(By.ID, "create-app").get_attribute("action")
    assert action.startswith(f"{github.base_url}/organizations/acme-eng/settings/apps/new?state=")

    # A wrong key is refused with the reason, and nothing is written.
    driver.find_element(By.ID, "app_id").send_keys("9001")
    driver.find_element(By.ID, "private_key").send_keys(other_key())
    driver.find_element(By.ID, "webhook_secret").send_keys("imported-secret-1234")
    driver.find_element(By.CSS_SELECTOR, "#import-app button").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "error"))
    assert "GitHub refused the key for App 9001" in driver.find_element(By.ID, "error").text
    assert not (tmp_path / ".env").exists()

    driver.find_element(By.ID, "app_id").send_keys("9001")
    driver.find_element(By.ID, "private_key").send_keys(github.app_key or "")
    driver.find_element(By.ID, "webhook_secret").send_keys("imported-secret-1234")
    driver.find_element(By.CSS_SELECTOR, "#import-app button").click()
    wait_for_title(driver, "Install autopack-test")
    assert_configured(server, tmp_path, "imported-secret-1234")
