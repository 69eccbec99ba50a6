"""The back office served by uvicorn on a loopback port, on a throwaway database.

Tests talk to it over real HTTP (httpx) or through headless Chromium (Selenium). The store's
clock is a `FakeClock` the tests move, so session expiry and throttling windows need no sleep.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from bot.config import Settings
from bot.storage.models import Submission
from bot.storage.store import Store
from bot.web import auth
from bot.web.app import create_app
from bot.web.followup import load_config
from tests.conftest import FakeClock, make_settings
from tests.mail.factories import submit

PASSWORD = "un-mot-de-passe-solide"
SECRETARIAT = "secretariat@ars.sante.fr"
DELEGATION_22 = "dd22@ars.sante.fr"
DELEGATION_29 = "dd29@ars.sante.fr"
MANAGER = "direction@ars.sante.fr"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One back-office instance listening on loopback."""

    url: str
    settings: Settings
    store: Store
    clock: FakeClock
    _server: uvicorn.Server
    _thread: threading.Thread
    subs: dict[str, Submission] = field(default_factory=dict)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def client(self) -> WebClient:
        return WebClient(self.url)


def start_server(
    settings: Settings, store: Store, clock: FakeClock, port: int | None = None
) -> Server:
    port = port or free_port()
    config = uvicorn.Config(
        create_app(settings, store, load_config()),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the back office did not start")
        time.sleep(0.02)
    return Server(f"http://127.0.0.1:{port}", settings, store, clock, server, thread)


class WebClient(httpx.Client):
    """An HTTP client that signs in through the real form (CSRF token included)."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url=base_url, follow_redirects=False, timeout=30)

    def csrf_of(self, path: str) -> str:
        page = self.get(path)
        match = CSRF.search(page.text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        token = self.csrf_of("/connexion")
        return self.post(
            "/connexion", data={"csrf_token": token, "email": email, "password": password}
        )


def add_accounts(store: Store) -> None:
    deps = load_config().delegations
    auth.add_account(store, SECRETARIAT, "secretariat", [], PASSWORD, deps)
    auth.add_account(store, DELEGATION_22, "delegation", ["22"], PASSWORD, deps)
    auth.add_account(store, DELEGATION_29, "delegation", ["29"], PASSWORD, deps)
    auth.add_account(store, MANAGER, "manager", [], PASSWORD, deps)


def add_responses(store: Store, settings: Settings) -> dict[str, Submission]:
    """One response in the Côtes-d'Armor (Lannion, 22), one in the Finistère (Brest, 29)."""
    lannion, _ = submit(store, settings, user_id=101)
    brest, _ = submit(
        store,
        settings,
        user_id=102,
        territory="Pays de Brest",
        context="Projet porté par les professionnels du nord de Brest.",
        actors=[
            {
                "name": "Dr Anne Kerhervé",
                "profession": "médecin généraliste",
                "commune": "Brest",
                "practice": "ESP",
                "practice_other": None,
            }
        ],
        copy_to_referent=False,
    )
    return {"lannion": lannion, "brest": brest}


@pytest.fixture
def web_settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(database_url: str, **overrides: Any) -> Settings:
        values: dict[str, Any] = {"web_cookie_secure": False, "web_secret_key": "test-secret"}
        values.update(overrides)
        return make_settings(database_url, tmp_path, **values)

    return build


@contextlib.contextmanager
def _back_office(
    database_url: str, web_settings: Callable[..., Settings], clock: FakeClock
) -> Iterator[Server]:
    """The back office served on loopback, with four accounts and two responses."""
    settings = web_settings(database_url)
    store = Store.from_url(database_url, clock)
    store.create_all()
    add_accounts(store)
    subs = add_responses(store, settings)
    running = start_server(settings, store, clock)
    running.subs = subs
    try:
        yield running
    finally:
        running.stop()
        store.engine.dispose()


@pytest.fixture
def server(
    database_url: str, web_settings: Callable[..., Settings], clock: FakeClock
) -> Iterator[Server]:
    """The back office with four accounts and two responses, on SQLite and on PostgreSQL."""
    with _back_office(database_url, web_settings, clock) as running:
        yield running


@pytest.fixture
def sqlite_server(
    sqlite_url: str, web_settings: Callable[..., Settings], clock: FakeClock
) -> Iterator[Server]:
    """The same, on SQLite only (for the slower browser and OpenID Connect walks)."""
    with _back_office(sqlite_url, web_settings, clock) as running:
        yield running
