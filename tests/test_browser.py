"""The HTML report as a results site, in a real browser (headless Chromium through selenium), on the smoke run's
reports/ (its index.html and the cell pages under reports/cells/), and the `dvc plots show` page drawn offline.

What it checks:
- desktop, a 1400x900 viewport: the first screen, unscrolled, holds the status badges (#status-badges) and the
  ours-against-paper figure (the <img> or <svg> of <figure id="ours-vs-paper">; its caption may run below);
- phone, 390x844 (mobile emulation, so the page's meta viewport applies): nothing overflows sideways: the page does
  not scroll horizontally and no element pokes out of the screen except inside a horizontal scroller (tables sit in
  <div class="table-scroll">); the same holds at the desktop size;
- every link and image resolves, on index.html and on every page it links to in reports/ (one level) and every
  reports/cells/*.html: a local target exists inside reports/ (the site is that folder alone), a #fragment names an
  element of its page; external http(s) links (papers, code) are allowed and listed, never fetched; every image of
  each page loads in the browser;
- sorting: clicking the header of a `table.sortable` (tablesort, inlined from src/dcpipe/report/static/, built by
  workflow/build_web_assets.py) reorders its rows, and a second click reverses that order;
- no request leaves the file system: Chromium's network log (performance log, Network.requestWillBeSent) of every
  page this module opens holds only file:, data:, about: and blob: URLs;
- accessibility: axe-core (.dcpipe/web/axe.min.js, from npm by workflow/build_web_assets.py), run in the page,
  finds no serious or critical violation on index.html (desktop and phone) and on one cell page;
- no raw Markdown or Python repr shows, and the summary table opens the page;
- the `dvc plots show` page draws every plot with no network.

Uses Debian's chromium and its chromedriver (`make test` installs them as root; selenium-manager's downloads fail
offline). Without them, or without axe.min.js for the accessibility check, the tests skip, except under CI=true,
where they fail. Screenshots (report_desktop.png: the desktop first screen; report_desktop_full.png: the whole page;
report_phone.png: the phone's first screen; dvc_plots.png) go to .dcpipe/screenshots/ or $DCPIPE_SCREENSHOTS; their
paths are printed (`pytest -s` shows them) and named in the failure message of a failing check."""
import base64
import json
import os
import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
AXE = ROOT / ".dcpipe/web/axe.min.js"
DESKTOP = {"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": False}
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True}
CHROMIUM = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver", "chromedriver")
# what must never show in the page's text: Markdown that was not rendered and Python reprs of missing values
RAW = {"a backtick": re.compile("`"), "'**'": re.compile(r"\*\*"), "\"{'\"": re.compile(r"\{'"),
       "None": re.compile(r"\bNone\b"), "nan": re.compile(r"\b(?:nan|NaN)\b")}
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:")  # the only requests a page may make
SERIOUS = {"serious", "critical"}


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


class Browser:
    """The selenium driver, with every network request of the pages it opened (drained from the performance log
    after each load, since reading the log empties it)."""

    def __init__(self, driver):
        self.driver = driver
        self.requests: list[tuple[str, str]] = []  # (page, requested URL)
        self.page = "(start)"

    def __getattr__(self, name):
        return getattr(self.driver, name)

    def drain_network_log(self) -> None:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self.requests.append((self.page, message["params"]["request"]["url"]))

    def show(self, path: Path, size: dict = DESKTOP) -> None:
        """Load `path` with the viewport exactly `size` (CSS pixels), wait until it and its images are loaded, scroll
        to the top."""
        self.drain_network_log()
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", size)
        self.page = str(path)
        self.driver.get(path.resolve().as_uri())
        deadline = time.time() + 30
        while time.time() < deadline and not self.driver.execute_script(
                "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)"):
            time.sleep(0.1)
        self.driver.execute_script("window.scrollTo(0, 0)")
        self.drain_network_log()


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
                "--window-size=1400,900", "--hide-scrollbars"):
        options.add_argument(arg)
    # the browser log (console errors) and the performance log (its Network events: every request)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # an explicit driver path: selenium never runs selenium-manager (its downloads fail offline)
    b = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    b.set_page_load_timeout(60)
    b.set_script_timeout(120)
    yield Browser(b)
    b.quit()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    """$DCPIPE_SCREENSHOTS, else .dcpipe/screenshots/ (ignored by git; pytest's tmp dirs are purged by later runs)."""
    path = Path(os.environ.get("DCPIPE_SCREENSHOTS") or ROOT / ".dcpipe/screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshot(browser, shot: Path, full_page: bool = False) -> Path:
    """The viewport (what the first screen shows) or, with `full_page`, the whole page, as PNG in `shot`."""
    if full_page:
        width, height = browser.execute_script(
            "return [window.innerWidth, Math.ceil(document.documentElement.scrollHeight)]")
        data = browser.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 16000), "scale": 1}})["data"]
        shot.write_bytes(base64.b64decode(data))
    else:
        browser.save_screenshot(str(shot))
    print(f"screenshot of {browser.page}: {shot}")
    return shot


