"""Step caches the official generation scripts ran (TeaCache for FramePack), as diffusers-style hooks."""

from omiti2v.cache.teacache import TeaCacheConfig, TeaCacheHandle, apply_teacache, teacache_handle

__all__ = ["TeaCacheConfig", "TeaCacheHandle", "apply_teacache", "teacache_handle"]
