"""Judge throughput at real size: the released per-question loop against our stage (official, parity, fast).

`--judge NAME` builds that registered judge's published shapes (omiti2v/judge/public.py) with random weights;
`--size 7b|32b` is the paper's family, Qwen2.5-VL. The released loop ("released") handles each question alone:
for the Qwen families as the paper's qwen.py ran it (read the video with qwen-vl-utils, process it, generate;
the processor told fps 2.0 for the sampled clip where the judge's config says so, as transformers 4.50 assumed
when qwen.py passed none); for InternVL the video read, processed and generated from per question through its
own processor. Every judge is given the video its conf/judge/<name>.yaml gives it. Our modes run the real stage
(`judge_samples`): official (judge.mode=official: the same generate per question, the next videos decoded and
their inputs built on background threads, a video's vision-tower output reused by its questions); parity and
fast (batches planned from free memory, `batch_samples auto` planned for the paper's 128 new tokens, halved on
CUDA OOM, the video prefix run once per sample and never copied per question). Every generation is forced to
exactly `--new-tokens` tokens (min = max): random weights would otherwise stop at EOS early or never. Prints
s/question, the speed-up over the released loop, peak GPU memory, OOM splits, the whole-OmitI2V estimate (367
samples x 3.5 questions), how many official-mode (and parity) replies equal the released loop's, and whether
the vision tower recomputed on the same pixels gives bitwise its first output (what the official mode's reuse
relies on). Where a reply differs, it says whether that question's inputs reached `generate` bit-identical in
both modes and how near a tie the greedy choice was (the smallest best/second-best score gap of each side).

GPU (Qwen2.5-VL-32B shapes, random bf16 weights, the real videos, an 80 GB budget; any judge with --judge):
    python benchmarks/judge_throughput.py --size 32b --videos ../shared/videos --memory-gb 80 --out DIR
    python benchmarks/judge_throughput.py --size 32b --videos ../shared/videos --memory-gb 80 --modes released,official
    python benchmarks/judge_throughput.py --judge internvl3.5-8b --videos ../shared/videos --memory-gb 80 --out DIR
CPU check of the script (the judge's family, tiny):
    python benchmarks/judge_throughput.py --tiny [--judge qwen3-vl-8b]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from omiti2v.conf_files import load_group_config
from omiti2v.config_check import require_cuda
from omiti2v.data.records import Question, Sample
from omiti2v.judge import (
    JudgeSettings,
    SampleItem,
    VideoSpec,
    VqaJudge,
    judge_samples,
    load_judge_model,
    load_judge_video,
    question_text,
)
from omiti2v.judge.families import JUDGES, Qwen25VL, QwenVL
from omiti2v.judge.official import stock_vision_attention
from omiti2v.judge.public import PUBLIC_SHAPES, public_config, public_processor
from omiti2v.judge.vision_attention import (
    VISION_ATTENTION_CLASSES,
    install_batched_window_attention,
)
from omiti2v.runs import RunDir, read_jsonl
from omiti2v.video import write_video

REPO = Path(__file__).resolve().parents[1]
OMITI2V_QUESTIONS = 367 * 3.5
QUESTIONS = (
    "Is there a red car in the video?",
    "Does the car leave the road by the end of the video?",
    "Is the sky blue throughout the video?",
    "Has the tree disappeared at the end of the video?",
)


def real_size_judge(name: str):
    """Judge `name`'s published shapes with random bf16 weights, built on the GPU; the tiny tokenizer, the
    family's processor sized as the checkpoint's."""
    import transformers

    processor = public_processor(name)
    tok = processor.tokenizer
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = getattr(transformers, JUDGES.lookup(name).model_class)._from_config(
            public_config(name, tok), dtype=torch.bfloat16, attn_implementation="sdpa")
    model.eval()
    install_batched_window_attention(model)  # as load_judge_model does for the stage
    model.generation_config.eos_token_id = [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]
    model.generation_config.pad_token_id = tok.convert_tokens_to_ids("<|endoftext|>")
    if issubclass(JUDGES.lookup(name), Qwen25VL):
        model.generation_config.repetition_penalty = 1.05  # the checkpoint's generation_config.json
    return model, processor


def write_videos(folder: Path, n: int, frames: int, width: int, height: int, fps: float) -> list[Path]:
    """Synthetic clips (tiny mode): a coloured square crossing a gradient, different per sample."""
    def one(i: int) -> Path:
        y, x = np.mgrid[0:height, 0:width]
        base = np.stack([(x * 255 // width), (y * 255 // height), np.full_like(x, (37 * i) % 256)], -1).astype(np.uint8)
        clip = np.repeat(base[None], frames, axis=0)
        for t in range(frames):
            x0 = (t * (width - 32)) // max(frames - 1, 1)
            clip[t, height // 3: height // 3 + 32, x0: x0 + 32] = ((50 * i) % 256, 200, 30)
        return write_video(folder / f"sample_{i:02d}.mp4", clip, fps)

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(n)))


def released_loop(judge: VqaJudge, paths: list[Path], spec: VideoSpec, new_tokens: int, replies: dict) -> int:
    """Per question: the video read and resampled (qwen-vl-utils for the Qwen families), processed, generate, the
    reply decoded into `replies[(video, question)]`; with transformers' stock vision attention (one SDPA call per
    window)."""
    with stock_vision_attention(judge.model):
        for path in paths:
            for question in QUESTIONS:
                inputs = (qwen_vl_utils_inputs(judge, path, spec, question) if issubclass(judge.family, QwenVL)
                          else judge.full_inputs(load_judge_video(path, spec), question))
                out = judge.model.generate(**inputs, do_sample=False, max_new_tokens=new_tokens,
                                           min_new_tokens=new_tokens)
                replies[(path.stem, question)] = judge.processor.batch_decode(
                    out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True, clean_up_tokenization_spaces=False)[0]
    return len(paths) * len(QUESTIONS)


def qwen_vl_utils_inputs(judge: VqaJudge, path: Path, spec: VideoSpec, question: str):
    """The Qwen README's inputs for one question: qwen-vl-utils reads the video at the spec's fps and pixels."""
    from qwen_vl_utils import process_vision_info

    min_pixels, max_pixels = spec.pixel_range()
    messages = [{"role": "user", "content": [
        {"type": "video", "video": str(path), "fps": spec.fps, "max_pixels": max_pixels, "min_pixels": min_pixels},
        {"type": "text", "text": question_text(question)},
    ]}]
    text = judge.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    _, videos, video_kwargs = process_vision_info(messages, return_video_kwargs=True, return_video_metadata=True,
                                                  image_patch_size=spec.merged_patch // 2)
    videos, metadata = zip(*videos, strict=True)
    if spec.metadata_fps is not None:  # what transformers 4.50 assumed for the sampled clip when given no fps
        metadata = [{"fps": spec.metadata_fps, "frames_indices": list(range(len(v))), "total_num_frames": len(v)}
                    for v in videos]
    return judge.processor(text=[text], videos=list(videos), video_metadata=list(metadata), padding=True,
                           return_tensors="pt", **video_kwargs).to(judge.device)


def compare_replies(released: dict, other: dict, mode: str) -> dict:
    """How many of the questions both asked got the released loop's reply, and where the others part from it."""
    common = sorted(released.keys() & other.keys())
    differ = [k for k in common if released[k] != other[k]]
    first = [next(i for i, (a, b) in enumerate(zip(released[k] + "\0", other[k] + "\1", strict=False)) if a != b)
             for k in differ]
    found = {f"{mode}_vs_released_identical_replies": f"{len(common) - len(differ)}/{len(common)}",
             f"{mode}_vs_released_differences": [{"video": k[0], "question": k[1], "first_different_char": i}
                                                  for k, i in zip(differ, first, strict=True)]}
    print(json.dumps(found), flush=True)
    return found


