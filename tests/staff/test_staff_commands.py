"""Staff commands through the engine (staff only), the command line, exports and overlaps."""

from __future__ import annotations

import argparse
import csv
import io
import random
from pathlib import Path

import openpyxl
import pytest

from bot.config import Settings
from bot.mail.export import export_csv, export_xlsx
from bot.staff.commands import run_cli, staff_commands
from bot.storage.models import OutboxStatus
from bot.storage.overlaps import find_overlaps, split_places
from bot.worker import OutboxWorker
from tests.conftest import STAFF_ID, Chat, FakeClock
from tests.mail.factories import answers, submit


@pytest.fixture
def staff(app) -> Chat:  # type: ignore[no-untyped-def]
    app.engine.staff_commands.update(staff_commands(app))
    return Chat(app, user_id=STAFF_ID)


def redon_answers() -> dict:
    return answers(
        actors=[
            {"name": "Centre hospitalier de Redon", "profession": "établissement de santé",
             "commune": "Redon", "practice": "autre", "practice_other": "hôpital"},
            {"name": "Julie Hamon", "profession": "pharmacienne", "commune": "Allaire",
             "practice": "aucun", "practice_other": None},
        ],
        objectives=["initiative"],
        territory="Pays de Redon (Redon, Allaire, Saint-Nicolas-de-Redon)",
    )  # fmt: skip


def test_non_staff_gets_no_hint(app, chat: Chat) -> None:  # type: ignore[no-untyped-def]
    app.engine.staff_commands.update(staff_commands(app))
    submit(app.store, app.settings)
    unknown = chat.say("/nimportequoi")
    for command in ["/reponses", "/export", "/stats", "/envois", "/renvoyer 1", "/ars"]:
        reply = chat.say(command)
        assert reply == unknown.replace("nimportequoi", command[1:].split()[0])
        assert "AMI-" not in reply and all(r.document is None for r in chat.replies)
    assert app.store.audit_entries() == []


def test_staff_lists_searches_and_views_responses(app, staff: Chat) -> None:  # type: ignore[no-untyped-def]
    first, _ = submit(app.store, app.settings, user_id=11)
    second, _ = submit(app.store, app.settings, user_id=12, **redon_answers())
    third, _ = submit(app.store, app.settings, user_id=13, territory="Pays de Redon")

    listing = staff.say("/reponses")
    assert "3 réponse(s)" in listing
    assert listing.index(third.reference) < listing.index(first.reference)

    found = staff.say("/reponses pharmacienne allaire")
    assert second.reference in found and first.reference not in found

    detail = staff.say(f"/reponses {third.reference}")
    assert "Territoire en commun avec" in detail and second.reference in detail
    assert "1 commune en commun : Redon — 9 542 habitants" in detail
    assert "☒ Besoin d'informations" in detail
    doc = staff.replies[-1].document
    assert doc is not None and doc.content.startswith(b"%PDF") and doc.filename.endswith(".pdf")

    actions = [(e.actor, e.action, e.target) for e in app.store.audit_entries()]
    assert actions == [
        (f"telegram:{STAFF_ID}", "list_responses", ""),
        (f"telegram:{STAFF_ID}", "search_responses", "pharmacienne allaire"),
        (f"telegram:{STAFF_ID}", "view_response", third.reference),
    ]


def test_staff_export_and_stats(app, staff: Chat) -> None:  # type: ignore[no-untyped-def]
    submit(app.store, app.settings, user_id=11)
    submit(app.store, app.settings, user_id=12, **redon_answers())
    staff.say("/export")
    xlsx, csv_doc = (r.document for r in staff.replies)
    assert xlsx is not None and csv_doc is not None
    ws = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert ws.max_row == 3 and ws["A1"].font.bold and ws.freeze_panes == "B2"
    assert csv_doc.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(csv_doc.content.decode("utf-8-sig")), delimiter=";"))
    assert [r["Département(s)"] for r in rows] == ["22", "35, 44, 56"]  # Redon, Allaire, St-Nicolas

    stats = staff.say("/stats")
    assert "2 réponse(s)" in stats
    assert "Par département" in stats and "22 Côtes-d'Armor" in stats
    assert "Initiative engagée pour monter un projet de CPTS" in stats
    assert "Pays de Redon" in stats and "Lannion-Trégor Communauté" in stats
    assert "2026-S48" in stats
    assert [e.action for e in app.store.audit_entries()] == ["export", "stats"]


