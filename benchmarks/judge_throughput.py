"""Judge throughput: questions per second of fast mode, parity mode, and the official per-question procedure.

The official procedure (the Qwen2.5-VL README way, as the paper ran it) handles each question alone: read the
video with qwen-vl-utils, process it, generate. Our modes decode and process each video once per sample,
batch across samples, and run the vision tower and the video prefix once per sample (its KV cache is shared
by the sample's questions). Both generating paths produce
exactly `--new-tokens` tokens (min = max): random weights would otherwise stop at EOS early or never.

GPU (real size, random weights, Qwen2.5-VL-7B shapes):  python benchmarks/judge_throughput.py --out DIR
CPU check of the script:                                python benchmarks/judge_throughput.py --tiny
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from omiti2v.judge import SampleItem, VideoSpec, VqaJudge, load_judge_model, load_judge_video, question_text
from omiti2v.judge.tiny import build_tiny_judge, build_tiny_processor
from omiti2v.video import write_video

QUESTIONS = (
    "Is there a red car in the video?",
    "Does the car leave the road by the end of the video?",
    "Is the sky blue throughout the video?",
    "Has the tree disappeared at the end of the video?",
)

# Qwen2.5-VL-7B-Instruct's public config.json (shapes only; the weights here are random).
QWEN25_VL_7B_TEXT = dict(
    vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
    num_key_value_heads=4, max_position_embeddings=128000, rms_norm_eps=1e-6,
    rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1000000.0},
)
QWEN25_VL_7B_VISION = dict(
    depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584, patch_size=14,
    spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31],
    tokens_per_second=2, hidden_act="silu",
)


def real_size_judge(folder: Path):
    """Qwen2.5-VL-7B shapes with random bf16 weights, built on the GPU; the tiny tokenizer, real-size processor."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    processor = build_tiny_processor()
    processor.video_processor.size = {"shortest_edge": 3136, "longest_edge": 12845056}  # the 7B checkpoint's range
    tok = processor.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|im_end|>", "<|endoftext|>")}
    config = Qwen2_5_VLConfig(
        text_config={**QWEN25_VL_7B_TEXT, "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"]},
        vision_config=QWEN25_VL_7B_VISION,
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16, attn_implementation="sdpa")
    model.eval()
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    return model, processor


