"""The generation stage: one MP4 per sample of this shard, resumable and robust to single-sample failures.

Per sample it writes, in this order: videos/{id}.mp4 (atomic), videos/{id}.json (the sidecar: the full record,
atomic, with the video's size, sha256 and decoded frame count), then one line in generation.jsonl. A sample is
done when its MP4 and an ok sidecar exist and the MP4 still matches the sidecar's fingerprint; a done sample whose
video is missing, resized or rewritten is superseded (a `superseded` line with the reason) and made again. On
resume, a done sample whose log line was lost (killed between the sidecar and the log) gets its line back from
the sidecar, so the log ends with exactly one ok record per finished sample. Failed samples are retried.
Launches on one folder share the work through claims (omiti2v.claims); a write the disk refuses ends the stage
(WriteFaultError) with nothing partial and no ok record left behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import resource
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm.auto import tqdm

from omiti2v.cache import teacache_handle
from omiti2v.claims import Claims, ClaimSettings, LogWatch, claimed_batches
from omiti2v.data import Benchmark, Sample
from omiti2v.errors import SetupError
from omiti2v.models import Baseline, baseline_for
from omiti2v.runs import (
    RunDir,
    WriteFaultError,
    append_jsonl,
    atomic_write_json,
    config_hash,
    file_sha256,
    read_jsonl,
    sample_seed,
    to_plain,
)
from omiti2v.video import VideoDecodeError, probe_video, write_video

from . import parallel
from .compile import apply_compile, compile_settings
from .sharding import Shard

log = logging.getLogger(__name__)


class BadOutputError(RuntimeError):
    """The pipeline returned frames that are not a valid video (NaN/inf, wrong shape)."""


def has_ok_sidecar(run: RunDir, sample_id: str) -> bool:
    try:
        return json.loads(run.sidecar(sample_id).read_text(encoding="utf-8")).get("status") == "ok"
    except (OSError, json.JSONDecodeError):
        return False


def is_done(run: RunDir, sample_id: str) -> bool:
    """The MP4 and a sidecar saying ok are both there (each is written atomically, the sidecar last)."""
    video = run.video(sample_id)
    return video.is_file() and video.stat().st_size > 0 and has_ok_sidecar(run, sample_id)


def video_seed(base: int, settings: Mapping, sample_id: str) -> int:
    """`model.seed_mode`: fixed = the base seed for every sample (official scripts); per_sample = derived per id."""
    return base if settings.get("seed_mode") == "fixed" else sample_seed(base, sample_id)


def generation_config_hash(cfg: DictConfig, base_seed: int) -> str:
    """Hash of everything that changes the videos: model (memory options aside), ASM, schedule, base seed."""
    resolved = {k: to_plain(cfg[k]) for k in ("model", "asm", "schedule") if k in cfg}
    if (cfg.get("guidance") or {}).get("method", "none") != "none":  # method none keeps the hashes of earlier runs
        resolved["guidance"] = to_plain(cfg.guidance)
    if isinstance(resolved.get("model"), dict):
        resolved["model"] = {k: v for k, v in resolved["model"].items() if k != "memory"}
    return config_hash({**resolved, "seed": base_seed})


class ConfigMismatchError(SetupError):
    """The run folder already holds videos made with another configuration."""


def check_same_config(run: RunDir, done: list[str], expected: str) -> None:
    """Refuse to mix configurations in one run folder (e.g. a gamma override without its own `variant`)."""
    other = [sid for sid in done
             if json.loads(run.sidecar(sid).read_text(encoding="utf-8")).get("config_hash") != expected]
    if other:
        raise ConfigMismatchError(
            f"{run.path}: {len(other)} finished video(s) ({', '.join(other[:3])}{', ...' if len(other) > 3 else ''}) "
            f"were made with another configuration than this run's ({expected[:19]}...). Give this configuration "
            "its own run folder with the override `variant=-<name>` (e.g. variant=-gamma1.5), or delete those "
            "videos to regenerate them."
        )


def video_fingerprint(path) -> dict:
    """The evidence a record keeps of its video: size in bytes, sha256 and the decoded frame count."""
    return {"video_bytes": path.stat().st_size, "video_sha256": file_sha256(path),
            "video_frames": probe_video(path).num_frames}


def untrusted_reason(run: RunDir, sample_id: str) -> str | None:
    """Why a done sample's video cannot be trusted any more (missing, other size, other bytes), or None."""
    video = run.video(sample_id)
    try:
        rec = json.loads(run.sidecar(sample_id).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):  # another launch is superseding it: look again under the claim
        return "sidecar_unreadable"
    if not video.is_file():
        return "video_missing"
    if "video_sha256" not in rec:  # made before fingerprints: the frame count it promised must decode
        try:
            return None if probe_video(video).num_frames == rec["settings"]["frames"] else "frame_count_mismatch"
        except VideoDecodeError:
            return "undecodable"
    if video.stat().st_size != rec["video_bytes"]:
        return "size_mismatch"
    return None if file_sha256(video) == rec["video_sha256"] else "sha256_mismatch"


