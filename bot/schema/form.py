"""The schema of a dialogue file declaring `flow:` (the AMI form, the orientation guide).

Every key `bot/forms/` reads is declared here, and only those: a misspelt key
(`max_lenght`) or value (`kind: choise`) is refused with the closest known one. Cross-checks
that need the whole file (targets exist, steps reachable…) stay in `bot/forms/lint.py`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field, RootModel, ValidationInfo, field_validator, model_validator

from bot.schema.base import Strict, check_placeholders


class StepKind(StrEnum):
    consent = "consent"
    text = "text"
    email = "email"
    phone = "phone"
    date_or_period = "date_or_period"
    choice = "choice"
    multi_choice = "multi_choice"
    group = "group"
    review = "review"
    outcome = "outcome"


class ValidatorName(StrEnum):
    """The closed registry of `bot/engine/validators.py` (a test keeps both equal)."""

    text = "text"
    name = "name"
    label = "label"
    email = "email"
    phone = "phone"
    date_or_period = "date_or_period"


class UnderstanderName(StrEnum):
    """The closed registry of understanders (`UNDERSTANDERS` in bot/engine/validators.py)."""

    territory = "territory"


class ButtonAction(StrEnum):
    restart = "restart"
    menu = "menu"
    question = "question"
    goto = "goto"
    switch = "switch"


class FlowKind(StrEnum):
    """Documentation only: the runner treats both alike (a form has a `review` step)."""

    form = "form"
    guide = "guide"


Scalar = str | int | float | bool | None
OPERATORS = ("equals", "in", "has", "is_set", "not")


def _check_condition(when: Any, where: str = "") -> None:
    """A `when:` / `ask_if:` dictionary: field → value, list, or {operator: value}; any/all."""
    if not isinstance(when, dict) or not when:
        raise ValueError(
            f"condition invalide{where} : un dictionnaire « champ: valeur » est attendu"
        )
    for key, test in when.items():
        if key in ("any", "all"):
            if not isinstance(test, list) or not test:
                raise ValueError(f"« {key} » attend une liste de conditions{where}")
            for i, sub in enumerate(test):
                _check_condition(sub, f" (dans {key}[{i}])")
        elif isinstance(test, dict):
            unknown = [op for op in test if op not in OPERATORS]
            if unknown:
                from bot.schema.base import _closest

                guess = _closest(str(unknown[0]), list(OPERATORS))
                hint = f" ; vouliez-vous dire « {guess} » ?" if guess else ""
                raise ValueError(
                    f"opérateur inconnu « {unknown[0]} » sur « {key} »{where}{hint} "
                    f"(attendu : {', '.join(OPERATORS)})"
                )
            if "in" in test and not isinstance(test["in"], list):
                raise ValueError(f"« in » attend une liste de valeurs sur « {key} »{where}")


class Condition(RootModel[dict[str, Any]]):
    """`{field: value}`, `{field: [values]}`, `{field: {equals|in|has|is_set|not: …}}`, and
    `{any: [conditions]}` / `{all: [conditions]}`; several keys must all hold."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="after")
    def _valid(self) -> Condition:
        _check_condition(self.root)
        return self


class Choice(Strict):
    value: str
    label: str


class NextRule(Strict):
    """After the step: go to `goto` when `when` holds (a rule without `when` is the default)."""

    when: Condition | None = None
    goto: str = Field(description="id d'une étape, ou « submitted » / « end »")


class AnswerRef(Strict):
    """A prefill value copied from an answer of the current flow."""

    answer: str


class Button(Strict):
    """An outcome's button."""

    label: str = Field(min_length=1)
    action: ButtonAction = ButtonAction.menu
    goto: str | None = Field(None, description="action goto : l'étape visée")
    flow: str | None = Field(None, description="action switch : le parcours ouvert")
    prefill: dict[str, AnswerRef | Scalar | list[str]] | None = None

    @model_validator(mode="after")
    def _targets(self) -> Button:
        if self.action == ButtonAction.goto and not self.goto:
            raise ValueError("un bouton « action: goto » doit dire où aller (goto: <étape>)")
        if self.action == ButtonAction.switch and not self.flow:
            raise ValueError("un bouton « action: switch » doit nommer un parcours (flow: …)")
        return self


class Suggest(Strict):
    """Buttons with the values already given in a group (e.g. the actors' names)."""

    group: str
    field: str = "name"