@pytest.fixture(scope="module")
def index(request) -> Path:
    """The smoke run's reports/index.html."""
    return request.getfixturevalue("smoke_run") / "reports/index.html"


class _Page(HTMLParser):
    """The references (tag, attribute, URL) and the ids of an HTML page."""
    REFS = {"a": "href", "area": "href", "link": "href", "img": "src", "script": "src", "source": "src",
            "iframe": "src", "embed": "src", "video": "src", "audio": "src", "object": "data"}

    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        if self.REFS.get(tag) in a and a[self.REFS[tag]] is not None:
            self.refs.append((tag, a[self.REFS[tag]]))
        if tag in ("img", "source") and a.get("srcset"):
            self.refs += [(tag, c.split()[0]) for c in a["srcset"].split(",") if c.strip()]


_parsed: dict[Path, _Page] = {}


def parse(path: Path) -> _Page:
    path = path.resolve()
    if path not in _parsed:
        _parsed[path] = _Page()
        _parsed[path].feed(path.read_text(encoding="utf-8", errors="replace"))
    return _parsed[path]


def target(page: Path, ref: str) -> tuple[Path | None, str]:
    """The local file `ref` (on `page`) points to and its fragment; None for an external or data: URL."""
    parts = urlsplit(ref.strip())
    if parts.scheme or parts.netloc:
        return None, ""
    path = (page.parent / unquote(parts.path)).resolve() if parts.path else page.resolve()
    if path.is_dir():
        path = path / "index.html"
    return path, unquote(parts.fragment)


def site_pages(index: Path) -> list[Path]:
    """index.html, the HTML pages inside reports/ it links to (one level) and every reports/cells/*.html."""
    reports = index.parent.resolve()
    pages = [index.resolve()]
    for _, ref in parse(index).refs:
        path, _ = target(index, ref)
        if path and path.suffix in (".html", ".htm") and path.is_file() and path.is_relative_to(reports):
            pages.append(path)
    pages += sorted(p.resolve() for p in (reports / "cells").glob("*.html"))
    return list(dict.fromkeys(pages))


def cell_pages(index: Path) -> list[Path]:
    cells = (index.parent / "cells").resolve()
    return [p for p in site_pages(index) if p.parent == cells]


def broken_references(page: Path, reports: Path, external: set[str]) -> list[str]:
    """What on `page` does not resolve inside the site (adds its http(s) links to `external`)."""
    problems = []
    for tag, ref in parse(page).refs:
        parts = urlsplit(ref.strip())
        where = f"{page.relative_to(reports)}: <{tag}> {ref!r}"
        if parts.scheme in ("http", "https") and parts.netloc:
            if tag in ("a", "area"):
                external.add(ref)
            else:  # an image, script or style from the network
                problems.append(f"{where}: loads from the network")
            continue
        if parts.scheme in ("data", "mailto") or (tag == "a" and parts.scheme == "javascript"):
            continue
        if parts.scheme or parts.netloc:
            problems.append(f"{where}: neither a relative path nor an http(s) link")
            continue
        if not ref.strip():
            problems.append(f"{where}: empty")
            continue
        path, fragment = target(page, ref)
        if not path.is_relative_to(reports):
            problems.append(f"{where}: outside reports/ ({path})")
        elif not path.is_file():
            problems.append(f"{where}: no such file ({path.relative_to(reports)})")
        elif fragment and fragment.lower() != "top" and path.suffix in (".html", ".htm") \
                and fragment not in parse(path).ids:  # '#top' needs no element (HTML's scroll-to-fragment)
            problems.append(f"{where}: no element with id {fragment!r} in {path.relative_to(reports)}")
    return problems


