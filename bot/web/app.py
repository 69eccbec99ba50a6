"""The ARS back office: a small server-rendered web application on the bot's database.

Starlette routes (database work runs in Starlette's thread pool, never on the event loop),
Jinja2 templates (autoescaped) styled with the State's design system (DSFR,
vendored under static/dsfr). Handlers stay thin: data goes through `bot.web.followup` and
`bot.web.auth`, both on the bot's `Store`. Every page but the sign-in page needs a session;
every POST needs the session's CSRF token (the sign-in form: a double-submit cookie).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlmodel import col, select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot import exchange
from bot.config import Settings
from bot.mail import fiche as F
from bot.mail.pdf import render_fiche_pdf
from bot.mail.render import safe_filename
from bot.staff.commands import KIND_LABELS, STATUS_LABELS
from bot.storage.models import OutboxJob, StaffAccount, Submission
from bot.storage.overlaps import OverlapIndex
from bot.storage.store import Store
from bot.web import auth, exports
from bot.web import followup as FU

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "bo_session"
LOGIN_CSRF_COOKIE = "bo_login_csrf"
PUBLIC_PREFIXES = ("/connexion", "/auth/oidc/", "/static/")
EVENT_LABELS = {
    "status": "Statut",
    "delegation": "Délégation",
    "agent": "Agent",
    "labels": "Étiquettes",
    "note": "Note",
    "resend": "Renvoi d'e-mail",
    "message": "Message au répondant",
    "meeting": "Temps d'échange",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class Web:
    """What the handlers share: settings, the store, the follow-up configuration, the OIDC client."""

    settings: Settings
    store: Store
    config: FU.FollowupConfig
    templates: Environment
    oidc: Any = None
    _overlaps: tuple[int, OverlapIndex] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def render(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        signed: auth.SignedIn | None = getattr(request.state, "signed_in", None)
        context.setdefault("messages", [])
        html = self.templates.get_template(name).render(
            request=request,
            account=signed.account if signed else None,
            csrf=signed.session.csrf_token if signed else "",
            config=self.config,
            roles=FU.ROLES,
            oidc_enabled=self.oidc is not None,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def overlap_index(self) -> OverlapIndex:
        """All responses' places, rebuilt only when a response came in since the last build."""
        with self.store.unit() as session:
            newest = (
                session.exec(select(Submission.id).order_by(col(Submission.id).desc())).first() or 0
            )
        with self._lock:
            if self._overlaps is None or self._overlaps[0] != newest:
                self._overlaps = (newest, OverlapIndex(self.store.submissions()))
            return self._overlaps[1]


def web_of(request: Request) -> Web:
    return request.app.state.web  # type: ignore[no-any-return]


def signed_in(request: Request) -> auth.SignedIn:
    return request.state.signed_in  # type: ignore[no-any-return]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"