class ErrorTexts(Strict):
    """French messages by validator error code; `{example}` and the code's parameters."""

    empty: str | None = None
    too_long: str | None = Field(None, description="emplacements : {length}, {max}")
    too_short: str | None = Field(None, description="emplacements : {min}")
    html: str | None = None
    email_in_name: str | None = None
    url: str | None = None
    number: str | None = None
    no_letters: str | None = None
    email_spaces: str | None = None
    email_no_at: str | None = None
    email_invalid: str | None = None
    phone_letters: str | None = None
    phone_invalid: str | None = None
    past: str | None = Field(None, description="emplacements : {date}")
    choice_unknown: str | None = None
    multi_empty: str | None = None
    invalid: str | None = Field(
        None, description="message de tout code sans message propre ; emplacement : {example}"
    )


class FormTexts(Strict):
    """The runner's interface texts (`spec.t(…)`); a missing one shows its key."""

    back: str | None = None
    skip: str | None = None
    validate_: str | None = Field(None, alias="validate")
    why_button: str | None = None
    no_why: str | None = None
    current: str | None = Field(None, description="emplacements : {value}")
    keep: str | None = Field(None, description="emplacements : {value}")
    keep_as_typed: str | None = None
    noted: str | None = Field(None, description="emplacements : {value}")
    went_back: str | None = None
    no_back: str | None = None
    stale: str | None = None
    use_buttons: str | None = None
    resume_form: str | None = None
    question_unanswered: str | None = None
    way_on: str | None = None
    finished: str | None = None
    suggest: str | None = Field(None, description="emplacements : {value}")
    summary_item: str | None = Field(None, description="emplacements : {label}, {value}")
    sources: str | None = Field(None, description="emplacements : {citations}")
    citation: str | None = Field(None, description="emplacements : {document}, {sections}")
    citation_document: str | None = Field(None, description="emplacements : {document}")
    prefilled: str | None = Field(None, description="emplacements : {items}")
    prefilled_mark: str | None = None
    item_menu: str | None = None
    to_review: str | None = None
    too_many: str | None = None
    review_title: str | None = None
    review_recipient: str | None = None
    review_prompt: str | None = None
    not_given: str | None = None
    flags_title: str | None = None
    send: str | None = None
    copy_: str | None = Field(None, alias="copy", description="emplacements : {box}")
    missing: str | None = Field(None, description="emplacements : {fields}")
    submitted: str | None = Field(None, description="emplacements : {reference}, {recipient}")
    submitted_no_mail: str | None = Field(
        None, description="sans serveur de messagerie ; emplacements : {reference}, {recipient}"
    )
    copy_on: str | None = Field(None, description="emplacements : {address}")
    contact: str | None = Field(
        None, description="accord pour être mis en relation ; emplacements : {box}"
    )
    contact_on: str | None = None
    contact_off: str | None = None
    copy_off: str | None = None
    copy_no_address: str | None = None
    copy_code_sent: str | None = Field(None, description="emplacements : {address}, {minutes}")
    copy_code_wrong: str | None = Field(None, description="emplacements : {left}")
    copy_verified: str | None = Field(None, description="emplacements : {address}")
    copy_code_expired: str | None = None
    copy_code_exhausted: str | None = None
    copy_code_limit: str | None = None
    copy_queued: str | None = Field(None, description="emplacements : {address}")
    copy_not_sent: str | None = None
    submission_limit: str | None = Field(None, description="emplacements : {limit}, {contact}")

    @field_validator("*")
    @classmethod
    def _placeholders(cls, value: str | None, info: ValidationInfo) -> str | None:
        name = info.field_name or ""
        key = cls.model_fields[name].alias or name
        if value is None or key not in TEXT_PLACEHOLDERS:
            return value  # shown as written, never formatted
        return check_placeholders(value, TEXT_PLACEHOLDERS[key], key)


# What the runner fills in each interface text it formats (`spec.t(key, **values)`).
TEXT_PLACEHOLDERS: dict[str, set[str]] = {
    "noted": {"value"},
    "current": {"value"},
    "keep": {"value"},
    "suggest": {"value"},
    "missing": {"fields"},
    "submitted": {"reference", "recipient"},
    "submitted_no_mail": {"reference", "recipient"},
    "copy_on": {"address"},
    "contact": {"box"},
    "copy_code_sent": {"address", "minutes"},
    "copy_code_wrong": {"left"},
    "copy_verified": {"address"},
    "copy_queued": {"address"},
    "submission_limit": {"limit", "contact"},
    "prefilled": {"items"},
    "copy": {"box"},
    "summary_item": {"label", "value"},
    "citation": {"document", "sections"},
    "citation_document": {"document"},
    "sources": {"citations", "ids"},
    "item_menu": {"label", "n", "summary"},
    "review_recipient": {"recipient", "name"},
}

