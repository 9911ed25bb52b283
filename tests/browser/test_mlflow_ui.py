"""The MLflow UI as `make ui` serves it on the workspace's store, followed from the report index's
links: the `pipeline` parent run with its stage runs, a stage's notebook rendered to HTML as an
artifact, and the registered model with its `champion` alias."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.conftest import mlflow_client

pytestmark = pytest.mark.slow


def text_appears(browser, *texts: str, seconds: float = 90) -> str:
    """Wait until the page's visible text holds every one of `texts`; return that text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(browser, seconds, poll_frequency=0.5).until(
            lambda d: all(t in d.find_element(By.TAG_NAME, "body").text for t in texts))
    except TimeoutException:
        body = browser.find_element(By.TAG_NAME, "body").text
        pytest.fail(f"{browser.current_url} does not show {[t for t in texts if t not in body]}; it shows:\n{body[:3000]}")
    return browser.find_element(By.TAG_NAME, "body").text


def index_links(browser, ws) -> dict[str, str]:
    """The MLflow links of reports/index.html: 'pipeline' and one per stage."""
    from selenium.webdriver.common.by import By

    browser.get((ws / "reports" / "index.html").as_uri())
    links = {"pipeline": browser.find_element(By.CSS_SELECTOR, "#pipeline-run a.run").get_attribute("href")}
    for row in browser.find_elements(By.CSS_SELECTOR, "#stages tr")[1:]:
        a = row.find_elements(By.CSS_SELECTOR, "a.run")
        if a:
            links[row.find_elements(By.TAG_NAME, "td")[0].text] = a[0].get_attribute("href")
    return links


def test_index_links_the_pipeline_run_and_its_stage_runs(browser, browser_ws, mlflow_ui):
    ws = browser_ws["ws"]
    links = index_links(browser, ws)
    assert set(links) >= {"pipeline", "validate", "eda", "features", "train", "evaluate"}
    assert all(u.startswith(mlflow_ui + "/#/experiments/") for u in links.values())
    client = mlflow_client(ws)
    parent = client.get_run(links["pipeline"].rsplit("/", 1)[1])
    assert parent.data.tags["mlflow.runName"] == "pipeline"
    browser.get(links["pipeline"])
    text_appears(browser, "pipeline")
    for stage in ("validate", "evaluate"):
        run = client.get_run(links[stage].rsplit("/", 1)[1])
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        browser.get(links[stage])
        # the stage run's page names the run and its parent, the pipeline run
        text_appears(browser, stage, "pipeline")


def test_stage_notebook_html_is_an_artifact(browser, browser_ws, mlflow_ui):
    from selenium.webdriver.common.by import By

    links = index_links(browser, browser_ws["ws"])
    browser.get(links["evaluate"] + "/artifacts")
    text_appears(browser, "report")
    folder = next(e for e in browser.find_elements(By.XPATH, "//*[normalize-space(text())='report']") if e.is_displayed())
    folder.click()
    text_appears(browser, "evaluate.html")
    name = next(e for e in browser.find_elements(By.XPATH, "//*[normalize-space(text())='evaluate.html']")
                if e.is_displayed())
    name.click()
    text_appears(browser, "report/evaluate.html")


def test_registered_model_shows_its_champion(browser, browser_ws, mlflow_ui):
    registered = json.loads((browser_ws["ws"] / "models" / "registered.json").read_text())
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{mlflow_ui}/#/models/{registered['name']}")
    text_appears(browser, registered["name"], f"Version {registered['version']}")
    # the alias chip of the versions table (the audit tags also say "champion", in longer text)
    chip = "//*[contains(., 'champion') and string-length(normalize-space(.)) < 20]"
    WebDriverWait(browser, 120).until(lambda d: [e for e in d.find_elements(By.XPATH, chip) if e.is_displayed()])
    row = browser.find_element(By.XPATH, f"{chip}/ancestor::*[self::tr or @role='row'][1]")  # its version's row
    assert f"Version {registered['version']}" in row.text


def test_the_first_screen_is_the_experiments_runs_in_the_model_training_view(browser, browser_ws, mlflow_ui):
    """`make ui`, then the address it prints: the page at / opens on the workspace experiment's runs
    table (MLflow's model-training view), not MLflow 3's GenAI overview; a user's own choice of view
    is kept."""
    ws = browser_ws["ws"]
    client = mlflow_client(ws)
    experiment = client.get_experiment_by_name(yaml.safe_load((ws / "params.yaml").read_text())["tracking"]["experiment"])
    browser.get(mlflow_ui + "/")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 60).until(lambda d: d.current_url.endswith(f"#/experiments/{experiment.experiment_id}/runs"))
    # the runs table (the stage runs sit under the pipeline run), in the model-training view, and no
    # assistant panel opened by itself
    text_appears(browser, "Model training", "Run Name", "pipeline", "matching runs")
    time.sleep(3)  # the assistant's panel would open by itself within a moment of the page
    assert "Ask questions about your experiments" not in browser.find_element(By.TAG_NAME, "body").text
    assert browser.execute_script("return window.localStorage.getItem('mlflow.workflowType_v1')") == '"machine_learning"'
    # a user who switches to the GenAI view keeps it: the page sets the view only when none is chosen
    browser.execute_script("window.localStorage.setItem('mlflow.workflowType_v1', '\"genai\"')")
    browser.get(mlflow_ui + "/")
    WebDriverWait(browser, 60).until(lambda d: "/runs" in d.current_url or "/experiments/" in d.current_url)
    assert browser.execute_script("return window.localStorage.getItem('mlflow.workflowType_v1')") == '"genai"'
    # a browser that never visited: storage cleared where MLflow's app does not run (it would write back)
    browser.get(mlflow_ui + "/health")
    browser.execute_script("window.localStorage.clear()")
    browser.get(mlflow_ui + "/")
    text_appears(browser, "Model training", "Run Name", "pipeline")  # the screenshot this test leaves: the first screen
    time.sleep(3)
    assert "Ask questions about your experiments" not in browser.find_element(By.TAG_NAME, "body").text
