"""A second AMI written in YAML only reaches the e-mail, the PDF and the exports as it is.

`tests/mail/forms/ami_normandie.yaml` is a copy of the Breton AMI for another region, with its
own recipient, subject and texts and one extra question (« Partenaires envisagés »). The bot
is built on a dialogues directory holding both forms; a respondent answers the Normandy form
in the chat; the response goes through the outbox to a real SMTP server (aiosmtpd on the
loopback) and is exported with a Breton response, all on a real SQLite database.
"""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pypdf
import pytest
from sqlmodel import select

from bot.config import DIALOGUES_DIR, Settings
from bot.mail import fiche as F
from bot.mail.export import export_csv, export_json, export_xlsx
from bot.storage.models import Submission, UserNotice
from bot.worker import OutboxWorker
from tests.conftest import Chat, FakeClock, make_settings
from tests.forms.walk import OBJECTIVE_BUTTONS, add_actor, add_referent
from tests.mail.conftest import SmtpServer
from tests.mail.factories import submit

HERE = Path(__file__).parent
SECOND_AMI = HERE / "forms" / "ami_normandie.yaml"
RECIPIENT = "ami-cpts@ars-normandie.example.org"  # the form's `recipient.address`
LABEL = "Partenaires envisagés"  # the extra question's label
PARTNERS = "Le centre hospitalier de Bayeux et le CLIC du Bessin"
PERSONA: dict[str, Any] = {
    "actors": [
        {"name": "Dr Hélène Marie", "profession": "médecin généraliste", "commune": "Bayeux",
         "practice": "MSP"},
    ],
    "referents": [
        {"name": "Hélène Marie", "function": "coordinatrice de la MSP",
         "email": "helene.marie@example.org", "phone": "06 12 34 56 78"},
    ],
    "objectives": ["reflection"],
    "context": "La MSP du Bessin veut organiser les soins non programmés avec les pharmacies.",
    "calendar": "avant fin mars",
}  # fmt: skip


@pytest.fixture
def forms(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The forms an app registers for its responses' fiches, forgotten after the test."""
    monkeypatch.setattr(F, "_forms", {})
    yield


@pytest.fixture
def two_ami_app(  # type: ignore[no-untyped-def]
    forms: None, sqlite_url: str, tmp_path: Path, smtp_server: SmtpServer, clock: FakeClock,
    qa_service,
):  # fmt: skip
    """The real bot on a dialogues directory holding the Breton AMI and the second one."""
    from bot.app import build_app

    directory = tmp_path / "dialogues"
    directory.mkdir()
    for path in DIALOGUES_DIR.glob("*.yaml"):
        shutil.copy(path, directory)
    shutil.copy(SECOND_AMI, directory)
    settings = make_settings(
        sqlite_url,
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_security="none",
        smtp_timeout=5.0,
    )
    app = build_app(settings, qa=qa_service, clock=clock, create_schema=True,
                    dialogues_dir=directory)  # fmt: skip
    yield app
    app.store.engine.dispose()


def answer_second_ami(chat: Chat) -> str:
    """Open the Normandy form (no command names it: the conversation is pointed at it, as a
    menu button would) and answer it to the review."""
    with chat.app.store.turn(chat.user_id) as turn:
        turn.conversation.flow = "ami_normandie"
    chat.say("Bonjour")
    chat.press("J'accepte")
    add_actor(chat, PERSONA["actors"][0])
    chat.press("Non, continuer")
    add_referent(chat, PERSONA["referents"][0])
    chat.press("Non, continuer")
    chat.press(OBJECTIVE_BUTTONS["reflection"])
    chat.press("Valider")
    text = chat.say(PERSONA["context"])
    assert "5/7 — Partenaires envisagés" in text
    chat.say(PARTNERS)
    chat.press("Passer")  # no territory
    return chat.say(PERSONA["calendar"])


def pdf_text(data: bytes) -> str:
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)
    return " ".join(text.replace("\xa0", " ").split())


