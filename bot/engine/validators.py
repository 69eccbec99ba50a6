"""The closed registry of named validators that dialogue YAML files refer to.

A YAML field says `validator: email`; the form runner looks the name up here. YAML never holds
code. A validator takes the user's text (control characters already stripped by the engine) and
returns either `Valid` (the normalised value, how to show it back, extra keys to store) or
`Invalid` (an error code that the YAML maps to a French message, with placeholders).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

MAX_INPUT = 4000  # default limit when a field declares none


@dataclass(frozen=True, slots=True)
class Valid:
    """An accepted answer: `value` is stored, `display` is shown back."""

    value: Any
    display: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Invalid:
    """A refused answer: `code` names the error text in the YAML, `params` fill it."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)


Result = Valid | Invalid


@dataclass(frozen=True, slots=True)
class Rules:
    """What a field's YAML says about limits, and the turn's clock."""

    max_length: int = MAX_INPUT
    min_length: int = 1
    now: datetime | None = None


Validator = Callable[[str, Rules], Result]
VALIDATORS: dict[str, Validator] = {}


def validator(name: str) -> Callable[[Validator], Validator]:
    """Register `validate_<name>` under `name` (the only way YAML can reach code)."""

    def register(func: Validator) -> Validator:
        VALIDATORS[name] = func
        return func

    return register


def get_validator(name: str) -> Validator:
    return VALIDATORS[name]


# --------------------------------------------------------------------------- helpers
URL_RE = re.compile(r"(https?://|www\.|\b[\w-]+\.(fr|com|org|net|bzh|eu|io)\b/?)", re.I)
EMAIL_RE = re.compile(r"\S+@\S+\.\S+")
TAG_RE = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>")
SPACES_RE = re.compile(r"[ \t\u00a0\u202f]+")


def is_emoji(ch: str) -> bool:
    """True for pictographs, symbols and their joiners/selectors (not letters or punctuation)."""
    if ch in "\u200d\ufe0f\ufe0e\u20e3":
        return True
    cat = unicodedata.category(ch)
    return cat in ("So", "Sk", "Cs", "Co") or 0x1F000 <= ord(ch) <= 0x1FAFF


# letters, digits, spaces and the usual punctuation: none is an emoji (`is_emoji` is False)
PLAIN_TEXT_RE = re.compile(r"[\w\s.,;:!?'’\"«»()\[\]/&+*%@#=-]*")


def strip_emoji(text: str) -> str:
    if PLAIN_TEXT_RE.fullmatch(text) and max(text, default="") < "\U0001f000":
        # the usual case (no symbol, no pictograph), without a look at each character
        return SPACES_RE.sub(" ", text).strip()
    return SPACES_RE.sub(" ", "".join(ch for ch in text if not is_emoji(ch))).strip()


