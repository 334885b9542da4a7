"""reports/: the page (Markdown and HTML) that shows what is reproduced, every paper table beside ours with its
budget, the figures, and the metrics and plot files DVC reads. collect: reading the rule's declared inputs
(report_files.report_inputs); sections/: one module per paper item; render: the pages; build: order and outputs. Only
the report rule's script imports this package."""

from .build import build_report

__all__ = ["build_report"]