def fingerprint(value) -> tuple:
    """A fingerprint of a tensor's exact bits (shape, dtype and a position-weighted integer sum of its raw
    words, computed where it lies), so inputs on the GPU are compared without copying them back."""
    if not torch.is_tensor(value):
        return (repr(value),)
    words = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[value.element_size()]
    flat = value.detach().contiguous().view(-1).view(words).to(torch.int64)
    weights = torch.arange(flat.numel(), device=flat.device, dtype=torch.int64) * 2654435761 + 97
    return tuple(value.shape), str(value.dtype), int((flat * weights).sum())


@contextlib.contextmanager
def traced_generate(model, trace: list):
    """Within the block, each `model.generate` appends (its inputs' fingerprint, its new tokens, the gap between
    the best and second-best processed score at each step) to `trace`: which replies had identical inputs, and
    how near a tie the greedy choice was where two replies part."""
    generate = model.generate

    def recorded(**kwargs):
        out = generate(**kwargs, output_scores=True, return_dict_in_generate=True)
        top2 = torch.stack(out.scores).float().topk(2, dim=-1).values[:, 0]
        new = out.sequences[0, out.sequences.shape[1] - len(out.scores):]
        trace.append((tuple((k, fingerprint(v)) for k, v in sorted(kwargs.items())),
                      (new.tolist(), (top2[:, 0] - top2[:, 1]).tolist())))
        return out.sequences

    model.generate = recorded
    try:
        yield
    finally:
        del model.generate


