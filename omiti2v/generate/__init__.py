"""Stage 1 of the eval chain: image-prompt pairs in, one MP4 (+ JSON sidecar) per sample out.

`run_generation(cfg, run, benchmark)` is the stage; `plan` measures what a sweep would cost.
"""

from .runner import BadOutputError, is_done, run_generation
from .sharding import Shard, parse_shard, resolve_shard

__all__ = ["BadOutputError", "Shard", "is_done", "parse_shard", "resolve_shard", "run_generation"]
