"""The `score` pipeline stage: the run's videos -> scores.jsonl, one record per (video, metric).

Each video is decoded once (only the frames some metric needs) and handed to every metric; videos are scored
`videos_per_batch` at a time so models batch across videos, while the next batch decodes in a background
thread. Resumable: a (sample, metric) whose latest record has no error, the same backend and the same video
bytes (video_sha256) is skipped, so re-running after a kill, after switching flow backend or after a video
was regenerated does exactly the missing work. All weights are checked before any model loads (one error
listing every missing file). Launches on one run folder share the videos through claims.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from ..claims import Claims, ClaimSettings, LogWatch, claimed_batches
from ..runs import RunDir, append_jsonl, config_hash, read_jsonl, video_sha256s
from ..video import VideoDecodeError, probe_video, read_video
from .base import Clip, Scorer, build_scorer
from .input_image import load_input_image
from .resize import PaperResize, paper_resize_for
from .weights import resolve_weights, weights_dir_from

if TYPE_CHECKING:
    from ..data import Benchmark

log = logging.getLogger(__name__)


def decode_clip(path: Path, sample_id: str, scorers: Sequence[Scorer], resize: PaperResize | None = None,
                image: Path | None = None) -> Clip:
    """The frames every listed scorer needs, decoded once, after the official resize when `resize` is set, and
    the input `image` when a scorer compares with it. The clip's details carry the size the metrics saw."""
    info = probe_video(path)
    wanted = sorted(set().union(*(scorer.frame_indices(info) for scorer in scorers)))
    indices = None if len(wanted) == info.num_frames else wanted
    details: dict = {}
    if resize is None:
        frames, info = read_video(path, indices)
    else:
        frames, info, details["resize"] = resize.read(path, indices)
    clip = Clip(sample_id, frames, info, indices, details)
    if image is not None and any(s.needs_input_image for s in scorers):
        clip.image = load_input_image(image)
    clip.details["size"] = [info.width, info.height]
    return clip


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _record(sample_id: str, scorer: Scorer, value: float | None, details: dict, error: str | None) -> dict:
    if value is not None and not math.isfinite(value):  # logs are strict JSON: a NaN score is a failed score
        value, error = None, error or f"non-finite value {value}"
    return {"sample_id": sample_id, "metric": scorer.metric, "value": value, "details": details,
            "backend": scorer.backend, "comparable": scorer.comparable, "error": error}


def score_clips(scorer: Scorer, clips: Sequence[Clip]) -> list[dict]:
    """Score a batch; if the batch fails, score its clips one by one so one bad video costs one record."""
    try:
        return [_record(c.sample_id, scorer, s.value, {**c.details, **s.details}, None)
                for c, s in zip(clips, scorer.score(clips), strict=True)]
    except Exception as exc:  # noqa: BLE001 - isolate the failing clip, record the error, keep going
        if len(clips) == 1:
            log.warning("%s failed on %s: %s", scorer.metric, clips[0].sample_id, exc)
            return [_record(clips[0].sample_id, scorer, None, dict(clips[0].details), f"{type(exc).__name__}: {exc}")]
        return [rec for clip in clips for rec in score_clips(scorer, [clip])]


def score_videos(videos: Mapping[str, Path], needs: Mapping[str, Sequence[Scorer]], resize: PaperResize | None = None,
                 videos_per_batch: int = 4, images: Mapping[str, Path] | None = None) -> Iterator[tuple[int, list[dict]]]:
    """(videos done, records) per batch of `videos_per_batch`: sample_id -> video path, scored by the scorers
    in needs[sample_id]. Decoding of the next batch overlaps scoring of this one. Scorers must be loaded."""
    order = list(videos)
    scorers = list({id(s): s for ss in needs.values() for s in ss}.values())

    def decode(sample_ids: list[str]) -> list[Clip | dict]:
        """Clips, or error records (one per needed metric) for videos that are missing or undecodable."""
        out: list[Clip | dict] = []
        for sid in sample_ids:
            try:
                out.append(decode_clip(videos[sid], sid, needs[sid], resize, (images or {}).get(sid)))
            except (VideoDecodeError, OSError) as exc:
                out.extend(_record(sid, s, None, {}, str(exc)) for s in needs[sid])
        return out

    batches = list(_chunks(order, videos_per_batch))
    if not batches:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(decode, batches[0])
        for n, batch in enumerate(batches):
            decoded = pending.result()
            if n + 1 < len(batches):
                pending = pool.submit(decode, batches[n + 1])  # decode ahead while the models run
            records = [d for d in decoded if isinstance(d, dict)]
            clips = [d for d in decoded if isinstance(d, Clip)]
            for scorer in scorers:
                mine = [c for c in clips if scorer in needs[c.sample_id]]
                if mine:
                    records.extend(score_clips(scorer, mine))
            yield len(batch), records


def run_scorers(ctx, run: RunDir, benchmark: Benchmark) -> None:
    """Score every benchmark sample's video with the metrics in cfg.scorer.metrics; append to scores.jsonl.
    `ctx`: the run's resolved settings (omiti2v.context.RunContext)."""
    cfg = ctx.cfg
    scfg = cfg.scorer
    device = torch.device(ctx.device)
    scorers = [build_scorer(metric, scfg, device) for metric in scfg.metrics]
    latest = {(r["sample_id"], r["metric"]): r for r in read_jsonl(run.scores_log)}  # a later line supersedes
    shas = video_sha256s(run, benchmark.ids)
    done = {(sid, metric, r.get("backend")) for (sid, metric), r in latest.items()
            if r.get("error") is None and r.get("video_sha256", shas.get(sid)) == shas.get(sid)}
    needs = {sid: [s for s in scorers if (sid, s.metric, s.backend) not in done] for sid in benchmark.ids}
    needs = {sid: todo for sid, todo in needs.items() if todo}
    if not needs:
        log.info("score: all %d samples already scored for %s", len(benchmark), list(scfg.metrics))
        return
    active = [s for s in scorers if any(s in todo for todo in needs.values())]
    files = {w.label: w for s in active for w in s.required_weights()}
    weights = resolve_weights(list(files.values()), weights_dir_from(scfg.get("weights_dir")), scfg.get("allow_download", True))
    for scorer in active:
        scorer.load(weights)
    per_batch = int(scfg.get("videos_per_batch", 4))
    resize = paper_resize_for(scfg.get("aspect_resize"), {sid: run.video(sid) for sid in benchmark.ids})
    scope = "score-" + config_hash(sorted((s.metric, s.backend) for s in active))[7:19]
    claims = Claims(run.path, scope, ClaimSettings.from_config(cfg.get("claims")))
    scored_elsewhere = LogWatch(run.scores_log).changed
    images = {s.id: s.image_path for s in benchmark}
    with claims, tqdm(total=len(needs), desc="score", unit="video") as bar:
        # Claimed a few batches at a time, so decoding still runs ahead of scoring within a group.
        for group in claimed_batches(claims, list(needs), 4 * per_batch, str, scored_elsewhere):
            videos = {sid: run.video(sid) for sid in group}
            for done_videos, records in score_videos(videos, needs, resize, per_batch, images):
                for rec in records:
                    rec["video_sha256"] = shas.get(rec["sample_id"])
                append_jsonl(run.scores_log, records)
                bar.update(done_videos)
    if device.type == "cuda":
        torch.cuda.empty_cache()
