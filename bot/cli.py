"""Command line: `python -m bot run|chat|ask|lint|migrate|diagram|worker|export|outbox|stats`.

Imports are lazy so that `ask` starts fast (it loads only the knowledge base).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

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
    worker = sub.add_parser("worker", help="envoyer les e-mails en attente (seul, sans le bot)")
    worker.add_argument("--once", action="store_true", help="un seul passage puis s'arrêter")

    from bot.staff.cli import add_staff_commands

    add_staff_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bot.schema import SchemaError

    try:
        return _main(args)
    except SchemaError as exc:  # a broken YAML file: its French problems, no traceback
        what = "Le bot ne démarre pas" if args.command in ("run", "chat") else "Arrêt"
        sys.stderr.write(f"{SCHEMA_BROKEN.format(what=what)}\n{exc}\n")
        return 2


def _main(args: argparse.Namespace) -> int:
    if args.command == "lint":
        from bot.schema.lint import run_lint

        return run_lint(args.directories, write=args.write_schemas)
    if args.command == "ask":
        return _ask(args)
    from bot.config import Settings

    settings = Settings()
    from bot.logsetup import configure_logging

    quiet = args.command == "chat" and "LOG_LEVEL" not in os.environ  # the terminal is the chat
    configure_logging(
        "WARNING" if quiet else settings.log_level,
        secrets=[settings.telegram_bot_token, settings.smtp_password, settings.webhook_secret],
    )
    if args.command == "migrate":
        from bot.storage.migrations import upgrade

        upgrade(settings.database_url)
        print("Base de données à jour.")
        return 0
    from bot.storage.migrations import DatabaseNotMigrated

    try:
        return _dispatch(settings, args)
    except DatabaseNotMigrated as exc:
        sys.stderr.write(f"{exc}\n")
        return 3


def _dispatch(settings: object, args: argparse.Namespace) -> int:
    if args.command == "chat":
        return _chat(settings, args.user)
    if args.command == "run":
        if not settings.telegram_bot_token:  # type: ignore[attr-defined]
            sys.stderr.write(NO_TOKEN + "\n")
            return _chat(settings, 1)
        from bot.adapters.telegram import run_telegram

        return run_telegram(settings, webhook=args.webhook)
    if args.command == "diagram":
        from bot.engine.diagram import write_diagrams

        for path in write_diagrams():
            print(path)
        return 0
    if args.command == "worker":
        from bot.mail.worker import run_worker_cli

        return run_worker_cli(settings, once=args.once)
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


def _chat(settings: object, user_id: int) -> int:
    from bot.adapters.console import ConsoleSession, run_console
    from bot.app import build_app, console_after_turn
    from bot.config import ROOT

    app = build_app(settings)  # type: ignore[arg-type]
    session = ConsoleSession(
        app.engine.handle,
        user_id=user_id,
        documents_dir=ROOT / "data" / "console-documents",
        after_turn=lambda: console_after_turn(app, user_id),
    )
    return run_console(session)