# --- middleware: sessions, redirects to sign-in, security headers -------------------------------
class SessionGate(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        web = web_of(request)
        path = request.url.path
        request.state.signed_in = None
        if not path.startswith("/static/"):
            request.state.signed_in = await run_in_threadpool(
                auth.current_session, web.store, web.settings, request.cookies.get(SESSION_COOKIE)
            )
        if request.state.signed_in is None and not path.startswith(PUBLIC_PREFIXES):
            target = path + (f"?{request.url.query}" if request.url.query else "")
            response: Response = RedirectResponse(
                "/connexion?" + urlencode({"suite": target}), status_code=303
            )
            if request.cookies.get(SESSION_COOKIE):
                response.delete_cookie(SESSION_COOKIE, path="/")
        else:
            response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            if name == "Cache-Control" and path.startswith("/static/"):
                continue
            response.headers.setdefault(name, value)
        return response


async def checked_form(request: Request) -> FormData:
    """The POSTed form, after checking its CSRF token against the session's."""
    form = await request.form()
    expected = signed_in(request).session.csrf_token
    if not hmac.compare_digest(str(form.get("csrf_token") or ""), expected):
        raise HTTPException(403, "Jeton de sécurité (CSRF) manquant ou invalide.")
    return form


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/reponses"


def _set_session_cookie(web: Web, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=web.settings.web_cookie_secure,
        path="/",
    )


# --- sign-in and sign-out ------------------------------------------------------------------
def login_page(request: Request) -> Response:
    web = web_of(request)
    if request.state.signed_in is not None:
        return RedirectResponse(_safe_next(request.query_params.get("suite")), status_code=303)
    return _login_form(web, request, errors=[], email="")


def _login_form(
    web: Web, request: Request, errors: list[str], email: str, status: int = 200
) -> Response:
    # one token per browser, kept while it is there: several tabs (or the favicon's redirect
    # to this page) must not invalidate the form already shown
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = web.render(
        request,
        "login.html",
        status_code=status,
        title="Connexion",
        login_csrf=token,
        errors=errors,
        email=email,
        suite=_safe_next(request.query_params.get("suite")),
        error=request.query_params.get("erreur", ""),
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=web.settings.web_cookie_secure,
        path="/connexion",
    )
    return response


THROTTLED = (
    "Trop de tentatives de connexion ont échoué récemment. Pour votre sécurité, réessayez dans "
    "{minutes} minutes."
)
BAD_CREDENTIALS = "Adresse e-mail ou mot de passe incorrect."


async def login_submit(request: Request) -> Response:
    form = await request.form()
    return await run_in_threadpool(_login_submit, request, form)


def _login_submit(request: Request, form: FormData) -> Response:
    web = web_of(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(str(form.get("csrf_token") or ""), cookie):
        return _login_form(
            web,
            request,
            ["Le formulaire a expiré : saisissez de nouveau vos identifiants."],
            "",
            status=403,
        )
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    errors = []
    if not email:
        errors.append("Indiquez votre adresse e-mail.")
    if not password:
        errors.append("Indiquez votre mot de passe.")
    if errors:
        return _login_form(web, request, errors, email, status=400)
    ip = client_ip(request)
    if auth.throttled(web.store, web.settings, email, ip):
        minutes = round(web.settings.web_login_window_minutes)
        return _login_form(web, request, [THROTTLED.format(minutes=minutes)], email, status=429)
    account = auth.check_password(web.store, email, password)
    auth.record_attempt(web.store, email, ip, success=account is not None)
    if account is None:
        return _login_form(web, request, [BAD_CREDENTIALS], email, status=401)
    return _signed_in_redirect(web, request, account, "password", request.query_params.get("suite"))


def _signed_in_redirect(
    web: Web, request: Request, account: StaffAccount, via: str, suite: str | None
) -> Response:
    token = auth.open_session(web.store, web.settings, account, via)
    web.store.audit(f"web:{account.email}"[:64], "web.login", via)
    response = RedirectResponse(_safe_next(suite), status_code=303)
    _set_session_cookie(web, response, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/connexion")
    return response


async def logout(request: Request) -> Response:
    web = web_of(request)
    await checked_form(request)
    await run_in_threadpool(auth.close_session, web.store, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/connexion?erreur=deconnecte", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- OpenID Connect (ProConnect) ---------------------------------------------------------------
OIDC_UNKNOWN = "oidc_inconnu"
OIDC_FAILED = "oidc_echec"


async def oidc_login(request: Request) -> Response:
    web = web_of(request)
    if web.oidc is None:
        raise HTTPException(404, "La connexion par ProConnect n'est pas configurée.")
    request.session["suite"] = _safe_next(request.query_params.get("suite"))
    return await web.oidc.authorize_redirect(request, web.settings.oidc_redirect_url)  # type: ignore[no-any-return]


async def oidc_callback(request: Request) -> Response:
    from authlib.integrations.base_client.errors import OAuthError

    web = web_of(request)
    if web.oidc is None:
        raise HTTPException(404, "La connexion par ProConnect n'est pas configurée.")
    try:
        token = await web.oidc.authorize_access_token(request)
    except OAuthError as exc:
        log.warning("OpenID Connect sign-in failed: %s", exc.error)
        return RedirectResponse(f"/connexion?erreur={OIDC_FAILED}", status_code=303)
    claims = dict(token.get("userinfo") or {})
    email = str(claims.get("email") or "")
    if not email and token.get("access_token"):
        claims = dict(await web.oidc.userinfo(token=token))
        email = str(claims.get("email") or "")
    suite = request.session.pop("suite", None)
    return await run_in_threadpool(_oidc_sign_in, request, email, suite)


def _oidc_sign_in(request: Request, email: str, suite: str | None) -> Response:
    web = web_of(request)
    account = auth.account_by_email(web.store, email) if email else None
    ip = client_ip(request)
    if account is None or not account.active:
        auth.record_attempt(web.store, email or "(oidc)", ip, success=False)
        web.store.audit("web:oidc", "web.login_refused", email[:200])
        return RedirectResponse(f"/connexion?erreur={OIDC_UNKNOWN}", status_code=303)
    auth.record_attempt(web.store, email, ip, success=True)
    return _signed_in_redirect(web, request, account, "oidc", suite)


# --- the list ----------------------------------------------------------------------------------
def home(request: Request) -> Response:
    return RedirectResponse("/reponses", status_code=303)


def responses(request: Request) -> Response:
    web = web_of(request)
    account = signed_in(request).account
    FU.sync(web.store, web.config)
    query = FU.ListQuery.parse(request.query_params, web.config)
    rows, total = FU.list_page(web.store, query, account, web.settings.web_page_size)
    pages = max(1, -(-total // web.settings.web_page_size))
    agents = FU.accounts_by_id(web.store)
    return web.render(
        request,
        "list.html",
        title="Réponses à l'AMI",
        rows=rows,
        total=total,
        query=query,
        pages=pages,
        page_links=_page_links(query.page, pages),
        agents=agents,
        qs=lambda **changes: "?" + urlencode(query.params(**changes)),
        objectives=_objective_labels(),
        messages=[("warning", e) for e in query.errors],
    )


def _page_links(page: int, pages: int) -> list[int | None]:
    shown = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    out: list[int | None] = []
    for i, n in enumerate(shown):
        if i and n - shown[i - 1] > 1:
            out.append(None)
        out.append(n)
    return out


def _objective_labels() -> dict[str, str]:
    from bot.forms.spec import objective_labels

    return objective_labels()


def export(request: Request) -> Response:
    web = web_of(request)
    account = signed_in(request).account
    fmt = request.path_params["fmt"]
    if fmt not in ("xlsx", "csv"):
        raise HTTPException(404, "Format d'export inconnu : XLSX ou CSV.")
    FU.sync(web.store, web.config)
    query = FU.ListQuery.parse(request.query_params, web.config)
    ids = FU.matching_ids(web.store, query, account)
    subs = FU.submissions_by_ids(web.store, ids)
    follow = FU.followups_by_ids(web.store, ids)
    web.store.audit(f"web:{account.email}"[:64], f"web.export.{fmt}", f"{len(subs)} réponses")
    stamp = web.store.clock().astimezone(F.PARIS).strftime("%Y-%m-%d_%Hh%M")
    if fmt == "xlsx":
        body = exports.xlsx(subs, follow, web.config, FU.accounts_by_id(web.store))
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        body = exports.csv(subs)
        media = "text/csv; charset=utf-8"
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="reponses-ami_{stamp}.{fmt}"'},
    )


# --- one response ------------------------------------------------------------------------------
def _visible(request: Request) -> tuple[Web, StaffAccount, Submission, FU.Followup]:
    """The response of the URL if this account may see it; 404 otherwise (even if it exists)."""
    web = web_of(request)
    account = signed_in(request).account
    raw = str(request.path_params["sid"])
    FU.sync(web.store, web.config)
    row = FU.get_followup(web.store, int(raw)) if raw.isdigit() and len(raw) < 10 else None
    if row is None or not FU.can_see(account, row):
        raise HTTPException(404, "Cette réponse n'existe pas, ou vous n'y avez pas accès.")
    sub = web.store.submission(row.submission_id)
    assert sub is not None
    return web, account, sub, row


def response_page(request: Request) -> Response:
    web, account, sub, row = _visible(request)
    web.store.audit(f"web:{account.email}"[:64], "web.view", sub.reference)
    fiche = F.build_fiche(sub)
    overlaps = web.overlap_index().overlaps_of(sub, earlier_only=False) if row.overlap_count else []
    visible_overlaps = FU.followups_by_ids(web.store, [o.submission_id for o in overlaps])
    with web.store.unit() as session:
        jobs = list(
            session.exec(
                select(OutboxJob)
                .where(OutboxJob.submission_id == sub.id)
                .order_by(col(OutboxJob.id))
            )
        )
    flash = request.query_params.get("ok", "")
    meetings = exchange.meetings_of(web.store, sub.id or 0)
    return web.render(
        request,
        "response.html",
        title=f"Réponse {sub.reference}",
        sub=sub,
        row=row,
        fiche=fiche,
        sections=fiche.blocks,
        consenting=_consenting(web, [o.submission_id for o in overlaps]),
        overlaps=[
            (o, FU.can_see(account, visible_overlaps[o.submission_id]))
            for o in overlaps
            if o.submission_id in visible_overlaps
        ],
        jobs=jobs,
        job_status=STATUS_LABELS,
        job_kind=KIND_LABELS,
        events=FU.events_of(web.store, sub.id or 0),
        event_labels=EVENT_LABELS,
        agents=FU.agents_for(web.store, row),
        all_accounts=FU.accounts_by_id(web.store),
        editable=FU.can_edit(account, row),
        messages=[("success", flash)] if flash else [],
        french_date=F.french_date,
        thread=exchange.thread_of(web.store, sub.id or 0),
        referent_address=_verified_referent(web, sub),
        state_labels=exchange.STATE_LABELS,
        meetings=meetings,
        meeting_labels=exchange.MEETING_LABELS,
        host_consented=exchange.consented(sub),
        joint_groups=exchange.joint_rows(
            web.store, [m.joint_id for m, _ in meetings if m.joint_id]
        ),
        participation_labels=exchange.PARTICIPATION_LABELS,
        when_label=exchange.when_label,
        place_label=exchange.place_label,
        suggestions=exchange.suggest_slots(sub, web.store.clock()),
        wished=(sub.answers or {}).get("calendar"),
        meeting_minutes=web.settings.meeting_minutes,
        paris=F.PARIS,
    )


def _consenting(web: Web, ids: list[int]) -> set[int]:
    """Which of these responses agreed to be put in touch with their neighbours."""
    if not ids:
        return set()
    with web.store.unit() as session:
        subs = session.exec(select(Submission).where(col(Submission.id).in_(ids)))
        return {s.id for s in subs if s.id is not None and (s.answers or {}).get("consent_contact")}


def _verified_referent(web: Web, sub: Submission) -> str | None:
    with web.store.unit() as session:
        return exchange.verified_referent(session, sub)


def response_pdf(request: Request) -> Response:
    web, account, sub, _row = _visible(request)
    web.store.audit(f"web:{account.email}"[:64], "web.pdf", sub.reference)
    name = safe_filename(f"fiche-{sub.reference}.pdf")
    return Response(
        render_fiche_pdf(sub),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


async def response_update(request: Request) -> Response:
    form = await checked_form(request)
    return await run_in_threadpool(_response_update, request, form)


def _response_update(request: Request, form: FormData) -> Response:
    web, account, sub, row = _visible(request)
    action = str(form.get("action") or "")
    kwargs: dict[str, Any] = {}
    if action == "suivi":
        kwargs["status"] = str(form.get("status") or row.status)
        if account.role == "secretariat" and "delegation" in form:
            kwargs["delegation"] = str(form.get("delegation") or "")
        agent = str(form.get("agent") or "")
        if agent and not (agent.isdigit() and len(agent) < 10):
            raise HTTPException(400, "Agent inconnu.")
        kwargs["agent_id"] = int(agent) if agent else None
        kwargs["labels"] = [
            *[str(v) for v in form.getlist("labels")],
            *str(form.get("new_labels") or "").split(","),
        ]
    elif action == "note":
        note = str(form.get("note") or "")
        if not note.strip():
            return _redirect_back(sub, "")
        kwargs["note"] = note
    else:
        raise HTTPException(400, "Action inconnue.")
    try:
        changed = FU.update_followup(web.store, web.config, account, sub.id or 0, **kwargs)
    except FU.Refused as exc:
        raise HTTPException(403, str(exc)) from exc
    done = ("Enregistré : " + ", ".join(changed) + ".") if changed else "Aucun changement."
    return _redirect_back(sub, done)


async def response_resend(request: Request) -> Response:
    await checked_form(request)
    return await run_in_threadpool(_response_resend, request)


def _response_resend(request: Request) -> Response:
    web, account, sub, row = _visible(request)
    if not FU.can_edit(account, row):
        raise HTTPException(403, "Votre rôle ne permet que la consultation.")
    raw = str(request.path_params["job"])
    with web.store.unit() as session:
        job = session.get(OutboxJob, int(raw)) if raw.isdigit() and len(raw) < 10 else None
    if job is None or job.submission_id != sub.id or job.id is None:
        raise HTTPException(404, "Cet envoi n'existe pas pour cette réponse.")
    web.store.requeue_job(job.id)
    web.store.audit(f"web:{account.email}"[:64], "web.resend", f"{sub.reference} n° {job.id}")
    FU.record_event(web.store, account, sub.id or 0, "resend", f"n° {job.id} ({job.recipient})")
    return _redirect_back(
        sub, f"L'envoi n° {job.id} est remis en file : il partira au prochain passage."
    )


def _redirect_back(sub: Submission, message: str, anchor: str = "suivi") -> Response:
    suffix = ("?" + urlencode({"ok": message})) if message else ""
    return RedirectResponse(f"/reponses/{sub.id}{suffix}#{anchor}", status_code=303)


# --- talking with the respondent (bot/exchange.py) -------------------------------------------
def _editable(request: Request) -> tuple[Web, StaffAccount, Submission]:
    web, account, sub, row = _visible(request)
    if not FU.can_edit(account, row):
        raise HTTPException(403, "Votre rôle ne permet que la consultation.")
    return web, account, sub


async def response_message(request: Request) -> Response:
    form = await checked_form(request)
    return await run_in_threadpool(_response_message, request, form)


def _response_message(request: Request, form: FormData) -> Response:
    web, account, sub = _editable(request)
    try:
        exchange.send_message(
            web.store,
            web.settings,
            account,
            sub,
            str(form.get("text") or ""),
            by_email=form.get("par_email") == "oui",
        )
    except exchange.Refused as exc:
        raise HTTPException(400, str(exc)) from exc
    web.store.audit(f"web:{account.email}"[:64], "web.message", sub.reference)
    return _redirect_back(
        sub, "Message enregistré : il part vers le répondant dans Telegram.", "echanges"
    )


async def response_slots(request: Request) -> Response:
    form = await checked_form(request)
    return await run_in_threadpool(_response_slots, request, form)


def _slots_of(web: Web, form: FormData) -> list[exchange.SlotInput]:
    """The one to five slot rows of the proposal form (and of the reschedule form)."""
    now = web.store.clock()
    return [
        slot
        for i in range(1, exchange.MAX_SLOTS + 1)
        if (
            slot := exchange.parse_slot(
                str(form.get(f"date-{i}") or ""),
                str(form.get(f"heure-{i}") or ""),
                str(form.get(f"duree-{i}") or web.settings.meeting_minutes),
                str(form.get(f"lieu-{i}") or ""),
                now,
            )
        )
        is not None
    ]


def _response_slots(request: Request, form: FormData) -> Response:
    web, account, sub = _editable(request)
    try:
        slots = _slots_of(web, form)
        guests = _joint_guests(web, account, sub, [str(v) for v in form.getlist("inviter")])
        exchange.propose(web.store, web.settings, account, sub, slots, guests)
    except exchange.Refused as exc:
        raise HTTPException(400, str(exc)) from exc
    web.store.audit(f"web:{account.email}"[:64], "web.meeting", sub.reference)
    if guests:
        web.store.audit(
            f"web:{account.email}"[:64],
            "web.meeting_joint",
            f"{sub.reference} + {', '.join(g.reference for g in guests)}",
        )
        count = len(guests) + 1
        return _redirect_back(
            sub,
            f"Temps d'échange commun proposé à {count} répondants dans Telegram.",
            "echanges",
        )
    count = len(slots)
    return _redirect_back(
        sub,
        f"{count} créneau{'x' if count > 1 else ''} proposé{'s' if count > 1 else ''} au "
        "répondant dans Telegram.",
        "echanges",
    )


def _joint_guests(
    web: Web, account: StaffAccount, sub: Submission, raw: list[str]
) -> list[Submission]:
    """The responses ticked to be invited to a joint meeting: each must overlap this one's
    territory, be visible to this account and have agreed to be put in touch."""
    if not raw:
        return []
    overlapping = {
        o.submission_id for o in web.overlap_index().overlaps_of(sub, earlier_only=False)
    }
    followups = FU.followups_by_ids(web.store, list(overlapping))
    guests: list[Submission] = []
    for value in dict.fromkeys(raw):
        ident = int(value) if value.isdigit() and len(value) < 10 else 0
        row = followups.get(ident)
        guest = web.store.submission(ident) if ident in overlapping else None
        if guest is None or row is None or not FU.can_see(account, row):
            raise exchange.Refused(
                "Une réponse invitée ne recoupe pas ce territoire, ou vous n'y avez pas accès."
            )
        guests.append(guest)
    return guests


async def meeting_cancel(request: Request) -> Response:
    await checked_form(request)
    return await run_in_threadpool(_meeting_cancel, request)


def _meeting_cancel(request: Request) -> Response:
    web, account, sub = _editable(request)
    raw = str(request.path_params["mid"])
    if not (raw.isdigit() and len(raw) < 10):
        raise HTTPException(404, "Ce temps d'échange n'existe pas pour cette réponse.")
    try:
        exchange.cancel_by_staff(web.store, web.settings, account, sub, int(raw))
    except exchange.Refused as exc:
        raise HTTPException(400, str(exc)) from exc
    web.store.audit(f"web:{account.email}"[:64], "web.meeting_cancel", sub.reference)
    return _redirect_back(sub, "Temps d'échange annulé ; le répondant est prévenu.", "echanges")


async def meeting_reschedule(request: Request) -> Response:
    form = await checked_form(request)
    return await run_in_threadpool(_meeting_reschedule, request, form)


def _meeting_reschedule(request: Request, form: FormData) -> Response:
    web, account, sub = _editable(request)
    raw = str(request.path_params["mid"])
    if not (raw.isdigit() and len(raw) < 10):
        raise HTTPException(404, "Ce temps d'échange n'existe pas pour cette réponse.")
    try:
        slots = _slots_of(web, form)
        exchange.reschedule_by_staff(web.store, web.settings, account, sub, int(raw), slots)
    except exchange.Refused as exc:
        raise HTTPException(
            400, f"Le temps d'échange n'est pas reporté, rien n'a changé. {exc}"
        ) from exc
    web.store.audit(f"web:{account.email}"[:64], "web.meeting_reschedule", sub.reference)
    count = len(slots)
    return _redirect_back(
        sub,
        f"Temps d'échange reporté : l'ancien créneau est annulé et {count} nouveau"
        f"{'x' if count > 1 else ''} créneau{'x' if count > 1 else ''} "
        f"proposé{'s' if count > 1 else ''} au répondant dans Telegram.",
        "echanges",
    )


# --- statistics ----------------------------------------------------------------------------------
def stats_page(request: Request) -> Response:
    web = web_of(request)
    account = signed_in(request).account
    FU.sync(web.store, web.config)
    return web.render(
        request,
        "stats.html",
        title="Statistiques",
        stats=FU.statistics(web.store, account),
        objectives=_objective_labels(),
    )


# --- errors --------------------------------------------------------------------------------------
async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    web = web_of(request)
    titles = {403: "Accès refusé", 404: "Page introuvable", 400: "Demande invalide"}
    detail = exc.detail if exc.detail and exc.detail != "Not Found" else "Cette page n'existe pas."
    if exc.status_code == 405:
        detail = "Cette adresse ne s'utilise pas ainsi."
    return web.render(
        request,
        "error.html",
        status_code=exc.status_code,
        title=titles.get(exc.status_code, "Erreur"),
        detail=detail,
    )


# --- assembly ------------------------------------------------------------------------------------
def make_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fdate"] = lambda value, with_time=True: F.french_date(value, with_time)
    env.filters["sdate"] = lambda value: value.astimezone(F.PARIS).strftime("%d/%m/%Y %H:%M")
    return env


def make_oidc(settings: Settings) -> Any:
    if not (settings.oidc_issuer and settings.oidc_client_id):
        return None
    from authlib.integrations.starlette_client import OAuth

    oauth = OAuth()
    oauth.register(
        "proconnect",
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256"},
    )
    return oauth.proconnect


def create_app(
    settings: Settings,
    store: Store,
    config: FU.FollowupConfig | None = None,
    *,
    background: Any = None,
) -> Starlette:
    """The back office on `store` (the caller migrates; `python -m bot web` checks it is).

    `background` (a `bot.runtime.Runtime`) is started and stopped with the server."""
    web = Web(
        settings=settings,
        store=store,
        config=config or FU.load_config(),
        templates=make_templates(),
        oidc=make_oidc(settings),
    )
    routes = [
        Route("/", home),
        Route("/connexion", login_page, methods=["GET"]),
        Route("/connexion", login_submit, methods=["POST"]),
        Route("/deconnexion", logout, methods=["POST"]),
        Route("/auth/oidc/login", oidc_login),
        Route("/auth/oidc/callback", oidc_callback),
        Route("/reponses", responses),
        Route("/reponses/export.{fmt:str}", export),
        Route("/reponses/{sid}", response_page),
        Route("/reponses/{sid}/fiche.pdf", response_pdf),
        Route("/reponses/{sid}/suivi", response_update, methods=["POST"]),
        Route("/reponses/{sid}/envois/{job}/renvoyer", response_resend, methods=["POST"]),
        Route("/reponses/{sid}/messages", response_message, methods=["POST"]),
        Route("/reponses/{sid}/creneaux", response_slots, methods=["POST"]),
        Route("/reponses/{sid}/rendez-vous/{mid}/annuler", meeting_cancel, methods=["POST"]),
        Route("/reponses/{sid}/rendez-vous/{mid}/reporter", meeting_reschedule, methods=["POST"]),
        Route("/statistiques", stats_page),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    secret = settings.web_secret_key or secrets.token_urlsafe(32)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await background.start()
        try:
            yield
        finally:
            await background.stop()

    app = Starlette(
        lifespan=lifespan if background is not None else None,
        routes=routes,
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=secret,
                session_cookie="bo_oidc",
                max_age=600,
                same_site="lax",
                https_only=settings.web_cookie_secure,
            ),
            Middleware(SessionGate),
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.state.web = web
    return app


def run_web(
    settings: Settings,
    host: str | None,
    port: int | None,
    *,
    jobs: Callable[[Store, Settings], Any] | None = None,
) -> int:
    """`python -m bot web`: serve the back office with uvicorn (and the background jobs
    `jobs(store, settings)` makes: see `bot.runtime.run_web`)."""
    import uvicorn

    from bot.storage.migrations import ensure_migrated

    store = Store.from_url(settings.database_url)
    ensure_migrated(store.engine)
    try:
        config = FU.load_config()
        exchange.texts()
    except (FU.ConfigError, exchange.TextsError) as exc:
        import sys

        sys.stderr.write(f"{exc}\n")
        return 2
    app = create_app(
        settings, store, config, background=jobs(store, settings) if jobs is not None else None
    )
    uvicorn.run(
        app,
        host=host or settings.web_host,
        port=port or settings.web_port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )
    return 0