def supersede_untrusted(run: RunDir, recorded: list[str], claims: Claims) -> dict[str, str]:
    """Retire the ok records (sidecars) of samples whose video fails untrusted_reason: log a `superseded` line with
    the reason and drop the sidecar, so the sample is made again. Checked again under the sample's claim (a
    launch may be rewriting it); returns {sample_id: reason}."""
    superseded = {}
    for sid in recorded:
        if untrusted_reason(run, sid) is None or not claims.try_claim(sid):
            continue
        try:
            reason = untrusted_reason(run, sid) if has_ok_sidecar(run, sid) else None
            if reason:
                old = json.loads(run.sidecar(sid).read_text(encoding="utf-8"))
                append_jsonl(run.generation_log, [{
                    "sample_id": sid, "status": "superseded", "reason": reason, "error": None,
                    "superseded": {k: old.get(k) for k in ("video_bytes", "video_sha256", "video_frames")}}])
                run.sidecar(sid).unlink()
                log.warning("sample %s: %s of its finished video; its record is superseded, generating it again",
                            sid, reason.replace("_", " "))
                superseded[sid] = reason
        finally:
            claims.release(sid)
    return superseded


def ok_logged(run: RunDir) -> set[str]:
    return {r["sample_id"] for r in read_jsonl(run.generation_log) if r.get("status") == "ok"}


def restore_lost_records(run: RunDir, ids: list[str], claims: Claims) -> int:
    """Append the sidecar record of done samples that have no ok line in generation.jsonl; returns the count.
    Under the sample's claim: a launch between its sidecar and its log line holds it."""
    logged, restored = ok_logged(run), 0
    for sid in ids:
        if sid in logged or not is_done(run, sid) or not claims.try_claim(sid):
            continue
        try:
            if sid not in ok_logged(run) and is_done(run, sid):
                append_jsonl(run.generation_log, [json.loads(run.sidecar(sid).read_text(encoding="utf-8"))])
                restored += 1
        finally:
            claims.release(sid)
    return restored


def remove_stale_temp_files(run: RunDir, sample_id: str) -> int:
    """Delete temp files a killed writer left for this sample (`.{id}.*`); call it holding the sample's claim."""
    removed = 0
    for stale in run.videos.glob(f".{sample_id}.*"):
        stale.unlink(missing_ok=True)
        removed += 1
    return removed


def to_uint8(frames: Any, rounding: str = "round") -> np.ndarray:
    """Pipeline output (T, H, W, 3) floats in [0, 1] -> uint8 ("round", or "truncate" as the official scripts'
    astype), refusing NaN/inf frames."""
    array = np.asarray(frames, dtype=np.float32)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise BadOutputError(f"pipeline returned frames of shape {array.shape}, expected (T, H, W, 3)")
    bad = ~np.isfinite(array)
    if bad.any():
        frames_hit = sorted({int(t) for t in np.nonzero(bad)[0]})
        raise BadOutputError(f"NaN/inf values in {len(frames_hit)} of {len(array)} frames (first: {frames_hit[:5]})")
    scaled = array.clip(0.0, 1.0) * 255.0
    return (scaled if rounding == "truncate" else scaled.round()).astype(np.uint8)