async def test_extra_field_of_a_second_ami_reaches_the_email_pdf_and_exports(
    two_ami_app: Any, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    app = two_ami_app
    settings: Settings = app.settings
    chat = Chat(app, user_id=901)
    review = answer_second_ami(chat)
    assert f"{LABEL}\n   {PARTNERS}" in review
    assert f"({RECIPIENT})" in review  # the respondent is told the form's recipient…
    done = chat.press("Envoyer")
    assert f"({RECIPIENT})" in done  # …and told it again once sent
    [pdf_reply] = [r for r in chat.replies if r.document is not None]  # the chat's PDF
    assert PARTNERS in pdf_text(pdf_reply.document.content)

    with app.store.session() as session:
        [sub] = session.exec(select(Submission).where(Submission.user_id == 901)).all()
    assert sub.form_id == "ami_normandie" and sub.reference.startswith("AMN-")

    # --- the e-mail, through the outbox, received by a real SMTP server
    worker = OutboxWorker(app.store, settings, clock=clock, rng=random.Random(7))
    assert await worker.run_once() == 1
    [received] = smtp_server.messages
    assert received.rcpt_tos == [RECIPIENT]  # the form's recipient, not ARS_MAILBOX
    assert settings.ars_mailbox != RECIPIENT
    msg = received.message
    assert msg["To"].addresses[0].addr_spec == RECIPIENT
    assert msg["Subject"] == f"[AMI CPTS Normandie] {sub.reference} — Bayeux — Dr Hélène Marie"
    assert msg["From"].addresses[0].display_name == "Bot CPTS — ARS Normandie"
    assert [a.addr_spec for a in msg["Reply-To"].addresses] == ["helene.marie@example.org"]

    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert f"== {LABEL} ==\n{PARTNERS}" in text
    assert "Appel à manifestation d'intérêt CPTS — ARS Normandie (2027)" in text
    assert "Bretagne" not in text
    html = msg.get_body(("html",)).get_content()
    assert f">{LABEL}</h2>" in html and PARTNERS in html
    assert "Bretagne" not in html

    attachments = {p.get_filename(): p for p in msg.iter_attachments()}
    pdf = pdf_text(attachments[f"fiche-{sub.reference}-Bayeux.pdf"].get_content())
    for expected in [LABEL, PARTNERS, "ARS Normandie", f"A retourner à : {RECIPIENT}",
                     "Établissements, collectivités, associations que vous associeriez"]:  # fmt: skip
        assert expected in pdf, expected
    assert "Bretagne" not in pdf
    attached = json.loads(attachments[f"{sub.reference}.json"].get_content())
    assert {"id": "partners", "label": LABEL, "answer": [PARTNERS]} in attached["fiche"]
    attached_csv = attachments[f"{sub.reference}.csv"].get_payload(decode=True).decode("utf-8-sig")
    header, row = list(csv.reader(io.StringIO(attached_csv), delimiter=";"))
    assert dict(zip(header, row, strict=True))[LABEL] == PARTNERS

    with app.store.session() as session:
        notices = [n.text for n in session.exec(select(UserNotice))]
    assert notices == [
        f"Votre réponse {sub.reference} a bien été transmise au secrétariat de l'ARS Normandie "
        f"({RECIPIENT})."
    ]

    # --- the exports of a Breton response and this one: one table, the union of the columns
    breton, _ = submit(app.store, settings, user_id=902, copy_to_referent=False)
    both = [breton, sub]
    [json_breton, json_second] = json.loads(export_json(both))
    assert {"id": "partners", "label": LABEL, "answer": [PARTNERS]} in json_second["fiche"]
    assert "partners" not in {entry["id"] for entry in json_breton["fiche"]}
    assert json_second["answers"]["partners"] == PARTNERS  # the answers as stored, for import

    header, *rows = list(csv.reader(io.StringIO(export_csv(both).decode("utf-8-sig")), delimiter=";"))  # fmt: skip
    cells = [dict(zip(header, r, strict=True)) for r in rows]
    assert [c[LABEL] for c in cells] == ["", PARTNERS]  # the Breton AMI does not ask it
    assert [c["Formulaire"] for c in cells] == ["ami_bretagne", "ami_normandie"]
    # the extra question stands where its form puts it: after « Contexte »
    assert header.index(LABEL) == header.index("Contexte") + 1
    assert header.count("Contexte") == 1  # the questions both forms ask are one column

    sheet = openpyxl.load_workbook(io.BytesIO(export_xlsx(both))).active
    titles = [c.value for c in sheet[1]]
    assert titles == header
    second = {t: c for t, c in zip(titles, sheet[3], strict=True)}
    assert second[LABEL].value == PARTNERS and second[LABEL].data_type == "s"
    assert second["Professionnels / structures (nombre)"].value == 1
