"""Command line: `python -m bot run|chat|ask|lint|territory|migrate|diagram|worker|export|outbox|stats|web|staff`.

Imports are lazy so that `ask` starts fast (it loads only the knowledge base).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings

NO_TOKEN = """\
Aucun jeton Telegram n'est configuré (variable TELEGRAM_BOT_TOKEN).

Pour obtenir un jeton : dans Telegram, écrivez à @BotFather, envoyez /newbot, choisissez un nom
et un identifiant se terminant par « bot » ; BotFather vous donne un jeton de la forme
123456789:ABC-DEF… Mettez-le dans le fichier .env (voir .env.example) :
    TELEGRAM_BOT_TOKEN=123456789:ABC-DEF…

En attendant, voici le bot dans le terminal (les mêmes dialogues, la même base de données).
"""

SCHEMA_BROKEN = (
    "{what} : un fichier de dialogue ou de connaissances est mal formé "
    "(`python -m bot lint` vérifie tous les fichiers)."
)


NO_SMTP = """\
ATTENTION : aucun serveur de messagerie n'est configuré (variable SMTP_HOST).
Les réponses ne partiront PAS à l'ARS : chaque e-mail est seulement écrit en fichier .eml dans
MAIL_OUTBOX_DIR, et les utilisateurs en sont avertis dans leur confirmation. Pour la
production, renseignez SMTP_HOST (voir docs/mail-and-staff.md).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="Bot ESP / CPTS — ARS Bretagne"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="le bot sur Telegram (ou la console sans jeton)")
    run.add_argument("--webhook", action="store_true", help="mode webhook au lieu du long polling")

    chat = sub.add_parser("chat", help="les dialogues dans le terminal")
    chat.add_argument("--user", type=int, default=1, help="identifiant de l'utilisateur simulé")

    ask = sub.add_parser("ask", help="répondre à une question (ou une par ligne sur l'entrée)")
    ask.add_argument("--json", action="store_true", help="une réponse JSON par ligne")
    ask.add_argument("question", nargs="*", help="la question (sinon lue sur l'entrée standard)")

    territory = sub.add_parser(
        "territory", help="le territoire compris dans un texte (JSON : communes, population…)"
    )
    territory.add_argument("text", nargs="*", help="le texte (sinon un par ligne sur l'entrée)")
    territory.add_argument(
        "--reindex",
        action="store_true",
        help="réindexer le territoire et les départements de toutes les réponses enregistrées",
    )
    lint = sub.add_parser(
        "lint", help="vérifier les fichiers YAML (dialogues, connaissances) : schémas et liens"
    )
    lint.add_argument(
        "directories",
        nargs="*",
        metavar="DOSSIER",
        help="dossiers à vérifier (par défaut : dialogues/ et knowledge/)",
    )
    lint.add_argument(
        "--write-schemas",
        action="store_true",
        help="écrire les schémas JSON (dialogues/schema/, knowledge/schema/) pour les éditeurs",
    )

    sub.add_parser("migrate", help="créer ou mettre à jour le schéma de la base")
    sub.add_parser("diagram", help="régénérer les diagrammes Mermaid des dialogues")
    worker = sub.add_parser(
        "worker",
        help="les tâches de fond sans le bot : e-mails en attente, synthèse, conservation, "
        "rappels des temps d'échange",
    )
    worker.add_argument(
        "--once", action="store_true", help="un seul passage de chaque tâche puis s'arrêter"
    )

    from bot.staff.cli import add_staff_commands
    from bot.web.cli import add_web_commands

    add_staff_commands(sub)
    add_web_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; operator mistakes end with a French sentence, never a traceback."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # a broken pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # `python -m bot responses | head`: the reader left; end quietly (the audit row of a
        # staff read is committed before anything is printed)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = operator_message(exc)
        if message is None:
            raise
        sys.stderr.write(message + "\n")
        return 4


def settings_message(exc: Any) -> str:
    """The settings pydantic refused, one French line each (the value, never a secret's)."""
    lines = ["Réglages invalides, le bot ne démarre pas :"]
    for error in exc.errors():
        name = "_".join(str(p) for p in error.get("loc", ())).upper() or "?"
        shown = (
            ""
            if any(k in name for k in ("PASSWORD", "TOKEN", "SECRET"))
            else (f" = {error.get('input')!r}")
        )
        kind = error.get("type", "")
        if kind == "literal_error":
            allowed = str((error.get("ctx") or {}).get("expected", "")).replace(" or ", " ou ")
            why = f"valeur non reconnue (attendu : {allowed})"
        elif kind in ("int_parsing", "int_type", "int_from_float"):
            why = "un nombre entier est attendu"
        elif kind in ("float_parsing", "float_type"):
            why = "un nombre est attendu"
        elif kind in ("bool_parsing", "bool_type"):
            why = "« true » ou « false » est attendu"
        else:
            why = "valeur incorrecte"
        lines.append(f"  - {name}{shown} : {why}.")
    return "\n".join(lines)


