"""Staff sub-commands of `python -m bot`: export, outbox, stats, responses."""

from __future__ import annotations

import argparse
from typing import Any


def add_staff_commands(sub: Any) -> None:
    """Declare the staff sub-commands (kept light: `ask` builds this parser too)."""
    export = sub.add_parser("export", help="exporter toutes les réponses (XLSX ou CSV)")
    export.add_argument("--format", choices=["xlsx", "csv", "json"], default="xlsx")
    export.add_argument("--output", "-o", help="fichier de sortie (défaut : data/exports/…)")

    outbox = sub.add_parser("outbox", help="état des e-mails (en attente, envoyés, en échec)")
    outbox.add_argument("--resend", type=int, metavar="JOB_ID", help="remettre un e-mail en file")

    sub.add_parser("stats", help="statistiques : par objectif, par territoire, par semaine")

    responses = sub.add_parser("responses", help="lister, chercher ou afficher les réponses")
    responses.add_argument("query", nargs="?", default="", help="référence ou texte à chercher")


def run_staff_command(settings: Any, args: argparse.Namespace) -> int:
    """Run one staff sub-command against the configured database."""
    from bot.staff.commands import run_cli

    return run_cli(settings, args)
