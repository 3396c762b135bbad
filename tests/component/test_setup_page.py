"""First-run setup (DESIGN §6): the manifest page, GitHub's callback, the import form, and leaving
setup mode in the running process. GitHub is mocked with respx."""

from __future__ import annotations

import html
import json
import logging
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from starlette.testclient import TestClient

from app import logs
from app.service import Service
from app.settings import Mode, Settings
from app.web.app import create_app
from app.web.setup import app_yml
from tests.support import comment_payload, headers, private_key_pem

API = "https://api.github.com"
HOOK = "/api/github/webhooks"
PEM = private_key_pem()
CONVERSION = {
    "id": 424242,
    "slug": "autopack-acme",
    "node_id": "A_1",
    "name": "Autopack (acme)",
    "html_url": "https://github.com/apps/autopack-acme",
    "owner": {"login": "acme"},
    "client_id": "Iv1.abc123",
    "client_secret": "client-secret-0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "webhook_secret": "whsec-9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
    "pem": PEM,
}


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def setup_service(tmp_path: Path) -> Service:
    return Service(Settings.load(database_url=f"sqlite:///{tmp_path / 'a.db'}", autopack_workers=0))


@pytest.fixture
def client(setup_service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(setup_service), follow_redirects=False) as c:
        yield c


def form_of(page: str, form_id: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of one form, as a browser would send them."""
    form = re.search(rf'<form id="{form_id}"[^>]*action="([^"]*)"[^>]*>(.*?)</form>', page, re.S)
    assert form, f"no form {form_id}"
    fields = {
        m.group(1): html.unescape(m.group(2))
        for m in re.finditer(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.group(2))
    }
    return html.unescape(form.group(1)), fields


def state_of(action: str) -> str:
    return parse_qs(urlsplit(action).query)["state"][0]


def test_page_posts_app_yml_with_this_servers_urls(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    action, fields = form_of(page.text, "create-app")
    assert action.startswith("https://github.com/settings/apps/new?state=")
    manifest = json.loads(fields["manifest"])
    assert manifest["hook_attributes"]["url"] == "http://testserver" + HOOK
    assert manifest["redirect_url"] == "http://testserver/setup/callback"
    assert manifest["default_permissions"] == app_yml()["default_permissions"]
    assert manifest["default_events"] == app_yml()["default_events"]
    # Each page view gets its own state; the import form carries one too.
    assert state_of(action) != state_of(form_of(client.get("/").text, "create-app")[0])
    assert form_of(page.text, "import-app")[1]["state"]
    # Missing settings are still listed for those who configure by hand.
    for name in ("APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET"):
        assert name in page.text


def test_public_url_enterprise_host_and_organisation(tmp_path: Path) -> None:
    settings = Settings.load(
        database_url=f"sqlite:///{tmp_path / 'a.db'}",
        autopack_public_url="https://bot.acme.example/",
        github_api_url="https://ghe.acme.example/api/v3",
    )
    with TestClient(create_app(Service(settings))) as client:
        page = client.get("/", params={"org": "acme-eng", "name": "Autopack ACME"}).text
        action, fields = form_of(page, "create-app")
        assert action.startswith("https://ghe.acme.example/organizations/acme-eng/settings/apps/new?state=")
        manifest = json.loads(fields["manifest"])
        assert manifest["hook_attributes"]["url"] == "https://bot.acme.example" + HOOK
        assert manifest["redirect_url"] == "https://bot.acme.example/setup/callback"
        assert manifest["name"] == "Autopack ACME"
        assert 'id="local-warning"' not in page
        bad = client.get("/", params={"org": "../../evil"})
        assert bad.status_code == 400
        assert "not a GitHub organisation name" in bad.text
        assert "/organizations/" not in form_of(bad.text, "create-app")[0]


def test_local_webhook_url_is_flagged(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    page = client.get("http://localhost:3000/").text
    assert 'id="local-warning"' in page
    assert "WEBHOOK_PROXY_URL" in page


def complete_manifest(client: TestClient, router: respx.MockRouter, code: str = "c0de") -> httpx.Response:
    route = router.post(f"{API}/app-manifests/{code}/conversions").respond(201, json=CONVERSION)
    state = state_of(form_of(client.get("/").text, "create-app")[0])
    response = client.get("/setup/callback", params={"code": code, "state": state})
    assert route.call_count == 1
    return response


def test_callback_writes_credentials_and_leaves_setup_mode(
    client: TestClient,
    setup_service: Service,
    router: respx.MockRouter,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("debug", "json", [])
    logging.getLogger("httpx").setLevel(logging.DEBUG)
    (tmp_path / ".env").write_text("# mine\nLOG_LEVEL=debug\n")
    assert client.post(HOOK, content=b"{}", headers=headers("ping", b"{}", "p")).status_code == 503

    response = complete_manifest(client, router)

    assert response.status_code == 303
    assert response.headers["location"] == "https://github.com/apps/autopack-acme/installations/new"
    env = (tmp_path / ".env").read_text()
    assert env.startswith("# mine\nLOG_LEVEL=debug\n")
    values = dict(line.split("=", 1) for line in env.splitlines() if "=" in line and not line.startswith("#"))
    assert values["APP_ID"] == "424242"
    assert values["PRIVATE_KEY_PATH"] == "./autopack-acme.private-key.pem"
    assert values["WEBHOOK_SECRET"] == CONVERSION["webhook_secret"]
    assert values["GITHUB_CLIENT_ID"] == "Iv1.abc123"
    assert values["GITHUB_CLIENT_SECRET"] == CONVERSION["client_secret"]
    assert "BEGIN" not in env
    key_file = tmp_path / "autopack-acme.private-key.pem"
    assert key_file.read_text() == PEM
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    # A restart would read exactly this.
    assert Settings.load().mode() is Mode.CONFIGURED

    # The running server left setup mode without a restart.
    assert setup_service.mode is Mode.CONFIGURED
    assert client.get("/readyz").status_code == 200
    assert "Autopack is running" in client.get("/").text
    body = json.dumps(comment_payload("/autopack help")).encode()
    assert client.post(HOOK, content=body, headers=headers("issue_comment", body, "d1")).status_code == 401
    signed = headers("issue_comment", body, "d2", secret=CONVERSION["webhook_secret"])
    assert client.post(HOOK, content=body, headers=signed).status_code == 202
    # Setup is closed now.
    assert client.get("/setup/callback", params={"code": "x", "state": "y"}).status_code == 404
    assert client.post("/setup/import", content=b"state=x").status_code == 404

    out = capsys.readouterr()
    text = out.out + out.err
    assert "GitHub App configured" in text
    for secret in (CONVERSION["webhook_secret"], CONVERSION["client_secret"], "PRIVATE KEY-----\nMII"):
        assert secret not in text


def test_state_is_required_and_used_once(
    client: TestClient, router: respx.MockRouter, tmp_path: Path
) -> None:
    route = router.post(f"{API}/app-manifests/c0de/conversions").respond(
        422, json={"message": "Validation Failed"}
    )
    forged = client.get("/setup/callback", params={"code": "c0de", "state": "forged"})
    assert forged.status_code == 400
    assert "not valid" in forged.text
    assert client.get("/setup/callback", params={"code": "c0de"}).status_code == 400
    assert route.call_count == 0

    state = state_of(form_of(client.get("/").text, "create-app")[0])
    refused = client.get("/setup/callback", params={"code": "c0de", "state": state})
    assert refused.status_code == 502
    assert "used once and expires" in refused.text
    assert route.call_count == 1
    again = client.get("/setup/callback", params={"code": "c0de", "state": state})
    assert again.status_code == 400
    assert route.call_count == 1
    assert not (tmp_path / ".env").exists()

    state = state_of(form_of(client.get("/").text, "create-app")[0])
    odd = client.get("/setup/callback", params={"code": "../../app", "state": state})
    assert odd.status_code == 400
    assert route.call_count == 1


def test_github_unreachable_is_explained(client: TestClient, router: respx.MockRouter) -> None:
    router.post(f"{API}/app-manifests/c0de/conversions").mock(side_effect=httpx.ConnectError("down"))
    state = state_of(form_of(client.get("/").text, "create-app")[0])
    response = client.get("/setup/callback", params={"code": "c0de", "state": state})
    assert response.status_code == 502
    assert "could not reach GitHub" in response.text


def import_form(client: TestClient, **fields: str) -> httpx.Response:
    state = form_of(client.get("/").text, "import-app")[1]["state"]
    return client.post(
        "/setup/import",
        data={"state": state, **fields},
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


def test_import_checks_the_key_with_github_then_writes(
    client: TestClient, setup_service: Service, router: respx.MockRouter, tmp_path: Path
) -> None:
    app = router.get(f"{API}/app").respond(
        200, json={"id": 777, "slug": "my-autopack", "html_url": "https://github.com/apps/my-autopack"}
    )
    response = import_form(
        client, app_id="777", private_key=PEM.replace("\n", "\r\n"), webhook_secret="s3cr3t-value"
    )
    assert response.status_code == 303
    assert response.headers["location"] == "https://github.com/apps/my-autopack/installations/new"
    assert app.call_count == 1
    auth = app.calls[0].request.headers["authorization"]
    assert auth.startswith("Bearer ey")  # a JWT signed by the imported key
    assert (tmp_path / "my-autopack.private-key.pem").read_text() == PEM
    assert "WEBHOOK_SECRET=s3cr3t-value" in (tmp_path / ".env").read_text()
    assert setup_service.mode is Mode.CONFIGURED
    assert setup_service.settings.app_id == 777


@pytest.mark.parametrize(
    ("fields", "message", "asks_github"),
    [
        ({"app_id": "abc", "private_key": PEM, "webhook_secret": "s"}, "App ID must be", False),
        ({"app_id": "5", "private_key": "not a key", "webhook_secret": "s"}, "not a PEM private key", False),
        ({"app_id": "5", "private_key": PEM, "webhook_secret": " "}, "webhook secret is required", False),
        (
            {"app_id": "5", "private_key": PEM, "webhook_secret": "s"},
            "GitHub refused the key for App 5",
            True,
        ),
    ],
)
def test_import_refusals_write_nothing(
    client: TestClient,
    setup_service: Service,
    router: respx.MockRouter,
    tmp_path: Path,
    fields: dict[str, str],
    message: str,
    asks_github: bool,
) -> None:
    app = router.get(f"{API}/app").respond(401, json={"message": "A JSON web token could not be decoded"})
    response = import_form(client, **fields)
    assert response.status_code == 400
    assert message in html.unescape(response.text)
    assert app.called is asks_github
    assert not (tmp_path / ".env").exists()
    assert setup_service.mode is Mode.SETUP
    assert PEM.splitlines()[1] not in response.text  # the key is never echoed back
    # The page is shown again with a fresh state, so the maintainer can correct and resend.
    assert form_of(response.text, "import-app")[1]["state"]


def test_import_form_state_is_required(client: TestClient, router: respx.MockRouter) -> None:
    app = router.get(f"{API}/app")
    response = client.post(
        "/setup/import",
        data={"state": "forged", "app_id": "5", "private_key": PEM, "webhook_secret": "s"},
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert "expired" in response.text
    assert not app.called


def test_start_failure_keeps_setup_mode_and_says_what_to_do(tmp_path: Path, router: respx.MockRouter) -> None:
    bad = tmp_path / "routing.yaml"
    bad.write_text("complexity_models: [not, a, mapping]\n")
    service = Service(
        Settings.load(database_url=f"sqlite:///{tmp_path / 'a.db'}", autopack_workers=0, autopack_models=bad)
    )
    with TestClient(create_app(service), follow_redirects=False) as client:
        response = complete_manifest(client, router)
        assert response.status_code == 500
        assert "could not start" in response.text
        assert "restart Autopack" in response.text
        assert service.mode is Mode.SETUP
        assert client.get("/readyz").status_code == 503
        assert (tmp_path / ".env").exists()  # written: a restart after the fix picks them up


def test_worker_processes_have_no_setup_routes(setup_service: Service) -> None:
    with TestClient(create_app(setup_service, receive_webhooks=False)) as client:
        assert client.get("/setup/callback", params={"code": "c", "state": "s"}).status_code == 404
        assert client.post("/setup/import", content=b"").status_code in (404, 405)


def test_corrected_key_is_checked_afresh(
    client: TestClient, setup_service: Service, router: respx.MockRouter, tmp_path: Path
) -> None:
    """githubkit keeps an App's JWT in its cache by App id: a JWT signed with the wrong key must not
    be reused when the maintainer sends the right one."""
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    public = serialization.load_pem_private_key(PEM.encode(), None).public_key()

    def get_app(request: httpx.Request) -> httpx.Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        try:
            jwt.decode(token, public, algorithms=["RS256"])  # type: ignore[arg-type]
        except jwt.PyJWTError:
            return httpx.Response(401, json={"message": "A JSON web token could not be decoded"})
        return httpx.Response(
            200, json={"id": 31, "slug": "mine", "html_url": "https://github.com/apps/mine"}
        )

    router.get(f"{API}/app").mock(side_effect=get_app)
    other = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    wrong = import_form(client, app_id="31", private_key=other, webhook_secret="s3cr3t-value")
    assert wrong.status_code == 400
    right = import_form(client, app_id="31", private_key=PEM, webhook_secret="s3cr3t-value")
    assert right.status_code == 303
    assert setup_service.mode is Mode.CONFIGURED
