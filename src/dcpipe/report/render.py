"""Markdown and HTML pages from the same Sections, through jinja2 templates (report/templates): the HTML is
autoescaped, and every value reaching a template is already a formatted string, so no Markdown syntax or Python
repr can leak into either page."""

from __future__ import annotations

import jinja2

from .section import Section


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("dcpipe.report", "templates"), autoescape=autoescape,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters["md_cell"] = _md_cell
    return env


def render_markdown(sections: list[Section], setting: str, provenance_line: str) -> str:
    text = _environment(False).get_template("report.md.j2").render(sections=sections, setting=setting,
                                                                   provenance_line=provenance_line)
    while "\n\n\n" in text:  # the template's blocks leave blank runs; Markdown needs one blank line
        text = text.replace("\n\n\n", "\n\n")
    return text


def render_html(sections: list[Section], setting: str, provenance_line: str) -> str:
    return _environment(True).get_template("report.html.j2").render(sections=sections, setting=setting,
                                                                    provenance_line=provenance_line)