class Generator:
    """A built pipeline plus everything needed to turn one sample into one video record. `base_seed`: the run's
    (omiti2v.seeds.base_seed); `parallel_options`: parallel_settings, needed when `layout.context` > 1."""

    def __init__(self, cfg: DictConfig, baseline: Baseline, settings: Mapping, device: str, base_seed: int,
                 layout: parallel.Layout | None = None, parallel_options: Mapping | None = None):
        self.cfg, self.baseline, self.settings, self.device = cfg, baseline, settings, device
        self.layout = layout or parallel.Layout()
        self.base_seed = base_seed
        self.input_blur = to_plain(cfg.asm.get("input_blur")) if "asm" in cfg else None
        self.resolved_asm: dict | None = None
        self.config_hash = generation_config_hash(cfg, base_seed)
        self.pipe = self._build()
        if self.layout.context > 1:
            parallel.check_asm_supported(to_plain(cfg.get("asm")))
            parallel.enable_context_parallel(self.pipe, self.layout, parallel_options)
        self.asm_config = self._apply_asm()
        from omiti2v.guidance.run import install_run_guidance

        self.guidance, self.method = install_run_guidance(self.pipe, cfg, baseline, settings, self.asm_config)
        self.compile_mode, backend = compile_settings(cfg)
        apply_compile(self.pipe.transformer, self.compile_mode, backend=backend)

    def _build(self):
        t0 = time.perf_counter()
        if self.device.startswith("cuda"):
            torch.empty(0, device=self.device)  # CUDA context first: offloaded pipelines may not create it
        pipe = self.baseline.build(self.settings, device=self.device if self.settings["weights"] != "pretrained" else "cpu")
        memory = self.settings.get("memory") or {}
        if memory.get("vae_tiling") and hasattr(pipe.vae, "enable_tiling"):
            pipe.vae.enable_tiling()
        if memory.get("cpu_offload") and self.device.startswith("cuda"):
            pipe.enable_model_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        log.info("built %s (%s weights) on %s in %.1fs", self.baseline.name, self.settings["weights"], self.device,
                 time.perf_counter() - t0)
        return pipe

    def _apply_asm(self):
        """Install the run's ASM on every denoiser (both experts of Wan2.2); returns its config, None for strategy
        none. Keeps what was installed as `resolved_asm` (every sidecar carries it, summary.json reads it back)
        with the schedule's blocks and window as written, before resolution."""
        asm = self.cfg.get("asm")
        if asm is None:
            return None
        from omiti2v.asm import ASMConfig, apply_asm

        schedule = to_plain(self.cfg.get("schedule") or {})
        config = ASMConfig.from_hydra(self.settings["asm_preset"], to_plain(asm), schedule, self.settings["name"])
        handle = apply_asm(self.pipe, config)  # strategy none installs nothing
        self.resolved_asm = {**handle.record(), "schedule": {k: schedule.get(k) for k in ("blocks", "window")}}
        return None if config.strategy == "none" else config

    def record(self, run: RunDir, sample: Sample, shard: Shard) -> dict:
        """Generate `sample`; returns its ok record. Raises on any failure (the caller records it)."""
        seed = video_seed(self.base_seed, self.settings, sample.id)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        image = sample.load_image()
        if self.input_blur:
            from omiti2v.asm import blur_input_image

            image = blur_input_image(image, **{k: v for k, v in self.input_blur.items() if v is not None})
        image, height, width = self.baseline.prepare_image(image, self.settings)
        kwargs = self.baseline.call_kwargs(self.pipe, image, sample.prompt, height, width, self.settings)
        kwargs["generator"] = self.baseline.noise_generator(seed, self.device, self.settings)
        if self.guidance is not None:
            kwargs = self.guidance.prepare(self.pipe, kwargs)  # the method's negative prompt; pipeline CFG off
        timings["prepare"] = time.perf_counter() - t0
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(self.device)
        teacache = teacache_handle(self.pipe.transformer)
        if teacache is not None:
            teacache.reset()
        video = self.settings["video"]
        t1 = time.perf_counter()
        frames = to_uint8(self.pipe(**kwargs).frames[0], video["uint8"])
        timings["pipeline"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        fps = float(self.settings["fps"])
        if self.layout.writer:
            write_video(run.video(sample.id), frames, fps, crf=int(video["crf"]))
        timings["encode"] = time.perf_counter() - t2
        return {**(video_fingerprint(run.video(sample.id)) if self.layout.writer else {}),
            "sample_id": sample.id, "status": "ok", "error": None, "seed": seed, "base_seed": self.base_seed,
            # the generated frames themselves: reproducible where the encoded file is not (libx264 may encode
            # the same frames a little differently from one run to the next)
            "frames_sha256": "sha256:" + hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest(),
            "video": f"videos/{sample.id}.mp4", "seconds": round(time.perf_counter() - t0, 3),
            "peak_memory_gb": peak_memory_gb(self.device), "memory_measure": memory_measure(self.device),
            "model": self.settings["name"], "baseline": self.baseline.name, "weights": self.settings["weights"],
            "asm": self.cfg.asm.get("name") if "asm" in self.cfg else None,
            "schedule": self.cfg.schedule.get("name") if "schedule" in self.cfg else None,
            "resolved_asm": self.resolved_asm, "input_blur": self.input_blur, "compile": self.compile_mode,
            "method": self.method,
            "config_hash": self.config_hash,
            "teacache": None if teacache is None else teacache.stats(),
            "settings": {"height": height, "width": width, "frames": int(len(frames)), "fps": fps,
                         "sampling": self.settings["sampling"], "dtype": self.settings["dtype"], "video": video},
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "shard": str(shard), "host": platform.node(), "device": self.device,
            "context_parallel": self.layout.context,
        }

    def generate(self, run: RunDir, sample: Sample, shard: Shard) -> dict:
        rec = self.record(run, sample, shard)
        if self.layout.writer:
            atomic_write_json(run.sidecar(sample.id), rec)
        return rec


def peak_memory_gb(device: str) -> float:
    """GPU: peak allocated during this sample; CPU: the process's peak resident set (the whole run so far)."""
    if device.startswith("cuda"):
        return round(torch.cuda.max_memory_allocated(device) / 1e9, 3)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 3)  # Linux reports KiB


