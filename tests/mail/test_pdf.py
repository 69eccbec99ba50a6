"""The PDF fiche: emoji readable, phones unbroken, complete file names, accented capitals, metadata."""

from __future__ import annotations

import io

import pypdf
import pytest

from bot.mail.pdf import render_fiche_pdf
from bot.mail.render import safe_filename
from bot.storage.models import Submission
from tests.mail.factories import answers


def make(**overrides: object) -> Submission:
    sub = Submission(
        id=1,
        reference="AMI-2026-0001",
        user_id=4242,
        form_id="ami_bretagne",
        recipient="ars@example.org",
        answers=answers(**overrides),
    )
    return sub


def lines(data: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return [" ".join(line.replace("\xa0", " ").split()) for line in text.splitlines()]


def test_an_emoji_becomes_a_readable_word_not_a_question_mark() -> None:
    actors = answers()["actors"]
    actors[0]["name"] = "Centre de secours 🚑 de Lannion 🏥"
    actors[1]["name"] = "Équipe 🦩 mobile"
    text = "\n".join(lines(render_fiche_pdf(make(actors=actors))))
    assert "Centre de secours [ambulance] de Lannion [hôpital]" in text
    assert "Équipe [flamingo] mobile" in text  # unknown emoji: its Unicode name
    assert "?" not in text.replace("(CPTS)", "")


@pytest.mark.parametrize("padding", range(0, 60, 3))
def test_a_phone_number_never_breaks_across_lines(padding: int) -> None:
    referents = answers()["referents"]
    referents[0]["function"] = "coordinatrice " + "x" * padding
    referents[0]["phone_display"] = "06 11 22 33 44"
    found = [line for line in lines(render_fiche_pdf(make(referents=referents)))]
    assert any("06 11 22 33 44" in line for line in found), found


def test_capitals_keep_their_accents() -> None:
    text = "\n".join(lines(render_fiche_pdf(make())))
    assert "APPEL À MANIFESTATION D'INTÉRÊT" in text


def test_metadata_name_the_response_and_its_author() -> None:
    meta = pypdf.PdfReader(io.BytesIO(render_fiche_pdf(make()))).metadata
    assert meta is not None
    assert meta.author == "Dr Paul Le Cam"
    assert meta.title == (  # the form's own title (dialogues/ami_bretagne.yaml)
        "Réponse AMI-2026-0001 — Appel à manifestation d'intérêt CPTS — ARS Bretagne "
        "(septembre 2021)"
    )
    assert "ARS Bretagne" in (meta.subject or "")
    assert meta.creation_date is not None and meta.creation_date.year == 2026


def test_file_names_transliterate_instead_of_dropping_letters() -> None:
    assert safe_filename("fiche-AMI-2026-0001-Cœur-de-Bretagne.pdf") == (
        "fiche-AMI-2026-0001-Coeur-de-Bretagne.pdf"
    )
    assert safe_filename("Lannion-Trégor Communauté.pdf") == "Lannion-Tregor-Communaute.pdf"
    assert safe_filename("Æsculape Straße ØLŁ.pdf") == "AEsculape-Strasse-OLL.pdf"


def test_the_fiche_is_rendered_in_another_process_once_per_response() -> None:
    import os

    from bot.mail import pdfproc

    first = make()
    content = pdfproc.render_pdf(first)
    assert content.startswith(b"%PDF")
    renderer_pid = pdfproc._get_pool().submit(os.getpid).result(timeout=60)
    assert renderer_pid != os.getpid()
    assert pdfproc.render_pdf(first) is content  # the ARS e-mail reuses the chat's PDF
    # the same reference with other answers (an id reused after an erasure) is rendered anew
    other = make(actors=[{"name": "Autre équipe", "profession": "kiné", "commune": "Brest"}])
    assert "Autre équipe" in "\n".join(lines(pdfproc.render_pdf(other)))


def test_a_turn_can_leave_the_fiche_to_be_rendered_outside_it(app) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import Chat
    from tests.forms.walk import fill_to_review

    chat = Chat(app, user_id=77)
    personas = {
        "actors": [{"name": "Dr Anne Le Goff", "profession": "médecin", "commune": "Morlaix", "practice": "MSP"}],
        "referents": [{"name": "Anne Le Goff", "function": "médecin", "email": "anne@example.org", "phone": "06 12 34 56 78"}],
        "objectives": ["reflection"], "context": "Un projet de santé pour le pays de Morlaix, avec les pharmacies.",
        "territory": "Morlaix Communauté", "calendar": "avant fin mars",
    }  # fmt: skip
    fill_to_review(chat, personas)
    from bot.engine.messages import Incoming, Kind

    send = next(b.payload for b in chat.buttons if "Envoyer" in b.label)
    replies = app.engine.handle(Incoming(77, Kind.CHOICE, send), render_documents=False)
    [deferred] = [r for r in replies if r.document is not None]
    assert deferred.document.content == b"" and deferred.document.render is not None
    rendered = app.engine.render_document(deferred)
    assert rendered.document is not None and rendered.document.content.startswith(b"%PDF")
