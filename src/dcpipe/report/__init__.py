"""reports/: the page (Markdown and HTML) that shows what is reproduced, every paper table beside ours with its
budget, the figures, and the metrics and plot files DVC reads. files: what the report rule reads and writes;
collect: reading the declared inputs; sections/: one module per paper item; render: the pages; build: order and
outputs. Imports point one way: the report uses paths, paper, io, config and nas, and nothing imports the report
but the report rule (and the Snakefile, for files only, which is why this module imports nothing heavy)."""


def build_report(params, params_file, out_dir="reports", inputs=None):
    from .build import build_report as build

    return build(params, params_file, out_dir, inputs)
