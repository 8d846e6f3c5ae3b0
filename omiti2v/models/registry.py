"""The model registry: baseline name -> its `base.Baseline` subclass (one module per family), looked up by
`cfg.model.baseline`. Declared lazily, so that the config check lists the names without importing diffusers;
their numbers come from conf/model/<name>.yaml (settings.py). Adding a baseline: its class, one line here, its
conf/model/<name>.yaml (and <name>-tiny.yaml)."""

from __future__ import annotations

from ..registry import Registry

MODELS = Registry("model.baseline", base="omiti2v.models.base:Baseline", name_attr="name").declare_all({
    "wan2.1": "omiti2v.models.wan:Wan21",
    "hunyuan-i2v": "omiti2v.models.hunyuan:HunyuanI2V",
    "skyreels-v2-i2v": "omiti2v.models.skyreels:SkyReelsV2I2V",
    "skyreels-v2-df": "omiti2v.models.skyreels:SkyReelsV2DF",
    "framepack": "omiti2v.models.framepack:FramePack",
    "framepack-f1": "omiti2v.models.framepack:FramePackF1",
    "easyanimate": "omiti2v.models.easyanimate:EasyAnimate",
    "wan2.2": "omiti2v.models.modern:Wan22I2V",
    "hunyuan-video-1.5": "omiti2v.models.modern:HunyuanVideo15I2V",
    "ltx-video": "omiti2v.models.modern:LTXVideoI2V",
})


def get_baseline(name: str):
    """The registry entry for a baseline name (a `-tiny` suffix is accepted: same entry, tiny weights)."""
    return MODELS.lookup(name.removesuffix("-tiny"))()
