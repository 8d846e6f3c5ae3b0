"""The scorer registries: metric name -> `base.Scorer` subclass (`scorer.metrics`), flow backend name ->
`flow.FlowBackend` subclass (`scorer.flow_backend`). Declared lazily, so the config check lists the names without
importing torch. Adding a metric: its module (one file per metric) and one line in SCORERS."""

from __future__ import annotations

from ..config_rules import one_of, subset_of
from ..registry import Registry

SCORERS = Registry("scorer.metrics", base="omiti2v.scorers.base:Scorer", name_attr="metric").declare_all({
    "dynamic_degree": "omiti2v.scorers.dynamic_degree:DynamicDegreeScorer",
    "aesthetic_quality": "omiti2v.scorers.aesthetic:AestheticScorer",
    "imaging_quality": "omiti2v.scorers.imaging:ImagingQualityScorer",
    "i2v_subject": "omiti2v.scorers.i2v_subject:I2VSubjectScorer",
    "i2v_background": "omiti2v.scorers.i2v_background:I2VBackgroundScorer",
    "copy_index": "omiti2v.scorers.copy_index:CopyIndexScorer",
})
FLOW_BACKENDS = Registry("scorer.flow_backend", base="omiti2v.scorers.flow:FlowBackend", name_attr="name").declare_all({
    "raft": "omiti2v.scorers.flow:RaftFlow",
    "opencv_dis": "omiti2v.scorers.flow:DisFlow",
})

CONFIG_RULES = {
    "scorer.metrics": subset_of(*sorted(SCORERS)),
    "scorer.flow_backend": one_of(*sorted(FLOW_BACKENDS)),
}