def compare_inputs(released: dict, trace: list, differences: list, mode: str) -> dict:
    """How many of `mode`'s generate calls (`trace`) had inputs bit-identical to one of the released loop's
    (`released`: (video, question) -> trace entry); for each question whose reply differs, whether its released
    inputs were given to `mode` too, the first new token where the two part, and each side's best/second-best
    score gap there (a gap of a bf16 rounding step or two is a near-tie that any reordered sum can flip)."""
    released_inputs = {key for key, _ in released.values()}
    by_inputs = dict(trace)
    found = {f"{mode}_vs_released_identical_inputs": f"{sum(key in released_inputs for key, _ in trace)}/{len(trace)}"}
    explained = []
    for difference in differences:
        key, (tokens, gaps) = released[(difference["video"], difference["question"])]
        entry = {**difference, "same_inputs": key in by_inputs, "released_min_score_gap": min(gaps, default=None)}
        if key in by_inputs:
            other_tokens, other_gaps = by_inputs[key]
            step = next((i for i, (x, y) in enumerate(zip(tokens, other_tokens, strict=False)) if x != y), None)
            if step is not None:
                entry.update(first_different_token=step, released_score_gap_there=gaps[step],
                             mode_score_gap_there=other_gaps[step])
        explained.append(entry)
    print(json.dumps({**found, f"{mode}_differences_explained": explained}), flush=True)
    return {**found, f"{mode}_differences_explained": explained}


def recomputing_vision(run):
    """`run()` with official mode's shared vision output switched off, so every question recomputes it."""
    import omiti2v.judge.official as official

    shared = official.shared_video_features
    official.shared_video_features = lambda model: contextlib.nullcontext()
    try:
        return run()
    finally:
        official.shared_video_features = shared


def stage_run(judge: VqaJudge, paths: list[Path], spec: VideoSpec, mode: str, batch, workers: int, folder: Path,
              replies: dict | None = None) -> int:
    """Our stage on `paths` (4 questions each) into a fresh run folder; returns the questions answered, and puts
    the free-text replies into `replies[(video, question)]` when given."""
    run = RunDir(folder)
    samples = []
    for path in paths:
        sample_id = path.stem
        run.video(sample_id).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, run.video(sample_id))  # a copy: run folders refuse links leading outside them
        questions = tuple(Question(str(i), q, "yes", "attribute") for i, q in enumerate(QUESTIONS))
        samples.append(Sample(sample_id, Path(), "", (0, 0), "", "", "", "", questions))
    settings = JudgeSettings(name="bench", model="bench", modes=(mode,), video=spec, max_new_tokens=128,
                             batch_samples=batch, decode_workers=workers)
    judge_samples(judge, settings, run, samples, "bench")
    records = list(read_jsonl(run.judge_log))
    errors = [r["error"] for r in records if r["error"]]
    if errors:
        raise RuntimeError(f"{len(errors)} questions failed, e.g. {errors[0]}")
    if replies is not None:
        replies.update({(r["sample_id"], r["question"]): r["response"] for r in records})
    return len(records)


