"""Visual metrics of a run's videos (VBench's dynamic degree and aesthetic quality, MUSIQ imaging quality, and the
input-preservation measures: VBench-I2V's I2V subject and background, the copy index).

`run_scorers(ctx, run, benchmark)` is the pipeline's `score` stage; metrics are registered scorers
(`SCORERS`, registry.py), one module each, selected by `cfg.scorer.metrics`. The modules (and torch) load on
first use.
"""

from ..registry import lazy_exports
from .registry import FLOW_BACKENDS, SCORERS

__getattr__ = lazy_exports(__name__, {
    ".base": ("Clip", "Score", "Scorer", "build_scorer"),
    ".flow": ("build_flow_backend",),
    ".resize": ("PaperResize", "nearest_paper_ratio", "paper_resize_for", "paper_target_size"),
    ".stage": ("decode_clip", "run_scorers", "score_videos"),
    ".weights": ("MissingWeightsError", "WeightFile", "resolve_weights"),
})

__all__ = [
    "FLOW_BACKENDS", "SCORERS", "Clip", "MissingWeightsError", "PaperResize", "Score", "Scorer", "WeightFile",
    "build_flow_backend", "build_scorer", "decode_clip", "nearest_paper_ratio", "paper_resize_for",
    "paper_target_size", "resolve_weights", "run_scorers", "score_videos",
]