def memory_measure(device: str) -> str:
    return "cuda_max_allocated_per_sample" if device.startswith("cuda") else "process_max_rss"


def failure_record(sample: Sample, seed: int, base: int, exc: BaseException, started: float, shard: Shard) -> dict:
    kind = "oom" if isinstance(exc, torch.cuda.OutOfMemoryError) else "bad_output" if isinstance(exc, BadOutputError) else "exception"
    return {"sample_id": sample.id, "status": "failed", "error": f"{type(exc).__name__}: {exc}", "error_kind": kind,
            "seed": seed, "base_seed": base, "video": None, "seconds": round(time.perf_counter() - started, 3), "peak_memory_gb": None,
            "shard": str(shard), "host": platform.node()}


def run_generator(ctx) -> Generator:
    """The generator of a run's resolved context (omiti2v.context.RunContext)."""
    return Generator(ctx.cfg, ctx.baseline, ctx.model, ctx.device, ctx.base_seed, ctx.layout, ctx.parallel)


def run_generation(ctx, run: RunDir, benchmark: Benchmark) -> dict:
    """Stage 'generate': videos for this shard's samples that are not done yet. Returns counts. `ctx`: the run's
    resolved settings (omiti2v.context.RunContext)."""
    settings, layout = ctx.model, ctx.layout
    if layout.context > 1:
        parallel.start(layout, ctx.parallel, ["generate"])
    shard = layout.shard
    mine = shard.select(benchmark.ids)
    claims_settings = ClaimSettings.from_config(ctx.cfg.get("claims"))
    if not layout.writer:  # a context-parallel rank: runs the samples its group's writer claims, writes nothing
        return follow_writer(ctx, run, benchmark)
    with Claims(run.path, "generate", claims_settings) as claims:
        try:
            done = [sid for sid in mine if is_done(run, sid)]
            check_same_config(run, done, generation_config_hash(ctx.cfg, ctx.base_seed))
        except ConfigMismatchError as exc:
            parallel.share_from_writer(layout, exc)  # raised on every rank of the group
        superseded = supersede_untrusted(run, [sid for sid in mine if has_ok_sidecar(run, sid)], claims)
        restored = restore_lost_records(run, mine, claims)
        todo = [benchmark[sid] for sid in mine if not is_done(run, sid)]
        counts = {"shard": str(shard), "assigned": len(mine), "skipped": len(mine) - len(todo), "restored": restored,
                  "superseded": len(superseded), "ok": 0, "failed": 0, "done_elsewhere": 0, "taken_over": 0}
        log.info("generate %s shard %s (%s): %d assigned, %d done, %d to do", settings["name"], shard, shard.source,
                 len(mine), counts["skipped"], len(todo))
        if not todo:
            parallel.share_from_writer(layout, None)
            return counts
        generator = run_generator(ctx)
        attempts = LogWatch(run.generation_log, lambda rec: rec.get("status") in ("ok", "failed"))

        def settled(ids: list[str]) -> set[str]:
            return attempts.changed(ids) | {sid for sid in ids if is_done(run, sid)}

        bar = tqdm(total=len(todo), desc=f"generate {settings['name']} [{shard}]", unit="video", dynamic_ncols=True)
        for (sample,) in claimed_batches(claims, todo, 1, lambda s: s.id, settled):
            parallel.share_from_writer(layout, sample.id)  # the group's other ranks join this video
            generate_one(generator, run, sample, shard, counts)
            bar.update(1)
            bar.set_postfix(ok=counts["ok"], failed=counts["failed"])
        bar.close()
        parallel.share_from_writer(layout, None)
        counts["done_elsewhere"] = len(todo) - counts["ok"] - counts["failed"]
        counts["taken_over"] = len(claims.takeovers)
    return counts


