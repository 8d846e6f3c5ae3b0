"""Scorer throughput: this harness's batched scorers vs VBench's per-video procedure, same random-weight models.

    python benchmarks/scorer_throughput.py            # GPU: 20 videos, 480x832, 81 frames at 16 fps
    python benchmarks/scorer_throughput.py --tiny     # CPU smoke: a few small videos, tiny CLIP

Both sides use the same RAFT-large (random weights) and CLIP vision tower + head (random, seeded), so the
comparison is of procedure only. The VBench side follows its code: dynamic degree decodes every frame, moves
each kept frame to the device, runs RAFT one pair at a time in float32 and takes the top 5 % on the CPU with
numpy; aesthetic decodes the video again, preprocesses on the CPU (float32 frames, bicubic without antialias)
and runs CLIP in batches of 32 in fp16. Checks: identical dynamic-degree booleans, aesthetic |delta| <= 1e-3,
and the speed-up. Then the paper profile's resize (evaluate_i2v.py rule + mp4v re-encode): the decode time
with and without it, the size the metrics saw, and (not --tiny) ours again after it. Prints the figures and writes them as JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torchvision import transforms

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from omiti2v.config_check import require_cuda  # noqa: E402
from omiti2v.scorers import build_scorer, decode_clip, paper_resize_for, score_videos  # noqa: E402
from omiti2v.scorers.aesthetic import CLIP_MEAN, CLIP_STD  # noqa: E402
from omiti2v.scorers.dynamic_degree import motion_threshold, required_count  # noqa: E402
from omiti2v.video import read_video, write_video  # noqa: E402


def make_videos(folder: Path, count: int, frames: int, height: int, width: int, fps: float) -> list[Path]:
    """Smooth random textures translating at 0..7 px per frame (a third of them static), H.264."""

    def one(i: int) -> Path:
        rng = torch.Generator().manual_seed(i)
        coarse = torch.rand(1, 3, height // 8 + 1, width // 8 + 1, generator=rng)
        tex = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)[0].permute(1, 2, 0)
        tex = ((tex - tex.min()) / (tex.max() - tex.min()) * 255).to(torch.uint8).numpy()
        speed = 0 if i % 3 == 0 else int(torch.randint(1, 8, (1,), generator=rng))
        clip = np.stack([np.roll(tex, (speed * t // 2, speed * t), axis=(0, 1)) for t in range(frames)])
        return write_video(folder / f"v{i:03d}.mp4", clip, fps)

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, range(count)))


def vbench_dynamic_degree(model, path: Path, device: torch.device) -> tuple[bool, list[float]]:
    """VBench's DynamicDegree.infer with torchvision's raft_large in place of RAFT (same net, same weights)."""
    frames, info = read_video(path)
    interval = max(1, round(info.fps / 8))
    kept = [torch.from_numpy(f).permute(2, 0, 1).float()[None].to(device) for f in frames[::interval]]
    h, w = kept[0].shape[-2:]
    thres, count_num = motion_threshold(h, w, info.fps), required_count(len(kept))
    pad_h, pad_w = (-h) % 8, (-w) % 8
    pad = [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2]
    scores = []
    with torch.no_grad():
        for image1, image2 in zip(kept[:-1], kept[1:], strict=True):
            image1, image2 = F.pad(image1, pad, mode="replicate"), F.pad(image2, pad, mode="replicate")
            image1, image2 = (2 * (image1 / 255.0) - 1.0).contiguous(), (2 * (image2 / 255.0) - 1.0).contiguous()
            flow = model(image1, image2, num_flow_updates=20)[-1]
            flo = flow[0].permute(1, 2, 0).cpu().numpy()
            rad = np.sqrt(np.square(flo[:, :, 0]) + np.square(flo[:, :, 1]))
            cut = int(rad.shape[0] * rad.shape[1] * 0.05)
            scores.append(float(np.mean(abs(np.sort(-rad.flatten()))[:cut])))
    moving = sum(s > thres for s in scores)
    return bool(scores) and moving >= count_num, scores


def vbench_aesthetic(clip_model, head, path: Path, device: torch.device, dtype: torch.dtype) -> float:
    """VBench's laion_aesthetic for one video: CPU preprocessing of float32 frames, CLIP in batches of 32."""
    frames, _ = read_video(path)
    images = torch.Tensor(frames).permute(0, 3, 1, 2)
    transform = transforms.Compose([
        transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC, antialias=False),
        transforms.CenterCrop(224),
        transforms.Lambda(lambda x: x.float().div(255.0)),
        transforms.Normalize(CLIP_MEAN, CLIP_STD),
    ])
    scores = []
    with torch.no_grad():
        for i in range(0, len(images), 32):
            batch = transform(images[i:i + 32]).to(device)
            feats = clip_model(pixel_values=batch.to(dtype)).image_embeds.to(torch.float32)
            scores.append(head(F.normalize(feats, dim=-1, p=2)).squeeze(-1))
    return float(torch.mean(torch.cat(scores) / 10))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="CPU smoke size: 3 videos of 9 frames at 128x160, tiny CLIP")
    parser.add_argument("--videos", type=int)
    parser.add_argument("--frames", type=int)
    parser.add_argument("--height", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--fps", type=float, default=16.0)
    parser.add_argument("--pair-batch", type=int, default=16)
    parser.add_argument("--videos-per-batch", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    if not args.tiny:
        require_cuda("benchmarks/scorer_throughput.py", "run it with --tiny on a CPU")
    small = (3, 9, 128, 160) if args.tiny else (20, 81, 480, 832)
    n_videos, n_frames, height, width = (v if v is not None else d for v, d in
                                         zip((args.videos, args.frames, args.height, args.width), small, strict=True))
    device = torch.device(args.device)
    figures: dict = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
                     "torch": torch.__version__, "videos": n_videos, "frames": n_frames, "size": [width, height],
                     "fps": args.fps, "tiny": args.tiny}
    print(json.dumps(figures), flush=True)

    cfg = OmegaConf.create({
        "flow_backend": "raft",
        "dynamic_degree": {"raft_weights": "random", "iterations": 20, "pair_batch_size": args.pair_batch, "dtype": "float32"},
        "aesthetic_quality": {"clip": "tiny" if args.tiny else "random-vit-l14", "head": "random", "batch_size": 128, "dtype": "float16"},
    })
    dd = build_scorer("dynamic_degree", cfg, device)
    aes = build_scorer("aesthetic_quality", cfg, device)
    dd.load()
    aes.load()

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        paths = make_videos(Path(tmp), n_videos, n_frames, height, width, args.fps)
        figures["make_videos_s"] = round(time.perf_counter() - t, 2)
        print(f"wrote {n_videos} videos in {figures['make_videos_s']} s", flush=True)
        videos = {p.stem: p for p in paths}
        needs = {sid: [dd, aes] for sid in videos}

        # warm-up (kernels, cuDNN plans, allocator) for both procedures on one video
        list(score_videos({paths[0].stem: paths[0]}, needs, None, 1))
        vbench_dynamic_degree(dd.flow_backend.model, paths[0], device)
        vbench_aesthetic(aes.model, aes.head, paths[0], device, aes.dtype)

        sync(device)
        t = time.perf_counter()
        reference = {p.stem: (vbench_dynamic_degree(dd.flow_backend.model, p, device),
                              vbench_aesthetic(aes.model, aes.head, p, device, aes.dtype)) for p in paths}
        sync(device)
        vbench_s = time.perf_counter() - t

        t = time.perf_counter()
        ours = {}
        for _, records in score_videos(videos, needs, None, args.videos_per_batch):
            for r in records:
                if r["error"] is not None:
                    raise RuntimeError(f"{r['sample_id']} {r['metric']}: {r['error']}")
                ours[(r["sample_id"], r["metric"])] = r
        sync(device)
        ours_s = time.perf_counter() - t

        # The paper profile's scorer.aspect_resize.mode=paper (evaluate_i2v.py's resize + mp4v re-encode): the
        # decode cost with and without it; on the GPU size also the whole scoring after it.
        resize = paper_resize_for({"mode": "paper"}, videos)
        decode_s = {}
        for mode, how in (("native", None), ("paper", resize)):
            t = time.perf_counter()
            clips = [decode_clip(p, sid, [dd, aes], how) for sid, p in videos.items()]
            decode_s[mode] = time.perf_counter() - t
        resized_sizes = sorted({tuple(c.details["size"]) for c in clips})
        paper_resize_s = None
        if not args.tiny:  # tiny videos are upscaled to >= 512 px: too slow for a CPU smoke run
            t = time.perf_counter()
            for _, records in score_videos(videos, needs, resize, args.videos_per_batch):
                for r in records:
                    if r["error"] is not None:
                        raise RuntimeError(f"paper resize: {r['sample_id']} {r['metric']}: {r['error']}")
            sync(device)
            paper_resize_s = time.perf_counter() - t

    same_bool = [bool(ours[(sid, "dynamic_degree")]["value"]) == reference[sid][0][0] for sid in videos]
    pair_delta = max(abs(a - b) / max(1.0, abs(b)) for sid in videos
                     for a, b in zip(ours[(sid, "dynamic_degree")]["details"]["pair_scores"], reference[sid][0][1], strict=True))
    aes_delta = [abs(ours[(sid, "aesthetic_quality")]["value"] - reference[sid][1]) for sid in videos]
    figures.update({
        "vbench_procedure_s": round(vbench_s, 2),
        "ours_s": round(ours_s, 2),
        "speedup": round(vbench_s / ours_s, 2),
        "videos_per_s_ours": round(n_videos / ours_s, 3),
        "decode_native_s": round(decode_s["native"], 2),
        "decode_paper_resize_s": round(decode_s["paper"], 2),
        "paper_resize_decode_ratio": round(decode_s["paper"] / decode_s["native"], 2),
        "paper_resize_sizes": [list(size) for size in resized_sizes],
        "ours_paper_resize_s": None if paper_resize_s is None else round(paper_resize_s, 2),
        "paper_resize_time_ratio": None if paper_resize_s is None else round(paper_resize_s / ours_s, 2),
        "videos_per_s_vbench": round(n_videos / vbench_s, 3),
        "dynamic_identical": f"{sum(same_bool)}/{len(same_bool)}",
        "dynamic_count": int(sum(bool(ours[(sid, "dynamic_degree")]["value"]) for sid in videos)),
        "pair_score_max_rel_delta": float(f"{pair_delta:.3g}"),
        "aesthetic_max_abs_delta": float(f"{max(aes_delta):.3g}"),
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None,
    })
    checks = {"booleans_identical": all(same_bool), "aesthetic_within_1e-3": max(aes_delta) <= 1e-3,
              "speedup_at_least_3x": vbench_s / ours_s >= 3}
    figures["checks"] = checks
    print(json.dumps(figures, indent=2), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2, allow_nan=False) + "\n")
    if not (checks["booleans_identical"] and checks["aesthetic_within_1e-3"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
