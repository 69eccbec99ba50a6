"""The « Territoire de projet » step: what was recognised is shown, confirmed, corrected, kept
as typed; homonyms are asked with buttons; nothing ever blocks the form."""

from __future__ import annotations

from pathlib import Path

from bot.config import ROOT
from tests.forms.test_ami_validation import to_territory
from tests.forms.walk import answers, draft


def test_the_recognised_communes_are_shown_with_their_population(chat) -> None:
    to_territory(chat)
    text = chat.say("Ploërmel, Josselin, Malestroit")
    assert (
        "J'ai reconnu : Ploërmel, Josselin, Malestroit — 3 communes, environ 15 300 habitants "
        "(INSEE, populations légales 2023)" in text
    )
    # under 20 000 inhabitants: information quoting the AMI, not a refusal
    quote = (
        "volonté d’animation globale d’un territoire de vie pour des populations d’un ordre de "
        "grandeur supérieur à 20 000 habitants"
    )
    assert f"l'AMI évoque « une {quote} »" in text and "Ce n'est pas une condition" in text
    source = Path("knowledge/sources/ami-cpts-bretagne-2021.txt")
    assert quote in (ROOT / source).read_text(encoding="utf-8")  # quoted verbatim
    labels = [b.label for b in chat.buttons]
    assert labels[:3] == ["✅ Oui, c'est bien cela", "✏️ Corriger", "📝 Garder mon texte tel quel"]
    text = chat.press("Oui, c'est bien cela")
    assert "6/6 — Calendrier" in text
    got = answers(chat)
    assert got["territory"] == "Ploërmel, Josselin, Malestroit"
    assert [c["code"] for c in got["territory_understood"]["communes"]] == [
        "56091",
        "56124",
        "56165",
    ]
    assert got["territory_understood"]["population"] == 15305


def test_a_large_territory_gets_no_population_note(chat) -> None:
    to_territory(chat)
    text = chat.say("Lannion-Trégor Communauté")
    assert "J'ai reconnu : CA Lannion-Trégor Communauté — 57 communes" in text
    assert "20 000" not in text


def test_vague_words_are_said_not_recognised(chat) -> None:
    to_territory(chat)
    text = chat.say("Ploermel et environs")
    assert "J'ai reconnu : Ploërmel — 1 commune" in text
    assert "Non reconnu : « environs »." in text


def test_an_unknown_territory_is_kept_as_typed_and_the_form_goes_on(chat) -> None:
    to_territory(chat)
    text = chat.say("le bassin de vie autour de la MSP")
    assert "Je n'ai pas reconnu de commune" in text and "6/6 — Calendrier" in text
    got = answers(chat)
    assert got["territory"] == "le bassin de vie autour de la MSP"
    assert got["territory_understood"] is None


def test_a_homonym_is_asked_with_buttons(chat) -> None:
    to_territory(chat)
    text = chat.say("Plouhinec")
    assert "Plusieurs communes s'appellent « Plouhinec ». Laquelle ?" in text
    labels = [b.label for b in chat.buttons]
    assert "Plouhinec (29) — 3 919 hab." in labels and "Plouhinec (56) — 5 400 hab." in labels
    text = chat.press("Plouhinec (56)")
    assert "J'ai reconnu : Plouhinec — 1 commune, environ 5 400 habitants" in text
    chat.press("Oui, c'est bien cela")
    assert [c["code"] for c in answers(chat)["territory_understood"]["communes"]] == ["56169"]


def test_two_homonyms_are_asked_one_after_the_other(chat) -> None:
    to_territory(chat)
    text = chat.say("Plouhinec et Le Faouët")
    assert "« Plouhinec »" in text
    text = chat.press("Plouhinec (29)")
    assert "« Le Faouët »" in text
    text = chat.press("Le Faouët (56)")
    assert "J'ai reconnu : Plouhinec, Le Faouët — 2 communes" in text
    chat.press("Oui, c'est bien cela")
    understood = answers(chat)["territory_understood"]
    assert [c["code"] for c in understood["communes"]] == ["29197", "56057"]
    assert understood["departements"] == ["29", "56"]


def test_none_of_the_homonyms_keeps_the_text(chat) -> None:
    to_territory(chat)
    chat.say("Le Faouët")
    text = chat.press("Aucune de celles-ci")
    assert "Je n'ai pas reconnu de commune" in text and "Calendrier" in text
    assert answers(chat)["territory"] == "Le Faouët"


def test_correcting_asks_again_and_reads_the_new_text(chat) -> None:
    to_territory(chat)
    chat.say("Ploërmel Communauté")
    assert draft(chat)["step"] == "territory"
    text = chat.press("Corriger")
    assert "corrigez ou précisez le territoire" in text
    text = chat.say("Josselin")
    assert "J'ai reconnu : Josselin" in text


def test_a_new_territory_typed_instead_of_a_button_is_read_afresh(chat) -> None:
    to_territory(chat)
    chat.say("Vannes")
    text = chat.say("Auray")
    assert "J'ai reconnu : Auray" in text


def test_the_next_answer_typed_too_early_does_not_replace_the_territory(chat) -> None:
    to_territory(chat)
    chat.say("Vannes")
    text = chat.say("fin janvier")
    assert "Choisissez l'une des réponses proposées" in text and "J'ai reconnu : Vannes" in text
    chat.say("oui")
    assert answers(chat)["territory"] == "Vannes"


def test_keeping_the_text_as_typed_stores_no_communes(chat) -> None:
    to_territory(chat)
    chat.say("Pays de Redon")
    chat.press("Garder mon texte tel quel")
    got = answers(chat)
    assert got["territory"] == "Pays de Redon" and got["territory_understood"] is None


def test_the_submission_carries_its_departements(chat, personas) -> None:
    from tests.forms.walk import fill_to_review

    persona = dict(personas["lannion-msp"])
    persona["territory"] = "Lannion, Perros-Guirec et Guingamp"
    review = fill_to_review(chat, persona)
    assert "→ Lannion, Perros-Guirec, Guingamp : 3 communes" in review
    chat.press("Envoyer")
    [sub] = chat.app.store.submissions()
    assert sub.departements == "22" and sub.answers["departements"] == ["22"]


def test_without_territory_the_actors_communes_give_the_departements(chat, personas) -> None:
    from tests.forms.walk import fill_to_review

    persona = dict(personas["redon-structures"])
    persona["territory"] = None
    fill_to_review(chat, persona)
    chat.press("Envoyer")
    [sub] = chat.app.store.submissions()
    assert sub.answers["departements"] == ["35", "56"] and sub.departements == "35,56"


def test_the_linter_reports_an_unknown_understander_and_missing_texts() -> None:
    from bot.forms.lint import lint_spec
    from bot.forms.spec import FormSpec

    spec = FormSpec(
        {
            "flow": "broken",
            "steps": [
                {"id": "t", "kind": "text", "prompt": "?", "example": "x", "understand": "gps",
                 "understood": {"prompt": "{places}"}},
            ],
        }
    )  # fmt: skip
    problems = lint_spec(spec)
    assert "t : lecture inconnue « gps »" in problems
    assert any(
        p.startswith("t : textes « understood » manquants : question, confirm") for p in problems
    )