# What a step's prompt or a group's intro may cite of the form's own length, written in when
# the file is read (bot/schema/length.py): « {length.sections}, {length.messages}… ».
LENGTH_PLACEHOLDERS: set[str] = {"sections", "messages", "per_item", "minutes"}


class UnderstoodTexts(Strict):
    """The confirmation of what an understander read in a free-text answer (territory)."""

    prompt: str = Field(description="emplacements : {places}, {communes}, {population}, {year}")
    unresolved: str = Field(description="emplacements : {unresolved}")
    small: str = Field(description="note d'information (territoire de moins de 20 000 habitants)")
    question: str
    confirm: str
    fix: str
    keep: str
    ambiguous: str = Field(description="emplacements : {name}")
    candidate: str = Field(description="emplacements : {name}, {departement}, {population}")
    none_of_them: str
    not_recognised: str = Field(description="emplacements : {text}")
    fix_prompt: str
    review: str = Field(description="emplacements : {places}, {communes}, {population}")


class Step(Strict):
    """A step, or a field of a repeatable group (`fields`)."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_]+$", description="identifiant stable")
    kind: StepKind = Field(StepKind.text, description="type d'étape (text par défaut)")
    label: str | None = Field(None, description="nom court (récapitulatif, erreurs)")
    prompt: str | list[str] | None = Field(
        None,
        description="la question ; une liste : un message par élément (outcome) ; la longueur "
        "du parcours : {length.sections}, {length.messages}, {length.per_item}, "
        "{length.minutes}",
    )
    why: str | None = Field(None, description="texte du bouton « Pourquoi cette question ? »")
    example: str | None = Field(None, description="exemple cité par les messages d'erreur")
    validator: ValidatorName | None = Field(
        None, description="validateur nommé (bot/engine/validators.py)"
    )
    optional: bool = Field(False, description="facultatif : bouton « Passer »")
    max_length: int | None = Field(None, ge=1, description="4 000 caractères par défaut")
    min_length: int | None = Field(None, ge=0)
    errors: ErrorTexts | None = None
    choices: list[Choice] | None = None
    min: int | None = Field(None, ge=0, description="multi_choice : choix ; group : éléments")
    max: int | None = Field(None, ge=1, description="group : éléments au plus")
    ask_if: Condition | None = Field(None, description="posée seulement si la condition tient")
    next: list[NextRule] | None = Field(None, description="branchements : {when, goto}")
    store_display: bool = False
    in_summary: bool = True
    suggest: Suggest | None = None
    accepts_questions: bool = False
    sources: list[str] | None = Field(None, description="ids de passages cités")
    # consent
    accept: str | None = None
    refuse: str | None = None
    refused: str | None = None
    # group
    fields: list[Step] | None = None
    item_label: str | None = None
    intro: str | None = None
    more_prompt: str | None = None
    add: str | None = None
    done: str | None = None
    remove: str | None = None
    removed: str | None = None
    cannot_remove: str | None = None
    # outcome
    buttons: list[Button] | None = None
    understand: UnderstanderName | None = Field(
        None,
        description="lire la réponse libre (territory : communes, EPCI…) et la faire confirmer",
    )
    understood: UnderstoodTexts | None = None
    # the filled fiche (e-mail, PDF): where the question stands and what the paper form says
    section: str | None = Field(
        None,
        description="fiche : bandeau de la rubrique (par défaut le label) ; des étapes qui se "
        "suivent peuvent partager une rubrique",
    )
    heading: str | None = Field(
        None, description="fiche : intitulé de la question dans une rubrique partagée"
    )
    hint: str | None = Field(None, description="fiche : consigne imprimée sous l'intitulé")


# What the code fills in the fiche's texts (`fiche:`)
FICHE_PLACEHOLDERS: dict[str, set[str]] = {
    "subject": {"reference", "routing", "where", "who"},
    "copy_subject": {"reference"},
}


class FicheTexts(Strict):
    """The form's own words on what leaves the bot: the e-mail, the PDF fiche, the exports."""

    title: str | None = Field(None, description="titre de la fiche (par défaut form_title)")
    subtitle: str | None = None
    issuer: str | None = Field(None, description="qui lance l'appel : « ARS Bretagne »")
    issuer_unit: str | None = Field(None, description="le service de l'émetteur (en-tête du PDF)")
    contact: str | None = Field(
        None, description="contact donné aux répondants (copie, envoi retardé ou refusé)"
    )
    where: list[str] | None = Field(
        None,
        description="réponses qui situent la réponse, la première renseignée compte "
        "(« territory », « actors.commune ») : objet, nom du PDF, listes",
    )
    who: list[str] | None = Field(
        None, description="réponses qui nomment qui répond (« actors.name »)"
    )
    subject: str | None = Field(
        None,
        description="objet de l'e-mail à l'ARS ; emplacements : {reference}, {routing} "
        "(« [22] » : départements), {where}, {who}",
    )
    copy_subject: str | None = Field(
        None, description="objet de la copie au référent ; emplacements : {reference}"
    )
    sender: str | None = Field(None, description="nom affiché de l'expéditeur des e-mails")

    @field_validator("subject", "copy_subject")
    @classmethod
    def _placeholders(cls, value: str | None, info: ValidationInfo) -> str | None:
        key = info.field_name or ""
        return None if value is None else check_placeholders(value, FICHE_PLACEHOLDERS[key], key)


