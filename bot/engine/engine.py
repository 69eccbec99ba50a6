"""The dialogue engine: one `Incoming` in, a list of `Reply` out, state in the database.

It knows the main menu, the global commands, the question answering and which flow is active;
the flows themselves (AMI form, orientation guide) are declared in `dialogues/*.yaml`.
Nothing here imports Telegram: adapters translate.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.engine.flow import Flow, TurnContext
from bot.engine.messages import Button, Document, Incoming, Kind, Reply
from bot.engine.texts import Texts, menu_texts
from bot.qa.intent import QAContext

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.engine.ports import RespondentPort, StorePort
    from bot.qa import QAAnswer, QAService

log = logging.getLogger(__name__)

CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
MAX_LINKS = 40  # short button payloads remembered per conversation
SEEN_UPDATES = 50  # update ids remembered per conversation to apply each update once
StaffCommand = Callable[[TurnContext, str], list[Reply]]
AMI_FLOW = "ami_bretagne"
ORIENTATION_FLOW = "orientation"
REPLY_KEY = "_ars_reply"  # the response whose ARS message the next text answers (exchange.py)
QA_CONTEXT_KEY = "_qa"  # what the last question was about (follow-ups), in the conversation


def clean_text(text: str) -> str:
    """Drop control and bidi-override characters; keep line breaks; trim."""
    return CONTROL_CHARS.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


@dataclass
class DialogueEngine:
    """Routes each user event to the menu, the question answering or the active flow."""

    store: StorePort
    qa: QAService
    settings: Settings
    flows: dict[str, Flow] = field(default_factory=dict)
    staff_commands: dict[str, StaffCommand] = field(default_factory=dict)
    texts: Texts = field(default_factory=menu_texts)
    clock: Callable[[], datetime] | None = None
    # the ARS exchange and the user's data (`bot.respondent.StoredRespondent`, from build_app)
    respondent: RespondentPort | None = None

    @property
    def respondent_port(self) -> RespondentPort:
        """The respondent services this engine was built with."""
        if self.respondent is None:
            raise RuntimeError("DialogueEngine built without its respondent port")
        return self.respondent

    # ------------------------------------------------------------------ entry point
    def handle(self, incoming: Incoming, render_documents: bool = True) -> list[Reply]:
        """Handle one user event in one transaction and return what to send back.

        With `render_documents=False` a document made after the commit (the PDF fiche) keeps
        its `render` callable: the caller renders it off the turn's thread (`render_document`).
        """
        replies = self._turn(incoming)
        log.debug(
            "turn of user %s: a %s in, %d replies out",
            incoming.user_id,
            incoming.kind,
            len(replies),
        )
        if not render_documents:
            return replies
        return [self._rendered(reply) for reply in replies]

    def render_document(self, reply: Reply) -> Reply:
        """Render a reply's deferred document (the adapter calls it outside the turn's thread)."""
        return self._rendered(reply)

    def _rendered(self, reply: Reply) -> Reply:
        """Make a document's content now that the turn has committed (outside the lock)."""
        document = reply.document
        if document is None or document.render is None:
            return reply
        try:
            content = document.render()
        except Exception:
            log.exception("document %s could not be rendered", document.filename)
            reply.document = None
            return reply
        reply.document = replace(document, content=content, render=None)
        return reply

    def _turn(self, incoming: Incoming) -> list[Reply]:
        try:
            with self.store.turn(incoming.user_id) as turn:
                now = (self.clock or self.store.clock)()
                ctx = TurnContext(
                    turn=turn,
                    settings=self.settings,
                    qa=self.qa,
                    store=self.store,
                    now=now,
                    display_name=incoming.display_name,
                )
                if self._seen_before(ctx, incoming):
                    return []  # a redelivered update (webhook retry, second instance): applied once
                replies = self._dispatch(ctx, incoming)
                replies += self._after_turn(ctx)
                turn.changed()
                return replies or [Reply(self.texts("menu_prompt"), self.menu_buttons(ctx))]
        except Exception:
            log.exception("turn failed for an incoming %s", incoming.kind)
            return [Reply(self.texts("error"))]

    def _seen_before(self, ctx: TurnContext, incoming: Incoming) -> bool:
        """Remember the last update ids applied to this conversation; True for a repeat."""
        if incoming.update_id is None:
            return False
        seen: list[int] = ctx.conversation.data.setdefault("_seen_updates", [])
        if incoming.update_id in seen:
            return True
        seen.append(incoming.update_id)
        del seen[:-SEEN_UPDATES]
        return False

    # ------------------------------------------------------------------ routing
    def _dispatch(self, ctx: TurnContext, incoming: Incoming) -> list[Reply]:
        data = ctx.conversation.data
        pending = data.get("_pending")
        if pending and incoming.kind in (Kind.CHOICE, Kind.TEXT):
            answer = _yes_no(incoming)
            if answer is not None:
                data.pop("_pending", None)
                return self._confirmed(ctx, pending, answer)
            data.pop("_pending", None)
        if incoming.kind == Kind.COMMAND:
            data.pop(REPLY_KEY, None)  # a command ends a reply to the ARS not yet written
            return self._command(ctx, incoming.text, clean_text(incoming.arg))
        if incoming.kind == Kind.TEXT and data.get(REPLY_KEY):
            return self._reply_to_ars(ctx, clean_text(incoming.text))
        if incoming.kind == Kind.CHOICE:
            data.pop(REPLY_KEY, None)  # another button: the reply to the ARS is abandoned
            return self._choice(ctx, incoming.text)
        if incoming.kind == Kind.UNSUPPORTED:
            what = self.texts.get(f"unsupported_kinds.{incoming.text}") or self.texts(
                "unsupported_kinds.other"
            )
            return [Reply(self.texts("unsupported", what=what)), *self._where_we_are(ctx)]
        flow = self.active_flow(ctx)
        if flow is not None and incoming.kind in (Kind.TEXT, Kind.CONTACT):
            text = clean_text(incoming.text)
            return flow.handle(ctx, Incoming(incoming.user_id, incoming.kind, text))
        if incoming.kind == Kind.CONTACT:
            return [Reply(self.texts("menu_prompt"), self.menu_buttons(ctx))]
        text = clean_text(incoming.text)
        if not text:
            return [Reply(self.texts("empty_message"), self.menu_buttons(ctx))]
        return self.answer_question(ctx, text)

    def _command(self, ctx: TurnContext, name: str, arg: str) -> list[Reply]:
        name = name.split("@", 1)[0].lower()
        if name == "start":
            return self._start(ctx, arg.lower())
        if name in ("menu", "accueil"):
            self._pause(ctx)
            return [Reply(self.texts("menu_prompt"), self.menu_buttons(ctx))]
        if name in ("aide", "help"):
            return [Reply(self.texts("help")), *self._where_we_are(ctx, with_menu=False)]
        if name == "question":
            self._pause(ctx)
            if arg:
                return self.answer_question(ctx, arg)
            return [Reply(self.texts("ask_question"))]
        if name in ("orientation", "ami"):
            flow_name = ORIENTATION_FLOW if name == "orientation" else AMI_FLOW
            return self.open_flow(ctx, flow_name)
        if name == "reprendre":
            return self._resume(ctx)
        if name == "annuler":
            return self._ask_cancel(ctx)
        if name == "mesdonnees":
            return self._my_data(ctx)
        if name == "supprimer":
            ctx.conversation.data["_pending"] = "delete"
            return [
                Reply(
                    "Voulez-vous vraiment effacer vos données (brouillon, historique de "
                    "conversation, messages du bot, adresses vérifiées, et les réponses pas "
                    "encore parvenues à l'ARS, qui ne seraient alors pas envoyées) ? Les "
                    "réponses déjà reçues par l'ARS Bretagne sont détenues par l'ARS : pour "
                    "elles, adressez-vous à l'ARS.",
                    self._yes_no_buttons(),
                )
            ]
        if name in self.staff_commands and self.settings.is_staff(ctx.user_id):
            return self.staff_commands[name](ctx, arg)
        return [Reply(self.texts("unknown_command", name=name[:40]), self.menu_buttons(ctx))]

    def _choice(self, ctx: TurnContext, payload: str) -> list[Reply]:
        payload = self._resolve_link(ctx, payload)
        head, _, rest = payload.partition(":")
        if head == "menu":
            return self._menu_choice(ctx, rest)
        if head == "qa":
            kind, _, key = rest.partition(":")
            answer = self.qa.more(key) if kind == "more" else self.qa.topic(key)
            if answer is None:
                return [Reply(self.texts("stale_button")), *self._where_we_are(ctx)]
            return self.render_answer(ctx, answer)
        if head == "engine":
            return [Reply(self.texts("stale_button")), *self._where_we_are(ctx)]
        if head == "ars":  # a button of a message from the ARS (bot/exchange.py)
            replies = self.respondent_port.ars_choice(ctx, rest)
            return [*replies, *self._where_we_are(ctx, with_menu=False)]
        flow = self.active_flow(ctx)
        if flow is not None and head == flow.name:
            return flow.handle(ctx, Incoming(ctx.user_id, Kind.CHOICE, payload))
        return [Reply(self.texts("stale_button")), *self._where_we_are(ctx)]

    def _reply_to_ars(self, ctx: TurnContext, text: str) -> list[Reply]:
        """The text typed after « Répondre à l'ARS »: joins the response's thread."""
        data = ctx.conversation.data
        replies, done = self.respondent_port.ars_reply(ctx, int(data[REPLY_KEY]), text)
        if done:
            data.pop(REPLY_KEY, None)
            replies += self._where_we_are(ctx, with_menu=False)
        return replies

    def _menu_choice(self, ctx: TurnContext, action: str) -> list[Reply]:
        if action == "question":
            self._pause(ctx)
            return [Reply(self.texts("ask_question"))]
        if action in ("orientation", "ami"):
            return self.open_flow(ctx, ORIENTATION_FLOW if action == "orientation" else AMI_FLOW)
        if action == "contact":
            return [Reply(self.texts("contact"), self.menu_buttons(ctx))]
        if action == "resume":
            return self._resume(ctx)
        self._pause(ctx)
        return [Reply(self.texts("menu_prompt"), self.menu_buttons(ctx))]

    # ------------------------------------------------------------------ flows
    def active_flow(self, ctx: TurnContext) -> Flow | None:
        name = ctx.conversation.flow
        return self.flows.get(name) if name else None

    def open_flow(
        self, ctx: TurnContext, name: str, prefill: dict[str, Any] | None = None
    ) -> list[Reply]:
        """Start a flow, or resume it where the user left it if answers were already given."""
        flow = self.flows.get(name)
        if flow is None:
            return [Reply("Cette fonction n'est pas encore disponible.", self.menu_buttons(ctx))]
        ctx.conversation.flow = name
        if not prefill and flow.has_progress(ctx):
            return [Reply(self.texts("resuming")), *flow.prompt(ctx)]
        return flow.start(ctx, prefill or {})

    def _start(self, ctx: TurnContext, arg: str) -> list[Reply]:
        if arg in ("ami", "orientation"):
            return self.open_flow(ctx, AMI_FLOW if arg == "ami" else ORIENTATION_FLOW)
        self._pause(ctx)
        name = f" {ctx.display_name}" if ctx.display_name else ""
        draft = self._draft(ctx)
        # with a draft, the offer below carries the resume button: the menu does not repeat it
        replies = [Reply(self.texts("welcome", name=name), self.menu_buttons(ctx, draft is None))]
        if draft is not None:
            date = ctx.conversation.updated_at.strftime("%d/%m/%Y")
            replies.append(
                Reply(
                    self.texts("resume_offer", date=date),
                    [[Button(self.texts("buttons.resume"), "menu:resume")]],
                )
            )
        return replies

    def _draft(self, ctx: TurnContext) -> Flow | None:
        flow = self.flows.get(AMI_FLOW)
        if flow is not None and flow.has_progress(ctx):
            return flow
        return None

    def _resume(self, ctx: TurnContext) -> list[Reply]:
        flow = self.active_flow(ctx) or self._draft(ctx)
        if flow is None:
            for candidate in self.flows.values():
                if candidate.has_progress(ctx):
                    flow = candidate
                    break
        if flow is None:
            return [Reply(self.texts("nothing_to_resume"), self.menu_buttons(ctx))]
        ctx.conversation.flow = flow.name
        return [Reply(self.texts("resuming")), *flow.prompt(ctx)]

    def _pause(self, ctx: TurnContext) -> None:
        """Leave the active flow without losing its answers (/reprendre brings it back)."""
        ctx.conversation.flow = None

    def _ask_cancel(self, ctx: TurnContext) -> list[Reply]:
        flow = self.active_flow(ctx) or self._draft(ctx)
        if flow is None:
            return [Reply(self.texts("nothing_to_cancel"), self.menu_buttons(ctx))]
        ctx.conversation.data["_pending"] = f"cancel:{flow.name}"
        return [Reply(self.texts("cancel_confirm", what=flow.title), self._yes_no_buttons())]

    def _confirmed(self, ctx: TurnContext, pending: str, yes: bool) -> list[Reply]:
        if pending.startswith("cancel:"):
            if not yes:
                return [Reply(self.texts("cancel_kept")), *self._where_we_are(ctx, with_menu=False)]
            name = pending.split(":", 1)[1]
            ctx.conversation.data.pop(name, None)
            if ctx.conversation.flow == name:
                ctx.conversation.flow = None
                ctx.conversation.state = None
            return [Reply(self.texts("cancel_done"), self.menu_buttons(ctx))]
        if pending == "delete":
            if not yes:
                return [Reply("Très bien, je ne supprime rien.", self.menu_buttons(ctx))]
            return self._erase(ctx)
        return self._where_we_are(ctx)

    def _erase(self, ctx: TurnContext) -> list[Reply]:
        """/supprimer confirmed: everything the ARS has not received goes, now."""
        respondent = self.respondent_port
        erasure = respondent.erase(ctx)
        ctx.conversation.data.clear()
        ctx.conversation.flow = None
        ctx.conversation.state = None
        ctx.conversation.consent_at = None
        ctx.turn.erase()
        lines = [
            "C'est fait : votre brouillon, votre historique de conversation, les messages du bot "
            "et les adresses vérifiées sont effacés."
        ]
        if erasure.erased:
            refs = ", ".join(erasure.erased)
            lines.append(
                f"Les réponses qui n'étaient pas encore parvenues à l'ARS ({refs}) sont effacées "
                "et ne lui seront pas envoyées."
            )
        if erasure.kept:
            refs = ", ".join(erasure.kept)
            lines.append(
                f"L'ARS Bretagne a déjà reçu vos réponses {refs} : elle les conserve le temps du "
                f"traitement de l'AMI. Pour les faire rectifier ou effacer, adressez-vous à son "
                f"délégué à la protection des données : {respondent.dpo()} (ou "
                f"{self.settings.ars_mailbox})."
            )
        return [Reply("\n\n".join(lines), self.menu_buttons(ctx))]

    def _after_turn(self, ctx: TurnContext) -> list[Reply]:
        replies: list[Reply] = []
        if ctx.finished:
            finished = ctx.conversation.flow
            ctx.conversation.flow = None
            ctx.conversation.state = None
            if finished and not ctx.next_flow:
                ctx.finished = False
        if ctx.next_flow is not None:
            name, prefill = ctx.next_flow
            ctx.next_flow = None
            ctx.finished = False
            replies += self.open_flow(ctx, name, prefill)
        return replies

    def _where_we_are(self, ctx: TurnContext, with_menu: bool = True) -> list[Reply]:
        flow = self.active_flow(ctx)
        if flow is not None:
            return flow.prompt(ctx)
        if with_menu:
            return [Reply(self.texts("menu_prompt"), self.menu_buttons(ctx))]
        return []

    # ------------------------------------------------------------------ questions
    def answer_question(self, ctx: TurnContext, text: str) -> list[Reply]:
        """Answer a free question from the texts (or abstain) with follow-up buttons; the
        conversation's previous question is the context of a follow-up."""
        data = ctx.conversation.data
        answer, context = self.qa.reply(text, QAContext.from_dict(data.get(QA_CONTEXT_KEY)))
        data[QA_CONTEXT_KEY] = context.to_dict()
        return self.render_answer(ctx, answer)

    def render_answer(self, ctx: TurnContext, answer: QAAnswer) -> list[Reply]:
        buttons: list[list[Button]] = []
        if answer.abstained and not answer.sources:
            return [Reply(answer.text, self.menu_buttons(ctx))]
        if answer.more_key:
            buttons.append(
                [Button(self.texts("buttons.more"), self._link(ctx, f"qa:more:{answer.more_key}"))]
            )
        if answer.abstained:
            # the texts do not give the detail asked; the nearest answer shown can be read in
            # full, and the menu offers the ARS contact
            return [Reply(answer.text, buttons + self.menu_buttons(ctx))]
        for label, key in answer.related[:3]:
            buttons.append([Button(label[:60], self._link(ctx, f"qa:topic:{key}"))])
        buttons.append([Button(self.texts("buttons.menu"), "menu:home")])
        return [Reply(answer.text, buttons)]

    def _link(self, ctx: TurnContext, payload: str) -> str:
        """A short button payload (Telegram allows 64 bytes) remembered in the conversation."""
        if len(payload.encode()) <= 60:
            return payload
        links: dict[str, str] = ctx.conversation.data.setdefault("_links", {})
        for short, full in links.items():
            if full == payload:
                return short
        short = f"l:{ctx.conversation.version}.{len(links)}"
        links[short] = payload
        while len(links) > MAX_LINKS:
            links.pop(next(iter(links)))
        return short

    def _resolve_link(self, ctx: TurnContext, payload: str) -> str:
        if payload.startswith("l:"):
            return ctx.conversation.data.get("_links", {}).get(payload, "engine:stale")
        return payload

    # ------------------------------------------------------------------ menus and privacy
    def menu_buttons(self, ctx: TurnContext, offer_resume: bool = True) -> list[list[Button]]:
        rows = [
            [Button(self.texts("buttons.question"), "menu:question")],
            [Button(self.texts("buttons.orientation"), "menu:orientation")],
            [Button(self.texts("buttons.ami"), "menu:ami")],
            [Button(self.texts("buttons.contact"), "menu:contact")],
        ]
        if offer_resume and ctx.conversation.flow != AMI_FLOW and self._draft(ctx) is not None:
            rows.insert(0, [Button(self.texts("buttons.resume"), "menu:resume")])
        return rows

    def _yes_no_buttons(self) -> list[list[Button]]:
        return [
            [
                Button(self.texts("buttons.yes"), "engine:yes"),
                Button(self.texts("buttons.no"), "engine:no"),
            ]
        ]

    def _my_data(self, ctx: TurnContext) -> list[Reply]:
        """Everything held about the user, readable (labels, what was sent where and when)."""
        draft_text = None
        flow = self.flows.get(AMI_FLOW)
        if flow is not None and flow.has_progress(ctx) and hasattr(flow, "review_text"):
            draft_text = flow.review_text(ctx, ctx.flow_data(AMI_FLOW))
        text, data = self.respondent_port.my_data(ctx, draft_text)
        return [
            Reply(
                "Voici toutes les données que je conserve sur vous, lisibles (fichier texte).",
                document=Document(
                    filename="mes-donnees.txt",
                    content=text.encode("utf-8"),
                    mime_type="text/plain",
                    caption="Vos données (lisibles)",
                ),
            ),
            Reply(
                "Les mêmes données au format JSON, réutilisable par un programme.",
                document=Document(
                    filename="mes-donnees.json",
                    content=json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8"),
                    mime_type="application/json",
                    caption="Vos données (JSON)",
                ),
            ),
            *self._where_we_are(ctx),
        ]


YES_WORDS = {"oui", "o", "yes", "y", "ok", "d'accord", "daccord", "confirmer", "confirme", "1"}
NO_WORDS = {"non", "n", "no", "annuler", "2"}


def _yes_no(incoming: Incoming) -> bool | None:
    if incoming.kind == Kind.CHOICE:
        if incoming.text == "engine:yes":
            return True
        if incoming.text == "engine:no":
            return False
        return None
    word = clean_text(incoming.text).lower().strip(" .!")
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    return None
