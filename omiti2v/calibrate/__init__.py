"""Calibration of foreground-sensitive blocks and attention analysis, bounded in memory at real size.

    omiti2v calibrate --model wan2.1 --samples 8          # -> results/calibration/wan2.1/blocks.yaml
    python runners/generate.py model=wan2.1 schedule=calibrated
    omiti2v analyze-attention --model wan2.1 --samples 2  # entropy vs gamma / blur, attention maps

Statistic: `omiti2v.calibrate.probe` (foreground lift); token layouts: `omiti2v.calibrate.layout`; masks:
`omiti2v.calibrate.saliency`; driver: `omiti2v.calibrate.calibration`; analysis: `omiti2v.calibrate.analysis`.
"""

from omiti2v.asm.schedule import load_calibrated_blocks, resolve_schedule  # schedule resolution lives in asm
from omiti2v.registry import lazy_exports

# `omiti2v.calibrate.probe` stays importable without the data layer (e.g. on a bare GPU host).
__getattr__ = lazy_exports(__name__, {
    ".calibration": ("CalibrationConfig", "CalibrationResult", "run_calibration", "select_blocks"),
    ".probe": ("ForegroundProbe",),
})
__all__ = ["CalibrationConfig", "CalibrationResult", "ForegroundProbe", "load_calibrated_blocks", "resolve_schedule",
           "run_calibration", "select_blocks"]
