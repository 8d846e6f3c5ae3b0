"""Samplers the official generation scripts used that diffusers does not ship."""

from omiti2v.schedulers.framepack_unipc import FramePackUniPCScheduler, flux_shifted_sigmas

__all__ = ["FramePackUniPCScheduler", "flux_shifted_sigmas"]
