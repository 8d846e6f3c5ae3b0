"""Visual metrics of a run's videos (VBench's dynamic degree and aesthetic quality, MUSIQ imaging quality, and the
input-preservation measures: VBench-I2V's I2V subject and background, the copy index).

`run_scorers(cfg, run, benchmark)` is the pipeline's `score` stage; metrics are registered scorers
(`SCORERS`), one module each, selected by `cfg.scorer.metrics`.
"""

from . import aesthetic, copy_index, dynamic_degree, i2v_background, i2v_subject, imaging  # noqa: F401  (registers the scorers)
from .base import SCORERS, Clip, Score, Scorer, build_scorer, register_scorer
from .flow import FLOW_BACKENDS, build_flow_backend, register_flow_backend
from .resize import PaperResize, nearest_paper_ratio, paper_resize_for, paper_target_size
from .stage import decode_clip, run_scorers, score_videos
from .weights import MissingWeightsError, WeightFile, resolve_weights

__all__ = [
    "FLOW_BACKENDS", "SCORERS", "Clip", "MissingWeightsError", "Score", "Scorer", "WeightFile", "build_flow_backend",
    "build_scorer", "decode_clip", "PaperResize", "nearest_paper_ratio", "paper_resize_for", "paper_target_size", "register_flow_backend", "register_scorer",
    "resolve_weights", "run_scorers", "score_videos",
]
