"""ASM hooks on tiny transformers of all seven baselines: identity, removal, reference equality, gating."""

import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from omiti2v.asm import ASMConfig, apply_asm
from omiti2v.asm.config import resolve_window
from omiti2v.asm.presets import PRESETS
from omiti2v.asm.processors import find_attention_sites, intercept_attention
from omiti2v.models.architectures import build_transformer, dummy_inputs

REPO = Path(__file__).resolve().parents[1]
PRESET_FAMILY = {name: preset.family for name, preset in PRESETS.items()}
GAMMA = 1.35


def _inputs(family, **kwargs):
    size = 16 if family == "framepack" else 8
    return dummy_inputs(family, height=size, width=size, generator=torch.Generator().manual_seed(1), **kwargs)


@pytest.fixture(scope="module")
def models():
    return {family: build_transformer(family, seed=0) for family in set(PRESET_FAMILY.values())}


def _forward(model, inputs):
    with torch.no_grad():
        return model(**inputs)[0]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_gamma_one_is_bit_identical_and_remove_restores(models, preset):
    model = models[PRESET_FAMILY[preset]]
    inputs = _inputs(PRESET_FAMILY[preset])
    processors = {name: m.processor for name, m in model.named_modules() if hasattr(m, "processor")}
    baseline = _forward(model, inputs)
    with apply_asm(model, ASMConfig.preset(preset, gamma_q=1.0, gamma_k=1.0)) as handle:
        assert handle.module_names  # interceptors are installed, yet the output is unchanged
        assert torch.equal(_forward(model, inputs), baseline)
    handle = apply_asm(model, ASMConfig.preset(preset))
    modulated = _forward(model, inputs)
    handle.remove()
    assert not torch.equal(modulated, baseline)
    assert torch.equal(_forward(model, inputs), baseline)
    assert {name: m.processor for name, m in model.named_modules() if hasattr(m, "processor")} == processors


def _reference_hooks(model, preset):
    """Explicit Q/K multiplication after the Q/K norms (RoPE is linear), in the preset's blocks only."""
    hooks = []

    def scale_output(module, args, output):
        return output * GAMMA

    bgs = PRESETS[preset].bgs_blocks
    chosen = lambda i: bgs is None or i in bgs  # noqa: E731
    family = PRESET_FAMILY[preset]
    if family in ("wan", "skyreels", "skyreels-df"):
        # Wan recipe: the cross-attention query once (both branches), the text key once.
        for i, block in enumerate(model.blocks):
            if chosen(i):
                hooks += [block.attn2.norm_q.register_forward_hook(scale_output),
                          block.attn2.norm_k.register_forward_hook(scale_output)]
    elif family in ("hunyuan", "framepack"):
        for i, block in enumerate(model.single_transformer_blocks):
            if chosen(i):
                hooks.append(block.attn.norm_k.register_forward_hook(scale_output))
    else:
        for i, block in enumerate(model.transformer_blocks):
            if chosen(i):
                hooks += [block.attn1.norm_k.register_forward_hook(scale_output),
                          block.attn1.norm_added_k.register_forward_hook(scale_output)]
    return hooks


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_scalar_asm_equals_explicit_qk_scaling(models, preset):
    model = models[PRESET_FAMILY[preset]]
    inputs = _inputs(PRESET_FAMILY[preset])
    with apply_asm(model, ASMConfig.preset(preset)):
        modulated = _forward(model, inputs)
    hooks = _reference_hooks(model, preset)
    try:
        reference = _forward(model, inputs)
    finally:
        for hook in hooks:
            hook.remove()
    assert torch.equal(modulated, reference)  # the same products in the same order: bit for bit
    assert (modulated - _forward(model, inputs)).abs().max() > 1e-4


def test_dual_and_single_stream_blocks_are_separate(models):
    model = models["hunyuan"]
    single = apply_asm(model, ASMConfig.preset("hunyuan-i2v"))
    assert all(name.startswith("single_transformer_blocks.") for name in single.module_names)
    single.remove()
    dual = apply_asm(model, ASMConfig.preset("hunyuan-i2v", k_sites=("dual",)))
    assert sorted(dual.module_names) == ["transformer_blocks.0.attn", "transformer_blocks.1.attn"]
    dual.remove()


