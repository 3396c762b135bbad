"""The status page in headless Chromium: the real `autopack serve`, a fake GitHub that plays the
sign-in (authorize page, token exchange, `/user`, the org membership, `GET /app` for a JWT), a
database with a day of seeded work. The browser is sent to sign in, comes back signed in, and the
page renders the seeded data; a screenshot is saved under `.artifacts/` as the test's artefact."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fake_github import FakeGitHub
from tests.integration.server import ServerProcess
from tests.integration.test_setup_browser import CHROMEDRIVER, CHROMIUM, browser  # noqa: F401 - the fixture
from tests.support import SECRET, private_key_pem

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub(api_prefix="/api/v3")
    fake.app_id, fake.slug, fake.app_key = 12345, "autopack", private_key_pem()
    fake.org_roles = {"octo-org": {"alice": "admin"}}
    fake.signs_in_as = "alice"
    fake.serve()
    yield fake
    fake.stop()


def seed(database: Path) -> None:
    import sqlite3

    now = time.time()
    with sqlite3.connect(database) as db:
        for i in range(40):
            db.execute(
                "INSERT INTO deliveries (id, event, action, installation_id, repository, subject, status, "
                "received_at) VALUES (?, 'issues', 'opened', 4242, 'octo-org/widgets', ?, 'done', ?)",
                (f"d-{i}", f"octo-org/widgets#{i}", now - i * 1900),
            )
        db.execute(
            "INSERT INTO jobs (flow, subject, delivery_id, status, attempts, max_attempts, run_at, "
            "created_at, finished_at, last_error) VALUES ('audit', 'octo-org/widgets#21', 'd-3', 'dead', "
            "8, 8, ?, ?, ?, 'RequestFailed: 502 from GitHub')",
            (now, now - 600, now - 60),
        )
        db.execute(
            "INSERT INTO proposals (repository, issue_number, status, pr_number, data, created_at, "
            "updated_at) VALUES ('octo-org/widgets', 7, 'ready', 100, ?, ?, ?)",
            (json.dumps({"gate_status": "waiting for: approval of `c0ffee0` by a writer"}), now, now),
        )
        db.execute(
            "INSERT INTO github_rate_limits (installation_id, remaining, rate_limit, reset_at, seen_at) "
            "VALUES (4242, 4410, 5000, ?, ?)",
            (now + 1200, now),
        )


def test_sign_in_then_the_page_with_seeded_data_and_a_screenshot(
    tmp_path: Path,
    github: FakeGitHub,
    browser: object,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    server = ServerProcess(
        {
            "APP_ID": "12345",
            "PRIVATE_KEY": private_key_pem(),
            "WEBHOOK_SECRET": SECRET,
            "GITHUB_API_URL": github.api_url,
            "GITHUB_CLIENT_ID": "Iv1.testclient",
            "GITHUB_CLIENT_SECRET": "client-secret-for-tests",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'autopack.db'}",
            "AUTOPACK_WORKERS": "0",
        },
        tmp_path,
    ).start()
    try:
        seed(tmp_path / "autopack.db")
        first = httpx.get(server.url + "/status")
        assert first.status_code == 303  # not signed in: to the sign-in
        driver = browser
        driver.get(server.url + "/status")  # type: ignore[attr-defined]
        WebDriverWait(driver, 30).until(expected_conditions.title_contains("Autopack status"))
        assert driver.current_url == server.url + "/status"  # type: ignore[attr-defined]
        text = driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
        assert "alice" in text
        assert "octo-org/widgets#7" in text
        assert "4,410 of 5,000" in text
        assert "RequestFailed: 502 from GitHub" in text
        assert driver.find_elements(By.CSS_SELECTOR, "svg rect")  # type: ignore[attr-defined]
        driver.set_window_size(420, 1400)  # type: ignore[attr-defined]  # a phone
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "status-page.png"
        assert driver.save_screenshot(str(shot))  # type: ignore[attr-defined]
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        log = server.output()
        assert "client-secret-for-tests" not in log
    finally:
        assert server.terminate() == 0, server.output()
