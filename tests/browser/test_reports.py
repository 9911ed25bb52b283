"""The reports as a reader opens them: reports/index.html and every page it links load with no
console error, no broken link or image, and show the numbers reports/metrics/ holds."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.browser.conftest import console_errors

pytestmark = pytest.mark.slow

# every <a href> and <img src> of the page, resolved by the browser, and whether each image loaded
LINKS_JS = """return {
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  images: Array.from(document.querySelectorAll('img')).map(i => [i.src.slice(0, 80), i.complete && i.naturalWidth > 0]),
};"""


def local_file(url: str) -> Path | None:
    parts = urlsplit(url)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


def check_page(browser, url: str) -> list[str]:
    """Open `url`; the problems a reader would meet: console errors, images that did not load,
    links to files that do not exist. Returns the page's links."""
    browser.get(url)
    found = browser.execute_script(LINKS_JS)
    problems = [f"console: {m}" for m in console_errors(browser)]
    problems += [f"image not loaded: {src}" for src, ok in found["images"] if not ok]
    for link in found["links"]:
        f = local_file(link)
        if f is not None and not f.exists():
            problems.append(f"broken link: {link}")
    assert not problems, f"{url}:\n" + "\n".join(problems)
    return found["links"]


def test_index_and_every_linked_page_open_cleanly(browser, browser_ws):
    reports = browser_ws["ws"] / "reports"
    links = check_page(browser, (reports / "index.html").as_uri())
    pages = sorted({local_file(u).as_uri() for u in links if local_file(u) and local_file(u).suffix == ".html"})
    names = {Path(urlsplit(p).path).name for p in pages}
    # every stage report and the model card are linked (the sample has no ingest report of its own)
    assert {"validate.html", "eda.html", "features.html", "train.html", "evaluate.html", "model_card.html"} <= names
    images = 0
    for page in pages:
        check_page(browser, page)
        images += browser.execute_script("return document.querySelectorAll('img').length")
    assert images >= 5, "the stage reports show their figures"  # eda and evaluate draw several


def test_headline_numbers_equal_the_metrics_files(browser, browser_ws):
    from selenium.webdriver.common.by import By

    reports = browser_ws["ws"] / "reports"
    metrics = json.loads((reports / "metrics" / "evaluate.json").read_text())
    browser.get((reports / "index.html").as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#metrics tr")[1:]
    shown = {r.find_elements(By.TAG_NAME, "td")[0].text: [c.text for c in r.find_elements(By.TAG_NAME, "td")[1:]]
             for r in rows}
    assert shown, "the index shows no headline metrics"
    for name, (model, baseline) in shown.items():
        assert model == f"{metrics['model'][name]:.4f}", name
        assert baseline == f"{metrics['baseline'][name]:.4f}", name
    gate = json.loads((reports / "gate_decision.json").read_text())
    assert browser.find_element(By.ID, "gate").text.startswith(gate["outcome"])


def test_champion_history_chart_renders(browser, browser_ws):
    from selenium.webdriver.common.by import By

    browser.get((browser_ws["ws"] / "reports" / "index.html").as_uri())
    chart = browser.find_element(By.ID, "history-chart")
    assert chart.is_displayed() and chart.size["width"] > 100 and chart.size["height"] > 50
    # one version, promoted by the gate on the first run: a promotion mark, ringed as the champion
    assert len(chart.find_elements(By.CSS_SELECTOR, ".promotion")) == 1
    assert len(chart.find_elements(By.CSS_SELECTOR, ".champion")) == 1
    assert "v1 (champion)" in browser.find_element(By.ID, "history-table").text
    assert console_errors(browser) == []
    browser.execute_script("arguments[0].scrollIntoView()", chart)  # the screenshot shows the chart
