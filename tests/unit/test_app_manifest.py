"""The manifest flow's pure parts: the manifest, GitHub's URLs, `.env` merging, one-time states."""

from __future__ import annotations

import pytest

from app.policy.app_manifest import (
    ManifestError,
    ServerUrls,
    build_manifest,
    check_code,
    check_name,
    check_org,
    github_web_url,
    install_url,
    merge_env,
    new_app_url,
    server_urls,
)
from app.web.setup import MAX_STATES, OneTimeStates, app_yml

URLS = ServerUrls("https://bot.example.com/api/github/webhooks", "https://bot.example.com/setup/callback")


def test_server_urls_public_url_wins_and_proxy_replaces_only_the_webhook() -> None:
    plain = server_urls("http://localhost:3000/", "/hooks", public_url=None, webhook_proxy_url=None)
    assert plain == ServerUrls("http://localhost:3000/hooks", "http://localhost:3000/setup/callback")
    assert plain.webhook_is_local
    public = server_urls(
        "http://10.0.0.5:3000/", "/hooks", public_url="https://bot.example.com", webhook_proxy_url=None
    )
    assert public == ServerUrls("https://bot.example.com/hooks", "https://bot.example.com/setup/callback")
    assert not public.webhook_is_local
    proxied = server_urls(
        "http://localhost:3000/", "/hooks", public_url=None, webhook_proxy_url="https://smee.io/abc"
    )
    assert proxied == ServerUrls("https://smee.io/abc", "http://localhost:3000/setup/callback")
    assert not proxied.webhook_is_local


@pytest.mark.parametrize(
    ("api", "web"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://api.github.com/", "https://github.com"),
        ("https://ghe.corp.example/api/v3", "https://ghe.corp.example"),
        ("http://127.0.0.1:8080/api/v3/", "http://127.0.0.1:8080"),
    ],
)
def test_github_web_url(api: str, web: str) -> None:
    assert github_web_url(api) == web


def test_new_app_url_personal_and_organisation() -> None:
    assert (
        new_app_url("https://github.com", "s t", None) == "https://github.com/settings/apps/new?state=s%20t"
    )
    assert (
        new_app_url("https://ghe.corp", "abc", "my-org")
        == "https://ghe.corp/organizations/my-org/settings/apps/new?state=abc"
    )


@pytest.mark.parametrize("bad", ["", "-org", "org-", "a--b", "a/b", "../x", "a" * 40, "x?y=1", "o rg"])
def test_bad_organisation_names_never_reach_a_url(bad: str) -> None:
    with pytest.raises(ManifestError):
        check_org(bad)
    with pytest.raises(ManifestError):
        new_app_url("https://github.com", "s", bad or "-")


def test_good_organisation_names() -> None:
    for good in ("a", "octo-org", "A1-b2-C3", "a" * 39):
        assert check_org(f" {good} ") == good


def test_codes_and_names() -> None:
    assert check_code("a1B2_c-3") == "a1B2_c-3"
    for bad in ("", "a/b", "../conversions", "a b", "x" * 129):
        with pytest.raises(ManifestError):
            check_code(bad)
    assert check_name("  Autopack   for  me ") == "Autopack for me"
    with pytest.raises(ManifestError):
        check_name("   ")
    with pytest.raises(ManifestError):
        check_name("x" * 35)


def test_manifest_is_app_yml_with_this_servers_urls() -> None:
    source = app_yml()
    manifest = build_manifest(source, URLS)
    assert manifest["default_permissions"] == source["default_permissions"]
    assert manifest["default_events"] == source["default_events"]
    assert manifest["hook_attributes"] == {"url": URLS.webhook, "active": True}
    assert manifest["redirect_url"] == URLS.redirect
    assert manifest["name"] == source["name"]
    assert manifest["public"] is False
    assert set(manifest) <= {*source, "redirect_url"}
    assert "https://example.com/" not in str(manifest)  # app.yml's placeholder is gone
    assert build_manifest(source, URLS, "Autopack (acme)")["name"] == "Autopack (acme)"


def test_manifest_needs_the_essential_keys() -> None:
    with pytest.raises(ManifestError, match="default_permissions"):
        build_manifest({"name": "x", "default_events": []}, URLS)


def test_app_yml_asks_no_workflow_or_admin_permission() -> None:
    permissions = app_yml()
    assert not {"workflows", "administration", "secrets", "actions"} & set(permissions["default_permissions"])


def test_install_url() -> None:
    assert (
        install_url("https://github.com/apps/autopack-x/")
        == "https://github.com/apps/autopack-x/installations/new"
    )


def test_merge_env_replaces_removes_appends_and_keeps_the_rest() -> None:
    before = (
        "# my settings\n"
        "LOG_LEVEL=debug\n"
        "export APP_ID=1\n"
        "PRIVATE_KEY=\n"
        "APP_ID=2\n"
        "DATABASE_URL=sqlite:///x.db\n"
    )
    after = merge_env(before, {"APP_ID": "99", "PRIVATE_KEY": None, "WEBHOOK_SECRET": "s3", "UNSET": None})
    assert after.splitlines() == [
        "# my settings",
        "LOG_LEVEL=debug",
        "APP_ID=99",
        "DATABASE_URL=sqlite:///x.db",
        "",
        "# Written by Autopack's setup page",
        "WEBHOOK_SECRET=s3",
    ]
    assert merge_env("", {"A": "1"}) == "# Written by Autopack's setup page\nA=1\n"
    with pytest.raises(ManifestError):
        merge_env("", {"A": "1\nB=2"})


def test_states_are_accepted_once_and_expire() -> None:
    now = [1000.0]
    states = OneTimeStates(ttl=60, clock=lambda: now[0])
    a, b = states.issue(), states.issue()
    assert a != b
    assert len(a) >= 40
    assert states.consume(a)
    assert not states.consume(a)
    assert not states.consume("made-up")
    now[0] += 61
    assert not states.consume(b)


def test_states_are_capped() -> None:
    states = OneTimeStates()
    first = states.issue()
    for _ in range(MAX_STATES):
        states.issue()
    assert not states.consume(first)
