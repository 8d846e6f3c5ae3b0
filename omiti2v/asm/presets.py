"""Official AlignVid recipes (arXiv 2512.01334 and the scripts of https://github.com/LAW1223/AlignVid) and the documented
defaults for the other four baselines.

A preset fixes *where* ASM acts (which attention sites get Q and/or K scaled), the default gamma, the
block-level guidance (BGS) list and the step window. Sites are named per attention call:

* Wan / SkyReels blocks: ``self`` (attn1), ``cross_image`` (I2V cross-attention vs. CLIP image tokens),
  ``cross_text`` (cross-attention vs. text tokens).
* HunyuanVideo / FramePack: ``dual`` (joint attention of ``transformer_blocks``), ``single`` (joint attention
  of ``single_transformer_blocks``). Block indices count within each stream.
* EasyAnimate: ``joint`` (joint attention of ``transformer_blocks``).

The logit multiplier at a site is ``gamma_q`` if the site is in ``q_sites`` times ``gamma_k`` if it is in
``k_sites``. Wan2.1's recipe scales the shared cross-attention query once and the text key once, hence
image-branch logits x gamma and text-branch logits x gamma^2.

Defaults chosen here (no public recipe; all with gamma 1.35 and the early window t > 900):
* skyreels-v2-i2v: the Wan2.1 recipe and BGS list. SkyReels-V2-I2V-14B is a Wan2.1-I2V-14B fine-tune with the
  same 40-block layout and the same cross-attention branches.
* skyreels-v2-df: the Wan2.1 recipe and list; the DF model has no image branch, so only ``cross_text``
  (x gamma^2) is modulated.
* hunyuan-i2v: the FramePack recipe (K x gamma in the single-stream joint attention) on all 40 single blocks:
  FramePack is a HunyuanVideo fine-tune, but its BGS lists differ between FramePack and F1, so no list is
  assumed to transfer.
* easyanimate: K x gamma in the joint attention of all 48 (MMDiT) blocks, the FramePack-style recipe for a
  joint-attention model.

Any other diffusers transformer (no preset; `ASMConfig` with empty q_sites and k_sites) gets the default recipe
of the first role it has, in the order of `DEFAULT_RECIPES`: an image cross-attention gets the Wan recipe,
single-stream, joint or dual attention gets K x gamma_k (the FramePack recipe), a text cross-attention gets
Q x gamma_q and K x gamma_k (Wan's text branch), a model with self-attention only gets K x gamma_k there.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_GAMMA = 1.35

WAN21_BGS_BLOCKS = (0, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 25, 26, 27, 28, 29, 30, 31,
                    32, 37, 38)
FRAMEPACK_F1_BGS_BLOCKS = (0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15, 16, 18, 19, 20, 23, 25, 29, 32, 36, 37, 38, 39)
FRAMEPACK_BGS_BLOCKS = (0, 2, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 23, 25, 26, 27, 31, 33)


@dataclass(frozen=True)
class Preset:
    """Where and how strongly a backbone is modulated; `bgs_blocks=None` means every block."""

    family: str
    q_sites: tuple[str, ...]
    k_sites: tuple[str, ...]
    gamma_q: float
    gamma_k: float
    bgs_blocks: tuple[int, ...] | None
    window: str = "early"


_WAN_RECIPE = dict(q_sites=("cross_image", "cross_text"), k_sites=("cross_text",), gamma_q=DEFAULT_GAMMA,
                   gamma_k=DEFAULT_GAMMA)
_SINGLE_STREAM_K = dict(q_sites=(), k_sites=("single",), gamma_q=1.0, gamma_k=DEFAULT_GAMMA)

PRESETS: dict[str, Preset] = {
    "wan2.1": Preset("wan", bgs_blocks=WAN21_BGS_BLOCKS, **_WAN_RECIPE),
    "skyreels-v2-i2v": Preset("skyreels", bgs_blocks=WAN21_BGS_BLOCKS, **_WAN_RECIPE),
    "skyreels-v2-df": Preset("skyreels-df", bgs_blocks=WAN21_BGS_BLOCKS, **_WAN_RECIPE),
    "framepack": Preset("framepack", bgs_blocks=FRAMEPACK_BGS_BLOCKS, **_SINGLE_STREAM_K),
    "framepack-f1": Preset("framepack", bgs_blocks=FRAMEPACK_F1_BGS_BLOCKS, **_SINGLE_STREAM_K),
    "hunyuan-i2v": Preset("hunyuan", bgs_blocks=None, **_SINGLE_STREAM_K),
    "easyanimate": Preset("easyanimate", q_sites=(), k_sites=("joint",), gamma_q=1.0, gamma_k=DEFAULT_GAMMA,
                          bgs_blocks=None),
}

# Newer baselines (omiti2v.models.modern, not in the paper), kept out of PRESETS (the paper models' presets, which
# the paper-family ASM tests iterate): no public AlignVid recipe, so each is "our default": gamma 1.35, early window
# (t > 900), all blocks, one attention role.
# * wan2.2: cross-attention to text (attn2; Wan2.2-A14B has no CLIP image branch), Q and K as in the Wan2.1
#   recipe, hence text logits x gamma^2 as for skyreels-v2-df. apply_asm(pipe) hooks both experts; the early
#   window falls on the high-noise expert (boundary t = 900).
# * hunyuan-video-1.5: joint text+image+video attention of the double-stream blocks, K x gamma as in the
#   HunyuanVideo-family presets; the model has no single-stream blocks, so the role is `joint`
#   (`omiti2v.asm.sites`). Runs on the generic adapter.
# * ltx-video: cross-attention to text (attn2 of every block), K x gamma. Runs on the generic adapter.
NEWER_PRESETS: dict[str, Preset] = {
    "wan2.2": Preset("wan", q_sites=("cross_text",), k_sites=("cross_text",), gamma_q=DEFAULT_GAMMA,
                     gamma_k=DEFAULT_GAMMA, bgs_blocks=None),
    "hunyuan-video-1.5": Preset("hunyuan-video-1.5", q_sites=(), k_sites=("joint",), gamma_q=1.0,
                                gamma_k=DEFAULT_GAMMA, bgs_blocks=None),
    "ltx-video": Preset("ltx-video", q_sites=(), k_sites=("cross_text",), gamma_q=1.0, gamma_k=DEFAULT_GAMMA,
                        bgs_blocks=None),
}


# role present in the model -> (q_sites, k_sites); the first role the model has decides.
DEFAULT_RECIPES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("cross_image", _WAN_RECIPE["q_sites"], _WAN_RECIPE["k_sites"]),
    ("single", (), ("single",)),
    ("joint", (), ("joint",)),
    ("dual", (), ("dual",)),
    ("cross_text", ("cross_text",), ("cross_text",)),
    ("self", (), ("self",)),
)


def default_sites(roles: set[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(q_sites, k_sites) of the default recipe for a model whose attention has `roles`."""
    for role, q_sites, k_sites in DEFAULT_RECIPES:
        if role in roles:
            return q_sites, k_sites
    raise ValueError("the model has no attention in a block stack: no default ASM recipe applies")


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name] if name in PRESETS else NEWER_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown ASM preset {name!r}; expected one of {sorted(PRESETS | NEWER_PRESETS)}") from None