OVERFLOW = """
    // elements outside the screen's width (arguments[0]), except inside a horizontal scroller (overflow-x auto or
    // scroll); only the outermost of each overflowing subtree
    const width = arguments[0];
    const scrolls = e => { for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
        const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll') return true; } return false; };
    const out = new Set();
    for (const e of document.body.querySelectorAll('*')) {
        const r = e.getBoundingClientRect();
        if ((r.width || r.height) && (r.right > width + 0.5 || r.left < -0.5) && !scrolls(e)) out.add(e);
    }
    const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
        (typeof e.className === 'string' && e.className.trim() ? '.' + e.className.trim().split(/\\s+/).join('.') : '');
    return Array.from(out).filter(e => !out.has(e.parentElement)).slice(0, 20).map(e => {
        const r = e.getBoundingClientRect();
        return `${name(e)} [${Math.round(r.left)}, ${Math.round(r.right)}] px: ` +
            ((e.getAttribute('src') || e.innerText || '').trim().slice(0, 60).replace(/\\s+/g, ' '));
    });"""


def check_no_overflow(browser, size: dict, shot: Path) -> None:
    """The page fits the screen's width. On a phone the layout viewport (innerWidth) grows to the content's width when
    something overflows, or is 980 px without a meta viewport: it must stay the screen's width."""
    width = size["width"]
    inner, scroll = browser.execute_script("return [window.innerWidth, document.documentElement.scrollWidth]")
    wide = browser.execute_script(OVERFLOW, width)
    assert inner == width and scroll <= width and not wide, \
        f"{browser.page} on a {width}x{size['height']} screen: the layout is {inner} px wide, the page {scroll} px " \
        f"(<meta name=viewport content='width=device-width'> missing?); sticking out of the screen: {wide} " \
        f"(screenshot {shot})"


def test_desktop_first_screen_holds_the_badges_the_ours_against_paper_figure_and_the_section_links(browser, index, screenshots):
    browser.show(index, DESKTOP)
    shot = screenshot(browser, screenshots / "report_desktop.png")
    screenshot(browser, screenshots / "report_desktop_full.png", full_page=True)
    boxes = browser.execute_script("""
        const box = (what, e) => {
            if (!e) return [what, null];
            const r = e.getBoundingClientRect();
            return [what, {top: r.top, left: r.left, bottom: r.bottom, right: r.right, width: r.width,
                           height: r.height, shown: e.checkVisibility({opacityProperty: true, visibilityProperty: true}),
                           loaded: e.tagName !== 'IMG' || (e.complete && e.naturalWidth > 0)}];
        };
        return [box('#status-badges', document.getElementById('status-badges')),
                box('the <img> or <svg> of figure#ours-vs-paper',
                    document.querySelector('figure#ours-vs-paper img, figure#ours-vs-paper svg')),
                box('the links to the sections', document.querySelector('nav[aria-label="Sections"]'))];""")
    for what, box in boxes:
        assert box is not None, f"{index}: no {what} (screenshot {shot})"
        assert box["shown"] and box["width"] > 0 and box["height"] > 0 and box["loaded"], \
            f"{index}: {what} is not visible ({box}; screenshot {shot})"
        assert box["top"] >= 0 and box["left"] >= 0 and box["bottom"] <= DESKTOP["height"] \
            and box["right"] <= DESKTOP["width"], f"{index}: {what} is not on the first {DESKTOP['width']}x" \
            f"{DESKTOP['height']} screen (box {box}; screenshot {shot})"


