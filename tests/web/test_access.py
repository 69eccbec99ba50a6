"""Who may see and change what in the back office, over real HTTP."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bot.config import Settings
from bot.storage.store import Store
from tests.conftest import FakeClock
from tests.web.conftest import (
    CSRF,
    DELEGATION_22,
    DELEGATION_29,
    MANAGER,
    PASSWORD,
    SECRETARIAT,
    Server,
    add_accounts,
    free_port,
    start_server,
)

PAGES = [
    "/",
    "/reponses",
    "/reponses?statut=nouvelle",
    "/reponses/1",
    "/reponses/1/fiche.pdf",
    "/reponses/export.xlsx",
    "/reponses/export.csv",
    "/statistiques",
    "/une-page-qui-n-existe-pas",
]


def test_every_page_but_sign_in_redirects_to_sign_in_without_a_session(server: Server) -> None:
    with server.client() as client:
        for path in PAGES:
            response = client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/connexion?suite="), path


def test_a_post_without_a_session_redirects_to_sign_in_and_changes_nothing(server: Server) -> None:
    with server.client() as client:
        response = client.post("/reponses/1/suivi", data={"action": "suivi", "status": "close"})
        assert response.status_code == 303
        assert response.headers["location"].startswith("/connexion")
        client.login(SECRETARIAT)
        assert "Aucune modification" in client.get("/reponses/1").text


def test_sign_in_page_is_open_and_in_french(server: Server) -> None:
    with server.client() as client:
        page = client.get("/connexion")
    assert page.status_code == 200
    assert "<title>Connexion — Suivi de l'AMI CPTS — ARS Bretagne</title>" in page.text
    assert 'lang="fr"' in page.text
    assert 'href="#contenu"' in page.text  # skip link


def test_sign_in_returns_to_the_page_asked_for(server: Server) -> None:
    with server.client() as client:
        first = client.get("/reponses/2")
        token = client.csrf_of(first.headers["location"])
        response = client.post(
            first.headers["location"],
            data={"csrf_token": token, "email": SECRETARIAT, "password": "un-mot-de-passe-solide"},
        )
    assert response.status_code == 303
    assert response.headers["location"] == "/reponses/2"


def test_sign_in_never_redirects_to_another_site(server: Server) -> None:
    with server.client() as client:
        token = client.csrf_of("/connexion")
        response = client.post(
            "/connexion?suite=//evil.example.org/",
            data={"csrf_token": token, "email": SECRETARIAT, "password": "un-mot-de-passe-solide"},
        )
    assert response.headers["location"] == "/reponses"


def test_wrong_password_gets_a_french_message_and_no_session(server: Server) -> None:
    with server.client() as client:
        response = client.login(SECRETARIAT, "pas-le-bon-mot-de-passe")
        assert response.status_code == 401
        assert "Adresse e-mail ou mot de passe incorrect." in response.text
        assert client.get("/reponses").status_code == 303


def test_session_cookie_is_httponly_and_samesite_lax(server: Server) -> None:
    with server.client() as client:
        response = client.login(SECRETARIAT)
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("bo_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # WEB_COOKIE_SECURE=false in these plain-HTTP tests


def test_delegation_agent_gets_404_for_other_departement_response(server: Server) -> None:
    brest = server.subs["brest"]
    lannion = server.subs["lannion"]
    with server.client() as client:
        client.login(DELEGATION_22)
        assert client.get(f"/reponses/{lannion.id}").status_code == 200
        for path in (f"/reponses/{brest.id}", f"/reponses/{brest.id}/fiche.pdf"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert brest.reference not in response.text
        token = client.csrf_of(f"/reponses/{lannion.id}")
        changed = client.post(
            f"/reponses/{brest.id}/suivi",
            data={"csrf_token": token, "action": "note", "note": "intrusion"},
        )
        assert changed.status_code == 404
    with server.client() as client:
        client.login(DELEGATION_29)
        assert "intrusion" not in client.get(f"/reponses/{brest.id}").text


def test_delegation_agent_lists_and_exports_only_its_departement(server: Server) -> None:
    brest = server.subs["brest"]
    lannion = server.subs["lannion"]
    with server.client() as client:
        client.login(DELEGATION_22)
        listing = client.get("/reponses").text
        assert lannion.reference in listing
        assert brest.reference not in listing
        exported = client.get("/reponses/export.csv?delegation=29")
        rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig")), delimiter=";"))
        assert rows[1:] == []
        exported = client.get("/reponses/export.csv")
        rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig")), delimiter=";"))
        assert [r[0] for r in rows[1:]] == [lannion.reference]
        xlsx = client.get("/reponses/export.xlsx")
        assert brest.reference.encode() not in xlsx.content


def test_secretariat_sees_every_response(server: Server) -> None:
    with server.client() as client:
        client.login(SECRETARIAT)
        listing = client.get("/reponses").text
    assert server.subs["lannion"].reference in listing
    assert server.subs["brest"].reference in listing


def test_manager_reads_but_cannot_change_a_response(server: Server) -> None:
    lannion = server.subs["lannion"]
    with server.client() as client:
        client.login(MANAGER)
        page = client.get(f"/reponses/{lannion.id}")
        assert page.status_code == 200
        assert "Votre rôle permet la consultation seulement." in page.text
        token = client.csrf_of(f"/reponses/{lannion.id}")
        refused = client.post(
            f"/reponses/{lannion.id}/suivi",
            data={"csrf_token": token, "action": "suivi", "status": "close"},
        )
        assert refused.status_code == 403
        assert "consultation" in refused.text
        stats = client.get("/statistiques")
        assert stats.status_code == 200
        assert "Par statut" in stats.text


def test_delegation_cannot_move_a_response_to_another_delegation(server: Server) -> None:
    lannion = server.subs["lannion"]
    with server.client() as client:
        client.login(DELEGATION_22)
        token = client.csrf_of(f"/reponses/{lannion.id}")
        response = client.post(
            f"/reponses/{lannion.id}/suivi",
            data={"csrf_token": token, "action": "suivi", "status": "nouvelle", "delegation": "29"},
        )
        assert response.status_code == 303  # the field is ignored: the délégation is unchanged
        assert "22 — Côtes-d&#39;Armor" in client.get(f"/reponses/{lannion.id}").text


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/reponses/1/suivi", {"action": "suivi", "status": "close"}),
        ("/reponses/1/suivi", {"action": "note", "note": "sans jeton"}),
        ("/reponses/1/envois/1/renvoyer", {}),
        ("/deconnexion", {}),
    ],
)
def test_a_post_without_the_csrf_token_is_refused(server: Server, path: str, data: dict) -> None:  # type: ignore[type-arg]
    with server.client() as client:
        client.login(SECRETARIAT)
        for token in (None, "faux-jeton"):
            sent = dict(data) if token is None else {**data, "csrf_token": token}
            response = client.post(path, data=sent)
            assert response.status_code == 403
            assert "CSRF" in response.text
        page = client.get("/reponses/1")
        assert page.status_code == 200  # still signed in
        assert "Aucune modification" in page.text


def test_sign_in_without_the_form_token_is_refused(server: Server) -> None:
    with server.client() as client:
        response = client.post(
            "/connexion", data={"email": SECRETARIAT, "password": "un-mot-de-passe-solide"}
        )
    assert response.status_code == 403
    assert "Le formulaire a expiré" in response.text
    assert "bo_session" not in response.headers.get("set-cookie", "")


def test_session_ends_after_the_idle_time(server: Server) -> None:
    with server.client() as client:
        client.login(SECRETARIAT)
        server.clock.advance(minutes=59)
        assert client.get("/reponses").status_code == 200
        server.clock.advance(minutes=59)
        assert client.get("/reponses").status_code == 200  # each request keeps it alive
        server.clock.advance(minutes=61)
        response = client.get("/reponses")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/connexion")


def test_session_ends_after_its_lifetime_even_when_used(server: Server) -> None:
    with server.client() as client:
        client.login(SECRETARIAT)
        for _ in range(8):
            server.clock.advance(minutes=55)
            client.get("/reponses")
        server.clock.advance(minutes=45)  # 8 h 05 after sign-in, 45 min after the last request
        assert client.get("/reponses").status_code == 303


def test_signing_out_ends_the_session_for_good(server: Server) -> None:
    with server.client() as client:
        client.login(SECRETARIAT)
        cookie = client.cookies["bo_session"]
        token = client.csrf_of("/reponses")
        response = client.post("/deconnexion", data={"csrf_token": token})
        assert response.status_code == 303
    with server.client() as replay:
        replay.cookies.set("bo_session", cookie)
        assert replay.get("/reponses").status_code == 303  # the old cookie is worthless


def test_pages_forbid_framing_and_scripts(server: Server) -> None:
    with server.client() as client:
        page = client.get("/connexion")
    assert page.headers["x-frame-options"] == "DENY"
    assert "script-src 'none'" in page.headers["content-security-policy"]


def test_static_design_system_files_are_served_without_a_session(server: Server) -> None:
    with server.client() as client:
        css = client.get("/static/dsfr/dsfr.min.css")
        font = client.get("/static/dsfr/fonts/Marianne-Regular.woff2")
    assert css.status_code == 200 and ".fr-header" in css.text
    assert font.status_code == 200


def test_odd_response_numbers_get_a_plain_404(server: Server) -> None:
    with server.client() as client:
        client.login(SECRETARIAT)
        for path in ("/reponses/99999999999999999999", "/reponses/abc", "/reponses/0"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert (
                "Cette réponse n&#39;existe pas, ou vous n&#39;y avez pas accès." in response.text
            )
        token = client.csrf_of("/reponses/1")
        odd_agent = client.post(
            "/reponses/1/suivi",
            data={"csrf_token": token, "action": "suivi", "status": "nouvelle", "agent": "9" * 30},
        )
        assert odd_agent.status_code == 400


def test_cookies_are_secure_when_configured(
    sqlite_url: str, web_settings: Callable[..., Settings], clock: FakeClock
) -> None:
    store = Store.from_url(sqlite_url, clock)
    store.create_all()
    add_accounts(store)
    running = start_server(web_settings(sqlite_url, web_cookie_secure=True), store, clock)
    try:
        with running.client() as client:
            page = client.get("/connexion")
            assert "Secure" in page.headers["set-cookie"]
            token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
            # httpx keeps Secure cookies away from plain HTTP: hand the form cookie over
            client.cookies.clear()
            client.headers["Cookie"] = f"bo_login_csrf={token}"
            response = client.post(
                "/connexion",
                data={"csrf_token": token, "email": SECRETARIAT, "password": PASSWORD},
            )
        session_cookie = next(
            h for h in response.headers.get_list("set-cookie") if h.startswith("bo_session=")
        )
        assert "Secure" in session_cookie and "HttpOnly" in session_cookie
    finally:
        running.stop()


def test_python_m_bot_web_serves_the_sign_in_page(sqlite_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": sqlite_url, "WEB_COOKIE_SECURE": "false"}
    unmigrated = subprocess.run(
        [sys.executable, "-m", "bot", "web", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert unmigrated.returncode == 3
    assert "Lancez d'abord : python -m bot migrate" in unmigrated.stderr
    subprocess.run([sys.executable, "-m", "bot", "migrate"], env=env, check=True, cwd=tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "web", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/connexion", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "python -m bot web did not answer"
                time.sleep(0.2)
        assert page.status_code == 200
        assert "Connexion" in page.text
    finally:
        process.terminate()
        process.wait(15)