class _SDPACapture(torch.overrides.TorchFunctionMode):
    """Records (q, k, scale) at every torch SDPA call: the kernel boundary, independent of the hooks."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.scaled_dot_product_attention:
            bound = dict(zip(("query", "key"), args[:2], strict=False), **kwargs)
            q, k = bound["query"], bound["key"]
            scale = bound.get("scale") or 1.0 / math.sqrt(q.shape[-1])
            self.calls.append(scale * q @ k.transpose(-1, -2))
        return func(*args, **kwargs)


def test_wan_preset_image_logits_gamma_text_logits_gamma_squared(models):
    model = models["wan"]
    inputs = _inputs("wan")
    with _SDPACapture() as base:
        _forward(model, inputs)
    with apply_asm(model, ASMConfig.preset("wan2.1")), _SDPACapture() as asm:
        _forward(model, inputs)
    # Block 0 runs self-attention, then the image branch, then the text branch; its inputs are unmodulated.
    self_attn, image, text = range(3)
    torch.testing.assert_close(asm.calls[self_attn], base.calls[self_attn], rtol=0, atol=0)
    torch.testing.assert_close(asm.calls[image], base.calls[image] * GAMMA, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(asm.calls[text], base.calls[text] * GAMMA**2, rtol=1e-5, atol=1e-5)
    assert base.calls[text].shape[-1] == 512 and base.calls[image].shape[-1] == 257


@pytest.fixture(scope="module")
def tiny_wan_pipeline():
    """WanImageToVideoPipeline from tiny random components (3 UniPC steps: t = 999, 857, 600), CFG on."""
    import numpy as np
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline
    from PIL import Image
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
        UMT5Config,
        UMT5EncoderModel,
    )

    from omiti2v.models.architectures import transformer_config
    from omiti2v.models.tokenizers import local_tokenizer

    torch.manual_seed(0)
    dims = transformer_config("wan")
    pipe = WanImageToVideoPipeline(
        tokenizer=local_tokenizer(max_length=512, vocab_size=400),
        text_encoder=UMT5EncoderModel(UMT5Config(vocab_size=400, d_model=dims["text_dim"], d_kv=8, d_ff=32,
                                                 num_layers=1, num_heads=2, relative_attention_num_buckets=8)).eval(),
        image_encoder=CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=dims["image_dim"], projection_dim=dims["image_dim"], num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=37, image_size=32, patch_size=8)).eval(),
        image_processor=CLIPImageProcessor(crop_size=32, size={"shortest_edge": 32}),
        transformer=build_transformer("wan", seed=0),
        vae=AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                             temperal_downsample=[False, True, True]).eval(),
        scheduler=UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0),
    )
    pipe.set_progress_bar_config(disable=True)
    image = Image.fromarray(np.random.RandomState(0).randint(0, 255, (32, 32, 3), dtype=np.uint8))
    call_kwargs = dict(image=image, prompt="a cat", negative_prompt="blurry", height=32, width=32, num_frames=5,
                       num_inference_steps=3, guidance_scale=5.0, output_type="latent",
                       generator=torch.Generator().manual_seed(0))
    return pipe, call_kwargs


def _run_recorded(pipe, call_kwargs, config: ASMConfig) -> tuple[list, list[float]]:
    """Run the pipeline under `config`; returns every attention call as (module, site, timestep, logit multiplier
    ASM applied at that step, read from its hooks after the step) and the step timesteps."""
    from omiti2v.asm.gating import TimestepTracker

    handle = apply_asm(pipe, config)
    tracker = TimestepTracker(pipe.transformer)
    calls, step_multipliers = [], {}
    recorder = intercept_attention(find_attention_sites(pipe.transformer),
                                   lambda call: calls.append((call.module_name, call.site, tracker.current)))

    def after_step(pipe_, step, timestep, callback_kwargs):
        step_multipliers[float(timestep)] = handle.logit_multipliers()
        return callback_kwargs

    try:
        pipe(**call_kwargs, callback_on_step_end=after_step)
    finally:
        recorder.remove()
        tracker.remove()
        handle.remove()
    events = [(module, site, t, step_multipliers[t].get((module, site), 1.0)) for module, site, t in calls]
    return events, [float(t) for t in pipe.scheduler.timesteps]


def test_only_chosen_blocks_and_steps_change_in_a_cfg_pipeline(tiny_wan_pipeline):
    pipe, call_kwargs = tiny_wan_pipeline
    events, steps = _run_recorded(pipe, call_kwargs, ASMConfig.preset("wan2.1"))
    assert steps[0] > 900 and all(t <= 900 for t in steps[1:])
    expected_gamma = {"self": 1.0, "cross_image": GAMMA, "cross_text": GAMMA**2}
    seen = {}
    for module, site, t, multiplier in events:
        block = int(module.split(".")[1])
        active = t > 900 and block in PRESETS["wan2.1"].bgs_blocks
        assert multiplier == pytest.approx(expected_gamma[site] if active else 1.0, rel=1e-6), (module, site, t)
        seen[(module, site, t)] = seen.get((module, site, t), 0) + 1
    # Every block and branch fires at every step, twice (conditional and unconditional CFG passes).
    n_blocks = len(pipe.transformer.blocks)
    assert len(seen) == n_blocks * 3 * len(steps)
    assert set(seen.values()) == {2}


@pytest.mark.parametrize("window, active_steps", [("early", [0]), ("mid", [1]), ("late", [2]), ("all", [0, 1, 2])])
def test_step_windows_in_a_pipeline(tiny_wan_pipeline, window, active_steps):
    pipe, call_kwargs = tiny_wan_pipeline
    events, steps = _run_recorded(pipe, call_kwargs, ASMConfig.preset("wan2.1", window=window, blocks="all"))
    modulated = {t for _, site, t, m in events if site != "self" and m != 1.0}
    assert modulated == {steps[i] for i in active_steps}


def test_gating_reads_positional_timestep_and_max_over_frames(models):
    model = models["skyreels-df"]
    inputs = _inputs("skyreels-df")  # per-frame timesteps: frame 0 clean (t=0), the rest at 999
    late = {**inputs, "timestep": torch.where(inputs["timestep"] > 0, 800.0, 0.0)}
    baseline, baseline_late = _forward(model, inputs), _forward(model, late)
    with apply_asm(model, ASMConfig.preset("skyreels-v2-df")) as handle:
        assert not torch.equal(_forward(model, inputs), baseline)
        assert handle.timestep == 999.0
        assert torch.equal(_forward(model, late), baseline_late)  # max over frames 800: outside t > 900
        assert handle.timestep == 800.0
    wan = models["wan"]
    kw = _inputs("wan")
    args = (kw.pop("hidden_states"), kw.pop("timestep"), kw.pop("encoder_hidden_states"))
    with torch.no_grad():
        baseline = wan(*args, **kw)[0]
        with apply_asm(wan, ASMConfig.preset("wan2.1")) as handle:
            assert not torch.equal(wan(*args, **kw)[0], baseline)
            assert handle.timestep == 999.0


def test_blocks_outside_preset_and_explicit_lists(models):
    model = models["wan"]
    handle = apply_asm(model, ASMConfig.preset("wan2.1"))
    assert sorted(handle.module_names) == ["blocks.0.attn2", "blocks.2.attn2"]  # BGS list: 0, 2 (not 1)
    handle.remove()
    handle = apply_asm(model, ASMConfig.preset("wan2.1", blocks=[1], q_sites=("self",), k_sites=()))
    assert handle.module_names == ["blocks.1.attn1"]
    handle.remove()
    with pytest.raises(ValueError, match="out of range"):
        apply_asm(model, ASMConfig.preset("wan2.1", blocks=[7]))
    with pytest.raises(ValueError, match="match no attention"):
        apply_asm(model, ASMConfig.preset("framepack"))


def test_attention_backend_setting_survives_asm(models):
    model = models["wan"]
    inputs = _inputs("wan")
    processor = model.blocks[0].attn2.processor
    with apply_asm(model, ASMConfig.preset("wan2.1")):
        model.set_attention_backend("native")
        assert model.blocks[0].attn2.processor._attention_backend.value == "native"
        _forward(model, inputs)
    assert model.blocks[0].attn2.processor._attention_backend.value == "native"
    assert model.blocks[0].attn2.processor is processor  # scalar ASM never replaces processors


def test_config_validation_and_windows():
    assert resolve_window("early") == (900.0, math.inf)
    config = ASMConfig.preset("wan2.1")
    assert config.step_active(901) and not config.step_active(900)
    assert ASMConfig.preset("wan2.1", window="mid").step_active(900)
    assert ASMConfig.preset("wan2.1", window=(100, 200)).step_active(150)
    assert config.logit_multiplier("cross_text") == pytest.approx(GAMMA**2)
    assert ASMConfig.preset("framepack").logit_multiplier("single") == GAMMA
    assert ASMConfig.preset("framepack").logit_multiplier("dual") == 1.0
    for bad in (dict(strategy="magic"), dict(gamma_k=0), dict(q_sites=("nowhere",)), dict(window="dawn"),
                dict(blocks="some")):
        with pytest.raises(ValueError):
            ASMConfig.preset("wan2.1", **bad)
    with pytest.raises(ValueError, match="unknown ASM preset"):
        ASMConfig.preset("sora")


@pytest.mark.parametrize("asm_file", sorted((REPO / "conf" / "asm").glob("*.yaml")), ids=lambda p: p.stem)
def test_from_hydra_builds_every_conf_combination(asm_file):
    asm_cfg = OmegaConf.load(asm_file)
    for schedule_file in sorted((REPO / "conf" / "schedule").glob("*.yaml")):
        schedule_cfg = OmegaConf.load(schedule_file)
        if schedule_cfg.blocks == "calibrated":  # from_hydra reads the file's list (tests/test_calibrate.py)
            schedule_cfg.blocks = [0, 1]
        for preset in PRESETS:
            config = ASMConfig.from_hydra(preset, asm_cfg, schedule_cfg)
            assert config.strategy == asm_cfg.strategy
            assert config.window == schedule_cfg.window and config.blocks == schedule_cfg.blocks
            assert config.gamma_k == PRESETS[preset].gamma_k  # null gamma = the preset's
    paper = ASMConfig.from_hydra("wan2.1", OmegaConf.load(REPO / "conf/asm/scalar.yaml"),
                                 OmegaConf.load(REPO / "conf/schedule/paper.yaml"))
    assert paper == ASMConfig.preset("wan2.1")


def test_strategy_none_installs_nothing(models):
    model = models["wan"]
    with apply_asm(model, ASMConfig.preset("wan2.1", strategy="none")) as handle:
        assert handle.module_names == []


@pytest.mark.parametrize("strategy", ["scalar", "energy", "blur_key"])
def test_failed_install_leaves_the_installed_one_and_removal_leaves_nothing(strategy):
    """Both lifecycles are one (`omiti2v.asm.lifecycle.StepGate`): a second install on the same transformer fails
    without leaving hooks, buffers or flags behind, and `remove()` gives back the model as it was."""
    model = build_transformer("wan", seed=0)

    def state():
        return ({name for name, _ in model.named_buffers()},
                sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()),
                {(name, key) for name, m in model.named_modules() for key in vars(m) if key.startswith("_asm")},
                {name: type(m.processor) for name, m in model.named_modules() if hasattr(m, "processor")})

    before = state()
    config = ASMConfig.preset("wan2.1", strategy=strategy)
    handle = apply_asm(model, config)
    installed = state()
    assert installed[0] > before[0] and installed[1] > before[1] and installed[2]
    with pytest.raises(RuntimeError, match="already installed"):
        apply_asm(model, config)
    assert state() == installed
    handle.remove()
    assert state() == before
