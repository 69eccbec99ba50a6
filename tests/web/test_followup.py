"""Follow-up of responses in the back office: statuses, notes, labels, agents, history, lists."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from bot.config import Settings
from bot.storage.models import FollowupEvent, OutboxJob, OutboxStatus, Submission
from bot.storage.store import Store
from bot.web import auth
from bot.web.followup import ConfigError, infer_departements, load_config, sync
from tests.conftest import FakeClock
from tests.mail.factories import submit
from tests.web.conftest import (
    DELEGATION_22,
    DELEGATION_29,
    PASSWORD,
    SECRETARIAT,
    Server,
    add_accounts,
    start_server,
)


def post_followup(client, sid: int, **data: str) -> None:  # type: ignore[no-untyped-def]
    token = client.csrf_of(f"/reponses/{sid}")
    response = client.post(f"/reponses/{sid}/suivi", data={"csrf_token": token, **data})
    assert response.status_code == 303, response.text


def test_status_note_labels_and_agent_are_recorded_in_the_history(server: Server) -> None:
    lannion = server.subs["lannion"]
    with server.client() as client:
        client.login(DELEGATION_22)
        agent = auth.account_by_email(server.store, DELEGATION_22)
        assert agent is not None
        post_followup(
            client,
            lannion.id,
            action="suivi",
            status="prise_en_charge",
            agent=str(agent.id),
            new_labels="Projet avancé, À rappeler",
        )
        post_followup(client, lannion.id, action="note", note="Appelé le Dr Le Cam : RDV à fixer.")
        page = client.get(f"/reponses/{lannion.id}").text
    assert 'id="statut-actuel">Prise en charge<' in page
    assert "Nouvelle → Prise en charge" in page
    assert "Appelé le Dr Le Cam : RDV à fixer." in page
    assert "aucun → dd22@ars.sante.fr" in page
    assert "Projet avancé, À rappeler" in page
    with server.store.unit() as session:
        kinds = [e.kind for e in session.exec(select(FollowupEvent).order_by(FollowupEvent.id))]
    assert kinds == ["status", "agent", "labels", "note"]
    assert "web.view" in [e.action for e in server.store.audit_entries()]


def test_an_agent_of_another_departement_cannot_be_assigned(server: Server) -> None:
    lannion = server.subs["lannion"]
    other = auth.account_by_email(server.store, DELEGATION_29)
    assert other is not None
    with server.client() as client:
        client.login(SECRETARIAT)
        token = client.csrf_of(f"/reponses/{lannion.id}")
        response = client.post(
            f"/reponses/{lannion.id}/suivi",
            data={
                "csrf_token": token,
                "action": "suivi",
                "status": "nouvelle",
                "agent": str(other.id),
            },
        )
    assert response.status_code == 403
    assert "autre département" in response.text


def test_secretariat_moves_a_response_to_another_delegation(server: Server) -> None:
    lannion = server.subs["lannion"]
    with server.client() as client:
        client.login(SECRETARIAT)
        post_followup(client, lannion.id, action="suivi", status="nouvelle", delegation="29")
    with server.client() as client:
        client.login(DELEGATION_29)
        assert client.get(f"/reponses/{lannion.id}").status_code == 200
    with server.client() as client:
        client.login(DELEGATION_22)
        assert client.get(f"/reponses/{lannion.id}").status_code == 404


def test_resend_puts_the_email_back_in_the_queue_and_says_so(server: Server) -> None:
    lannion = server.subs["lannion"]
    with server.store.unit() as session:
        job = session.exec(select(OutboxJob).where(OutboxJob.submission_id == lannion.id)).first()
        job.status = OutboxStatus.FAILED
        job.last_error = "550 mailbox unavailable"
        session.add(job)
        job_id = job.id
    with server.client() as client:
        client.login(SECRETARIAT)
        page = client.get(f"/reponses/{lannion.id}").text
        assert "EN ÉCHEC" in page and "550 mailbox unavailable" in page
        token = client.csrf_of(f"/reponses/{lannion.id}")
        response = client.post(
            f"/reponses/{lannion.id}/envois/{job_id}/renvoyer", data={"csrf_token": token}
        )
        assert response.status_code == 303
        page = client.get(response.headers["location"]).text
    assert f"L&#39;envoi n° {job_id} est remis en file" in page
    assert "Renvoi d&#39;e-mail" in page
    assert [j.status for j in server.store.jobs() if j.id == job_id] == [OutboxStatus.PENDING]


def test_response_page_follows_the_form_description(server: Server) -> None:
    lannion = server.subs["lannion"]
    with server.client() as client:
        client.login(SECRETARIAT)
        page = client.get(f"/reponses/{lannion.id}").text
    labels = ["Professionnels / structures", "Référent(s)", "Objectifs attendus", "Contexte"]
    labels += ["Territoire de projet", "Calendrier"]
    positions = [page.index(f"{i}. {label}") for i, label in enumerate(labels, 1)]
    assert positions == sorted(positions)
    assert '<th scope="col">Exercice coordonné</th>' in page
    # the same blocks as the e-mail and the PDF (bot/mail/fiche.py): « Autre… » gives way to
    # what the follow-up question said, a period shows the date understood
    assert "<td>cabinet de groupe</td>" in page
    assert "06 11 22 33 44" in page
    assert "<strong>☑ Besoin d&#39;informations sur ce qu&#39;est une CPTS</strong>" in page
    assert "avant fin février (compris : 28 février 2027)" in page


def test_response_pdf_is_the_fiche(server: Server) -> None:
    with server.client() as client:
        client.login(SECRETARIAT)
        pdf = client.get(f"/reponses/{server.subs['brest'].id}/fiche.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


# --- the list ------------------------------------------------------------------------------
@pytest.fixture
def many(sqlite_url: str, web_settings: Callable[..., Settings], clock: FakeClock) -> Server:  # type: ignore[misc]
    settings = web_settings(sqlite_url, web_page_size=20)
    store = Store.from_url(sqlite_url, clock)
    store.create_all()
    add_accounts(store)
    towns = ["Lannion", "Brest", "Rennes", "Vannes", "Quimper"]
    for i in range(55):
        clock.advance(hours=12)
        submit(
            store,
            settings,
            user_id=1000 + i,
            territory=f"Secteur de {towns[i % 5]}",
            submitted_at=clock.now.isoformat(),
            objectives=["initiative"] if i % 2 else ["information"],
            actors=[
                {
                    "name": f"Acteur {i:02d}",
                    "profession": "infirmière",
                    "commune": towns[i % 5],
                    "practice": "MSP",
                }
            ],
        )
    running = start_server(settings, store, clock)
    yield running  # type: ignore[misc]
    running.stop()


def references(html: str) -> list[str]:
    import re

    return re.findall(r'<a href="/reponses/\d+">(AMI-\d{4}-\d{4})</a>', html)


def test_list_paginates_sorts_and_filters(many: Server) -> None:
    with many.client() as client:
        client.login(SECRETARIAT)
        first = client.get("/reponses").text
        assert "55 réponses — page 1 sur 3" in first
        assert references(first)[0] == "AMI-2026-0055"  # newest first
        third = client.get("/reponses?page=3").text
        assert len(references(third)) == 15
        oldest = client.get("/reponses?tri=date&ordre=asc").text
        assert references(oldest)[0] == "AMI-2026-0001"
        vannes = client.get("/reponses?delegation=56").text
        assert "11 réponses" in vannes
        text = client.get("/reponses?q=acteur+07").text
        assert references(text) == ["AMI-2026-0008"]
        initiative = client.get("/reponses?objectif=initiative&delegation=29").text
        assert "11 réponses" in initiative  # Brest and Quimper, odd ones
        dated = client.get("/reponses?du=24/11/2026&au=26/11/2026").text
        assert sorted(references(dated)) == [f"AMI-2026-{n:04d}" for n in range(2, 8)]
        overlap = client.get("/reponses?chevauchement=sans").text
        assert "0 réponse" in overlap  # every town is shared by eleven responses


def test_free_text_ignores_accents_and_case(server: Server) -> None:
    with server.client() as client:
        client.login(SECRETARIAT)
        page = client.get("/reponses?q=KERHERVE").text
    assert references(page) == [server.subs["brest"].reference]


def test_bad_filters_get_a_french_message_and_are_ignored(server: Server) -> None:
    with server.client() as client:
        client.login(SECRETARIAT)
        page = client.get("/reponses?du=31-31-2026&statut=inconnu&page=abc").text
    assert "La date « du » n&#39;est pas reconnue : écrivez-la comme 23/11/2026." in page
    assert "Ce statut n&#39;existe pas : le filtre a été ignoré." in page
    assert "2 réponses" in page


def test_xlsx_export_has_real_dates_and_the_followup(server: Server) -> None:
    with server.client() as client:
        client.login(SECRETARIAT)
        post_followup(client, server.subs["brest"].id, action="suivi", status="close")
        content = client.get("/reponses/export.xlsx?tri=reference&ordre=asc").content
    sheet = load_workbook(io.BytesIO(content)).active
    header = [c.value for c in sheet[1]]
    assert header[1] == "Reçue le"
    assert header[-4:] == ["Statut", "Délégation", "Agent", "Étiquettes"]
    received = sheet.cell(row=2, column=2).value
    assert isinstance(received, datetime)
    assert received == datetime(2026, 11, 23, 10, 0)  # 09:00 UTC is 10:00 in Paris
    statuses = [sheet.cell(row=r, column=len(header) - 3).value for r in (2, 3)]
    assert statuses == ["Nouvelle", "Close"]


def test_statistics_count_by_status_delegation_objective_and_week(server: Server) -> None:
    with server.client() as client:
        client.login(SECRETARIAT)
        page = client.get("/statistiques").text
    assert "2 réponses en tout" in page
    assert "<td>22 — Côtes-d&#39;Armor</td><td>1</td>" in page
    assert "<td>2026-S48</td><td>2</td>" in page


# --- throttling ----------------------------------------------------------------------------
def test_sign_in_is_throttled_per_account_across_instances(server: Server) -> None:
    with server.client() as client:
        for _ in range(5):
            assert client.login(DELEGATION_22, "mauvais-mot-de-passe").status_code == 401
    second = start_server(
        server.settings, Store.from_url(server.settings.database_url, server.clock), server.clock
    )
    try:
        with second.client() as client:
            refused = client.login(DELEGATION_22, PASSWORD)
            assert refused.status_code == 429
            assert "Trop de tentatives de connexion ont échoué récemment" in refused.text
            assert client.login(SECRETARIAT).status_code == 303  # other accounts unaffected
        server.clock.advance(minutes=16)
        with second.client() as client:
            assert client.login(DELEGATION_22, PASSWORD).status_code == 303
    finally:
        second.stop()


def test_sign_in_is_throttled_per_address(server: Server) -> None:
    with server.client() as client:
        for i in range(20):
            client.login(f"inconnu{i}@ars.sante.fr", "mauvais-mot-de-passe")
        assert client.login(SECRETARIAT).status_code == 429


def test_sign_in_attempts_are_erased_after_thirty_days(server: Server) -> None:
    from bot.storage.models import LoginAttempt

    auth.record_attempt(server.store, "ancien@ars.sante.fr", "192.0.2.1", success=False)
    server.clock.advance(days=31)
    auth.record_attempt(server.store, SECRETARIAT, "192.0.2.2", success=True)
    with server.store.unit() as session:
        emails = [a.email for a in session.exec(select(LoginAttempt))]
    assert emails == [SECRETARIAT]


# --- configuration, départements, commands -----------------------------------------------------
def test_followup_config_is_checked_at_load(tmp_path: Path) -> None:
    bad = tmp_path / "followup.yaml"
    bad.write_text(
        "initial: ouverte\nstatuses:\n  - {id: nouvelle, label: Nouvelle, badge: rose}\n"
        "delegations: {'22': Côtes-d'Armor}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as error:
        load_config(bad)
    message = str(error.value)
    assert "n'est pas valide" in message
    assert "statuses.0.badge" in message
    assert load_config().initial == "nouvelle"


@pytest.mark.parametrize(
    ("territory", "communes", "expected"),
    [
        ("Lannion-Trégor Communauté", ["Lannion"], ["22"]),
        ("Pays de Brest", ["Brest", "Guipavas 29490"], ["29"]),
        ("Secteur 35000 et alentours", [], ["35"]),
        ("Département 56", ["Vannes"], ["56"]),
        ("Communes du Finistère sud", ["Quimperlé", "Lorient"], ["29"]),  # the territory wins
        ("", ["Quimperlé", "Lorient"], ["29", "56"]),  # no territory: the actors' communes
        ("Côtes d'Armor", [], ["22"]),
        ("", ["Nantes"], []),
    ],
)
def test_departements_come_from_the_territory_else_from_the_actors_communes(
    territory: str, communes: list[str], expected: list[str]
) -> None:
    sub = Submission(
        id=1,
        reference="AMI-2026-0001",
        user_id=1,
        form_id="ami_bretagne",
        recipient="x@example.org",
        answers={"territory": territory, "actors": [{"commune": c} for c in communes]},
    )
    assert infer_departements(sub) == expected


def test_a_response_without_departement_is_left_to_the_secretariat(server: Server) -> None:
    sub, _ = submit(
        server.store,
        server.settings,
        user_id=300,
        territory="",
        actors=[{"name": "X", "commune": "Nantes"}],
    )
    sync(server.store, load_config())
    with server.client() as client:
        client.login(SECRETARIAT)
        assert "Non attribuée" in client.get(f"/reponses/{sub.id}").text
    with server.client() as client:
        client.login(DELEGATION_22)
        assert client.get(f"/reponses/{sub.id}").status_code == 404


def test_staff_add_reads_the_password_from_stdin(sqlite_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": sqlite_url, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = lambda *args, stdin="": subprocess.run(  # noqa: E731
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run("migrate").returncode == 0
    ok = run(
        "staff",
        "add",
        "Agent.DD29@ars.sante.fr",
        "--role",
        "delegation",
        "--departement",
        "29",
        stdin=PASSWORD + "\n",
    )
    assert ok.returncode == 0, ok.stderr
    assert "Compte enregistré : agent.dd29@ars.sante.fr (delegation)." in ok.stdout
    short = run("staff", "add", "x@ars.sante.fr", "--role", "secretariat", stdin="court\n")
    assert short.returncode == 1
    assert "Le mot de passe doit faire au moins 12 caractères." in short.stderr
    nodep = run("staff", "add", "y@ars.sante.fr", "--role", "delegation", stdin=PASSWORD + "\n")
    assert "Un compte de délégation a besoin d'au moins un --departement." in nodep.stderr
    listed = run("staff", "list")
    assert "agent.dd29@ars.sante.fr — delegation (29)" in listed.stdout
    store = Store.from_url(sqlite_url)
    assert auth.check_password(store, "agent.dd29@ars.sante.fr", PASSWORD) is not None


def test_telegram_staff_commands_are_off_by_default(
    sqlite_url: str, tmp_path: Path, qa_service
) -> None:  # type: ignore[no-untyped-def]
    from bot.app import build_app
    from tests.conftest import STAFF_ID, Chat, make_settings

    settings = make_settings(sqlite_url, tmp_path, telegram_staff_commands=False)
    assert Settings(_env_file=None).telegram_staff_commands is False  # type: ignore[call-arg]
    app = build_app(settings, qa=qa_service, create_schema=True)
    text = Chat(app, user_id=STAFF_ID).say("/stats")
    assert "Je ne connais pas la commande /stats" in text
