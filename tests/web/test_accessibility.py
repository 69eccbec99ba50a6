"""Structural accessibility checks on every back-office page (RGAA basics that code can check)."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

from tests.web.conftest import SECRETARIAT, Server


class Page(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.h1 = 0
        self.title = ""
        self._in_title = False
        self.ids: Counter[str] = Counter()
        self.label_for: set[str] = set()
        self.controls: list[str] = []  # ids (or "" when missing) of visible form controls
        self.images_without_alt = 0
        self.lang = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids[a["id"]] += 1
        if tag == "html":
            self.lang = a.get("lang", "")
        if tag == "h1":
            self.h1 += 1
        if tag == "title":
            self._in_title = True
        if tag == "label" and "for" in a:
            self.label_for.add(a["for"])
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append(a.get("id", ""))
        if tag == "img" and "alt" not in a:
            self.images_without_alt += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def test_every_page_has_a_title_one_heading_and_labelled_fields(server: Server) -> None:
    titles = []
    with server.client() as client:
        pages = {"/connexion": client.get("/connexion").text}
        client.login(SECRETARIAT)
        for path in ("/reponses", "/reponses/1", "/statistiques", "/reponses/999"):
            pages[path] = client.get(path).text
    for path, html in pages.items():
        page = Page(html)
        assert page.lang == "fr", path
        assert page.h1 == 1, path
        assert page.title.strip().endswith("— Suivi de l'AMI CPTS — ARS Bretagne"), path
        titles.append(page.title)
        duplicated = [i for i, n in page.ids.items() if n > 1]
        assert duplicated == [], (path, duplicated)
        unlabelled = [c for c in page.controls if not c or c not in page.label_for]
        assert unlabelled == [], (path, unlabelled)
        assert page.images_without_alt == 0, path
        assert 'href="#contenu"' in html and 'id="contenu"' in html, path
    assert len(set(titles)) == len(titles)  # each page says where the user is
