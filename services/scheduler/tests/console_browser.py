"""Drives Debian's headless Chromium through the scheduler's console (run by tests/api/console.rs).

usage: console_browser.py BASE_URL ADMIN_TOKEN OUTPUT_DIR

For every page: loads it, waits for its key element, checks the browser console logged no error, and
writes a screenshot to OUTPUT_DIR. Then checks the action buttons are hidden without a token, enters the
token, clicks "Run now" on the metrics job and waits for the reloaded page to show the manual run in the
history; then promotes the version that is not the champion and checks the reloaded table says so, and that
the audit page names the person entered beside the token as the actor of both actions. Prints one JSON
object with what it saw; exits non-zero on the first failed check.
"""

import json
import os
import shutil
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

# The name entered beside the token: the console sends it as X-Actor with each action.
ACTOR = "ana.ops@example.com"

# (path, id of the element that proves the page rendered its data, text that element must contain)
PAGES = [
    ("/", "champion", "version"),
    ("/ui/models", "versions", "champion"),
    ("/ui/runs", "leaderboard", "CV ROC AUC"),
    ("/ui/jobs", "jobs", "generate"),
    ("/ui/drift", "statistics", "tenure_months"),
    ("/ui/data", "reasons", "monthly_charges"),
]


def fail(message):
    print(json.dumps({"ok": False, "error": message}))
    sys.exit(1)


def browser():
    chromium = shutil.which("chromium") or fail("chromium is not installed (apt-get install chromium)")
    driver = shutil.which("chromedriver") or fail(
        "chromedriver is not installed (apt-get install chromium-driver)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def console_errors(driver):
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def manual_metrics_runs(driver):
    rows = driver.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    return [r.text for r in rows if r.text.startswith("metrics") and " manual " in r.text]


def main():
    base, token, out = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    os.makedirs(out, exist_ok=True)
    driver = browser()
    seen = {}
    try:
        wait = WebDriverWait(driver, 20)
        for path, element, text in PAGES:
            started = time.monotonic()
            driver.get(base + path)
            node = wait.until(ec.presence_of_element_located((By.ID, element)))
            if text not in node.text:
                fail(f"{path}: #{element} lacks {text!r}: {node.text[:300]!r}")
            errors = console_errors(driver)
            if errors:
                fail(f"{path}: the browser console logged errors: {errors}")
            name = "overview" if path == "/" else path.rsplit("/", 1)[-1]
            driver.save_screenshot(os.path.join(out, f"{name}.png"))
            seen[path] = {"title": driver.title, "seconds": round(time.monotonic() - started, 3)}

        # Read-only without the token: the action buttons are not shown.
        driver.get(base + "/ui/jobs")
        row = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-job="metrics"]')))
        before = len(manual_metrics_runs(driver))
        run_now = row.find_element(By.XPATH, ".//button[text()='Run now']")
        if run_now.is_displayed():
            fail("the Run now button shows without an admin token")

        driver.find_element(By.ID, "actor").send_keys(ACTOR)
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()
        wait.until(lambda d: run_now.is_displayed())
        run_now.click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "flash"), "done"))
        # The page reloads itself; the history then lists the manual run.
        wait.until(ec.staleness_of(run_now))
        wait.until(ec.presence_of_element_located((By.ID, "history")))
        manual = manual_metrics_runs(driver)
        if len(manual) != before + 1:
            fail(f"Run now should add one manual metrics run to the history ({before} before): {manual}")
        errors = console_errors(driver)
        if errors:
            fail(f"/ui/jobs after Run now: the browser console logged errors: {errors}")
        driver.save_screenshot(os.path.join(out, "jobs-after-run-now.png"))

        # Promote the version that is not the champion (the token is kept for the tab).
        driver.get(base + "/ui/models")
        promote = wait.until(ec.visibility_of_element_located((By.XPATH, "//button[text()='Promote']")))
        version = promote.find_element(By.XPATH, "./ancestor::tr/td[1]").text
        promote.click()
        wait.until(ec.alert_is_present())
        driver.switch_to.alert.accept()
        wait.until(ec.text_to_be_present_in_element((By.ID, "flash"), "done"))
        wait.until(ec.staleness_of(promote))
        rows = wait.until(ec.presence_of_all_elements_located((By.CSS_SELECTOR, "#versions tbody tr")))
        champion = [r.find_element(By.XPATH, "./td[1]").text for r in rows if "champion" in r.text]
        if champion != [version]:
            fail(f"after promoting version {version} the champion row is {champion}")
        errors = console_errors(driver)
        if errors:
            fail(f"/ui/models after Promote: the browser console logged errors: {errors}")
        driver.save_screenshot(os.path.join(out, "models-after-promote.png"))

        # Both actions are in the audit log under the name entered, not the token's scope.
        driver.get(base + "/ui/audit")
        rows = wait.until(ec.presence_of_all_elements_located((By.CSS_SELECTOR, "#audit tbody tr")))
        audited = [(r.find_element(By.XPATH, "./td[2]").text, r.find_element(By.XPATH, "./td[4]").text)
                   for r in rows]
        for action in ("job.trigger", "model.promote"):
            if (ACTOR, action) not in audited:
                fail(f"/ui/audit should list {action} by {ACTOR}: {audited}")
        print(json.dumps({"ok": True, "pages": seen, "manual_run": manual[0], "promoted": version,
                          "audited": audited}))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
