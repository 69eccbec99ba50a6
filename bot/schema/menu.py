"""The schema of `dialogues/menu.yaml`: the main menu and the engine's global replies.

Every key the engine reads (`texts("…")` in `bot/engine/engine.py`) is required: a missing
`menu_prompt` would otherwise turn every /menu into an apology. The Telegram adapter's own
texts `group_invitation` and `edited_message` are optional overrides (`flood` has no default).
"""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from bot.schema.base import Strict, check_placeholders


class MenuButtons(Strict):
    question: str
    orientation: str
    ami: str
    contact: str
    menu: str
    more: str
    resume: str
    yes: str
    no: str


class UnsupportedKinds(Strict):
    """How to name a kind of message the bot cannot read (« je ne peux pas traiter {what} »)."""

    other: str
    photo: str | None = None
    document: str | None = None
    voice: str | None = None
    audio: str | None = None
    video: str | None = None
    video_note: str | None = None
    sticker: str | None = None
    animation: str | None = None
    location: str | None = None
    venue: str | None = None
    poll: str | None = None
    dice: str | None = None


class MenuTexts(Strict):
    welcome: str = Field(description="emplacement : {name} (« , Prénom » ou rien)")
    menu_prompt: str
    buttons: MenuButtons
    ask_question: str
    help: str
    contact: str
    unsupported: str = Field(description="emplacements : {what}")
    unsupported_kinds: UnsupportedKinds
    unknown_command: str = Field(description="emplacements : {name}")
    stale_button: str
    nothing_to_cancel: str
    cancel_confirm: str = Field(description="emplacements : {what}")
    cancel_done: str
    cancel_kept: str
    nothing_to_resume: str
    resume_offer: str = Field(description="emplacements : {date}")
    resuming: str
    empty_message: str
    error: str
    flood: str = Field(
        description="message de l'adaptateur Telegram quand un utilisateur écrit trop vite"
    )
    # optional: the Telegram adapter has defaults for these
    group_invitation: str | None = Field(None, description="emplacements : {link}")
    edited_message: str | None = None
    staff_only: str | None = Field(None, description="emplacements : {name}")

    @field_validator("*")
    @classmethod
    def _placeholders(cls, value: object, info: ValidationInfo) -> object:
        key = info.field_name or ""
        if not isinstance(value, str) or key not in MENU_PLACEHOLDERS:
            return value
        return check_placeholders(value, MENU_PLACEHOLDERS[key], key)


# What the engine (or the Telegram adapter) fills in each text it formats.
MENU_PLACEHOLDERS: dict[str, set[str]] = {
    "welcome": {"name"},
    "unsupported": {"what"},
    "unknown_command": {"name"},
    "resume_offer": {"date"},
    "cancel_confirm": {"what"},
    "staff_only": {"name"},
    "group_invitation": {"link"},
}
