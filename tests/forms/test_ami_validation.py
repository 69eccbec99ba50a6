"""Every field refuses what it cannot use with a clear French message, and keeps earlier answers."""

from __future__ import annotations

import pytest

from tests.forms.walk import add_actor, answers, draft, start

ACTOR = {
    "name": "Dr Paul Le Cam",
    "profession": "médecin généraliste",
    "commune": "Lannion",
    "practice": "MSP",
}
REFERENT = {
    "name": "Paul Le Cam",
    "function": "président",
    "email": "paul@example.org",
    "phone": "06 11 22 33 44",
}


def to_actor_name(chat):
    start(chat)


def to_actor_profession(chat):
    start(chat)
    chat.say("Dr Paul Le Cam")


def to_actor_commune(chat):
    to_actor_profession(chat)
    chat.say("médecin généraliste")


def to_referent(chat):
    start(chat)
    add_actor(chat, ACTOR)
    chat.press("Non, continuer")


def to_referent_function(chat):
    to_referent(chat)
    chat.say("Paul Le Cam")


def to_referent_email(chat):
    to_referent_function(chat)
    chat.say("président")


def to_referent_phone(chat):
    to_referent_email(chat)
    chat.say("paul@example.org")


def to_context(chat):
    to_referent_phone(chat)
    chat.say("06 11 22 33 44")
    chat.press("Non, continuer")
    chat.press("Besoin d'informations")
    chat.press("Valider")


def to_territory(chat):
    to_context(chat)
    chat.say("Nous voulons organiser l'accueil des patients sans médecin traitant.")


def to_calendar(chat):
    to_territory(chat)
    chat.say("Lannion-Trégor Communauté")
    chat.press("Oui, c'est bien cela")


LONG = "a" * 10_000
NAME_FIELDS = [
    to_actor_name,
    to_actor_profession,
    to_actor_commune,
    to_referent,
    to_referent_function,
]


@pytest.mark.parametrize("goto", NAME_FIELDS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("", "Je n'ai rien reçu"),
        (LONG, "10 000 caractères"),
        ("🙂🙂", "J'attends des lettres"),
        ("<b>Paul</b>", "sans balises"),
        ("https://www.example.org/cabinet", "adresse web"),
        ("0611223344", "numéro"),
        ("paul@example.org", "adresse e-mail"),
    ],
    ids=["empty", "10000", "emoji", "html", "url", "number", "email"],
)
def test_name_like_fields_explain_what_is_wrong_with_an_example(chat, goto, typed, expected):
    goto(chat)
    before = answers(chat)
    text = chat.say(typed)
    assert expected in text
    assert "Exemple" in text or "limite" in text
    assert answers(chat) == before  # nothing lost, nothing half-stored


def test_too_long_input_states_the_limit(chat):
    to_actor_name(chat)
    text = chat.say(LONG)
    assert "10 000 caractères" in text and "120 caractères" in text


def test_control_characters_are_stripped_from_names(chat):
    to_actor_name(chat)
    chat.say("Claire\x00 Mor\x07van\u202e")
    assert answers(chat)["actors"][0]["name"] == "Claire Morvan"


def test_emoji_are_removed_from_names_but_kept_in_free_text(chat):
    to_actor_name(chat)
    chat.say("Claire 🌸 Morvan")
    assert answers(chat)["actors"][0]["name"] == "Claire Morvan"


def test_context_keeps_html_and_emoji_as_plain_text(chat):
    to_context(chat)
    chat.say("Nous avons <3 MSP 🙂 sur le territoire et voulons avancer.")
    assert answers(chat)["context"] == "Nous avons <3 MSP 🙂 sur le territoire et voulons avancer."


def test_context_over_4000_characters_is_refused_with_the_limit(chat):
    to_context(chat)
    text = chat.say("x" * 4001)
    assert "4 001 caractères" in text and "4 000 caractères" in text
    assert "context" not in answers(chat)


def test_empty_context_is_refused(chat):
    to_context(chat)
    assert "Je n'ai rien reçu" in chat.say("   ")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("paul lecam@example.org", "ne contient pas d'espace"),
        ("paul.lecam.example.org", "Il manque le « @ »"),
        ("paul@", "n'est pas valide"),
        ("", "Je n'ai rien reçu"),
        (LONG, "10 000 caractères"),
        ("<paul@@example.org>", "n'est pas valide"),
    ],
)
def test_referent_email_is_reasked_after_invalid_address(chat, typed, expected):
    to_referent_email(chat)
    text = chat.say(typed)
    assert expected in text
    if typed != LONG:
        assert "xemple" in text
    assert "L'adresse e-mail de Paul Le Cam ?" in text
    assert answers(chat)["referents"][0]["name"] == "Paul Le Cam"


