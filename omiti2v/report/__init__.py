"""Results: the paper's tables with confidence intervals and paired deltas, and plots, from run directories."""

from .paper import METRICS, load_paper
from .runs import RunResult, discover_runs
from .tables import build_tables, write_tables

__all__ = ["METRICS", "RunResult", "build_tables", "discover_runs", "load_paper", "write_tables"]