class FormFile(Strict):
    """A dialogue file run by the form runner (`dialogues/<flow>.yaml`)."""

    flow: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=30)
    kind: FlowKind | None = None
    title: str | None = None
    form_title: str | None = None
    reference_prefix: str | None = None
    recipient: Recipient | None = None
    fiche: FicheTexts | None = None
    texts: FormTexts | None = None
    errors: ErrorTexts | None = None
    documents: dict[str, str] | None = Field(
        None, description="id de document → nom court dans les citations"
    )
    max_chars: int | None = Field(None, ge=100)
    shared_buttons: list[Any] | None = Field(
        None, description="boutons partagés par ancres YAML (&nom / *nom), non lus"
    )
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_length_placeholders(self) -> FormFile:
        for i, step in enumerate(self.steps):
            texts = step.prompt if isinstance(step.prompt, list) else [step.prompt or ""]
            for text in [*texts, step.intro or ""]:
                for name in re.findall(r"\{length\.(\w+)\}", text):
                    if name not in LENGTH_PLACEHOLDERS:
                        possible = ", ".join(f"{{length.{p}}}" for p in sorted(LENGTH_PLACEHOLDERS))
                        raise ValueError(
                            f"steps[{i}] ({step.id}) : emplacement inconnu {{length.{name}}} "
                            f"(possibles : {possible})"
                        )
        return self


class Recipient(Strict):
    """Where a submission goes: a fixed `address`, or a setting's value (`ars_mailbox`, the
    ARS_MAILBOX variable); neither: ARS_MAILBOX (docs/forms.md)."""

    setting: str | None = Field(None, description="réglage lu : ars_mailbox (ARS_MAILBOX)")
    address: str | None = Field(None, description="adresse fixe de ce formulaire")
    name: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Recipient:
        if self.setting and self.address:
            raise ValueError("recipient : « setting » ou « address », pas les deux")
        if self.setting and self.setting != "ars_mailbox":
            raise ValueError("recipient.setting : seul « ars_mailbox » (ARS_MAILBOX) est lu")
        return self


FormFile.model_rebuild()