def write_videos(folder: Path, n: int, frames: int, width: int, height: int, fps: float) -> list[Path]:
    """Synthetic clips: a coloured square crossing a gradient, different per sample (cheap to encode)."""
    def one(i: int) -> Path:
        y, x = np.mgrid[0:height, 0:width]
        base = np.stack([(x * 255 // width), (y * 255 // height), np.full_like(x, (37 * i) % 256)], -1).astype(np.uint8)
        clip = np.repeat(base[None], frames, axis=0)
        for t in range(frames):
            x0 = (t * (width - 96)) // max(frames - 1, 1)
            clip[t, height // 3: height // 3 + 96, x0: x0 + 96] = ((50 * i) % 256, 200, 30)
        return write_video(folder / f"sample_{i:02d}.mp4", clip, fps)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def official_procedure(judge: VqaJudge, paths: list[Path], spec: VideoSpec, new_tokens: int) -> int:
    """Per question: qwen-vl-utils reads and resamples the video, the processor processes it, generate."""
    from qwen_vl_utils import process_vision_info

    min_pixels, max_pixels = spec.pixel_range()
    n = 0
    for path in paths:
        for question in QUESTIONS:
            messages = [{"role": "user", "content": [
                {"type": "video", "video": str(path), "fps": spec.fps, "max_pixels": max_pixels, "min_pixels": min_pixels},
                {"type": "text", "text": question_text(question)},
            ]}]
            text = judge.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            _, videos, video_kwargs = process_vision_info(messages, return_video_kwargs=True, return_video_metadata=True)
            videos, metadata = zip(*videos, strict=True)
            inputs = judge.processor(text=[text], videos=list(videos), video_metadata=list(metadata), padding=True,
                                     return_tensors="pt", **video_kwargs).to(judge.device)
            judge.model.generate(**inputs, do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
            n += 1
    return n


def batched(judge: VqaJudge, paths: list[Path], spec: VideoSpec, mode: str, batch: int) -> int:
    """Our stage's work: decode each video once, then one call per batch of samples."""
    n = 0
    for i in range(0, len(paths), batch):
        items = [SampleItem(load_judge_video(p, spec), QUESTIONS) for p in paths[i:i + batch]]
        out = judge.fast(items) if mode == "fast" else judge.parity(items)
        n += sum(len(o) for o in out)
    return n


def parity_matches_alone(judge: VqaJudge, video, questions, new_tokens: int) -> str:
    """How many shared-prefix parity replies equal generate() on each question's own full prompt ("k/n").
    Token-identical in float32 (tests); in bf16 rounding differs between the two layouts, so a reply may
    part ways where random weights leave near-ties."""
    check = VqaJudge(judge.model, judge.processor, max_new_tokens=new_tokens)
    shared = check.parity([SampleItem(video, questions)])[0]
    alone = []
    with torch.inference_mode():
        for question in questions:
            inputs = check.full_inputs(video, question)
            out = check.model.generate(**inputs, do_sample=False, max_new_tokens=new_tokens)
            alone.append(check.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    return f"{sum(a == b for a, b in zip(shared, alone, strict=True))}/{len(questions)}"


def timed(fn, *args) -> tuple[float, int]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    n = fn(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny random model, small videos, CPU: checks the script")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--official-samples", type=int, default=4, help="samples timed with the (slow) official procedure")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--batch-samples", type=int, default=4)
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--size", default="832x480")
    ap.add_argument("--fps", type=float, default=16)
    ap.add_argument("--out", type=Path, default=None, help="folder for judge_throughput.json")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="judge-bench-"))
    if args.tiny:
        args.samples, args.official_samples, args.frames, args.size, args.new_tokens = 4, 2, 17, "128x80", 4
        spec = VideoSpec(fps=4, max_pixels=28 * 28 * 4)
        model, processor = load_judge_model(str(build_tiny_judge(work / "tiny")), dtype="float32", device_map=None)
    else:
        spec = VideoSpec()  # the paper's protocol: fps 8, max_pixels 360*420
        model, processor = real_size_judge(work / "model")
    width, height = map(int, args.size.split("x"))
    judge = VqaJudge(model, processor, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
    paths = write_videos(work / "videos", args.samples, args.frames, width, height, args.fps)

    # warm-up (kernels, allocator) and a correctness check: shared-prefix P(yes) vs the question on its own
    video = load_judge_video(paths[0], spec)
    p_fast = judge.fast([SampleItem(video, QUESTIONS[:2])])[0]
    with torch.inference_mode():
        logits = judge.model(**judge.full_inputs(video, QUESTIONS[1])).logits[0, -1].float()
    p_alone = torch.softmax(logits[[judge.yes_id, judge.no_id]], -1)[0].item()
    same_replies = parity_matches_alone(judge, video, QUESTIONS[:2], new_tokens=8)
    official_procedure(judge, paths[:1], spec, 2)
    video_tokens = int(judge.encode_prefixes([video], judge.split_prompt("x")[0])["video_grid_thw"].prod() // 4)

    results = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
               "model": "tiny" if args.tiny else "Qwen2.5-VL-7B shapes, random bf16 weights",
               "video": f"{args.frames} frames {args.size} @ {args.fps} fps", "video_tokens": video_tokens,
               "questions_per_sample": len(QUESTIONS), "new_tokens": args.new_tokens,
               "batch_samples": args.batch_samples, "fast_vs_alone_p_yes_abs_diff": abs(p_fast[1] - p_alone),
               "parity_vs_alone_identical_replies": same_replies}
    print(json.dumps(results), flush=True)
    for name, fn, fargs in (
        ("official", official_procedure, (judge, paths[: args.official_samples], spec, args.new_tokens)),
        ("parity", batched, (judge, paths, spec, "parity", args.batch_samples)),
        ("fast", batched, (judge, paths, spec, "fast", args.batch_samples)),
    ):
        try:
            seconds, n = timed(fn, *fargs)
        except Exception as exc:  # report the other paths even when one breaks (e.g. another transformers)
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc()
            continue
        results[name] = {"questions": n, "seconds": round(seconds, 3), "questions_per_s": n / seconds, "s_per_question": seconds / n}
        if torch.cuda.is_available():
            results[name]["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
        print(name, json.dumps(results[name]), flush=True)
    if "questions_per_s" in results["official"]:
        base = results["official"]["questions_per_s"]
        results["speedup"] = {m: results[m]["questions_per_s"] / base for m in ("parity", "fast") if "questions_per_s" in results[m]}
    print("speedup vs official:", json.dumps(results.get("speedup")), flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "judge_throughput.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
