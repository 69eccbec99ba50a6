"""`python -m bot web` and `python -m bot staff add|list|disable`: the back office's commands."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from bot.config import Settings


def add_web_commands(sub: Any) -> None:
    web = sub.add_parser("web", help="le back-office web de l'ARS (suivi des réponses)")
    web.add_argument("--host", default=None, help="adresse d'écoute (défaut : WEB_HOST)")
    web.add_argument("--port", type=int, default=None, help="port d'écoute (défaut : WEB_PORT)")

    staff = sub.add_parser("staff", help="comptes du back-office")
    actions = staff.add_subparsers(dest="staff_action", required=True)
    add = actions.add_parser(
        "add", help="créer ou modifier un compte (mot de passe lu sur l'entrée standard)"
    )
    add.add_argument("email")
    add.add_argument("--role", required=True, choices=["secretariat", "delegation", "manager"])
    add.add_argument(
        "--departement",
        action="append",
        default=[],
        metavar="NN",
        help="département d'une délégation (répétable : --departement 22 --departement 29)",
    )
    add.add_argument(
        "--sans-mot-de-passe",
        action="store_true",
        help="compte utilisable seulement avec ProConnect (OpenID Connect)",
    )
    actions.add_parser("list", help="lister les comptes")
    disable = actions.add_parser("disable", help="désactiver un compte (ses sessions cessent)")
    disable.add_argument("email")


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Mot de passe : ")
        if getpass.getpass("Encore une fois : ") != first:
            raise SystemExit("Les deux saisies diffèrent : compte non enregistré.")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def run_web_command(settings: Settings, args: argparse.Namespace) -> int:
    """`python -m bot staff …` (`python -m bot web` is `bot.runtime.run_web`)."""
    from sqlmodel import col, select

    from bot.storage.migrations import ensure_migrated
    from bot.storage.models import StaffAccount
    from bot.storage.store import Store
    from bot.web import auth
    from bot.web.followup import ConfigError, load_config

    store = Store.from_url(settings.database_url)
    ensure_migrated(store.engine)
    if args.staff_action == "list":
        with store.unit() as session:
            for a in session.exec(select(StaffAccount).order_by(col(StaffAccount.email))):
                deps = f" ({', '.join(a.departements)})" if a.departements else ""
                state = "" if a.active else " — désactivé"
                print(f"{a.email} — {a.role}{deps}{state}")
        return 0
    if args.staff_action == "disable":
        account = auth.account_by_email(store, args.email)
        if account is None:
            sys.stderr.write(f"Aucun compte {args.email}.\n")
            return 1
        with store.unit() as session:
            stored = session.get(StaffAccount, account.id)
            assert stored is not None
            stored.active = False
            session.add(stored)
        store.audit("cli", "web.account_disabled", account.email)
        print(f"Compte {account.email} désactivé.")
        return 0
    password = None if args.sans_mot_de_passe else _read_password()
    try:
        account = auth.add_account(
            store,
            args.email,
            args.role,
            args.departement,
            password,
            load_config().delegations,
        )
    except (auth.AccountError, ConfigError) as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    store.audit("cli", "web.account_saved", f"{account.email} {account.role}")
    print(f"Compte enregistré : {account.email} ({account.role}).")
    return 0