def follow_writer(ctx, run: RunDir, benchmark: Benchmark) -> dict:
    """A non-writing rank of a context-parallel group: generate each sample id the writer sends, until None."""
    generator, joined, layout = None, 0, ctx.layout
    while (sid := parallel.share_from_writer(layout, None)) is not None:
        if generator is None:
            generator = run_generator(ctx)
        try:
            generator.generate(run, benchmark[sid], layout.shard)
        except Exception as exc:  # the writer records the failure; this rank only follows
            log.warning("sample %s failed on rank %d: %s", sid, layout.rank, exc)
        joined += 1
    return {"shard": str(layout.shard), "assigned": joined, "skipped": 0, "restored": 0, "superseded": 0,
            "ok": 0, "failed": 0, "done_elsewhere": joined, "taken_over": 0}


def generate_one(generator: Generator, run: RunDir, sample: Sample, shard: Shard, counts: dict) -> None:
    """One claimed sample: its video, sidecar and log line; a write fault ends the stage without an ok record."""
    remove_stale_temp_files(run, sample.id)
    started = time.perf_counter()
    try:
        rec = generator.generate(run, sample, shard)
    except WriteFaultError:
        raise
    except Exception as exc:  # one bad sample must not stop the run; it is logged and retried next time
        if isinstance(exc, torch.cuda.OutOfMemoryError):
            torch.cuda.empty_cache()
        log.warning("sample %s failed: %s", sample.id, exc)
        rec = failure_record(sample, video_seed(generator.base_seed, generator.settings, sample.id), generator.base_seed,
                             exc, started, shard)
    try:
        append_jsonl(run.generation_log, [rec])
    except WriteFaultError:
        run.sidecar(sample.id).unlink(missing_ok=True)  # no ok evidence without its log line
        raise
    counts[rec["status"]] += 1


def expected_frames(model_cfg: Mapping) -> int:
    """Frames each video of this model config has (used by checks and tests)."""
    baseline = baseline_for(model_cfg)
    settings = baseline.settings(model_cfg)
    size = "tiny" if settings["weights"] == "tiny" else "real"
    return baseline.output_frames(settings["sampling"], baseline.architecture_config(size))
