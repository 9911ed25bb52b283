"""JupyterLab as a user opens it: a stage notebook opened in the browser and run from the Run menu
reaches the figures its stage report shows, and leaves the registry's aliases, the audit log, the
MLflow runs and the pipeline's outputs as they were (a notebook run in the Lab writes nothing)."""

from __future__ import annotations

import time

import pytest

from tests.pipeline.test_notebooks_safe import changed, snapshot

pytestmark = pytest.mark.slow

NOTEBOOK = "notebooks/tabular/03_eda.ipynb"  # the eda stage of the tables: its report is mostly figures
# code cells whose prompt shows they ran ("[3]:"), are still queued or running ("[*]:") or have not run ("[ ]:")
PROMPTS_JS = """return Array.from(document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt'))
  .map(p => p.textContent.trim());"""


def accept_dialog(browser, seconds: float = 5) -> None:
    """Answer a dialog the Lab may open on a busy machine ("Select Kernel") with its default, as a user
    does: the preferred kernel."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + seconds
    while True:
        buttons = [b for b in browser.find_elements(By.CSS_SELECTOR, ".jp-Dialog .jp-Dialog-button.jp-mod-accept")
                   if b.is_displayed()]
        if buttons:
            buttons[0].click()
            return
        if time.monotonic() >= deadline:
            return
        time.sleep(0.5)


def test_stage_notebook_runs_in_the_lab_and_writes_nothing(browser, browser_ws, lab):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    ws = browser_ws["ws"]
    before = snapshot(ws)
    base, token = lab
    browser.get(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
    wait = WebDriverWait(browser, 120)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Notebook .jp-Cell")))
    # the kernel is up when the toolbar's status says idle
    wait.until(lambda d: d.execute_script(
        "const s = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');"
        "return s && s.getAttribute('data-status') === 'idle';"))
    accept_dialog(browser)
    # Run > Run All Cells, as a user clicks it
    menu = next(m for m in browser.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item") if m.text.strip() == "Run")
    menu.click()
    item = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, '.lm-Menu-item[data-command="runmenu:run-all"]')))
    assert item.text.strip() == "Run All Cells"
    # a menu item runs when the pointer is on it as the button is released, as with a hand on the mouse
    ActionChains(browser).move_to_element(item).pause(0.3).click().perform()
    started = time.monotonic()
    accept_dialog(browser)
    # every code cell ran: each prompt holds its execution count
    def all_ran(d) -> bool:
        accept_dialog(d, seconds=0)
        prompts = d.execute_script(PROMPTS_JS)
        return bool(prompts) and all(x.strip("[]:").isdigit() for x in prompts)

    WebDriverWait(browser, 600, poll_frequency=1).until(all_ran)
    print(f"the notebook ran in the Lab in {time.monotonic() - started:.0f} s")
    errors = browser.find_elements(By.CSS_SELECTOR, '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')
    assert not errors, errors[0].text[:2000]
    figures = browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img")
    report_figures = (ws / "reports" / "eda.html").read_text().count("<img")
    assert report_figures > 0 and len(figures) >= report_figures, (len(figures), report_figures)
    assert all(browser.execute_script("return arguments[0].naturalWidth", f) > 0 for f in figures)
    browser.execute_script("arguments[0].scrollIntoView()", figures[0])  # the screenshot shows a figure the Lab drew
    # the workspace's Lab defaults (deploy/jupyterlab/overrides.json): no prompt to fetch news from the web
    toasts = [t.text for t in browser.find_elements(By.CSS_SELECTOR, ".Toastify__toast") if t.is_displayed()]
    assert not any("news" in t.lower() for t in toasts), toasts
    after = snapshot(ws)
    assert not changed(before, after), f"running {NOTEBOOK} in the Lab changed: {changed(before, after)}"
