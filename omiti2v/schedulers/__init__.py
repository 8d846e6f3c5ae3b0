"""Samplers the official generation scripts used that diffusers does not ship."""

from omiti2v.schedulers.framepack_unipc import FramePackUniPCScheduler, flux_shifted_sigmas
from omiti2v.schedulers.wan_unipc import WanFlowUniPCScheduler, wan_sigmas

__all__ = ["FramePackUniPCScheduler", "WanFlowUniPCScheduler", "flux_shifted_sigmas", "wan_sigmas"]