def test_referent_email_is_trimmed_and_normalised(chat):
    to_referent_email(chat)
    chat.say("  Paul.LeCam@Example.ORG  ")
    assert answers(chat)["referents"][0]["email"] == "Paul.LeCam@example.org"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("06 11 2A 33 44", "pas de lettres"),
        ("deux", "pas de lettres"),
        ("12345", "n'est pas valide"),
        ("", "Je n'ai rien reçu"),
        ("🙂", "n'est pas valide"),
    ],
)
def test_referent_phone_is_reasked_with_an_example(chat, typed, expected):
    to_referent_phone(chat)
    text = chat.say(typed)
    assert expected in text and "06 11 22 33 44" in text
    assert answers(chat)["referents"][0]["email"] == "paul@example.org"


@pytest.mark.parametrize(
    ("typed", "e164", "shown"),
    [
        ("06 11 22 33 44", "+33611223344", "06 11 22 33 44"),
        ("06.11.22.33.44", "+33611223344", "06 11 22 33 44"),
        ("+33 6 55 44 33 22", "+33655443322", "06 55 44 33 22"),
        ("0033 2 99 00 00 01", "+33299000001", "02 99 00 00 01"),
        ("+44 20 7946 0958", "+442079460958", "+44 20 7946 0958"),
    ],
)
def test_phone_numbers_are_normalised_to_e164_and_shown_in_french_format(chat, typed, e164, shown):
    to_referent_phone(chat)
    text = chat.say(typed)
    referent = answers(chat)["referents"][0]
    assert referent["phone"] == e164 and referent["phone_display"] == shown
    assert shown in text


def test_objectives_need_at_least_one_box(chat):
    to_context(chat)
    chat.press("Précédent")
    chat.press("Besoin d'informations")  # untick
    text = chat.press("Valider")
    assert "Cochez au moins une case" in text
    assert "objectives" in draft(chat)["step"]


def test_practice_typed_as_text_is_understood_and_unknown_is_reasked(chat):
    to_actor_commune(chat)
    chat.say("Lannion")
    assert "Je n'ai pas reconnu votre choix" in chat.say("un peu tout")
    chat.say("centre de santé")
    assert answers(chat)["actors"][0]["practice"] == "centre de santé"


def test_territory_can_be_skipped(chat):
    to_territory(chat)
    text = chat.press("Passer")
    assert "Calendrier" in text
    assert answers(chat)["territory"] is None


def test_after_three_failures_the_answer_can_be_kept_as_typed_and_is_flagged(chat):
    to_referent_phone(chat)
    chat.say("bureau")
    chat.say("secrétariat")
    text = chat.say("standard de la MSP")
    assert "trois essais" in text
    chat.press("Garder tel quel")
    referent = answers(chat)["referents"][0]
    assert referent["phone"] == "standard de la MSP"
    assert referent["phone_display"] == "standard de la MSP"
    [flag] = answers(chat)["flags"]
    assert flag["field"] == "referents[0].phone"
    assert flag["label"] == "Référent 1 — Téléphone"
    assert flag["value"] == "standard de la MSP"
    assert "lettres" in flag["reason"]


def test_an_answer_kept_as_typed_reads_with_its_label_and_non_verifie_in_the_review(chat):
    to_referent_phone(chat)
    for typed in ("bureau", "accueil", "standard"):
        chat.say(typed)
    chat.press("Garder tel quel")
    chat.press("Non, continuer")
    chat.press("Besoin d'informations")
    chat.press("Valider")
    chat.say("Nous voulons organiser l'accueil des patients sans médecin traitant.")
    chat.press("Passer")
    review = chat.say("fin janvier")
    assert "Récapitulatif" in review
    assert "Référent 1 — Téléphone : « standard » (non vérifié)" in review
    assert "referents[0]" not in review


def test_a_flag_disappears_when_the_field_is_answered_properly(chat):
    to_referent_phone(chat)
    for typed in ("bureau", "accueil", "standard"):
        chat.say(typed)
    chat.press("Garder tel quel")
    chat.press("Précédent")
    chat.say("06 11 22 33 44")
    assert answers(chat)["flags"] == []


def test_optional_field_offers_skip_after_three_failures(chat):
    to_territory(chat)
    for _ in range(3):
        text = chat.say("y" * 600)
    assert "Passer" in [b.label.split(" ", 1)[1] for b in chat.buttons if " " in b.label]
    assert "trois essais" in text


def test_a_name_starting_with_a_vowel_is_elided_in_the_next_question(chat):
    to_actor_name(chat)
    text = chat.say("Anne Le Goff")
    assert "profession d'Anne Le Goff" in text and "de Anne" not in text
