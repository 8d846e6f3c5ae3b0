"""Results: the paper's tables with confidence intervals and paired deltas, and plots, from run directories.
The modules (and pandas, scipy) load on first use."""

from ..registry import lazy_exports

__getattr__ = lazy_exports(__name__, {
    ".paper": ("METRICS", "load_paper"),
    ".runs": ("RunResult", "discover_runs"),
    ".tables": ("build_tables", "write_tables"),
})

__all__ = ["METRICS", "RunResult", "build_tables", "discover_runs", "load_paper", "write_tables"]