# --------------------------------------------------------------------------- per kind
# Keys read only for some kinds of step: elsewhere they would be silently ignored.
KIND_ONLY_KEYS: dict[str, set[str]] = {
    "understand": {"text"},
    "understood": {"text"},
    "accept": {"consent"},
    "refuse": {"consent"},
    "refused": {"consent"},
    "fields": {"group"},
    "item_label": {"group"},
    "intro": {"group"},
    "more_prompt": {"group"},
    "add": {"group"},
    "done": {"group"},
    "remove": {"group"},
    "removed": {"group"},
    "cannot_remove": {"group"},
    "max": {"group"},
    "min": {"group", "multi_choice"},
    "choices": {"choice", "multi_choice"},
    "buttons": {"outcome"},
    "validator": {"text", "email", "phone", "date_or_period"},
    "max_length": {"text", "email", "phone", "date_or_period"},
    "min_length": {"text", "email", "phone", "date_or_period"},
}
TEXT_KINDS = {"text", "email", "phone", "date_or_period"}
# Interface texts (`texts:`) every flow shows, and those some steps need; a missing one would
# show its key (« way_on ») to the user.
ALWAYS_TEXTS = {"back", "stale", "went_back", "no_back", "use_buttons", "current", "keep"}
REVIEW_TEXTS = {
    "review_title",
    "review_recipient",
    "review_prompt",
    "not_given",
    "flags_title",
    "send",
    "copy",
    "missing",
    "submitted",
    "prefilled",
    "prefilled_mark",
    "to_review",
    "too_many",
}


def _steps_with_place(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for i, step in enumerate(data.get("steps") or []):
        found.append((f"steps[{i}]", step))
        for j, sub in enumerate(step.get("fields") or []):
            found.append((f"steps[{i}].fields[{j}]", sub))
    return found


def kind_problems(data: dict[str, Any]) -> list[str]:
    """`path — problem` for keys a step's kind never reads and for texts its steps need.

    `data` is a validated flow (`read_form`)."""
    problems: list[str] = []
    needed: dict[str, str] = {key: "toujours affiché" for key in ALWAYS_TEXTS}
    for where, step in _steps_with_place(data):
        kind = step.get("kind", "text")
        for key, kinds in KIND_ONLY_KEYS.items():
            if key in step and kind not in kinds:
                problems.append(
                    f"{where}.{key} — clé sans effet pour une étape « {kind} » "
                    f"(lue seulement pour : {', '.join(sorted(kinds))})"
                )
        if kind in TEXT_KINDS:
            for key in ("way_on", "keep_as_typed"):
                needed.setdefault(key, f"après trois réponses refusées ({where})")
            if step.get("validator") in ("name", "label"):
                needed.setdefault("question_unanswered", f"question sans réponse ({where})")
        if step.get("optional"):
            needed.setdefault("skip", f"bouton « Passer » ({where}, optional)")
        if step.get("why"):
            needed.setdefault("why_button", f"bouton d'aide ({where}, why)")
        if kind == "multi_choice":
            needed.setdefault("validate", f"bouton « Valider » ({where})")
        if step.get("suggest"):
            needed.setdefault("suggest", f"boutons de suggestion ({where})")
        if kind == "group":
            needed.setdefault("item_menu", f"menu d'un élément ({where})")
        if kind == "review" and not data.get("recipient"):
            problems.append(
                f"{where} — un formulaire envoyé (étape « review ») nomme son destinataire : "
                "recipient: {setting: ars_mailbox} ou recipient: {address: …}"
            )
        if kind == "review":
            for key in REVIEW_TEXTS:
                needed.setdefault(key, f"récapitulatif et envoi ({where})")
        if step.get("sources"):
            for key in ("sources", "citation", "citation_document"):
                needed.setdefault(key, f"citations des sources ({where})")
        prompt = step.get("prompt")
        parts = prompt if isinstance(prompt, list) else [prompt or ""]
        if kind == "outcome" and any("{summary}" in p for p in parts):
            needed.setdefault("summary_item", f"{{summary}} ({where})")
    problems += fiche_reference_problems(data)
    texts = data.get("texts") or {}
    for key in sorted(needed):
        if key not in texts:
            problems.append(
                f"texts.{key} — texte manquant (l'utilisateur verrait « {key} ») : {needed[key]}"
            )
    return problems


def fiche_reference_problems(data: dict[str, Any]) -> list[str]:
    """`fiche.where` / `fiche.who` name answers: a step (`territory`) or a group's field
    (`actors.commune`) that exists."""
    known: set[str] = set()
    for step in data.get("steps") or []:
        known.add(str(step.get("id")))
        known.update(f"{step.get('id')}.{sub.get('id')}" for sub in step.get("fields") or [])
    problems = []
    fiche = data.get("fiche") or {}
    for key in ("where", "who"):
        for i, ref in enumerate(fiche.get(key) or []):
            if ref not in known:
                problems.append(
                    f"fiche.{key}[{i}] — « {ref} » n'est ni une étape ni le champ d'un groupe "
                    "(« étape » ou « groupe.champ »)"
                )
    return problems