class CountSplits(logging.Handler):
    """Counts the stage's 'CUDA out of memory ... retrying' warnings."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record):
        self.count += "out of memory" in record.getMessage()


def timed(fn, *args) -> tuple[float, int]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    n = fn(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, n


def vision_tower(judge: VqaJudge, videos) -> torch.Tensor:
    """The vision tower's merged output for the first of `videos` (all of them in one call)."""
    enc = judge.encode_prefixes(videos).to(judge.device)
    with torch.inference_mode():
        out = judge.model.model.visual(enc["pixel_values_videos"], grid_thw=enc["video_grid_thw"])
    out = getattr(out, "pooler_output", out)  # transformers 5.2x: an output object; before: the merged tensor
    out = out[0] if isinstance(out, tuple) else out
    return out[: int(enc["video_grid_thw"][0].prod()) // judge.model.model.visual.spatial_merge_size ** 2].float()


def vision_check(judge: VqaJudge, videos) -> dict:
    """Batched window attention vs the stock per-window loop at real size, beside the bf16 noise floor: the
    same video's output alone vs in a two-video call (equal math, other GEMM shapes). And the stock tower run
    twice on the same pixels: bitwise equal is what lets official mode reuse it across a video's questions."""
    batched = vision_tower(judge, videos[:1])
    with stock_vision_attention(judge.model):
        stock, again, stock_pair = vision_tower(judge, videos[:1]), vision_tower(judge, videos[:1]), vision_tower(judge, videos)
    return {"vision_max_abs_output": float(stock.abs().max()),
            "vision_batched_vs_stock_max_abs_diff": float((batched - stock).abs().max()),
            "vision_noise_floor_max_abs_diff": float((stock_pair - stock).abs().max()),
            "vision_recompute_bitwise_equal": bool(torch.equal(stock, again))}


def checks(judge: VqaJudge, path: Path, other: Path, spec: VideoSpec) -> dict:
    """Fast P(yes) vs the question alone; parity replies vs generate() on each question's own prompt. Identical in
    float32 (tests); in bf16 the layouts round differently, so near-ties of random weights may part ways."""
    video = load_judge_video(path, spec)
    p_fast = judge.fast([SampleItem(video, QUESTIONS[:2])])[0]
    check = VqaJudge(judge.model, judge.processor, max_new_tokens=8, family=judge.family)
    shared = check.parity([SampleItem(video, QUESTIONS[:2])])[0]
    alone, p_alone = [], []
    with torch.inference_mode():
        for question in QUESTIONS[:2]:
            inputs = check.full_inputs(video, question)
            logits = check.model(**inputs).logits[0, -1].float()
            p_alone.append(torch.softmax(logits[[check.yes_id, check.no_id]], -1)[0].item())
            out = check.model.generate(**inputs, do_sample=False, max_new_tokens=8)
            alone.append(check.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    windowed = any(type(m).__name__ in VISION_ATTENTION_CLASSES for m in judge.model.modules())
    vision = vision_check(judge, [video, load_judge_video(other, spec)]) if windowed else {}
    return {"prefix_tokens": judge.encode_prefixes([video])["input_ids"].shape[1], **vision,
            "fast_vs_alone_p_yes_max_abs_diff": max(abs(a - b) for a, b in zip(p_fast, p_alone, strict=True)),
            "parity_vs_alone_identical_replies": f"{sum(a == b for a, b in zip(shared, alone, strict=True))}/2"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny random model, small synthetic videos, CPU: checks the script")
    ap.add_argument("--judge", choices=sorted(JUDGES), default=None, metavar="NAME",
                    help=f"registered judge whose published shapes to build ({', '.join(sorted(PUBLIC_SHAPES))}; "
                         "random weights); with --tiny, that family's tiny judge")
    ap.add_argument("--size", choices=("7b", "32b"), default=None, help="the Qwen2.5-VL judges: --judge qwen2.5-vl-SIZE")
    ap.add_argument("--videos", type=Path, default=REPO.parent / "shared" / "videos", help="folder of .mp4 files")
    ap.add_argument("--memory-gb", type=float, default=None, help="cap this process's GPU memory (GB = 1e9 bytes)")
    ap.add_argument("--modes", default="released,official,parity,fast",
                    help="released = the paper's per-question loop (the baseline); released-again = the same loop once more (the GPU's run-to-run noise floor); official, official-recompute (vision output recomputed per question), parity, fast = the stage")
    ap.add_argument("--repeats", type=int, default=1, help="passes over the videos for parity and fast")
    ap.add_argument("--released-samples", type=int, default=None, help="videos timed with the released loop")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--batch-samples", default="auto", help="auto (the default config) or a number")
    ap.add_argument("--decode-workers", type=int, default=4)
    ap.add_argument("--out", type=Path, default=None, help="folder for judge_throughput.json")
    args = ap.parse_args()
    if args.judge and args.size:
        ap.error("give --judge or --size, not both")
    name = args.judge or f"qwen2.5-vl-{args.size or '32b'}"
    if not args.tiny and name not in PUBLIC_SHAPES:
        ap.error(f"--judge {name}: no published shapes to build; one of {', '.join(sorted(PUBLIC_SHAPES))}")
    entry = JUDGES.lookup(name)
    if not args.tiny:
        require_cuda("benchmarks/judge_throughput.py", "run it with --tiny on a CPU")
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("qwen_vl_utils").setLevel(logging.WARNING)  # one line per read otherwise
    splits = CountSplits()
    logging.getLogger("omiti2v.judge").addHandler(splits)

    work = Path(tempfile.mkdtemp(prefix="judge-bench-"))
    if args.tiny:
        args.new_tokens = 4
        model, processor = load_judge_model(str(entry.build_tiny(work / "tiny")), dtype="float32", device_map=None,
                                            model_class=entry.model_class)
        spec = entry.video_spec(VideoSpec(fps=4), processor)
        spec = replace(spec, max_pixels=spec.merged_patch**2 * 4)
        paths = write_videos(work / "videos", 3, 17, 128, 80, 16)
        label = f"tiny {entry.family}"
    else:
        if args.memory_gb:
            torch.cuda.set_per_process_memory_fraction(args.memory_gb * 1e9 / torch.cuda.get_device_properties(0).total_memory)
        model, processor = real_size_judge(name)
        # the video the judge's config gives it (Qwen2.5-VL: the paper's fps 8, max_pixels 360*420, metadata fps 2.0)
        conf = JudgeSettings.from_config(load_group_config("judge", name))
        spec = entry.video_spec(conf.video, processor)
        paths = sorted(args.videos.glob("*.mp4"))
        label = f"{entry.hub_id} shapes, random bf16 weights"
    if not paths:
        raise SystemExit(f"no .mp4 videos in {args.videos}")
    batch = args.batch_samples if args.batch_samples == "auto" else int(args.batch_samples)
    judge = VqaJudge(model, processor, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, family=entry)
    results = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu", "judge": name, "model": label,
               "videos": [p.name for p in paths], "questions_per_sample": len(QUESTIONS), "new_tokens": args.new_tokens,
               "batch_samples": args.batch_samples, "memory_gb": args.memory_gb,
               "weights_gb": sum(p.numel() * p.element_size() for p in model.parameters()) / 1e9,
               **checks(judge, paths[0], paths[-1], spec)}
    print(json.dumps(results), flush=True)
    released_loop(judge, paths[:1], spec, 2, {})  # warm-up (kernels, allocator)

    replies: dict[str, dict] = {"released": {}, "released-again": {}, "official": {}, "official-recompute": {},
                                "parity": {}}
    runs = {
        "released": lambda: released_loop(judge, paths[: args.released_samples], spec, args.new_tokens,
                                          replies["released"]),
        # the released loop once more: the run-to-run noise floor of the GPU at these shapes
        "released-again": lambda: released_loop(judge, paths[: args.released_samples], spec, args.new_tokens,
                                                replies["released-again"]),
        # official mode with each question's vision tower recomputed: tells the shared vision output apart
        "official-recompute": lambda: recomputing_vision(lambda: stage_run(
            judge, paths, spec, "official", batch, args.decode_workers, work / "official-recompute",
            replies["official-recompute"])),
        "official": lambda: stage_run(judge, paths, spec, "official", batch, args.decode_workers, work / "official",
                                      replies["official"]),
        "parity": lambda: sum(stage_run(judge, paths, spec, "parity", batch, args.decode_workers, work / f"parity{r}",
                                        replies["parity"]) for r in range(args.repeats)),
        "fast": lambda: sum(stage_run(judge, paths, spec, "fast", batch, args.decode_workers, work / f"fast{r}")
                            for r in range(args.repeats)),
    }
    released_keys = [(p.stem, q) for p in paths[: args.released_samples] for q in QUESTIONS]  # released_loop's order
    traces: dict[str, list] = {}
    for name in args.modes.split(","):
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        splits.count = 0
        traced = name.startswith(("released", "official"))  # the modes whose replies are compared, one generate each
        try:
            with traced_generate(model, traces.setdefault(name, [])) if traced else contextlib.nullcontext():
                seconds, n = timed(runs[name])
        except Exception as exc:  # report the other modes even when one breaks
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc()
            continue
        per_q = seconds / n
        results[name] = {"questions": n, "seconds": round(seconds, 3), "s_per_question": per_q,
                         "oom_splits": splits.count, "omiti2v_minutes": OMITI2V_QUESTIONS * per_q / 60}
        if torch.cuda.is_available():
            results[name]["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
        if "s_per_question" in results.get("released", {}):
            results[name]["speedup_vs_released"] = results["released"]["s_per_question"] / per_q
        if name != "released" and replies.get(name) and replies["released"]:
            found = compare_replies(replies["released"], replies[name], name)
            results.update(found)
            if traced and len(traces.get("released", [])) == len(released_keys):
                results.update(compare_inputs(dict(zip(released_keys, traces["released"], strict=True)), traces[name],
                                              found[f"{name}_vs_released_differences"], name))
        print(name, json.dumps(results[name]), flush=True)
    results["speedup"] = {m: results[m]["speedup_vs_released"] for m in ("official", "parity", "fast")
                          if "speedup_vs_released" in results.get(m, {})}
    print("speedup vs released loop:", json.dumps(results["speedup"]), flush=True)
    print("identical replies:", json.dumps({k: v for k, v in results.items() if k.endswith("_identical_replies")}),
          flush=True)
    print("identical inputs:", json.dumps({k: v for k, v in results.items() if k.endswith("_identical_inputs")}),
          flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "judge_throughput.json").write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")


if __name__ == "__main__":
    main()