def operator_message(exc: BaseException) -> str | None:
    """A French explanation for the errors an operator causes and can fix, else None."""
    import errno

    from sqlalchemy.exc import OperationalError

    if isinstance(exc, OperationalError):
        text = str(exc.orig) if exc.orig is not None else str(exc)
        low = text.lower()
        if "readonly" in low or "read-only" in low or "read only" in low:
            return (
                "La base de données est en lecture seule : le bot ne peut rien y écrire. "
                "Vérifiez les droits du fichier de la base et de son dossier (ou du rôle "
                "PostgreSQL), puis relancez."
            )
        if "disk is full" in low or "no space" in low or "disk full" in low:
            return "Le disque de la base de données est plein : libérez de la place, puis relancez."
        if "unable to open" in low:
            return (
                "Impossible d'ouvrir la base de données : vérifiez DATABASE_URL et les droits "
                "du dossier qui la contient."
            )
        if "connection" in low or "could not connect" in low or "timeout" in low:
            return (
                "Impossible de joindre la base de données : vérifiez DATABASE_URL et que "
                "PostgreSQL est démarré."
            )
        return f"La base de données a refusé l'opération ({text.splitlines()[0][:200]})."
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        if exc.errno == errno.ENOSPC:
            return f"Le disque est plein{where} : libérez de la place, puis relancez."
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"Droits insuffisants ou disque en lecture seule{where} : vérifiez les droits."
        if exc.errno in (errno.EISDIR, errno.ENOTDIR, errno.ENOENT):
            return f"Chemin invalide{where} : {exc.strerror}."
    return None


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bot.schema import SchemaError

    try:
        return _run(args)
    except SchemaError as exc:  # a broken YAML file: its French problems, no traceback
        what = "Le bot ne démarre pas" if args.command in ("run", "chat") else "Arrêt"
        sys.stderr.write(f"{SCHEMA_BROKEN.format(what=what)}\n{exc}\n")
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "lint":
        from bot.lint import run_lint

        return run_lint(args.directories, write=args.write_schemas)
    if args.command == "ask":
        return _ask(args)
    if args.command == "territory" and not args.reindex:
        return _territory(args)
    from pydantic import ValidationError

    from bot.config import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        sys.stderr.write(settings_message(exc) + "\n")
        return 2
    from bot.logsetup import configure_logging

    quiet = args.command == "chat" and "LOG_LEVEL" not in os.environ  # the terminal is the chat
    configure_logging(
        "WARNING" if quiet else settings.log_level,
        secrets=[
            settings.telegram_bot_token,
            settings.smtp_password,
            settings.webhook_secret,
            settings.web_secret_key,
            settings.oidc_client_secret,
        ],
        allowed=[settings.mail_from, settings.ars_mailbox, settings.alert_email],
    )
    if args.command == "migrate":
        from bot.storage.migrations import upgrade

        upgrade(settings.database_url)
        print("Base de données à jour.")
        return 0
    from bot.mail.transport import ConfigurationError, validate_mail_settings
    from bot.storage.migrations import DatabaseNotMigrated

    try:
        if args.command in ("run", "chat", "worker"):
            validate_mail_settings(settings)
        return _dispatch(settings, args)
    except ConfigurationError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    except DatabaseNotMigrated as exc:
        sys.stderr.write(f"{exc}\n")
        return 3


def _dispatch(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "chat":
        return _chat(settings, args.user)
    if args.command == "run":
        if not settings.telegram_bot_token:  # type: ignore[attr-defined]
            sys.stderr.write(NO_TOKEN + "\n")
            return _chat(settings, 1)
        if not settings.smtp_host:  # type: ignore[attr-defined]
            sys.stderr.write(NO_SMTP + "\n")
            logging.getLogger("bot").warning("no SMTP_HOST: e-mails are only written as .eml files")
        from bot.runtime import run_telegram

        return run_telegram(settings, webhook=args.webhook)
    if args.command == "diagram":
        from bot.forms.diagram import write_diagrams

        for path in write_diagrams():
            print(path)
        return 0
    if args.command == "territory":  # --reindex
        from bot.storage.migrations import ensure_migrated
        from bot.storage.store import Store

        store = Store.from_url(settings.database_url)  # type: ignore[attr-defined]
        ensure_migrated(store.engine)
        print(f"{store.reindex_territories()} réponse(s) réindexée(s).")
        return 0
    if args.command == "worker":
        from bot.runtime import run_worker

        return run_worker(settings, once=args.once)
    if args.command == "web":
        from bot.runtime import run_web

        return run_web(settings, args.host, args.port)  # type: ignore[arg-type]
    if args.command == "staff":
        from bot.web.cli import run_web_command

        return run_web_command(settings, args)  # type: ignore[arg-type]
    from bot.staff.cli import run_staff_command

    return run_staff_command(settings, args)


def _ask(args: argparse.Namespace) -> int:
    from bot.qa import run_ask

    question = " ".join(args.question) if args.question else None
    if not args.json:
        from bot.qa import QAService

        service = QAService.load()
        for line in [question] if question else sys.stdin:
            print(service.answer(line.strip()).text, end="\n\n", flush=True)
        return 0
    return run_ask(question, sys.stdin, sys.stdout)


def _territory(args: argparse.Namespace) -> int:
    """One JSON object per text: communes (code, name, population), population, départements,
    EPCI, unresolved fragments, ambiguities."""
    import json

    from bot.territory import TerritoryDataError, resolve_text

    texts = [" ".join(args.text)] if args.text else [line.rstrip("\n") for line in sys.stdin]
    try:
        for text in texts:
            print(json.dumps(resolve_text(text), ensure_ascii=False), flush=True)
    except TerritoryDataError as exc:
        sys.stderr.write(f"Données de territoires inutilisables : {exc}\n")
        return 2
    return 0


def _chat(settings: Settings, user_id: int) -> int:
    from bot.adapters.console import ConsoleSession, run_console
    from bot.app import build_app
    from bot.config import ROOT
    from bot.runtime import console_runtime

    app = build_app(settings)  # type: ignore[arg-type]
    runtime, deliverer = console_runtime(app, user_id)

    def after_turn() -> list[str]:  # the background jobs that are due, then what they brought
        runtime.tick_sync()
        return deliverer.take()

    session = ConsoleSession(
        app.engine.handle,
        user_id=user_id,
        documents_dir=ROOT / "data" / "console-documents",
        after_turn=after_turn,
    )
    return run_console(session)
