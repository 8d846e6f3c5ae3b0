"""`omiti2v submit`: a submission from intake to leaderboard row.

Intake and validation happen in a private staging folder under <leaderboard>/staging/, removed afterwards
whatever happens (its path never appears in a message); a rejected submission leaves no file behind, and
`--validate-only` applies exactly the same rules, the entry name included. An accepted one becomes a run folder
<leaderboard>/runs/<name>/ (videos/, judge.jsonl, scores.jsonl, samples.csv, summary.json, submission.json), is
evaluated like any run, `run_stages(cfg, ["judge", "score", "summary"])` with one composed Hydra config, and gets
an entry <leaderboard>/entries/<name>.json (schema: omiti2v/schemas/leaderboard_entry.schema.json) from the
summary.json the summary stage wrote.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from omegaconf import DictConfig

from ..data import benchmark_from_config
from ..paths import CONF_DIR, UnsafePathError, confined, stem_problem
from ..pipeline import run_stages
from ..report.runs import extra_judge_cells
from ..runs import RunDir, atomic_write_json, versions
from ..schemas import current_version
from .archive import IntakeLimits, SubmissionRejected, stage_submission
from .board import rebuild_leaderboard, validate_entry
from .validate import METADATA_FILE, StagedSubmission, VideoLimits, validate_staged


class EvaluationError(RuntimeError):
    """An accepted submission's judge, score or summary step failed; its run folder is kept for a rerun."""


SMOKE_GROUPS = {"tiny"}
EVALUATION_STAGES = ["judge", "score", "summary"]


