"""Analysis and plots of trained runs and ranking results (reads results; nothing else imports it)."""

from mixpath.reporting.features import (
    layer_inputs,
    oneshot_accuracies,
    path_similarity,
    sbn_summary,
    shadow_bn_statistics,
)
from mixpath.reporting.html import write_html_report
from mixpath.reporting.plots import (
    heatmap,
    histograms,
    interval_chart,
    interval_curves,
    ranking_scatter,
    ranking_scatter_grid,
)
from mixpath.reporting.report import run_report

__all__ = [
    "heatmap",
    "histograms",
    "interval_chart",
    "interval_curves",
    "layer_inputs",
    "oneshot_accuracies",
    "path_similarity",
    "ranking_scatter",
    "ranking_scatter_grid",
    "run_report",
    "sbn_summary",
    "shadow_bn_statistics",
    "write_html_report",
]