async def test_failed_send_is_visible_to_staff_and_resend_works(
    app,
    staff: Chat,
    clock: FakeClock,  # type: ignore[no-untyped-def]
) -> None:
    sub, _ = submit(app.store, app.settings, copy_to_referent=False)

    class Refusing:
        async def send(self, message: object) -> None:
            from bot.mail.transport import PermanentFailure

            raise PermanentFailure("550 5.7.1 Boîte pleine")

    await OutboxWorker(app.store, app.settings, Refusing(), clock, rng=random.Random(1)).run_once()
    view = staff.say("/envois")
    assert "1 EN ÉCHEC" in view and "550 5.7.1 Boîte pleine" in view and sub.reference in view

    reply = staff.say(f"/renvoyer {sub.reference}")
    assert "Remis en file" in reply
    assert app.store.jobs()[0].status == OutboxStatus.PENDING
    assert await OutboxWorker(app.store, app.settings, clock=clock).run_once() == 1
    assert (Path(app.settings.mail_outbox_dir) / f"{sub.reference}-ars.eml").exists()
    assert "1 envoyé" in staff.say("/envois")
    assert "Aucun envoi n° 99" in staff.say("/renvoyer 99")
    assert [e.action for e in app.store.audit_entries()] == ["outbox", "resend", "outbox", "resend"]


def test_cli_commands_audit_as_cli(tmp_path: Path, clock: FakeClock, capsys) -> None:  # type: ignore[no-untyped-def]
    from bot.storage.migrations import upgrade
    from bot.storage.store import Store
    from tests.conftest import make_settings

    settings: Settings = make_settings(f"sqlite:///{tmp_path / 'cli.sqlite3'}", tmp_path)
    upgrade(settings.database_url)
    store = Store.from_url(settings.database_url, clock)
    sub, _ = submit(store, settings)
    out = tmp_path / "export.xlsx"
    ns = argparse.Namespace
    assert run_cli(settings, ns(command="export", format="xlsx", output=str(out))) == 0
    assert openpyxl.load_workbook(out).active.max_row == 2
    assert run_cli(settings, ns(command="stats")) == 0
    assert run_cli(settings, ns(command="responses", query=sub.reference)) == 0
    assert run_cli(settings, ns(command="outbox", resend=None)) == 0
    text = capsys.readouterr().out
    assert "1 réponse(s) exportée(s)" in text and sub.reference in text and "en attente" in text
    assert {(e.actor, e.action) for e in store.audit_entries()} == {
        ("cli", "export"), ("cli", "stats"), ("cli", "view_response"), ("cli", "outbox")
    }  # fmt: skip


def test_500_responses_export_to_xlsx_and_csv(app) -> None:  # type: ignore[no-untyped-def]
    store, settings = app.store, app.settings
    with store.turn(1) as turn:
        for i in range(500):
            store.add_submission(
                turn.session, user_id=1, form_id="ami_bretagne", recipient=settings.ars_mailbox,
                answers=answers(territory=f"Territoire {i % 40}", context="=SOMME(A1:A9) " * 3),
            )  # fmt: skip
    subs = store.submissions()
    ws = openpyxl.load_workbook(io.BytesIO(export_xlsx(subs)), read_only=True).active
    rows = list(ws.iter_rows(values_only=True))
    assert len(rows) == 501
    assert len({r[0] for r in rows[1:]}) == 500
    context_col = rows[0].index("Contexte")
    assert rows[1][context_col].startswith("=SOMME")  # kept as text, never a formula
    data = export_csv(subs).decode("utf-8-sig")
    parsed = list(csv.reader(io.StringIO(data), delimiter=";"))
    assert len(parsed) == 501
    assert parsed[1][context_col].startswith("'=SOMME")


