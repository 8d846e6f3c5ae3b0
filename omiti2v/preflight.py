"""Preflight: before the first stage runs, check what every stage of the run will need.

A real run generates for hours before the judge loads; a missing judge checkpoint found then wastes them.
`preflight` looks at the benchmark, every checkpoint (generator, judge, scorers), the results root and the
free disk for the planned videos, and raises ONE PreflightError listing everything missing with its config
key and the `hf download ...` command. Nothing is loaded. Experts skip it with `preflight=false`.

What is not on this machine must come from the Hugging Face hub (HF_ENDPOINT, default https://huggingface.co).
The hub is asked once per repository, with a short timeout, whether the repository exists; when it does not
answer (or HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE is set) everything not on this machine counts as missing, and
the message says so, instead of a run that starts and then retries its downloads for minutes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from omegaconf import DictConfig

from .config_check import writable_problem
from .data import Benchmark, benchmark_from_config
from .errors import SetupError
from .runs import RunDir

# Bytes per generated pixel (frames x height x width) of an H.264 video, generous: real outputs use ~0.05.
VIDEO_BYTES_PER_PIXEL = 0.2
HUB_TIMEOUT_S = 5.0  # per question to the hub; a hub that does not answer costs this once


class PreflightError(SetupError, RuntimeError):
    """Something a stage of this run needs is missing; the message lists every item, one per line."""


def hub_offline() -> bool:
    from .scorers.weights import downloads_allowed

    return not downloads_allowed(True)  # HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, read in one place


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or "https://huggingface.co"


class Hub:
    """The hub as this preflight sees it: off (the offline switches), unreachable (it did not answer once), or
    asked per repository whether it exists. `unreachable` holds why, for the message."""

    def __init__(self, timeout: float = HUB_TIMEOUT_S):
        self.timeout = timeout
        self.offline = hub_offline()
        self.unreachable: str | None = None
        self._answers: dict[tuple[str, str], str | None] = {}

    @property
    def usable(self) -> bool:
        return not self.offline and self.unreachable is None

    def note(self) -> str | None:
        """What the message says once about the hub, or None when it answered (or was not needed)."""
        if self.unreachable:
            return (f"the Hugging Face hub ({hub_endpoint()}) did not answer ({self.unreachable}), so what is not "
                    "on this machine counts as missing; set HF_HUB_OFFLINE=1 to skip asking")
        return None

    def problem(self, repo: str, repo_type: str = "model") -> str | None:
        """Why `repo` cannot be downloaded ("offline", "the hub did not answer", "no such repository on the hub",
        ...), or None when the hub has it."""
        if self.offline:
            return "HF_HUB_OFFLINE is set and it is not in the Hugging Face cache"
        if self.unreachable:
            return "the hub did not answer and it is not in the Hugging Face cache"
        key = (repo, repo_type)
        if key not in self._answers:
            self._answers[key] = self._ask(repo, repo_type)
        return self._answers[key] if self.unreachable is None else "the hub did not answer"

    def _ask(self, repo: str, repo_type: str) -> str | None:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError

        try:
            HfApi(endpoint=hub_endpoint()).repo_info(repo, repo_type=repo_type, timeout=self.timeout)
        except GatedRepoError:
            return "gated on the hub: accept its terms on its hub page, then `hf auth login`"
        except (RepositoryNotFoundError, HFValidationError):
            return f"no {repo_type} repository {repo!r} on the hub ({hub_endpoint()})"
        except Exception as exc:  # noqa: BLE001 - no connection, a timeout, a server error: the hub did not answer
            self.unreachable = f"{type(exc).__name__} within {self.timeout:g} s"
        return None


def cached(repo: str, repo_type: str = "model") -> bool:
    """Whether a snapshot of `repo` is in the local Hugging Face cache (no network)."""
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo, repo_type=repo_type, local_files_only=True)
    except Exception:  # noqa: BLE001 - any lookup failure means: not in the cache
        return False
    return True


def checkpoint_problem(repo: str, marker: str | None, hub: Hub) -> str | None:
    """Why `repo` (a local folder holding `marker` when given, or a hub id) is not usable, or None: on disk, in
    the HF cache, or on a hub that answers."""
    folder = Path(repo).expanduser()
    if folder.is_dir():
        return None if marker is None or (folder / marker).is_file() else f"no {marker} in the folder"
    if folder.is_absolute() or repo.startswith("."):
        return "not a folder holding the model"
    return None if cached(repo) else hub.problem(repo)


def missing_line(what: str, key: str, repo: str, why: str) -> str:
    """One line: what is missing and why, its config key, and how to get it."""
    if Path(repo).expanduser().is_absolute() or repo.startswith("."):
        return f"{what} {key}={repo!r} is missing: {why}"
    return f"{what} {key}={repo!r} is missing ({why}): `hf download {repo} --local-dir DIR`, then {key}=DIR"


def generator_problems(cfg: DictConfig, run: RunDir | None, benchmark: Benchmark | None, hub: Hub) -> Iterable[str]:
    """Missing generator checkpoints, unless every video is already there (a resumed run needs none)."""
    from .models import baseline_for

    baseline = baseline_for(cfg.model)
    try:
        settings = baseline.settings(cfg.model)
    except ValueError as exc:  # a value the baseline refuses (e.g. a frame count its VAE cannot make)
        yield str(exc)
        return
    done = run is not None and benchmark is not None and all(run.video(sid).exists() for sid in benchmark.ids)
    if settings["weights"] != "pretrained" or done:
        return
    for key, repo in baseline.pretrained_ids(settings).items():
        # a pipeline folder has model_index.json; component folders (transformer, image encoder) vary
        why = checkpoint_problem(str(repo), "model_index.json" if key == "checkpoint" else None, hub)
        if why:
            yield missing_line("generator checkpoint", f"model.{key}", str(repo), why)


def judge_problems(cfg: DictConfig, hub: Hub) -> Iterable[str]:
    model = str(cfg.judge.get("model") or "")
    why = checkpoint_problem(model, "config.json", hub) if model and model != "tiny" else None
    if why:
        yield missing_line("judge checkpoint", "judge.model", model, why)


def scorer_problems(cfg: DictConfig, hub: Hub) -> Iterable[str]:
    """Scorer weights missing from scorer.weights_dir and the caches; with downloads on, only what the hub does
    not have (hub models), or everything missing when the hub does not answer."""
    import torch

    from .scorers import build_scorer
    from .scorers.weights import downloads_allowed, weights_dir_from

    scfg = cfg.scorer
    weights_dir = weights_dir_from(scfg.get("weights_dir"))
    device = torch.device("cpu")  # building a scorer loads nothing; the device only matters for load()
    files = {w.label: w for metric in scfg.metrics for w in build_scorer(metric, scfg, device).required_weights()}
    for wf in files.values():
        if wf.find(weights_dir) is not None:
            continue
        if downloads_allowed(scfg.get("allow_download", True)):
            why = hub.problem(wf.hub_id) if wf.hub_id else None if hub.usable else "the hub did not answer"
            if why is None:
                continue
        yield f"scorer weights (scorer.weights_dir / OMITI2V_WEIGHTS) {wf.instructions(weights_dir)[2:]}"


def benchmark_problem(cfg: DictConfig, hub: Hub) -> str | None:
    """Why the hub benchmark (data=omiti2v without a local copy) cannot be fetched, before trying to fetch it."""
    data = cfg.data
    if data.get("source") != "hf" or data.get("root") or os.environ.get("OMITI2V_DATA"):
        return None
    from .data.benchmark import HF_DATASET_ID

    repo = str(data.get("hf_id") or HF_DATASET_ID)
    why = None if cached(repo, "dataset") else hub.problem(repo, "dataset")
    if why:
        return (f"benchmark data.hf_id={repo!r} is missing ({why}): `hf download {repo} --repo-type dataset "
                "--local-dir DIR`, then data=local data.root=DIR (or OMITI2V_DATA=DIR)")
    return None


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


def disk_problem(cfg: DictConfig, run: RunDir, benchmark: Benchmark) -> str | None:
    need = planned_video_bytes(cfg, run, benchmark)
    free = shutil.disk_usage(run.path).free
    if need > free:
        return (f"not enough free disk for the planned videos under {run.path}: about {need / 1e9:.1f} GB needed, "
                f"{free / 1e9:.1f} GB free (results_root / OMITI2V_RESULTS)")
    return None


def preflight(cfg: DictConfig, stages: list[str], run_path: Path, hub: Hub | None = None) -> Benchmark:
    """The benchmark of the run, once everything the `stages` need is known to be there; else PreflightError."""
    hub = hub or Hub()
    problems: list[str] = []
    benchmark = None
    missing = benchmark_problem(cfg, hub)
    if missing:
        problems.append(missing)
    else:
        try:
            benchmark = benchmark_from_config(cfg.data)
        except (SetupError, ValueError, OSError) as exc:
            detail = "\n  ".join(str(exc).splitlines())  # every record's problem, not only the first line
            problems.append(f"benchmark (data.root / OMITI2V_DATA, data.hf_id): {detail}")
    unwritable = writable_problem(run_path, create=True)
    if unwritable:
        problems.append(unwritable)
    run = RunDir(run_path) if not unwritable else None
    if "generate" in stages:
        generator = list(generator_problems(cfg, run, benchmark, hub))
        problems += generator
        if run is not None and benchmark is not None and not any(line.startswith("model") for line in generator):
            problems += filter(None, [disk_problem(cfg, run, benchmark)])
    if "judge" in stages:
        problems += judge_problems(cfg, hub)
    if "score" in stages:
        problems += scorer_problems(cfg, hub)
    if problems:
        note = hub.note()
        problems.append("(after fixing, rerun; experts can skip these checks with preflight=false)")
        raise PreflightError(f"preflight: {len(problems) - 1} problem(s) before any stage runs"
                             + (f"; {note}" if note else "") + "\nerror: " + "\nerror: ".join(problems))
    return benchmark