def test_nothing_overflows_sideways_on_a_phone_or_the_desktop(browser, index, screenshots):
    browser.show(index, PHONE)
    shot = screenshot(browser, screenshots / "report_phone.png")
    check_no_overflow(browser, PHONE, shot)
    browser.show(index, DESKTOP)
    check_no_overflow(browser, DESKTOP, screenshots / "report_desktop_full.png")


def test_the_index_links_to_cell_pages(index):
    cells = [p.name for p in cell_pages(index)]
    linked = {target(index, ref)[0] for _, ref in parse(index).refs}
    assert cells, f"{index}: no reports/cells/*.html pages"
    assert linked & set(cell_pages(index)), f"{index}: links to none of the cell pages {cells[:5]}"


def test_every_link_and_image_resolves(browser, index):
    reports = index.parent.resolve()
    pages, external = site_pages(index), set()
    problems = [p for page in pages for p in broken_references(page, reports, external)]
    started = time.time()
    for page in pages:
        browser.show(page, DESKTOP)
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
        if page == pages[0]:
            assert images, f"{page}: no images"
        problems += [f"{page.relative_to(reports)}: <img> {src!r} did not load" for src, ok in images if not ok]
    print(f"{len(pages)} pages checked ({time.time() - started:.1f} s in the browser); external links, not fetched: "
          f"{sorted(external) or 'none'}")
    assert not problems, f"{len(problems)} broken references:\n" + "\n".join(problems[:40])


def test_sorting_a_table_reorders_its_rows(browser, index, screenshots):
    from selenium.webdriver.common.by import By

    browser.show(index, DESKTOP)
    found = browser.execute_script("""
        const tables = Array.from(document.querySelectorAll('table.sortable'));
        const t = tables.find(t => t.tBodies.length && t.tBodies[0].rows.length > 3);
        return [tables.length, t ? tables.indexOf(t) : -1];""")
    assert found[1] >= 0, f"{index}: no table.sortable with more than 3 rows ({found[0]} sortable tables)"
    table = browser.find_elements(By.CSS_SELECTOR, "table.sortable")[found[1]]
    rows = lambda: browser.execute_script(  # noqa: E731
        "return Array.from(arguments[0].tBodies[0].rows).map(r => Array.from(r.cells).map(c => c.innerText.trim()))",
        table)
    before = rows()
    headers = table.find_elements(By.CSS_SELECTOR, "thead th")
    sortable = [i for i, th in enumerate(headers)
                if "no-sort" not in (th.get_attribute("class") or "") and th.get_attribute("data-sort-method") != "none"
                and len({r[i] for r in before if i < len(r)}) > 1]
    assert sortable, f"{index}: no column of the first sortable table has differing values"
    # a column not already in order, when there is one: its first click must move rows
    column = next((i for i in sortable if sorted(r[i] for r in before) != [r[i] for r in before]), sortable[0])
    th = headers[column]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", th)
    th.click()
    first, order = rows(), th.get_attribute("aria-sort")
    th.click()
    second = rows()
    label = f"{index}: sorting the first sortable table by column {column} ({th.text!r})"
    assert order in ("ascending", "descending"), f"{label}: the header has no aria-sort after a click (tablesort " \
        "not attached? the report inlines src/dcpipe/report/static/tablesort.min.js: `make setup`)"
    assert first != before or second != before, f"{label}: two clicks left the rows in their order"
    assert [r[column] for r in second] == [r[column] for r in first][::-1], \
        f"{label}: the second click did not reverse the order: {[r[column] for r in first]} then " \
        f"{[r[column] for r in second]}"
    assert sorted(map(tuple, second)) == sorted(map(tuple, before)), f"{label}: rows changed, not only their order"


AXE_RUN = """
    const done = arguments[arguments.length - 1];
    axe.run(document, {resultTypes: ['violations']})
        .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, count: v.nodes.length,
                                                  targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))))
        .catch(e => done({error: String(e)}));"""


def axe_violations(browser) -> list[dict]:
    browser.execute_script(AXE.read_text(encoding="utf-8"))
    found = browser.execute_async_script(AXE_RUN)
    assert not isinstance(found, dict), f"{browser.page}: axe.run failed: {found['error']}"
    return found