@pytest.mark.parametrize(
    ("text", "places"),
    [
        ("Pays de Redon (Redon, Allaire, Saint-Nicolas-de-Redon)", ["redon", "allaire", "saint nicolas de redon"]),
        ("CC du Pays de Ploërmel", ["ploermel"]),
        ("St-Malo agglomération", ["saint malo"]),
        ("Ste-Anne-d'Auray", ["sainte anne d auray"]),
        ("Communauté de communes de Brocéliande", ["broceliande"]),
    ],
)  # fmt: skip
def test_place_normalisation(text: str, places: list[str]) -> None:
    assert split_places(text) == places


def test_overlaps_by_territory_and_communes(app) -> None:  # type: ignore[no-untyped-def]
    store, settings = app.store, app.settings
    redon, _ = submit(store, settings, user_id=1, **redon_answers())
    lannion, _ = submit(store, settings, user_id=2)
    other = answers(territory=None)
    other["actors"][0]["commune"] = "St Nicolas de Redon"
    other["actors"][1]["commune"] = "Lanion"  # a typo
    new, _ = submit(store, settings, user_id=3, **other)
    rennes, _ = submit(store, settings, user_id=4, territory="Rennes Métropole", actors=[
        {"name": "X", "profession": "kiné", "commune": "Rennes", "practice": "ESP"}])  # fmt: skip
    overlaps = find_overlaps(new, [redon, lannion, rennes])
    assert [o.reference for o in overlaps] == [redon.reference, lannion.reference]
    assert "Saint-Nicolas-de-Redon" in overlaps[0].places
    assert find_overlaps(rennes, [redon, lannion, new]) == []


def test_a_commune_finds_the_responses_whose_recognised_territory_holds_it(app, staff) -> None:  # type: ignore[no-untyped-def]
    from bot.territory import understand

    epci = "CC Ploërmel Communauté"
    on_epci, _ = submit(app.store, app.settings, user_id=21, territory=epci,
                        territory_understood=understand(epci))  # fmt: skip
    elsewhere, _ = submit(app.store, app.settings, user_id=22)
    found = staff.say("/reponses Josselin")
    assert on_epci.reference in found and elsewhere.reference not in found


def test_export_alters_no_cell_unless_it_could_be_a_formula(app) -> None:  # type: ignore[no-untyped-def]
    referents = answers()["referents"]
    referents[0]["phone_display"] = "+1-1"
    referents[1]["phone_display"] = "-2-3"
    sub, _ = submit(
        app.store, app.settings, territory="", context="@SUM(A1)", referents=referents,
        flags=[], copy_to_referent=False,
    )  # fmt: skip
    header, row = list(
        csv.reader(io.StringIO(export_csv([sub]).decode("utf-8-sig")), delimiter=";")
    )
    cells = dict(zip(header, row, strict=True))
    assert cells["Territoire de projet"] == "" and cells["Points à vérifier"] == ""
    assert "'" not in cells["Territoires en commun avec"]
    # one column per field of a group, one line per item (the form's labels as headers)
    assert cells["Référent(s) — Téléphone"] == "'+1-1\n-2-3"
    assert cells["Contexte"] == "'@SUM(A1)"
    assert cells["Référence"] == sub.reference  # ordinary text untouched
    for start in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        from bot.mail.export import _csv_safe

        assert _csv_safe(start) == "'" + start
    assert _csv_safe("1+1") == "1+1" and _csv_safe("") == ""


def test_xlsx_holds_real_dates_and_numbers(app) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    sub, _ = submit(app.store, app.settings)
    ws = openpyxl.load_workbook(io.BytesIO(export_xlsx([sub]))).active
    header = [c.value for c in ws[1]]
    row = {h: c for h, c in zip(header, ws[2], strict=True)}
    assert isinstance(row["Reçue le"].value, dt.datetime)
    assert row["Reçue le"].value == dt.datetime(2026, 11, 23, 10, 0)  # 09:00 UTC, Paris time
    count = row["Professionnels / structures (nombre)"]
    assert count.value == 2 and count.data_type == "n"
    assert row["Calendrier (échéance comprise)"].value == dt.datetime(2027, 2, 28, 0, 0)
    assert row["Contexte"].data_type == "s"