def compose_config(data: str, judge: str, scorer: str, overrides: list[str] = ()) -> DictConfig:
    """The evaluation config, composed once: conf/config.yaml with the data, judge and scorer groups chosen and
    the evaluation stages; `for_entry` fills in the entry's run folder and submitted model after intake."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    smoke = judge in SMOKE_GROUPS or scorer in SMOKE_GROUPS
    args = [f"data={data}", f"judge={judge}", f"scorer={scorer}", f"smoke={str(smoke).lower()}",
            f"stages=[{','.join(EVALUATION_STAGES)}]", "profile=leaderboard"]
    if smoke:
        args.append("notes=['smoke evaluation: tiny judge or scorer, numbers are meaningless']")
    args += list(overrides)
    if GlobalHydra.instance().is_initialized():  # inside a Hydra app: reuse its search path
        return compose(config_name="config", overrides=args)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=args)


def for_entry(cfg: DictConfig, run: RunDir, name: str, model: str) -> DictConfig:
    """`cfg` for one entry: its run folder and name, and the submitted model (summary.json's identity)."""
    cfg.run_dir, cfg.run_name, cfg.submission = str(run.path), f"leaderboard/{name}", {"model": model}
    return cfg


def entry_name(metadata: dict, requested: str | None) -> str:
    raw = requested or metadata.get("name") or f"{metadata['model']}-{metadata['method']}"
    slug = re.sub(r"[^a-z0-9._-]+", "-", raw.lower()).strip("-._")[:80].rstrip("-._")
    if not slug:
        raise SubmissionRejected(f"entry name {raw!r}: needs letters or digits")
    if problem := stem_problem(slug):
        raise SubmissionRejected(f"entry name {problem} (pass --name NEW)")
    return slug


def claim_name(metadata: dict, requested: str | None, leaderboard: Path, overwrite: bool) -> tuple[str, Path, Path]:
    """The entry name with its run folder and entry file; refused when taken and `overwrite` is not set."""
    name = entry_name(metadata, requested)
    run_path, entry_path = confined(leaderboard / "runs", name), confined(leaderboard / "entries", f"{name}.json")
    if (run_path.exists() or entry_path.exists()) and not overwrite:
        raise SubmissionRejected(f"entry '{name}' already exists (pass --name NEW or --overwrite)")
    return name, run_path, entry_path


def videos_hash(staged: StagedSubmission) -> str:
    lines = "".join(f"{sid} {info['sha256']}\n" for sid, info in sorted(staged.video_info.items()))
    return "sha256:" + hashlib.sha256(lines.encode()).hexdigest()


def _range(staged: StagedSubmission, key: str) -> list:
    values = [v[key] for v in staged.video_info.values()]
    return [min(values), max(values)]


@contextmanager
def staging_folder(leaderboard: Path) -> Iterator[Path]:
    """A fresh, private staging path (created by the intake); afterwards it is removed, and so is every folder
    above it that this call created and left empty: a rejected submission leaves nothing behind. A `staging`
    that is a symlink (or anything but a folder) is refused, never followed."""
    area = leaderboard / "staging"
    if area.is_symlink() or (area.exists() and not area.is_dir()):
        raise UnsafePathError(f"{area}: not a folder (a symlink or a file); the staging area must be a plain "
                              "folder inside the leaderboard root: remove it and rerun")
    staging = area / uuid.uuid4().hex
    created = [p for p in (staging.parent, *staging.parent.parents) if not p.exists()]
    try:
        yield staging
    except SubmissionRejected as exc:
        hidden = [p.replace(f"{staging}/", "").replace(str(staging), "<submission>") for p in exc.problems]
        raise SubmissionRejected(*hidden) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # deepest first
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def discard_run(run_path: Path) -> None:
    """Remove an entry's run folder that never reached its evaluation, and `runs/` when that leaves it empty."""
    shutil.rmtree(run_path, ignore_errors=True)
    if run_path.parent.is_dir() and not any(run_path.parent.iterdir()):
        run_path.parent.rmdir()


def intake(source: Path, ids: list[str], leaderboard: Path, intake_limits: IntakeLimits, video_limits: VideoLimits,
           name: str | None, overwrite: bool) -> tuple[str, RunDir, StagedSubmission]:
    """Stage, validate and move the videos into a fresh run folder; the staging folder never survives."""
    with staging_folder(leaderboard) as staging:
        files = stage_submission(source, staging, intake_limits)
        staged = validate_staged(files, ids, video_limits)
        name, run_path, _ = claim_name(staged.metadata, name, leaderboard, overwrite)
        if run_path.exists():
            shutil.rmtree(run_path)
        try:
            run = RunDir(run_path)
            run.videos.mkdir()
            for sid, path in staged.videos.items():
                shutil.move(path, run.video(sid))
        except BaseException:
            discard_run(run_path)
            raise
        moved = {sid: run.video(sid) for sid in staged.videos}
        return name, run, StagedSubmission(staged.metadata, moved, staged.video_info, staged.metadata_sha256)


def submit(source: str | Path, data: str = "mini", judge: str = "tiny", scorer: str = "tiny",
           leaderboard: str | Path = "results/leaderboard", name: str | None = None, overwrite: bool = False,
           video_limits: VideoLimits | None = None, max_file_bytes: int | None = None,
           max_total_bytes: int | None = None, overrides: list[str] = (), validate_only: bool = False) -> dict:
    """Validate, evaluate and enter a submission; returns the entry (or the validation report)."""
    source, leaderboard = Path(source), Path(leaderboard).resolve()
    video_limits = video_limits or VideoLimits()
    cfg = compose_config(data, judge, scorer, overrides)
    benchmark = benchmark_from_config(cfg.data)
    limits = IntakeLimits.for_files([f"{sid}.mp4" for sid in benchmark.ids] + [METADATA_FILE], max_file_bytes,
                                    max_total_bytes)
    if validate_only:
        with staging_folder(leaderboard) as staging:
            staged = validate_staged(stage_submission(source, staging, limits), benchmark.ids, video_limits)
            name = claim_name(staged.metadata, name, leaderboard, overwrite)[0]
        return {"valid": True, "name": name, "metadata": staged.metadata, "videos": len(staged.videos)}

    name, run, staged = intake(source, benchmark.ids, leaderboard, limits, video_limits, name, overwrite)
    try:  # until the evaluation starts, a failure leaves nothing behind (the name stays free for a retry)
        for_entry(cfg, run, name, staged.metadata["model"])
        atomic_write_json(run.path / "submission.json", {"metadata": staged.metadata, "videos": staged.video_info})
    except BaseException:
        discard_run(run.path)
        raise
    try:
        run_stages(cfg, EVALUATION_STAGES)
        summary = json.loads(run.summary.read_text(encoding="utf-8"))
    except Exception as exc:
        raise EvaluationError(f"{run.path}: evaluation failed, the videos are kept there; fix the cause and "
                              f"resubmit with --overwrite:\n{exc}") from exc
    entry = make_entry(cfg, run, staged, name, summary, leaderboard)
    entry_path = confined(leaderboard / "entries", f"{name}.json")
    validate_entry(entry, str(entry_path))
    atomic_write_json(entry_path, entry)
    rebuild_leaderboard(leaderboard)
    return entry


def make_entry(cfg, run: RunDir, staged: StagedSubmission, name: str, summary: dict, leaderboard: Path) -> dict:
    """The leaderboard entry (schema: omiti2v/schemas/leaderboard_entry.schema.json)."""
    return {
        "schema_version": current_version("leaderboard_entry"),
        "name": name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "submission": staged.metadata,
        "data": {"name": cfg.data.name, **summary["benchmark"]},
        "hashes": {"videos": videos_hash(staged), "metadata": "sha256:" + staged.metadata_sha256,
                   "summary": "sha256:" + hashlib.sha256(run.summary.read_bytes()).hexdigest()},
        "evaluation": {"judge": cfg.judge.name, "scorer": cfg.scorer.name, "judge_model": summary["models"].get("judge"),
                       "judge_mode": summary["models"].get("judge_mode"), "scorers": summary["models"].get("scorers", {}),
                       "config_hash": summary["run"]["config_hash"], "seed": int(cfg.seed)},
        "videos": {"count": len(staged.videos), **{k: _range(staged, k) for k in ("fps", "num_frames", "width", "height")}},
        "smoke": summary["smoke"],
        "comparable": summary["comparable"],
        "metrics": summary["metrics"],
        **({"judges": judges} if (judges := extra_judge_cells(summary)) else {}),
        "versions": versions(),
        "run_dir": run.path.relative_to(leaderboard).as_posix(),
    }
