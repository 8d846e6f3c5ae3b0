"""Stage 1 of the eval chain: image-prompt pairs in, one MP4 (+ JSON sidecar) per sample out.

`run_generation(ctx, run, benchmark)` is the stage (`ctx`: the run's resolved settings, omiti2v.context);
`plan` measures what a sweep would cost. The runner (and with it torch, diffusers and transformers) loads on
first use, so `omiti2v --help` and the sharding helpers stay fast.
"""

from ..registry import lazy_exports
from .sharding import Shard, parse_shard, resolve_shard

__getattr__ = lazy_exports(__name__, {".runner": ("BadOutputError", "is_done", "run_generation")})

__all__ = ["BadOutputError", "Shard", "is_done", "parse_shard", "resolve_shard", "run_generation"]
