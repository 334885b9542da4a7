"""Markdown and HTML pages from the same Sections, through jinja2 templates (report/templates): the HTML is
autoescaped, and every value reaching a template is already a formatted string, so no Markdown syntax or Python
repr can leak into either page. The HTML pages carry their styles and scripts inline (tablesort, copied from npm by
`make setup` into report/static/), so they open from the file system with no network."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import jinja2

from .section import Details, Section

# columns a long table can be filtered by (a <select> of their values above the table)
FILTER_COLUMNS = ("Table", "Dataset", "IPC", "Method", "Status", "run")
SORTABLE_ROWS = 4  # tables with at least this many rows get sortable headers
FILTERABLE_ROWS = 12


@dataclass
class FirstScreen:
    """The top of the page: a one-line provenance, status badges, the ours-against-paper figure and the folded
    settings and provenance tables."""

    lede: str
    badges: list
    figure: str
    figure_alt: str
    details: list[Details] = field(default_factory=list)


def tablesort_script() -> str | None:
    """tablesort (npm, MIT) as `make setup` copied it in (workflow/build_web_assets.py); None without it."""
    f = resources.files("dcpipe.report").joinpath("static/tablesort.min.js")
    return f.read_text() if f.is_file() else None


def nav(sections: list[Section]) -> list[tuple[str, str]]:
    """(key, label) per section, labelled by its title up to the colon; sections sharing a label ('Speed') share
    one link, to the first of them."""
    out, seen = [], set()
    for s in sections[1:]:
        label = s.title.split(":")[0].replace(" (DC paper Figure 4)", "")
        if label not in seen:
            seen.add(label)
            out.append((s.key, label))
    return out


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table_class(s: Section) -> str:
    classes = []
    if len(s.rows) >= SORTABLE_ROWS:
        classes.append("sortable")
    if len(s.rows) >= FILTERABLE_ROWS and any(h in FILTER_COLUMNS for h in s.header):
        classes.append("filterable")
    return " ".join(classes)


def _cell_class(c) -> str:
    return " ".join(x for x in (f"st-{c.status}" if c.status else "", "num" if c.numeric else "") if x)


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("dcpipe.report", "templates"), autoescape=autoescape,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters.update(md_cell=_md_cell, table_class=_table_class, cell_class=_cell_class)
    env.globals.update(filter_columns=FILTER_COLUMNS)
    return env


def render_markdown(sections: list[Section], top: FirstScreen) -> str:
    text = _environment(False).get_template("report.md.j2").render(sections=sections, top=top)
    while "\n\n\n" in text:  # the template's blocks leave blank runs; Markdown needs one blank line
        text = text.replace("\n\n\n", "\n\n")
    return text


def render_html(sections: list[Section], top: FirstScreen) -> str:
    return _environment(True).get_template("report.html.j2").render(
        sections=sections, top=top, nav=nav(sections), tablesort=tablesort_script(), prefix="")


def render_cell_page(page) -> str:
    """One set's page (report.cells.CellPage), from the same blocks as the main page."""
    return _environment(True).get_template("cell.html.j2").render(page=page, tablesort=tablesort_script())