def normalise_spaces(text: str) -> str:
    """Collapse runs of spaces on each line; trim; keep line breaks."""
    lines = [SPACES_RE.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(lines).strip()


def _length(text: str, rules: Rules) -> Invalid | None:
    if len(text) > rules.max_length:
        return Invalid("too_long", {"length": _fmt(len(text)), "max": _fmt(rules.max_length)})
    if len(text.strip()) < rules.min_length:
        return Invalid("empty" if not text.strip() else "too_short", {"min": rules.min_length})
    return None


def _fmt(n: int) -> str:
    return f"{n:,}".replace(",", " ")


# --------------------------------------------------------------------------- validators
@validator("text")
def validate_text(text: str, rules: Rules) -> Result:
    """Free text (context, territory): plain text kept as written, emoji included.

    HTML is not interpreted anywhere (adapters and e-mails escape it), so it is kept verbatim.
    """
    text = normalise_spaces(text)
    return _length(text, rules) or Valid(text, text)


@validator("name")
def validate_name(text: str, rules: Rules) -> Result:
    """A person's or a structure's name: letters required; no URL, e-mail, number or tag."""
    return _label(text, rules, kind="name")


@validator("label")
def validate_label(text: str, rules: Rules) -> Result:
    """A short label (profession, function, commune): like a name, digits allowed inside."""
    return _label(text, rules, kind="label")


def _label(text: str, rules: Rules, kind: str) -> Result:
    text = normalise_spaces(text.replace("\n", " "))
    if not text:
        return Invalid("empty")
    if len(text) > rules.max_length:
        return Invalid("too_long", {"length": _fmt(len(text)), "max": _fmt(rules.max_length)})
    if TAG_RE.search(text) or "<" in text or ">" in text:
        return Invalid("html")
    if EMAIL_RE.search(text):
        return Invalid("email_in_name")
    if URL_RE.search(text):
        return Invalid("url")
    cleaned = strip_emoji(text)
    if not any(ch.isalpha() for ch in cleaned):
        if any(ch.isdigit() for ch in cleaned):
            return Invalid("number")
        return Invalid("no_letters")
    digits = sum(ch.isdigit() for ch in cleaned)
    if kind == "name" and digits >= 4:
        return Invalid("number")
    return Valid(cleaned, cleaned)


@validator("email")
def validate_email(text: str, rules: Rules) -> Result:
    """An e-mail address: syntax checked (no DNS), normalised, outer spaces trimmed."""
    from email_validator import EmailNotValidError
    from email_validator import validate_email as check

    raw = text.strip().strip("<>").strip()
    if not raw:
        return Invalid("empty")
    if len(raw) > rules.max_length:
        return Invalid("too_long", {"length": _fmt(len(raw)), "max": _fmt(rules.max_length)})
    if re.search(r"\s", raw):
        return Invalid("email_spaces")
    if "@" not in raw:
        return Invalid("email_no_at")
    try:
        info = check(raw, check_deliverability=False)
    except EmailNotValidError:
        return Invalid("email_invalid")
    return Valid(info.normalized, info.normalized)


@validator("phone")
def validate_phone(text: str, rules: Rules) -> Result:
    """A telephone number, French or international: stored E.164, shown "06 11 22 33 44"."""
    import phonenumbers

    raw = text.strip()
    if not raw:
        return Invalid("empty")
    if len(raw) > rules.max_length:
        return Invalid("too_long", {"length": _fmt(len(raw)), "max": _fmt(rules.max_length)})
    if any(ch.isalpha() for ch in raw):
        return Invalid("phone_letters")
    compact = re.sub(r"[\s.\-/()\u00a0]", "", raw)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    try:
        number = phonenumbers.parse(compact, "FR")
    except phonenumbers.NumberParseException:
        return Invalid("phone_invalid")
    if not phonenumbers.is_valid_number(number):
        return Invalid("phone_invalid")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if number.country_code == 33:
        display = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    else:
        display = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return Valid(e164, display, {"phone_display": display})


@validator("date_or_period")
def validate_date_or_period(text: str, rules: Rules) -> Result:
    """A date or a period in French words: understood when possible, never in the past."""
    from bot.engine.frdates import understand

    text = normalise_spaces(text.replace("\n", " "))
    problem = _length(text, rules)
    if problem is not None:
        return problem
    assert rules.now is not None, "date_or_period needs the turn's clock"
    when = understand(text, rules.now)
    if when.is_past:
        return Invalid("past", {"date": when.shown})
    return Valid(when.as_answer(), when.label)


# --------------------------------------------------------------------------- understanders
class Understander(Protocol):
    """Reads a free-text answer for what it names (`understand: <name>` on a YAML step).

    `understand` returns a JSON-able dict (None: nothing recognised, the text is kept as
    typed); `settle` applies a choice among an ambiguity's candidates; `values` gives the
    placeholders of the step's `understood:` texts; `annotate` adds what a submission
    carries (e.g. its départements) to the final answers.
    """

    def understand(self, text: str) -> dict[str, Any] | None: ...

    def settle(
        self, understood: dict[str, Any], index: int, candidate: int | None
    ) -> dict[str, Any]: ...

    def values(self, understood: dict[str, Any]) -> dict[str, Any]: ...

    def annotate(self, answers: dict[str, Any]) -> None: ...

    def warm(self) -> None: ...


class TerritoryUnderstander:
    """Communes, EPCI, postal codes and départements of Brittany (`bot.territory`)."""

    def understand(self, text: str) -> dict[str, Any] | None:
        from bot.territory import understand

        return understand(text)

    def settle(
        self, understood: dict[str, Any], index: int, candidate: int | None
    ) -> dict[str, Any]:
        from bot.territory import settle

        return settle(understood, index, candidate)

    def values(self, understood: dict[str, Any]) -> dict[str, Any]:
        from bot.territory import values

        return values(understood)

    def annotate(self, answers: dict[str, Any]) -> None:
        """The response's départements: from its territory, else from its actors' communes."""
        from bot.territory import territory_keys

        answers["departements"] = territory_keys(answers).departements

    def warm(self) -> None:
        """Load the data and build the index now (~0.15 s CPU), not in a user's turn.

        Unusable data does not stop the bot: it is logged, and territories are kept as typed."""
        from bot.territory import TerritoryDataError, default_resolver

        try:
            default_resolver()
        except TerritoryDataError:
            logging.getLogger(__name__).exception("territory data unusable: texts kept as typed")


UNDERSTANDERS: dict[str, Understander] = {"territory": TerritoryUnderstander()}


def get_understander(name: str) -> Understander:
    return UNDERSTANDERS[name]
