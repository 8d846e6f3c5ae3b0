"""Stage 1 of the eval chain: image-prompt pairs in, one MP4 (+ JSON sidecar) per sample out.

`run_generation(cfg, run, benchmark)` is the stage; `plan` measures what a sweep would cost. The runner (and
with it torch, diffusers and transformers) loads on first use, so `omiti2v --help` and the sharding helpers
stay fast.
"""

from importlib import import_module

from .sharding import Shard, parse_shard, resolve_shard

_LAZY = {"BadOutputError": ".runner", "is_done": ".runner", "run_generation": ".runner"}

__all__ = ["BadOutputError", "Shard", "is_done", "parse_shard", "resolve_shard", "run_generation"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
