"""The HTML report in a real browser (headless Chromium through selenium): every image loads, nothing is wider than
a 1280-pixel window, no raw Markdown or Python repr shows, and the summary table opens the page. Pages: the smoke
run's reports/index.html; and the `dvc plots show` page drawn offline.

Uses Debian's chromium and its chromedriver (`make test` installs them as root; selenium-manager's downloads fail
offline). Without them the tests skip, except under CI=true, where they fail. Screenshots:
.dcpipe/screenshots/*.png or $DCPIPE_SCREENSHOTS (printed; `pytest -s` shows the paths, and so does the failure message of a failing check)."""
import os
import re
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 1280
CHROMIUM = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver", "chromedriver")
# what must never show in the page's text: Markdown that was not rendered and Python reprs of missing values
RAW = {"a backtick": re.compile("`"), "'**'": re.compile(r"\*\*"), "\"{'\"": re.compile(r"\{'"),
       "None": re.compile(r"\bNone\b"), "nan": re.compile(r"\b(?:nan|NaN)\b")}


def _find(candidates) -> str | None:
    for c in candidates:
        path = c if os.path.isabs(c) else shutil.which(c)
        if path and os.access(path, os.X_OK):
            return path
    return None


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install -e '.[test]')")
    chromium, driver = _find(CHROMIUM), _find(CHROMEDRIVER)
    if not chromium or not driver:
        _unavailable("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver; "
                     "`make test` does it as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={WIDTH},1000", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver path: selenium never runs selenium-manager (its downloads fail offline)
    b = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    b.set_page_load_timeout(60)
    yield b
    b.quit()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    """$DCPIPE_SCREENSHOTS, else .dcpipe/screenshots/ (ignored by git; pytest's tmp dirs are purged by later runs)."""
    path = Path(os.environ.get("DCPIPE_SCREENSHOTS") or ROOT / ".dcpipe/screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_page(browser, path: Path, screenshots: Path, name: str) -> Path:
    """Load `path`, wait for its images, save a full-page screenshot; the screenshot's path."""
    browser.set_window_size(WIDTH, 1000)
    browser.get(path.resolve().as_uri())
    deadline = time.time() + 30
    while time.time() < deadline and not browser.execute_script(
            "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)"):
        time.sleep(0.2)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(WIDTH, min(max(height, 1000), 16000))
    shot = screenshots / f"{name}.png"
    browser.save_screenshot(str(shot))
    browser.set_window_size(WIDTH, 1000)
    print(f"screenshot of {path}: {shot}")
    return shot


REPORTS = ["smoke"]


@pytest.fixture(scope="module", params=REPORTS)
def report_page(request, browser, screenshots):
    """(name, path of reports/index.html, screenshot) for the smoke run's report."""
    path = request.getfixturevalue("smoke_run") / "reports/index.html"
    shot = open_page(browser, path, screenshots, f"report_{request.param}")
    return request.param, path, shot


def test_every_image_loads(browser, report_page):
    name, path, shot = report_page
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
    assert images, f"{path}: no images"
    broken = [src for src, complete, width in images if not complete or width == 0]
    assert not broken, f"{path}: images that did not load: {broken} (screenshot {shot})"


def test_nothing_is_wider_than_the_window(browser, report_page):
    name, path, shot = report_page
    inner, scroll = browser.execute_script(
        "return [window.innerWidth, document.documentElement.scrollWidth]")
    assert inner == WIDTH
    assert scroll <= inner, f"{path}: the page scrolls sideways ({scroll} > {inner} px; screenshot {shot})"
    too_wide = browser.execute_script("""
        return Array.from(document.querySelectorAll('img, table')).map(e => {
            const r = e.getBoundingClientRect();
            return [e.tagName.toLowerCase() + ' ' + (e.getAttribute('src') || e.innerText.slice(0, 60)),
                    Math.round(r.left), Math.round(r.right)];
        }).filter(([what, left, right]) => left < 0 || right > window.innerWidth);""")
    assert not too_wide, f"{path}: wider than the {inner}px window: {too_wide} (screenshot {shot})"


def test_no_raw_markdown_or_python_repr_shows(browser, report_page):
    name, path, shot = report_page
    text = browser.execute_script("return document.body.innerText")
    found = {}
    for what, pattern in RAW.items():
        for m in pattern.finditer(text):
            found.setdefault(what, []).append(text[max(0, m.start() - 40):m.end() + 40].replace("\n", " | "))
    assert not found, f"{path}: raw text shows: " + "; ".join(f"{w} in {ctx[:3]}" for w, ctx in found.items()) + \
        f" (screenshot {shot})"


def test_the_report_opens_with_the_summary_table(browser, report_page):
    name, path, shot = report_page
    summary = browser.execute_script("""
        const heading = Array.from(document.querySelectorAll('h1, h2, h3, h4'))
            .find(h => h.innerText.includes('What is reproduced'));
        if (!heading) return null;
        for (let e = heading.nextElementSibling; e && !/^H[1-4]$/.test(e.tagName); e = e.nextElementSibling) {
            const table = e.tagName === 'TABLE' ? e : e.querySelector('table');
            if (table) return [heading.tagName, table.rows.length];
        }
        return [heading.tagName, 0];""")
    assert summary, f"{path}: no heading containing 'What is reproduced' (screenshot {shot})"
    assert summary[1] >= 2, f"{path}: the 'What is reproduced' heading is not followed by a table ({shot})"


def test_the_dvc_plots_page_draws_every_plot_offline(browser, screenshots, tmp_path):
    from tests.test_dvc_plots import PLOT_IDS, plots_project, render_plots_page, require_offline_template

    page = render_plots_page(plots_project(tmp_path / "project", require_offline_template()))
    shot = open_page(browser, page, screenshots, "dvc_plots")
    deadline = time.time() + 20
    while time.time() < deadline and browser.execute_script(
            "return document.querySelectorAll('.vega-embed svg, .vega-embed canvas').length") < len(PLOT_IDS):
        time.sleep(0.2)
    drawn = browser.execute_script("return document.querySelectorAll('.vega-embed svg, .vega-embed canvas').length")
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert drawn >= len(PLOT_IDS) and not errors, f"{drawn} plots drawn, errors {errors} (screenshot {shot})"