def test_axe_finds_no_serious_accessibility_violation(browser, index, screenshots):
    if not AXE.is_file():
        _unavailable(f"{AXE} is missing (axe-core from npm): run `make setup` or python3 workflow/build_web_assets.py")
    cells = cell_pages(index)
    runs = [(index, DESKTOP), (index, PHONE)] + [(cell, DESKTOP) for cell in cells[:1]]
    serious = []
    for page, size in runs:
        browser.show(page, size)
        violations = axe_violations(browser)
        where = f"{page.relative_to(index.parent)} at {size['width']}x{size['height']}"
        print(f"axe on {where}: " + ("; ".join(f"{v['id']} ({v['impact']}, {v['count']} elements)"
                                              for v in violations) or "no violations"))
        serious += [f"{where}: {v['id']} ({v['impact']}): {v['help']}; {v['count']} elements, e.g. {v['targets']}"
                    for v in violations if v["impact"] in SERIOUS]
    if not cells:
        print(f"axe: no cell page in {index.parent / 'cells'} to check")
    assert not serious, "serious or critical accessibility violations:\n" + "\n".join(serious)


def test_no_raw_markdown_or_python_repr_shows(browser, index):
    browser.show(index, DESKTOP)
    text = browser.execute_script("return document.body.innerText")
    found = {}
    for what, pattern in RAW.items():
        for m in pattern.finditer(text):
            found.setdefault(what, []).append(text[max(0, m.start() - 40):m.end() + 40].replace("\n", " | "))
    assert not found, f"{index}: raw text shows: " + "; ".join(f"{w} in {ctx[:3]}" for w, ctx in found.items())


def test_the_report_opens_with_the_summary_table(browser, index):
    browser.show(index, DESKTOP)
    summary = browser.execute_script("""
        const heading = Array.from(document.querySelectorAll('h1, h2, h3, h4'))
            .find(h => h.innerText.includes('What is reproduced'));
        if (!heading) return null;
        for (let e = heading.nextElementSibling; e && !/^H[1-4]$/.test(e.tagName); e = e.nextElementSibling) {
            const table = e.tagName === 'TABLE' ? e : e.querySelector('table');
            if (table) return [heading.tagName, table.rows.length];
        }
        return [heading.tagName, 0];""")
    assert summary, f"{index}: no heading containing 'What is reproduced'"
    assert summary[1] >= 2, f"{index}: the 'What is reproduced' heading is not followed by a table"


def test_the_dvc_plots_page_draws_every_plot_offline(browser, screenshots, tmp_path):
    from tests.test_dvc_plots import PLOT_IDS, plots_project, render_plots_page, require_offline_template

    page = render_plots_page(plots_project(tmp_path / "project", require_offline_template()))
    browser.get_log("browser")  # earlier pages' console messages
    browser.show(page, DESKTOP)
    deadline = time.time() + 20
    while time.time() < deadline and browser.execute_script(
            "return document.querySelectorAll('.vega-embed svg, .vega-embed canvas').length") < len(PLOT_IDS):
        time.sleep(0.2)
    shot = screenshot(browser, screenshots / "dvc_plots.png", full_page=True)
    drawn = browser.execute_script("return document.querySelectorAll('.vega-embed svg, .vega-embed canvas').length")
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert drawn >= len(PLOT_IDS) and not errors, f"{drawn} plots drawn, errors {errors} (screenshot {shot})"


def test_no_request_leaves_the_file_system(browser, index):
    """Over every page the tests above opened (this one runs last), and index.html and its cell pages again."""
    for page in site_pages(index):
        browser.show(page, DESKTOP)
    time.sleep(0.5)
    browser.drain_network_log()
    pages = {page for page, _ in browser.requests}
    assert browser.requests, "the performance log recorded no request at all (is Network logging on?)"
    remote = sorted({f"{url[:120]} (from {page})" for page, url in browser.requests
                     if not url.startswith(LOCAL_SCHEMES)})
    print(f"{len(browser.requests)} requests from {len(pages)} pages, all local" if not remote else "")
    assert not remote, "requests that leave the file system:\n" + "\n".join(remote)
