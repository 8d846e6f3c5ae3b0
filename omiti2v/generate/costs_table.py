"""The cost planner's rows (`StepCost`), their table and their JSONL file: light, so that `omiti2v plan --table`
prints recorded rows without importing torch (planner.py measures them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..runs import append_jsonl


@dataclass
class StepCost:
    model: str
    asm: str
    schedule: str
    device: str
    height: int
    width: int
    frames: int
    video_tokens: int
    seconds_per_forward: float
    seconds_per_forward_outside_window: float | None
    forwards_per_step: float
    seconds_per_step: float
    denoising_steps: int
    asm_active_steps: int
    seconds_per_video: float
    samples: int
    hours_per_config: float
    peak_memory_gb: float | None            # during the timed forwards: transformer weights + activations
    peak_memory_pipeline_gb: float | None   # up to the first step: encoders, VAE encode, transformer resident
    computed_fraction: float = 1.0          # share of calls that run the block stack (assumed, under TeaCache)
    compile: str = "none"                    # generation.compile: the timed forwards ran eager or regionally compiled
    guidance: str = "none"                   # the guidance group (conf/guidance/), its forwards in forwards_per_step


def format_costs(costs: list[StepCost], header: bool = True, footer: bool = True) -> str:
    """The cost table; a sweep prints the header once (first job) and rows as they come."""
    title = (f"{'model':20s} {'asm':10s} {'schedule':11s} {'HxWxF':>13s} {'tokens':>7s} {'s/fwd':>7s} "
             f"{'s/step':>7s} {'steps':>5s} {'comp.':>5s} {'s/video':>8s} {'h/config':>8s} {'peak GB':>7s}")
    rows = [title, "-" * len(title)] if header else []
    for c in costs:
        asm = c.asm if c.guidance == "none" else f"{c.asm}+{c.guidance}"
        rows.append(f"{c.model:20s} {asm:10s} {c.schedule:11s} {f'{c.height}x{c.width}x{c.frames}':>13s} "
                    f"{c.video_tokens:7d} {c.seconds_per_forward:7.3f} {c.seconds_per_step:7.3f} {c.denoising_steps:5d} "
                    f"{c.computed_fraction:5.2f} "
                    f"{c.seconds_per_video:8.1f} {c.hours_per_config:8.2f} "
                    f"{'-' if c.peak_memory_gb is None else f'{c.peak_memory_gb:.1f}':>7s}")
    if costs and footer:
        rows.append(f"hours per config: {costs[0].samples} samples x seconds per video (transformer only), "
                    f"device {costs[0].device}; comp.: share of calls computed (TeaCache: assumed)")
    return "\n".join(rows)


def record_cost(path, cost: StepCost) -> None:
    append_jsonl(path, [asdict(cost)])
