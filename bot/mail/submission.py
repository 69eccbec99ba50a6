"""The forms' submission port (`bot.forms.ports.Submissions`): storage, outbox, PDF, copy codes.

The composition root (`bot.app.build_app`) hands a `MailSubmissions` to the forms; the forms
themselves import neither the storage nor the mail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.config import Settings
from bot.forms.ports import CodeCheck, Receipt
from bot.mail import pdfproc
from bot.mail.outbox import KIND_COPY, enqueue_submission, first_referent_address
from bot.mail.trust import Refused, check_code, is_verified, start_verification, submissions_today
from bot.storage.store import Store


class MailSubmissions:
    """Responses stored with their e-mail jobs in the turn's transaction; copies proven."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def submitted_today(self, session: Session, user_id: int, now: datetime) -> int:
        """How many responses the user submitted in the last 24 hours."""
        return submissions_today(session, user_id, now)

    def copy_address(self, answers: dict[str, Any]) -> str | None:
        """The first usable referent e-mail."""
        return first_referent_address(answers)

    def is_verified(self, session: Session, user_id: int, address: str) -> bool:
        """True when the user proved they hold the address."""
        return is_verified(session, user_id, address)

    def send_code(
        self, session: Session, settings: Settings, user_id: int, address: str, now: datetime
    ) -> bool:
        """Queue a verification code; False when a daily limit refuses it."""
        sent = start_verification(session, settings, user_id=user_id, address=address, now=now)
        return not isinstance(sent, Refused)

    def check_code(
        self,
        session: Session,
        settings: Settings,
        user_id: int,
        address: str,
        typed: str,
        now: datetime,
    ) -> tuple[CodeCheck, int]:
        """Check a typed code: (outcome, tries left)."""
        outcome, left = check_code(
            session, settings, user_id=user_id, address=address, typed=typed, now=now
        )
        return CodeCheck(outcome.value), left

    def submit(
        self,
        session: Session,
        settings: Settings,
        *,
        user_id: int,
        form_id: str,
        recipient: str,
        answers: dict[str, Any],
        prefix: str,
    ) -> Receipt:
        """Store the response and queue the ARS e-mail (and the copy) in the caller's transaction."""
        submission = self.store.add_submission(
            session,
            user_id=user_id,
            form_id=form_id,
            recipient=recipient,
            answers=answers,
            prefix=prefix,
        )
        jobs = enqueue_submission(self.store, session, submission, settings)
        return Receipt(
            reference=submission.reference,
            recipient=recipient,
            copies_to=[j.recipient for j in jobs if j.kind == KIND_COPY],
            render_fiche=lambda: pdfproc.render_pdf(submission),  # looked up when rendered
        )
