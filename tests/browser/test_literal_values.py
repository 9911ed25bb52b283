"""The reports of a table whose values are markup in other languages (tests/pipeline/conftest.py
`HOSTILE`), as a reader's browser shows them: every value visible as typed (control characters as
their escapes), no script of the data run, no element made of a value."""

from __future__ import annotations

import pytest

from mlcycle.core import literal
from tests.browser.conftest import chromium, console_errors, require_chromium
from tests.pipeline.conftest import HOSTILE, HOSTILE_CLASSES, hostile_values_workspace

pytestmark = pytest.mark.slow

# before any page script: alert() records its message instead of opening a dialog
RECORD_ALERTS = "window.__alerts = []; window.alert = (m) => window.__alerts.push(String(m));"
PAGES = ("validate.html", "eda.html", "features.html", "train.html", "evaluate.html", "index.html", "model_card.html")


@pytest.fixture(scope="module")
def values_ws(tmp_path_factory):
    require_chromium()
    return hostile_values_workspace(tmp_path_factory.mktemp("browser-literal") / "ws")


@pytest.fixture
def driver(values_ws, request):
    with chromium(values_ws, request) as d:
        d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_ALERTS})
        yield d


def opened(driver, url: str) -> str:
    """The page's visible text, once no script of the data ran in it and its console holds no error."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    assert driver.execute_script("return window.__alerts") == [], url
    assert driver.execute_script(
        "return Array.from(document.scripts).filter(s => s.textContent.includes('alert(')).length") == 0, url
    assert console_errors(driver) == [], url
    return driver.find_element(By.TAG_NAME, "body").text


def test_a_script_in_a_page_would_be_caught(driver):
    """The detector itself: a page that does run `alert(1)` is seen doing so."""
    driver.get("data:text/html,<p>x</p><script>alert(1)</script>")
    assert driver.execute_script("return window.__alerts") == ["1"]


def test_every_report_shows_the_values_as_typed_and_runs_none(driver, values_ws):
    reports = values_ws / "reports"
    text = {name: opened(driver, (reports / name).as_uri()) for name in PAGES}
    for name in ("evaluate.html", "model_card.html"):  # the slice's and sensitive column's group tables
        for value in HOSTILE:
            shown = literal.visible(value)
            assert shown[:60] in text[name], (name, shown[:60])
    assert "nul\\x00 esc\\x1b[31m red\\nnew line" in text["evaluate.html"]
    assert f"share of rows with churn = '{HOSTILE_CLASSES[0]}'" in text["eda.html"]  # the label's rate, its summary
    assert f"probability of '{HOSTILE_CLASSES[0]}'" in text["model_card.html"]  # the derived intended use
    from selenium.webdriver.common.by import By

    driver.get((reports / "model_card.html").as_uri())
    assert driver.find_elements(By.TAG_NAME, "b") == []  # the card has none: no <b> made of the class
