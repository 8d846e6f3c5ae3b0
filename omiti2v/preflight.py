"""Preflight: before the first stage runs, check what every stage of the run will need.

A real run generates for hours before the judge loads; a missing judge checkpoint found then wastes them.
`preflight` looks at the benchmark, every checkpoint (generator, judge, scorers), the results root and the
free disk for the planned videos, and raises ONE PreflightError listing everything missing with its config
key and the `hf download ...` command. Nothing is loaded. Experts skip it with `preflight=false`.

"Downloadable" means the hub is not switched off (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE); the preflight
makes no network request, so online it trusts the hub.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from omegaconf import DictConfig

from .data import Benchmark, benchmark_from_config
from .errors import SetupError
from .runs import RunDir

# Bytes per generated pixel (frames x height x width) of an H.264 video, generous: real outputs use ~0.05.
VIDEO_BYTES_PER_PIXEL = 0.2


class PreflightError(SetupError, RuntimeError):
    """Something a stage of this run needs is missing; the message lists every item, one per line."""


def hub_offline() -> bool:
    from .scorers.weights import downloads_allowed

    return not downloads_allowed(True)  # HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, read in one place


def checkpoint_available(repo: str, marker: str | None) -> bool:
    """A local folder (holding `marker` when given), a hub id in the local HF cache, or downloadable (online)."""
    folder = Path(repo).expanduser()
    if folder.is_dir():
        return marker is None or (folder / marker).is_file()
    if folder.is_absolute() or repo.startswith("."):
        return False
    if not hub_offline():
        return True
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo, local_files_only=True)
    except Exception:  # noqa: BLE001 - any lookup failure means: not usable offline
        return False
    return True


def missing_line(what: str, key: str, repo: str) -> str:
    """One line: what is missing, its config key, and how to get it."""
    if Path(repo).expanduser().is_absolute() or repo.startswith("."):
        return f"{what} {key}={repo!r} is missing: not a folder holding the model"
    return f"{what} {key}={repo!r} is missing: `hf download {repo} --local-dir DIR`, then {key}=DIR"


def generator_problems(cfg: DictConfig, run: RunDir | None, benchmark: Benchmark) -> Iterable[str]:
    """Missing generator checkpoints, unless every video is already there (a resumed run needs none)."""
    from .models import baseline_for

    baseline = baseline_for(cfg.model)
    settings = baseline.settings(cfg.model)
    if settings["weights"] != "pretrained" or (run and all(run.video(sid).exists() for sid in benchmark.ids)):
        return
    for key, repo in baseline.pretrained_ids(settings).items():
        # a pipeline folder has model_index.json; component folders (transformer, image encoder) vary
        if not checkpoint_available(str(repo), "model_index.json" if key == "checkpoint" else None):
            yield missing_line("generator checkpoint", f"model.{key}", str(repo))


def judge_problems(cfg: DictConfig) -> Iterable[str]:
    model = str(cfg.judge.get("model") or "")
    if model and model != "tiny" and not checkpoint_available(model, "config.json"):
        yield missing_line("judge checkpoint", "judge.model", model)


def scorer_problems(cfg: DictConfig) -> Iterable[str]:
    import torch

    from .scorers import build_scorer
    from .scorers.weights import downloads_allowed, weights_dir_from

    scfg = cfg.scorer
    weights_dir = weights_dir_from(scfg.get("weights_dir"))
    if downloads_allowed(scfg.get("allow_download", True)):
        return
    device = torch.device("cpu")  # building a scorer loads nothing; the device only matters for load()
    files = {w.label: w for metric in scfg.metrics for w in build_scorer(metric, scfg, device).required_weights()}
    for wf in files.values():
        if wf.find(weights_dir) is None:
            yield f"scorer weights (scorer.weights_dir / OMITI2V_WEIGHTS) {wf.instructions(weights_dir)[2:]}"


def planned_video_bytes(cfg: DictConfig, run: RunDir, benchmark: Benchmark) -> int:
    from .models import baseline_for, target_size

    baseline = baseline_for(cfg.model)
    settings = baseline.settings(cfg.model)
    frames = baseline.output_frames(settings["sampling"])
    total = 0
    for sample in benchmark:
        if not run.video(sample.id).exists():
            height, width = target_size(settings["sizing"], *sample.resolution)
            total += int(frames * height * width * VIDEO_BYTES_PER_PIXEL)
    return total


def writable_problem(run_path: Path) -> str | None:
    """Why the run folder cannot be created or written, or None."""
    try:
        run_path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=run_path, prefix=".omiti2v-preflight-"):
            pass
    except OSError as exc:
        return (f"results root {run_path} is not writable ({exc.strerror or exc}): set results_root=DIR "
                "or OMITI2V_RESULTS")
    return None


def disk_problem(cfg: DictConfig, run: RunDir, benchmark: Benchmark) -> str | None:
    need = planned_video_bytes(cfg, run, benchmark)
    free = shutil.disk_usage(run.path).free
    if need > free:
        return (f"not enough free disk for the planned videos under {run.path}: about {need / 1e9:.1f} GB needed, "
                f"{free / 1e9:.1f} GB free (results_root / OMITI2V_RESULTS)")
    return None


def preflight(cfg: DictConfig, stages: list[str], run_path: Path) -> Benchmark:
    """The benchmark of the run, once everything the `stages` need is known to be there; else PreflightError."""
    problems: list[str] = []
    benchmark = None
    try:
        benchmark = benchmark_from_config(cfg.data)
    except (SetupError, ValueError, OSError) as exc:
        detail = "\n  ".join(str(exc).splitlines())  # every record's problem, not only the first line
        problems.append(f"benchmark (data.root / OMITI2V_DATA, data.hf_id): {detail}")
    unwritable = writable_problem(run_path)
    if unwritable:
        problems.append(unwritable)
    run = RunDir(run_path) if not unwritable else None
    if benchmark is not None and "generate" in stages:
        problems += generator_problems(cfg, run, benchmark)
        if run is not None:
            problems += filter(None, [disk_problem(cfg, run, benchmark)])
    if "judge" in stages:
        problems += judge_problems(cfg)
    if "score" in stages:
        problems += scorer_problems(cfg)
    if problems:
        problems.append("(after fixing, rerun; experts can skip these checks with preflight=false)")
        raise PreflightError(f"preflight: {len(problems) - 1} problem(s) before any stage runs\nerror: "
                             + "\nerror: ".join(problems))
    return benchmark
