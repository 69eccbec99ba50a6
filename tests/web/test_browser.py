"""The back office walked in headless Chromium: sign in, filter, open, follow up, export.

The walk also takes the README's screenshots (docs/img/backoffice-*.png).
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from bot.config import ROOT
from tests.mail.factories import submit
from tests.web.browser import chromium
from tests.web.conftest import PASSWORD, SECRETARIAT, Server

SCREENSHOTS = ROOT / "docs" / "img"
MORE = [
    ("Quimper", "Pays de Cornouaille", "Dr Yann Le Goff", ["initiative"]),
    ("Rennes", "Rennes Nord", "Sophie Martin", ["reflection"]),
    ("Vannes", "Golfe du Morbihan", "Centre de santé de Vannes", ["information", "reflection"]),
    ("Brest", "Brest Rive Droite", "Maison de santé de Lambézellec", ["initiative"]),
]


def wait_for(condition, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except WebDriverException:  # the page is being replaced: look again
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"waited in vain ({condition.__code__.co_firstlineno})")


def screenshot(driver, name: str) -> None:  # type: ignore[no-untyped-def]
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(900, height), 2600))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(SCREENSHOTS / name))
    driver.set_window_size(1280, 900)


def test_secretariat_walks_sign_in_filter_response_followup_and_export(
    sqlite_server: Server, tmp_path: Path
) -> None:
    server = sqlite_server
    for i, (town, territory, actor, objectives) in enumerate(MORE):
        server.clock.advance(hours=20)
        submit(
            server.store,
            server.settings,
            user_id=500 + i,
            territory=territory,
            objectives=objectives,
            submitted_at=server.clock.now.isoformat(),
            actors=[
                {
                    "name": actor,
                    "profession": "médecin généraliste",
                    "commune": town,
                    "practice": "MSP",
                }
            ],
        )
    downloads = tmp_path / "downloads"
    with chromium(tmp_path / "profile", downloads) as driver:
        driver.get(server.url + "/reponses")
        assert driver.title == "Connexion — Suivi de l'AMI CPTS — ARS Bretagne"
        # keyboard: the first stop is the skip link to the content
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        assert driver.switch_to.active_element.text == "Aller au contenu"
        driver.find_element(By.ID, "email").send_keys(SECRETARIAT)
        driver.find_element(By.ID, "password").send_keys(PASSWORD + Keys.ENTER)
        wait_for(lambda: driver.title.startswith("Réponses à l'AMI"))
        assert "6 réponses" in driver.find_element(By.ID, "nombre").text
        screenshot(driver, "backoffice-list.png")

        # filter: free text and the Finistère délégation
        driver.find_element(By.ID, "q").send_keys("brest")
        Select(driver.find_element(By.ID, "delegation")).select_by_value("29")
        driver.find_element(By.CSS_SELECTOR, "#filtres button[type=submit]").click()
        wait_for(lambda: "2 réponses" in driver.find_element(By.ID, "nombre").text)
        assert "q=brest" in driver.current_url and "delegation=29" in driver.current_url
        rows = driver.find_elements(By.CSS_SELECTOR, "#resultats tbody tr")
        assert len(rows) == 2

        # open the Pays de Brest response
        driver.find_element(By.LINK_TEXT, server.subs["brest"].reference).click()
        wait_for(lambda: driver.title.startswith(f"Réponse {server.subs['brest'].reference}"))
        assert "Dr Anne Kerhervé" in driver.page_source
        assert (
            driver.find_element(By.ID, "statut-actuel").get_attribute("textContent") == "Nouvelle"
        )

        # change its status
        Select(driver.find_element(By.ID, "status")).select_by_visible_text("Échange planifié")
        driver.find_element(By.CSS_SELECTOR, "#form-suivi button[type=submit]").click()
        wait_for(
            lambda: (
                driver.find_element(By.ID, "statut-actuel").get_attribute("textContent")
                == "Échange planifié"
            )
        )
        assert "Enregistré : statut : Échange planifié." in driver.page_source

        # add a note
        driver.find_element(By.ID, "note").send_keys("Réunion prévue avec la MSP le 12 janvier.")
        driver.find_element(By.CSS_SELECTOR, "#form-note button[type=submit]").click()
        note = "Réunion prévue avec la MSP le 12 janvier."
        wait_for(lambda: note in driver.find_element(By.ID, "table-historique").text)
        history = driver.find_element(By.ID, "table-historique").text
        assert "Nouvelle → Échange planifié" in history
        driver.get(server.url + f"/reponses/{server.subs['brest'].id}")
        screenshot(driver, "backoffice-response.png")

        # export the filtered list
        driver.find_element(By.LINK_TEXT, "Réponses").click()
        wait_for(lambda: driver.title.startswith("Réponses à l'AMI"))
        Select(driver.find_element(By.ID, "statut")).select_by_value("echange_planifie")
        driver.find_element(By.CSS_SELECTOR, "#filtres button[type=submit]").click()
        wait_for(lambda: "1 réponse" in driver.find_element(By.ID, "nombre").text)
        driver.find_element(By.ID, "export-csv").click()
        exported = wait_for(lambda: [p for p in downloads.glob("*.csv")])
        text = exported[0].read_text(encoding="utf-8-sig")
        rows = list(csv.reader(io.StringIO(text), delimiter=";"))
        assert rows[0][:2] == ["Référence", "Reçue le"]
        assert [r[0] for r in rows[1:]] == [server.subs["brest"].reference]

        # every stylesheet, font and icon the pages use is vendored: nothing failed to load
        failures = [
            entry["message"]
            for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]
        ]
        assert failures == []

        # sign out: back to the sign-in page, the list is closed again
        driver.find_element(By.CSS_SELECTOR, "form[action='/deconnexion'] button").click()
        wait_for(lambda: driver.title.startswith("Connexion"))
        driver.get(server.url + "/reponses")
        assert driver.title.startswith("Connexion")
