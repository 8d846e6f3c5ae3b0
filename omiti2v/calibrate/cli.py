"""`omiti2v calibrate` (foreground-sensitive blocks) and `omiti2v analyze-attention` (entropy vs gamma, blur,
attention maps). Both compose the Hydra config for `--model` / `--data` (extra Hydra overrides are accepted,
e.g. model.sampling.num_inference_steps=40) and build the model's pipeline as the generation stage does."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", default="wan2.1", help="model config, e.g. wan2.1 or wan2.1-tiny")
    common.add_argument("--data", default="omiti2v", help="data config the samples are drawn from (e.g. mini)")
    common.add_argument("--samples", type=int, default=None, help="number of samples K")
    common.add_argument("--steps", type=int, default=None,
                        help="analyse the first N denoising steps (default: the steps inside --window)")
    common.add_argument("--window", default="early", help="step window when --steps is not given")
    common.add_argument("--max-queries", type=int, default=None, help="query tokens sampled per attention call")
    common.add_argument("--seed", type=int, default=None, help="default: cfg.seed")
    common.add_argument("--device", default="auto", help="auto (the GPU when there is one, else cpu) | cpu | cuda | cuda:N")
    common.add_argument("--out", default=None, help="output folder")
    common.add_argument("overrides", nargs="*", help="extra Hydra overrides")

    p = subparsers.add_parser("calibrate", parents=[common],
                              description=_doc("omiti2v.calibrate.calibration"),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--site", default=None, help="attention site to score (default: the family's ASM site)")
    p.add_argument("--mask-dir", default=None, help="folder of foreground masks <sample_id>.png (default: saliency)")
    rule = p.add_mutually_exclusive_group()
    rule.add_argument("--threshold", type=float, default=None, help="keep blocks with foreground lift >= this")
    rule.add_argument("--top-k", type=int, default=None, help="keep the K best blocks")
    rule.add_argument("--top-fraction", type=float, default=None, help="keep this fraction of blocks (0.7)")
    p.set_defaults(func=_calibrate)

    a = subparsers.add_parser("analyze-attention", parents=[common],
                              description=_doc("omiti2v.calibrate.analysis"),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--gammas", default="1,1.35,1.8,2.5", help="comma-separated gamma values (1 = no ASM)")
    a.add_argument("--blur", choices=("both", "off", "on"), default="both", help="input blur variants")
    a.add_argument("--sites", default=None, help="comma-separated sites (default: the preset's ASM sites)")
    a.add_argument("--blocks", default="all", help="ASM blocks: all | preset | comma-separated indices")
    a.add_argument("--tokens", default="0.5,0.5,0.5",
                   help="query tokens as frame,y,x fractions in [0,1], separated by ';'")
    a.set_defaults(func=_analyze)


def _doc(module: str) -> str:
    """A module's docstring read from its source, so building the parser imports no torch or diffusers."""
    import ast
    import importlib.util

    origin = importlib.util.find_spec(module).origin
    return ast.get_docstring(ast.parse(Path(origin).read_text(encoding="utf-8"))) or ""


def _config(args: argparse.Namespace):
    """The composed, checked config: a mistake stops here, before torch or the model loads."""
    from omiti2v.config_check import compose_checked

    return compose_checked([f"model={args.model}", f"data={args.data}", *args.overrides])


def _setup(args: argparse.Namespace, cfg):
    from omiti2v.data import benchmark_from_config
    from omiti2v.devices import resolve_device
    from omiti2v.models import baseline_for

    baseline = baseline_for(cfg.model)
    settings = baseline.settings(cfg.model)
    device = resolve_device(args.device)
    pipe = baseline.build(settings, device=device if settings["weights"] != "pretrained" else "cpu")
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    seed = int(args.seed if args.seed is not None else cfg.seed)
    return cfg, baseline, settings, pipe, list(benchmark_from_config(cfg.data)), seed


def _calibrate(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from omiti2v.calibrate.calibration import CalibrationConfig, run_calibration

    cfg, baseline, settings, pipe, samples, seed = _setup(args, cfg)
    options = {k: v for k, v in {"samples": args.samples, "steps": args.steps, "window": args.window,
                                 "site": args.site, "max_queries": args.max_queries, "threshold": args.threshold,
                                 "top_k": args.top_k, "top_fraction": args.top_fraction,
                                 "mask_dir": args.mask_dir}.items() if v is not None}
    config = CalibrationConfig(seed=seed, **options)
    out = Path(args.out or Path(cfg.results_root) / "calibration" / settings["name"])
    result = run_calibration(pipe, baseline, settings, samples, config, out)
    print(f"{result.model}: {len(result.blocks)}/{result.num_blocks} blocks ({result.site}, "
          f"{result.selection['rule']}={result.selection['value']}): {result.blocks}")
    print(f"wrote {out / 'blocks.yaml'}, {out / 'scores.jsonl'}, {out / 'heatmap.png'}")
    return 0


def _analyze(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from omiti2v.calibrate.analysis import AnalysisConfig, run_analysis

    cfg, baseline, settings, pipe, samples, seed = _setup(args, cfg)
    try:
        gammas = tuple(float(g) for g in args.gammas.split(","))
        tokens = tuple(tuple(float(v) for v in t.split(",")) for t in args.tokens.split(";"))
    except ValueError as exc:
        raise SystemExit(f"--gammas / --tokens: {exc}") from exc
    blocks = args.blocks if args.blocks in ("all", "preset") else tuple(int(b) for b in args.blocks.split(","))
    options = {k: v for k, v in {"samples": args.samples, "steps": args.steps, "window": args.window,
                                 "max_queries": args.max_queries}.items() if v is not None}
    config = AnalysisConfig(gammas=gammas, blur={"both": (False, True), "off": (False,), "on": (True,)}[args.blur],
                            blocks=blocks, sites=tuple(args.sites.split(",")) if args.sites else None,
                            tokens=tokens, seed=seed, **options)
    out = Path(args.out or Path(cfg.results_root) / "analysis" / settings["name"])
    result = run_analysis(pipe, baseline, settings, samples, config, out)
    print(f"{len(result.records)} entropy rows; wrote {out}/entropy.jsonl, entropy_vs_gamma.png, "
          "entropy_heatmap.png, attention_maps.png")
    return 0
