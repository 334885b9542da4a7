"""`snakemake --report`: the snakemake-workflows kind of report (workflow/report/workflow.rst, captions on the report
rule's outputs, the rule graph, run times) written after the end-to-end smoke run, as one file that opens offline."""
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import beside_the_workflow, run

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# a phrase of each caption, as it appears in the rendered report (workflow/report/*.rst)
CAPTIONS = {
    "workflow.rst": "reproduces <em>dataset condensation by gradient matching</em>",
    "index.rst": "The full dcpipe report",
    "figures.rst": "The gradient-matching loss over outer iterations",  # matching_loss.png's caption
    "table1.rst": "DC Table 1 as a table",
    "cross.rst": "Cross studies (",
    "metrics.rst": "summary as JSON (",
}
# anything the page would fetch: <script src>, <link href>, <img src>, <iframe src>, CSS url() and @import
EXTERNAL = re.compile(r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//"
                      r"|url\(\s*[\"']?(?:https?:)?//|@import\s+(?:url\()?\s*[\"']?(?:https?:)?//", re.I)


@pytest.fixture(scope="module")
def snakemake_report(smoke_run, tmp_path_factory) -> str:
    # the DVC test of the e2e module edits it
    (smoke_run / "params.yaml").write_text(beside_the_workflow((ROOT / ".test/params.yaml").read_text()))
    out = tmp_path_factory.mktemp("snakemake_report") / "report.html"
    run(["snakemake", "--report", str(out)], smoke_run)
    print(f"snakemake report: {out}")
    return out.read_text()


def test_the_report_has_the_workflow_description_and_every_caption(snakemake_report):
    for caption_file, phrase in CAPTIONS.items():
        assert (ROOT / "workflow/report" / caption_file).exists()
        assert phrase in snakemake_report, f"{caption_file}'s caption is not in the report"
    for category in ("1. Report", "2. Figures", "3. Tables"):
        assert category in snakemake_report
    for figure in ("synthetic_FashionMNIST_ipc1.png", "matching_loss.png", "continual.png"):
        assert figure in snakemake_report, f"figure {figure} is not in the report"


def test_the_report_has_the_rule_graph_and_run_times(snakemake_report):
    # the rule graph and the statistics page are drawn from the embedded rule records and job run times
    for rule in ("prepare_data", "condense", "evaluate", "report"):
        assert f'"{rule}"' in snakemake_report
    assert re.search(r'"(?:starttime|endtime|runtime)"', snakemake_report)


def test_the_report_is_one_file_that_needs_no_network(snakemake_report):
    assert not EXTERNAL.findall(snakemake_report), EXTERNAL.findall(snakemake_report)[:5]
