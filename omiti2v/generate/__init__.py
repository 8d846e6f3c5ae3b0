"""Stage 1 of the eval chain: image-prompt pairs in, one MP4 (+ JSON sidecar) per sample out.

`run_generation(cfg, run, benchmark)` is the stage; `plan` measures what a sweep would cost. The runner (and
with it torch, diffusers and transformers) loads on first use, so `omiti2v --help` and the sharding helpers
stay fast.
"""

from ..registry import lazy_exports
from .sharding import Shard, parse_shard, resolve_shard

__getattr__ = lazy_exports(__name__, {".runner": ("BadOutputError", "is_done", "run_generation")})

__all__ = ["BadOutputError", "Shard", "is_done", "parse_shard", "resolve_shard", "run_generation"]
