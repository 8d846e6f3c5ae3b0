"""Schedule resolution: `schedule.blocks: calibrated` becomes the block list of a calibration file.

`omiti2v calibrate` writes ``results/calibration/<model>/blocks.yaml``; `ASMConfig.from_hydra` reads it here,
so the generation stage never imports the calibration package.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def load_calibrated_blocks(path: str | Path, model_name: str | None = None) -> list[int]:
    """The `blocks` list of a calibration file, validated (sorted unique non-negative ints below num_blocks)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"schedule.calibration_file {path} does not exist: run `omiti2v calibrate --model "
                                f"{model_name or 'MODEL'}` first, or point schedule.calibration_file at a blocks.yaml")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(document, dict) or "blocks" not in document:
        raise ValueError(f"{path}: field 'blocks' is missing")
    blocks = document["blocks"]
    if not isinstance(blocks, list) or not blocks or not all(isinstance(b, int) and b >= 0 for b in blocks):
        raise ValueError(f"{path}: field 'blocks' must be a non-empty list of non-negative integers")
    if blocks != sorted(set(blocks)):
        raise ValueError(f"{path}: field 'blocks' must be sorted and unique")
    num = document.get("num_blocks")
    if isinstance(num, int) and blocks[-1] >= num:
        raise ValueError(f"{path}: field 'blocks' lists block {blocks[-1]} but num_blocks is {num}")
    if model_name is not None and document.get("model") not in (None, model_name):
        raise ValueError(f"{path}: calibrated for model {document.get('model')!r}, not {model_name!r}")
    return blocks


def resolve_schedule(schedule_cfg: Mapping[str, Any], model_name: str | None = None) -> Mapping[str, Any]:
    """`cfg.schedule` as is, or, for `blocks: calibrated`, a dict with the calibration file's list as blocks."""
    if schedule_cfg.get("blocks") != "calibrated":
        return schedule_cfg
    plain = dict(schedule_cfg)
    if not plain.get("calibration_file"):
        raise ValueError("schedule.blocks is 'calibrated' but schedule.calibration_file is not set")
    plain["blocks"] = load_calibrated_blocks(str(plain["calibration_file"]), model_name)
    return plain


def config_problems(cfg) -> list[str]:
    """`schedule=calibrated` before the calibration exists: say which command writes the file."""
    schedule = cfg.get("schedule") or {}
    if schedule.get("blocks") != "calibrated":
        return []
    path = schedule.get("calibration_file")
    if path is None or not Path(str(path)).expanduser().is_file():
        model = (cfg.get("model") or {}).get("name")
        return [f"schedule=calibrated: no calibration file at {path} (schedule.calibration_file); run "
                f"`omiti2v calibrate --model {model}` first"]
    return []
