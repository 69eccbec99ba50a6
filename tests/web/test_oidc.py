"""OpenID Connect sign-in (ProConnect speaks it) against a REAL provider on loopback.

The provider is node-oidc-provider, run by node from tests/support/oidc (pinned by its
package-lock.json; `.ci/run` runs `npm ci` there). Its development sign-in form accepts any
login and gives it as the e-mail claim, which is how these tests choose who signs in.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from html import unescape

import httpx
import pytest

from bot.config import ROOT, Settings
from bot.storage.store import Store
from tests.conftest import FakeClock
from tests.web.conftest import (
    DELEGATION_22,
    Server,
    add_accounts,
    add_responses,
    free_port,
    start_server,
)

PROVIDER_DIR = ROOT / "tests" / "support" / "oidc"
CLIENT_ID = "backoffice-ars"
CLIENT_SECRET = "un-secret-de-test-assez-long-pour-hs256-0123456789"


@dataclass
class Provider:
    issuer: str
    process: subprocess.Popen[str]


def require_node() -> str:
    node = shutil.which("node")
    if node and (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return node
    if os.environ.get("REQUIRE_BROWSER"):
        pytest.fail("REQUIRE_BROWSER is set but node or tests/support/oidc/node_modules is missing")
    pytest.skip(
        "node or the test OpenID Connect provider is missing (cd tests/support/oidc && npm ci)"
    )


@pytest.fixture
def oidc_server(
    sqlite_url: str, web_settings: Callable[..., Settings], clock: FakeClock
) -> Iterator[Server]:
    node = require_node()
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/auth/oidc/callback"
    process = subprocess.Popen(
        [node, "provider.mjs"],
        cwd=PROVIDER_DIR,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CLIENT_ID": CLIENT_ID,
            "CLIENT_SECRET": CLIENT_SECRET,
            "REDIRECT_URI": redirect,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.match(r"listening (\d+)", line)
        assert match, f"the OpenID Connect provider did not start: {line!r}"
        settings = web_settings(
            sqlite_url,
            oidc_issuer=f"http://127.0.0.1:{match.group(1)}",
            oidc_client_id=CLIENT_ID,
            oidc_client_secret=CLIENT_SECRET,
            oidc_redirect_url=redirect,
        )
        store = Store.from_url(sqlite_url, clock)
        store.create_all()
        add_accounts(store)
        subs = add_responses(store, settings)
        server = start_server(settings, store, clock, port=port)
        server.subs = subs
        yield server
        server.stop()
    finally:
        process.terminate()
        process.wait(10)


def sign_in_with_provider(server: Server, email: str) -> tuple[httpx.Client, httpx.Response]:
    """Click « Se connecter avec ProConnect », type the login at the provider, consent."""
    client = httpx.Client(follow_redirects=True, timeout=30)
    page = client.get(server.url + "/auth/oidc/login?suite=/reponses")
    for _ in range(3):
        form = re.search(r'<form[^>]*action="([^"]+)"', page.text)
        if form is None or "prompt" not in page.text:
            break
        action = httpx.URL(str(page.url)).join(unescape(form.group(1)))
        if 'value="login"' in page.text:
            page = client.post(action, data={"prompt": "login", "login": email, "password": "x"})
        else:
            page = client.post(action, data={"prompt": "consent"})
    return client, page


def test_login_page_offers_proconnect_when_configured(oidc_server: Server) -> None:
    with oidc_server.client() as client:
        assert "Se connecter avec ProConnect" in client.get("/connexion").text


def test_a_known_email_signs_in_through_the_provider(oidc_server: Server) -> None:
    client, page = sign_in_with_provider(oidc_server, DELEGATION_22)
    with closing(client):
        assert page.url.path == "/reponses", page.text[:500]
        assert "dd22@ars.sante.fr — Délégation départementale (22)" in page.text
        assert oidc_server.subs["lannion"].reference in page.text
        assert oidc_server.subs["brest"].reference not in page.text  # still scoped to the 22
    actions = [(e.action, e.target) for e in oidc_server.store.audit_entries()]
    assert ("web.login", "oidc") in actions


def test_an_unknown_email_is_refused_with_a_french_message(oidc_server: Server) -> None:
    client, page = sign_in_with_provider(oidc_server, "inconnu@interieur.gouv.fr")
    with closing(client):
        assert page.url.path == "/connexion"
        assert "Votre compte ProConnect n'a pas accès à cet espace" in page.text
        assert client.get(oidc_server.url + "/reponses").url.path == "/connexion"


def test_a_forged_callback_is_refused(oidc_server: Server) -> None:
    with oidc_server.client() as client:
        response = client.get("/auth/oidc/callback?code=forged&state=forged")
    assert response.status_code == 303
    assert response.headers["location"] == "/connexion?erreur=oidc_echec"
