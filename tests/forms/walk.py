"""Walking a persona through the AMI form with the `chat` helper (one call per user message)."""

from __future__ import annotations

from typing import Any

OBJECTIVE_BUTTONS = {
    "information": "Besoin d'informations",
    "reflection": "Réflexion en cours",
    "initiative": "Initiative engagée",
}
PRACTICE_BUTTONS = {
    "MSP": "MSP",
    "ESP": "ESP",
    "centre de santé": "Centre de santé",
    "CPTS": "CPTS",
    "aucun": "Aucun",
    "autre": "Autre",
}


def start(chat: Any) -> str:
    text = chat.say("/ami")
    if any("J'accepte" in b.label for b in chat.buttons):
        return chat.press("J'accepte")
    return text  # consent given earlier: straight to the first question


def add_actor(chat: Any, actor: dict[str, Any]) -> str:
    chat.say(actor["name"])
    chat.say(actor["profession"])
    chat.say(actor["commune"])
    text = chat.press(PRACTICE_BUTTONS[actor["practice"]])
    if actor["practice"] == "autre":
        text = chat.say(actor.get("practice_other") or "groupement hospitalier")
    return text


def add_referent(chat: Any, referent: dict[str, Any]) -> str:
    chat.say(referent["name"])
    chat.say(referent["function"])
    chat.say(referent["email"])
    return chat.say(referent["phone"])


def fill_to_review(chat: Any, persona: dict[str, Any]) -> str:
    """From /ami to the review screen."""
    start(chat)
    for i, actor in enumerate(persona["actors"]):
        if i:
            chat.press("Ajouter un acteur")
        add_actor(chat, actor)
    chat.press("Non, continuer")
    for i, referent in enumerate(persona["referents"]):
        if i:
            chat.press("Ajouter un référent")
        add_referent(chat, referent)
    chat.press("Non, continuer")
    for objective in persona["objectives"]:
        chat.press(OBJECTIVE_BUTTONS[objective])
    chat.press("Valider")
    chat.say(persona["context"])
    if persona.get("territory"):
        chat.say(persona["territory"])
        if any("c'est bien cela" in b.label for b in chat.buttons):
            chat.press("Oui, c'est bien cela")  # what was recognised, confirmed
    else:
        chat.press("Passer")
    return chat.say(persona["calendar"])


def draft(chat: Any) -> dict[str, Any]:
    conv = chat.app.store.get_conversation(chat.user_id)
    return conv.data.get("ami_bretagne", {}) if conv else {}


def answers(chat: Any) -> dict[str, Any]:
    return draft(chat).get("answers", {})
