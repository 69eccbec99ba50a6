"""Overlaps by communes through the index tables: the ARS e-mail names the earlier responses
sharing communes, with those communes and their population, and its subject the département."""

from __future__ import annotations

import random

from sqlmodel import select

from bot.config import Settings
from bot.storage.models import SubmissionCommune, SubmissionPlaceWord
from bot.storage.overlaps import OverlapIndex, overlaps_in_index
from bot.storage.store import Store
from bot.territory import understand
from bot.worker import OutboxWorker
from tests.conftest import FakeClock
from tests.mail.conftest import SmtpServer
from tests.mail.factories import submit

ARS = "ars-bretagne-secretariat-daspf@ars.sante.fr"


def territory(text: str) -> dict:
    """The answers of a territory confirmed in the form."""
    return {"territory": text, "territory_understood": understand(text)}


async def test_two_responses_sharing_communes_are_flagged_with_those_communes(
    mail_store: Store, mail_settings: Settings, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    first, _ = submit(
        mail_store, mail_settings, user_id=1, **territory("Ploërmel, Josselin, Malestroit")
    )
    submit(mail_store, mail_settings, user_id=2, **territory("Rennes Métropole"))
    third, _ = submit(mail_store, mail_settings, user_id=3, **territory("CC Ploërmel Communauté"))
    with mail_store.unit() as session:
        [overlap] = overlaps_in_index(session, third)
        rows = session.exec(
            select(SubmissionCommune).where(SubmissionCommune.submission_id == third.id)
        ).all()
    assert len(rows) == 30  # the EPCI's member communes, indexed with the response
    assert overlap.reference == first.reference
    assert overlap.communes == ("Ploërmel", "Josselin")  # Malestroit is not a member
    assert overlap.population == 10163 + 2584
    await OutboxWorker(mail_store, mail_settings, clock=clock, rng=random.Random(1)).run_once()
    mail = next(r for r in smtp_server.handler.to(ARS) if third.reference in r.message["Subject"])
    assert mail.message["Subject"].startswith(f"[AMI CPTS] [56] {third.reference} — ")
    body = mail.message.get_body(("plain",)).get_content()
    assert f"{first.reference} — Ploërmel, Josselin, Malestroit" in body
    assert "2 communes en commun : Ploërmel, Josselin — 12 747 habitants" in body
    assert "Reconnu : CC Ploërmel Communauté — 30 communes, 43 228 habitants (INSEE 2023)" in body
    assert "Département(s) : 56" in body


def test_responses_sharing_only_a_vague_word_are_not_flagged(
    mail_store: Store, mail_settings: Settings
) -> None:
    submit(mail_store, mail_settings, user_id=1, **territory("Pays de Redon"))
    second, _ = submit(mail_store, mail_settings, user_id=2, **territory("Pays de Vitré"))
    kept = {"territory": "Pays des Trois Rivières", "territory_understood": None}
    third, _ = submit(mail_store, mail_settings, user_id=3, **kept)
    with mail_store.unit() as session:
        assert overlaps_in_index(session, second) == []
        assert overlaps_in_index(session, third) == []
        words = session.exec(select(SubmissionPlaceWord)).all()
    assert [w.word for w in words] == ["trois rivieres"]  # « Pays de » is no place


def test_texts_not_understood_still_meet_on_the_same_place_name(
    mail_store: Store, mail_settings: Settings
) -> None:
    kept = {"territory": "Pays de Brocéliande", "territory_understood": None}
    first, _ = submit(mail_store, mail_settings, user_id=1, **kept)
    second, _ = submit(mail_store, mail_settings, user_id=2, **kept)
    with mail_store.unit() as session:
        [overlap] = overlaps_in_index(session, second)
    assert overlap.reference == first.reference and overlap.places == ("broceliande",)


def test_actors_communes_stand_for_a_missing_territory(
    mail_store: Store, mail_settings: Settings
) -> None:
    lannion, _ = submit(
        mail_store, mail_settings, user_id=1, **territory("Lannion-Trégor Communauté")
    )
    other, _ = submit(mail_store, mail_settings, user_id=2, territory=None)  # actors in Lannion
    assert other.departements == "22"
    with mail_store.unit() as session:
        [overlap] = overlaps_in_index(session, other)
    assert overlap.reference == lannion.reference and overlap.communes == ("Lannion",)
    in_memory = OverlapIndex([lannion, other]).overlaps_of(other)
    assert [o.communes for o in in_memory] == [("Lannion",)]


def test_reindexing_rebuilds_the_index_of_stored_responses(
    mail_store: Store, mail_settings: Settings
) -> None:
    first, _ = submit(mail_store, mail_settings, user_id=1, **territory("Ploërmel, Josselin"))
    second, _ = submit(mail_store, mail_settings, user_id=2, **territory("Josselin"))
    with mail_store.unit() as session:  # as if stored before the index existed
        session.execute(SubmissionCommune.__table__.delete())  # type: ignore[attr-defined]
        assert overlaps_in_index(session, second) == []
    assert mail_store.reindex_territories() == 2
    with mail_store.unit() as session:
        [overlap] = overlaps_in_index(session, second)
    assert overlap.reference == first.reference and overlap.communes == ("Josselin",)


async def test_an_ars_email_lists_the_most_shared_overlaps_and_counts_the_others(
    mail_store: Store, mail_settings: Settings, smtp_server: SmtpServer, clock: FakeClock
) -> None:
    from bot.worker import EMAIL_OVERLAPS

    mail_settings.submissions_per_day = 100
    for i in range(EMAIL_OVERLAPS + 3):
        submit(mail_store, mail_settings, user_id=100 + i, **territory("Lannion"))
    widest, _ = submit(mail_store, mail_settings, user_id=99, **territory("Lannion, Perros-Guirec"))
    last, _ = submit(
        mail_store, mail_settings, user_id=98, **territory("Lannion, Perros-Guirec, Trégastel")
    )
    worker = OutboxWorker(mail_store, mail_settings, clock=clock, rng=random.Random(1))
    for _ in range(10):  # a pass sends a batch: until the last response's e-mail is out
        await worker.run_once()
        mails = [r for r in smtp_server.handler.to(ARS) if last.reference in r.message["Subject"]]
        if mails:
            break
    body = mails[0].message.get_body(("plain",)).get_content()
    listed = [line for line in body.splitlines() if line.startswith("  - AMI-")]
    assert len(listed) == EMAIL_OVERLAPS
    assert widest.reference in body  # two communes in common: listed first among equals
    assert f"… et {EMAIL_OVERLAPS + 4 - EMAIL_OVERLAPS} autre(s) réponse(s)" in body
