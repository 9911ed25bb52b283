"""The reports as a reader opens them: reports/index.html and every page it links load with no
console error, no broken link or image, and show the numbers reports/metrics/ holds."""

from __future__ import annotations

import datetime as dt
import json
import re
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


STAGE_REPORTS = ("validate.html", "eda.html", "features.html", "train.html", "evaluate.html", "index.html")
NOISE = {  # what a library or the machinery leaves in a report, as a reader sees it
    "a library warning": re.compile(r"\.py:\d+: \w*Warning:"),
    "a log line with its timestamp": re.compile(
        r"^\s*\[?\d{4}[-/]\d\d[-/]\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?\]?\s*(?:-\s*)?(?:\w+\s*-\s*)?"
        r"(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b", re.M),
    "a traceback": re.compile(r"Traceback \(most recent call last\)"),
    "an interval of no width": re.compile(r"0\.000 \[0\.000, 0\.000\]"),
    "a missing value printed": re.compile(r"(?<![\w/.])(?:nan|NaN|vNone)(?![\w/.])"),
}
NONE = re.compile(r"(?<![\w/.])None(?![\w/.])")  # Python's None (in a stage report: an estimator's repr may show it)


def page_text(browser, url: str) -> str:
    from selenium.webdriver.common.by import By

    browser.get(url)
    return browser.find_element(By.TAG_NAME, "body").text


def test_stage_reports_hold_no_library_noise_and_no_clock_time(browser, browser_ws):
    """What the reader of a stage report sees: no library warning, log line, traceback, 'nan' or
    'vNone', and no time of the run (the sample's data are from 2013; the run is today)."""
    reports = browser_ws["ws"] / "reports"
    this_year = re.compile(rf"\b{dt.date.today().year}-\d\d-\d\d[ T]\d\d:\d\d")
    problems = []
    for name in STAGE_REPORTS:
        text = page_text(browser, (reports / name).as_uri())
        assert text.strip(), f"{name} shows nothing"
        for what, pattern in {**NOISE, "a time of the run": this_year}.items():
            problems += [f"{name}: {what}: {m.group(0)!r}" for m in pattern.finditer(text)]
    assert not problems, "\n".join(problems)


def test_model_card_reads_as_one_consistent_document(browser, browser_ws):
    """The card: intended use rendered from Markdown (elements, not a <pre> of raw Markdown); every
    column the importance table ranks is among the used ones; only the chosen family's settings;
    the gate text states one outcome; an undefined group metric is 'n/a (reason)'."""
    from selenium.webdriver.common.by import By

    reports = browser_ws["ws"] / "reports"
    text = page_text(browser, (reports / "model_card.html").as_uri())
    assert browser.find_elements(By.TAG_NAME, "pre") == []
    use = browser.find_element(By.ID, "intended-use")
    assert use.tag_name == "div" and use.find_elements(By.CSS_SELECTOR, "p, li, strong, h1, h2, h3")
    assert "**" not in use.text
    ranked = [r.find_elements(By.TAG_NAME, "td")[1].text
              for r in browser.find_elements(By.CSS_SELECTOR, "#importance tr")[1:]]
    assert ranked, "the card shows no importance table"
    not_used = browser.find_element(By.ID, "not-used").text.split(":", 1)[1]
    unused = {c.strip(" .") for c in not_used.split(",")}
    assert not unused & set(ranked), f"ranked by importance yet listed as not used: {unused & set(ranked)}"
    used = browser.find_element(By.ID, "inputs").text
    assert all(c in used for c in ranked)
    from mlcycle.core import config

    record = json.loads((reports / "model_card.json").read_text())
    family = record["model"]["family"]
    shown = {r.find_elements(By.TAG_NAME, "td")[0].text for r in browser.find_elements(By.CSS_SELECTOR, "#parameters tr")}
    others = {k for f, names in config.FAMILY_SETTINGS.items() if f != family for k in names}
    assert not (others - set(config.FAMILY_SETTINGS.get(family, ()))) & shown, f"settings of other families than {family}"
    gate = browser.find_element(By.ID, "gate").text
    assert not ("promoted" in gate and "no champion yet" in gate)
    assert record["gate"]["outcome"] in gate
    for what, pattern in {**NOISE, "None": NONE}.items():
        assert not pattern.search(text), f"model card: {what}: {pattern.search(text)}"
    for group in (g for info in (record.get("fairness") or {}).get("columns", {}).values() for g in info["groups"]):
        for metric, why in (group.get("undefined") or {}).items():
            assert f"n/a ({why})" in text, (group["group"], metric)
