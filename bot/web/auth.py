"""Back-office accounts, passwords (argon2), server-side sessions and sign-in throttling.

Sessions live in the database (`staff_session`): the cookie holds a random token and the table
only its SHA-256, so a stolen database gives no usable cookie; signing out or expiry deletes the
row, and any instance sharing the database sees it at once. Failed sign-ins are counted in
`login_attempt` per account and per address, so throttling holds across instances too.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import ColumnElement, delete
from sqlmodel import col, func, select

from bot.config import Settings
from bot.storage.models import LoginAttempt, StaffAccount, StaffSession
from bot.storage.store import Store

ROLES = ("secretariat", "delegation", "manager")
HASHER = PasswordHasher()
# Verified when the e-mail is unknown, so that a wrong e-mail costs as long as a wrong password.
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))
MIN_PASSWORD = 12


class AccountError(ValueError):
    """Bad input for an account; the message is in French, for the person typing it."""


def normalise_email(value: str) -> str:
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AccountError(f"Adresse e-mail invalide : « {value.strip()} ».") from exc


def check_departements(role: str, departements: list[str], known: dict[str, str]) -> list[str]:
    deps = list(dict.fromkeys(d.strip().upper() for d in departements if d.strip()))
    unknown = [d for d in deps if d not in known]
    if unknown:
        raise AccountError(
            f"Département(s) inconnu(s) : {', '.join(unknown)} (connus : {', '.join(known)})."
        )
    if role == "delegation" and not deps:
        raise AccountError("Un compte de délégation a besoin d'au moins un --departement.")
    if role != "delegation" and deps:
        raise AccountError("Seuls les comptes de délégation ont des départements.")
    return deps


def add_account(
    store: Store,
    email: str,
    role: str,
    departements: list[str],
    password: str | None,
    known_departements: dict[str, str],
) -> StaffAccount:
    """Create or update an account (an update replaces its role, départements and password)."""
    if role not in ROLES:
        raise AccountError(f"Rôle inconnu « {role} » : choisissez parmi {', '.join(ROLES)}.")
    address = normalise_email(email)
    deps = check_departements(role, departements, known_departements)
    if password is not None and len(password) < MIN_PASSWORD:
        raise AccountError(f"Le mot de passe doit faire au moins {MIN_PASSWORD} caractères.")
    hashed = HASHER.hash(password) if password else None
    with store.unit() as session:
        account = session.exec(select(StaffAccount).where(StaffAccount.email == address)).first()
        if account is None:
            account = StaffAccount(email=address, role=role, created_at=store.clock())
        account.role = role
        account.departements = deps
        account.active = True
        if hashed is not None or account.id is None:
            account.password_hash = hashed
        session.add(account)
        session.flush()
        session.refresh(account)
        return account


def account_by_email(store: Store, email: str) -> StaffAccount | None:
    try:
        address = normalise_email(email)
    except AccountError:
        return None
    with store.unit() as session:
        return session.exec(select(StaffAccount).where(StaffAccount.email == address)).first()


# --- throttling ------------------------------------------------------------------------------
def throttled(store: Store, settings: Settings, email: str, ip: str) -> bool:
    """Too many failed sign-ins lately for this account or from this address."""
    since = store.clock() - timedelta(minutes=settings.web_login_window_minutes)
    with store.unit() as session:

        def failures(*where: ColumnElement[bool]) -> int:
            statement = (
                select(func.count())
                .select_from(LoginAttempt)
                .where(col(LoginAttempt.at) >= since, col(LoginAttempt.success).is_(False), *where)
            )
            return int(session.exec(statement).one())

        return (
            failures(col(LoginAttempt.email) == email.strip().lower()[:320])
            >= settings.web_login_max_failures_account
            or failures(col(LoginAttempt.ip) == ip[:64]) >= settings.web_login_max_failures_ip
        )


ATTEMPTS_KEPT = timedelta(days=30)  # then erased (they hold e-mails and addresses)


def record_attempt(store: Store, email: str, ip: str, success: bool) -> None:
    """Count a sign-in try; attempts older than 30 days are erased on the way."""
    with store.unit() as session:
        session.exec(  # type: ignore[call-overload]
            delete(LoginAttempt).where(col(LoginAttempt.at) < store.clock() - ATTEMPTS_KEPT)
        )
        session.add(
            LoginAttempt(
                at=store.clock(), email=email.strip().lower()[:320], ip=ip[:64], success=success
            )
        )


def check_password(store: Store, email: str, password: str) -> StaffAccount | None:
    """The account if the password is right (and the account active), else None."""
    account = account_by_email(store, email)
    if account is None or not account.password_hash or not account.active:
        with contextlib.suppress(VerificationError):
            HASHER.verify(_DUMMY_HASH, password or "-")
        return None
    try:
        HASHER.verify(account.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if HASHER.check_needs_rehash(account.password_hash):
        with store.unit() as session:
            stored = session.get(StaffAccount, account.id)
            if stored is not None:
                stored.password_hash = HASHER.hash(password)
                session.add(stored)
    return account


# --- sessions --------------------------------------------------------------------------------
def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class SignedIn:
    account: StaffAccount
    session: StaffSession


def open_session(store: Store, settings: Settings, account: StaffAccount, via: str) -> str:
    """A new session for the account; returns the cookie's token."""
    token = secrets.token_urlsafe(32)
    now = store.clock()
    with store.unit() as session:
        session.exec(delete(StaffSession).where(col(StaffSession.expires_at) < now))  # type: ignore[call-overload]
        assert account.id is not None
        session.add(
            StaffSession(
                token_hash=_hash(token),
                account_id=account.id,
                csrf_token=secrets.token_urlsafe(32),
                via=via,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=settings.web_session_hours),
            )
        )
    return token


def current_session(store: Store, settings: Settings, token: str | None) -> SignedIn | None:
    """The session of this cookie if it is still valid (absolute and idle expiry); refreshes it."""
    if not token:
        return None
    now = store.clock()
    idle = timedelta(minutes=settings.web_session_idle_minutes)
    with store.unit() as session:
        row = session.get(StaffSession, _hash(token))
        if row is None:
            return None
        account = session.get(StaffAccount, row.account_id)
        if (
            now >= row.expires_at
            or now - row.last_seen_at >= idle
            or not account
            or not account.active
        ):
            session.delete(row)
            return None
        if now - row.last_seen_at > timedelta(seconds=30):  # spare a write on every click
            row.last_seen_at = now
            session.add(row)
        return SignedIn(account=account, session=row)


def close_session(store: Store, token: str | None) -> None:
    if not token:
        return
    with store.unit() as session:
        session.exec(delete(StaffSession).where(col(StaffSession.token_hash) == _hash(token)))  # type: ignore[call-overload]


def expired_before(store: Store, when: datetime) -> int:
    """Delete the sessions ended before `when` (housekeeping); returns how many."""
    with store.unit() as session:
        result = session.exec(delete(StaffSession).where(col(StaffSession.expires_at) < when))  # type: ignore[call-overload]
        return int(result.rowcount or 0)
