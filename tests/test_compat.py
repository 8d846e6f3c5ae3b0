"""`omiti2v.compat`: each reach into diffusers / transformers / torch internals checked directly on real library
objects (a test here fails when the library changes what the function relies on), and no such reach anywhere
else in the package."""

from __future__ import annotations

import ast
import inspect
import io
import re
import tokenize
from pathlib import Path

import pytest
import torch
from diffusers.hooks import HookRegistry, ModelHook
from test_asm import tiny_wan_pipeline  # noqa: F401  (a fixture used below)

from omiti2v.compat import diffusers as compat_diffusers
from omiti2v.compat import torch as compat_torch
from omiti2v.compat import transformers as compat_transformers
from omiti2v.models.architectures import build_transformer

PACKAGE = Path(__file__).resolve().parents[1] / "omiti2v"

# Library internals the project has needed (private attributes, private modules, code objects); outside
# omiti2v/compat none may appear in code, as a whole name.
INTERNAL_NAMES = (
    "_attention_backend", "_parallel_config", "_repeated_blocks", "_cp_plan", "_interrupt", "_is_stateful",
    "_attn_implementation", "_LAYER_SKIP_HOOK", "_helpers", "_buffers",
    "_forward_hooks", "_forward_pre_hooks", "_diffusers_hook", "_orig_mod", "_compiled_call_impl",
    "__code__", "__globals__", "get_rope_index", "apply_rotary_pos_emb_vision",
)
INTERNAL_PATTERNS = tuple(rf"(?<!\w){re.escape(name)}\b" for name in INTERNAL_NAMES) + (
    r"\.original_forward\s*=(?!=)", r"\.device_count\s*=(?!=)",  # rebinding a hook's forward, torch's count
    r"\btorch(\.\w+)*\._", r"\bdiffusers(\.\w+)*\._", r"\btransformers(\.\w+)*\._",
    r"\bfrom (diffusers|transformers|torch)[\w.]* import \(?\s*_",
)


def code_without_docstrings_and_comments(source: str) -> str:
    """`source` with its docstrings and comments blanked (string literals in code are kept)."""
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            for number in range(body[0].lineno - 1, body[0].end_lineno):
                lines[number] = ""
    source = "\n".join(lines) + "\n"
    lines = source.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            lines[row - 1] = lines[row - 1][:col]
    return "\n".join(lines)


def internal_reaches(source: str) -> list[str]:
    code = code_without_docstrings_and_comments(source)
    return [match.group(0).strip() for pattern in INTERNAL_PATTERNS for match in re.finditer(pattern, code)]


def test_the_scan_finds_reaches_and_spares_the_projects_own_names():
    reaching = ('"""Docstrings may name `_repeated_blocks`."""\n'
                "from diffusers.hooks._helpers import AttentionProcessorRegistry\n"
                "names = transformer._repeated_blocks  # a comment may too: _cp_plan\n"
                "flag = getattr(pipe, '_interrupt')\n"
                "from torch._dynamo.utils import counters\n"
                "from diffusers.hooks.layer_skip import _LAYER_SKIP_HOOK\n"
                "hook.fn_ref.original_forward = compiled\n")
    assert internal_reaches(reaching) == ["_repeated_blocks", "_interrupt", "_LAYER_SKIP_HOOK", "_helpers",
                                          ".original_forward =", "torch._", "diffusers.hooks._",
                                          "from diffusers.hooks.layer_skip import _"]
    own = ('"""Mentions of `_cp_plan` in a docstring are fine."""\n'
           "module._asm_calls.add_(1)  # the project's own buffer: _buffers is named only here\n"
           "transformer._omiti2v_teacache = handle\n"
           "model.set_attention_backend('native'), module.named_buffers(), signals_interrupt()\n"
           "return self.fn_ref.original_forward(*args) if a.device_count == 1 else None\n")
    assert internal_reaches(own) == []


def test_no_library_internals_outside_the_compat_package():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "compat" in path.relative_to(PACKAGE).parts:
            continue
        found = internal_reaches(path.read_text(encoding="utf-8"))
        if found:
            offenders[str(path.relative_to(PACKAGE.parent))] = found
    assert offenders == {}, "library internals outside omiti2v/compat (add a function there, with a test here)"


# --- diffusers ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wan():
    return build_transformer("wan", seed=0)


def test_attention_function_reads_what_each_processor_calls():
    from diffusers.models.transformers.transformer_easyanimate import EasyAnimateAttnProcessor2_0
    from diffusers.models.transformers.transformer_wan import WanAttnProcessor

    class Plain:
        def __call__(self, attn, hidden_states):
            return hidden_states

    assert compat_diffusers.attention_function(WanAttnProcessor) == ("dispatch_attention_fn", "BSHD")
    assert compat_diffusers.attention_function(EasyAnimateAttnProcessor2_0) == ("F", "BHSD")
    assert compat_diffusers.attention_function(Plain) is None


def test_call_with_attention_runs_the_processors_code_with_the_swapped_function(wan):
    import diffusers.models.transformers.transformer_wan as wan_module
    from diffusers.models.attention_dispatch import dispatch_attention_fn
    from diffusers.models.transformers.transformer_easyanimate import EasyAnimateAttnProcessor2_0

    attention = wan.blocks[0].attn1
    processor = attention.processor
    seen = []

    def recording(query, key, value, *args, **kwargs):
        seen.append(query.shape)
        return dispatch_attention_fn(query, key, value, *args, **kwargs)

    rebound, replaced = compat_diffusers.call_with_attention(type(processor), "dispatch_attention_fn", recording)
    assert replaced is dispatch_attention_fn and wan_module.dispatch_attention_fn is dispatch_attention_fn
    hidden = torch.randn(1, 6, attention.to_q.in_features, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = processor(attention, hidden)
        got = rebound(processor, attention, hidden)
    assert torch.equal(got, expected)
    assert seen == [torch.Size([1, 6, attention.heads, attention.to_q.out_features // attention.heads])]  # BSHD
    _, functional = compat_diffusers.call_with_attention(EasyAnimateAttnProcessor2_0, "F", object())
    assert functional is torch.nn.functional


def test_carry_attention_backend_moves_what_set_attention_backend_wrote():
    from diffusers.models.transformers.transformer_wan import WanAttnProcessor

    model = build_transformer("wan", seed=0)
    model.set_attention_backend("native")
    chosen = model.blocks[0].attn1.processor
    target, untouched = WanAttnProcessor(), WanAttnProcessor()
    compat_diffusers.carry_attention_backend(chosen, target)
    compat_diffusers.carry_attention_backend(WanAttnProcessor(), untouched)
    assert target._attention_backend == chosen._attention_backend and str(target._attention_backend.value) == "native"
    assert vars(untouched) == {} and untouched._attention_backend is None and untouched._parallel_config is None


def test_repeated_block_classes_are_what_compile_repeated_blocks_compiles(wan):
    model = build_transformer("wan", seed=0)
    assert compat_diffusers.repeated_block_classes(model) == {"WanTransformerBlock"}
    model.compile_repeated_blocks(backend="eager")
    compiled = {type(m).__name__ for m in model.modules() if getattr(m, "_compiled_call_impl", None) is not None}
    assert compiled == {"WanTransformerBlock"}
    assert compat_diffusers.repeated_block_classes(build_transformer("framepack", seed=0)) == set()


def test_context_parallel_plan_is_declared_by_wan_only(wan):
    assert compat_diffusers.has_context_parallel_plan(wan)
    assert not compat_diffusers.has_context_parallel_plan(build_transformer("framepack", seed=0))


def test_interrupt_from_a_step_callback_stops_the_pipeline(tiny_wan_pipeline):  # noqa: F811
    pipe, call_kwargs = tiny_wan_pipeline
    forwards = []
    handle = pipe.transformer.register_forward_pre_hook(lambda *_: forwards.append(1))

    def stop(pipe_, step, timestep, callback_kwargs):
        compat_diffusers.interrupt(pipe_)
        return callback_kwargs

    try:
        pipe(**call_kwargs, callback_on_step_end=stop)
    finally:
        handle.remove()
    assert pipe.interrupt is True
    assert len(forwards) == 2  # step 0's conditional and unconditional passes; steps 1 and 2 skipped


def test_stateful_hook_is_reset_by_the_registry_and_a_plain_hook_is_not():
    resets = []

    class Counting(compat_diffusers.StatefulHook):
        def reset_state(self, module):
            resets.append("stateful")
            return module

    class Plain(ModelHook):
        def reset_state(self, module):
            resets.append("plain")
            return module

    module = torch.nn.Linear(2, 2)
    registry = HookRegistry.check_if_exists_or_initialize(module)
    registry.register_hook(Counting(), "counting")
    registry.register_hook(Plain(), "plain")
    registry.reset_stateful_hooks()
    assert resets == ["stateful"]


def test_compile_beneath_compiles_the_wrapped_forward_and_leaves_it_on_removal():
    from torch._dynamo.utils import counters

    class Doubling(ModelHook):
        def new_forward(self, module, *args, **kwargs):
            return 2 * self.fn_ref.original_forward(*args, **kwargs)

    module = torch.nn.Linear(3, 3)
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    expected = 2 * module(x)
    hook = Doubling()
    registry = HookRegistry.check_if_exists_or_initialize(module)
    registry.register_hook(hook, "doubling")
    torch._dynamo.reset()
    counters.clear()
    compat_diffusers.compile_beneath(hook, backend="eager", fullgraph=True)
    torch.testing.assert_close(module(x), expected)
    assert counters["stats"]["unique_graphs"] == 1
    registry.remove_hook("doubling")
    assert module.forward is hook.fn_ref.original_forward  # the compiled forward stays on the module
    torch.testing.assert_close(module(x), expected / 2)


def test_layer_skip_hook_name_and_the_wan_processor_registration(wan):
    """Fails when diffusers renames the layer-skip hooks or registers WanAttnProcessor itself (then the
    registration can go)."""
    from diffusers.hooks import LayerSkipConfig, apply_layer_skip
    from diffusers.hooks._helpers import AttentionProcessorRegistry
    from diffusers.models.transformers.transformer_wan import WanAttnProcessor, WanAttnProcessor2_0

    model = build_transformer("wan", seed=0)
    apply_layer_skip(model, LayerSkipConfig(indices=[0], fqn="auto"))
    assert compat_diffusers.layer_skip_hook_name() in model.blocks[0]._diffusers_hook.hooks
    HookRegistry.check_if_exists_or_initialize(model).remove_hook(compat_diffusers.layer_skip_hook_name(), recurse=True)
    assert compat_diffusers.layer_skip_hook_name() not in model.blocks[0]._diffusers_hook.hooks
    compat_diffusers.register_wan_attention_for_layer_skip()
    assert AttentionProcessorRegistry.get(WanAttnProcessor) is AttentionProcessorRegistry.get(WanAttnProcessor2_0)


# --- torch -------------------------------------------------------------------------------------------------


def test_accelerator_count_reads_at_least_one_and_is_restored():
    """Also fails when diffusers stops dividing by the accelerator count (then the workaround may go)."""
    from diffusers import ModelMixin

    assert "rank % torch.accelerator.device_count()" in inspect.getsource(ModelMixin)
    original = torch.accelerator.device_count
    with compat_torch.accelerator_count_at_least_one():
        assert torch.accelerator.device_count() == max(1, original())
    assert torch.accelerator.device_count is original


# --- transformers ------------------------------------------------------------------------------------------


def tiny_qwen25_vl():
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(
        text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "num_key_value_heads": 1, "vocab_size": 64,
                     "rope_parameters": {"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 10000.0}},
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 32, "num_heads": 2, "out_hidden_size": 16,
                       "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
                       "fullatt_block_indexes": [0], "tokens_per_second": 2},
        image_token_id=60, video_token_id=61, vision_start_token_id=62, vision_end_token_id=63)
    torch.manual_seed(0)
    return Qwen2_5_VLForConditionalGeneration._from_config(config, attn_implementation="sdpa").eval()


@pytest.fixture(scope="module")
def qwen():
    return tiny_qwen25_vl()


def test_attention_implementation_follows_the_model(qwen):
    assert compat_transformers.attention_implementation(qwen.config) == "sdpa"
    qwen.set_attn_implementation("eager")
    try:
        assert compat_transformers.attention_implementation(qwen.config) == "eager"
    finally:
        qwen.set_attn_implementation("sdpa")


def test_kv_cache_field_is_where_the_cache_comes_and_goes_back(qwen):
    from transformers import Cache

    ids = torch.randint(0, 60, (1, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = qwen(input_ids=ids).logits[:, -1]
        prefix = qwen(input_ids=ids[:, :6], use_cache=True)
        cache = getattr(prefix, compat_transformers.kv_cache_field())
        assert isinstance(cache, Cache)
        last = qwen(input_ids=ids[:, 6:], use_cache=True, **{compat_transformers.kv_cache_field(): cache}).logits[:, -1]
    torch.testing.assert_close(last, full, rtol=1e-4, atol=1e-5)


def test_rope_positions_follow_qwen25_vl_m_rope(qwen):
    """Text before a video counts 0, 1, 2; video token (t, h, w) of the merged grid sits at 3 + (t * tokens per
    second * seconds per grid, h, w); text after it continues in steps of 1 past the video's spatial extent."""
    grid_t, grid_h, grid_w = 2, 4, 6  # patches; merged 2 x 2: 2 x 2 x 3 = 12 video tokens
    video = grid_t * (grid_h // 2) * (grid_w // 2)
    ids = torch.tensor([[1, 2, 62] + [61] * video + [63, 5]])
    types = torch.tensor([[0, 0, 0] + [2] * video + [0, 0]])
    positions = compat_transformers.rope_positions(
        qwen, input_ids=ids, mm_token_type_ids=types, attention_mask=torch.ones_like(ids),
        video_grid_thw=torch.tensor([[grid_t, grid_h, grid_w]]), unused_key=torch.zeros(1))
    assert positions.shape == (3, 1, ids.shape[1])
    assert positions[:, 0, :3].tolist() == [[0, 1, 2]] * 3
    expected = [(3 + t * 2, 3 + h, 3 + w) for t in range(grid_t) for h in range(grid_h // 2) for w in range(grid_w // 2)]
    assert [tuple(p) for p in positions[:, 0, 3:3 + video].T.tolist()] == expected
    after = positions[:, 0, 3 + video:]
    assert (after[:, 1] - after[:, 0]).tolist() == [1, 1, 1] and int(after.min()) > 3 + grid_w // 2 - 1


def test_vision_rotary_is_the_modelling_files_rotate_half_rule():
    from transformers import Qwen2_5_VisionTransformerPretrainedModel, Qwen2_5_VLVisionConfig
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl

    config = Qwen2_5_VLVisionConfig(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=16)
    attention = Qwen2_5_VisionTransformerPretrainedModel._from_config(config).blocks[0].attn
    rotary = compat_transformers.vision_rotary(attention)
    assert rotary is modeling_qwen2_5_vl.apply_rotary_pos_emb_vision
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(5, 2, 8, generator=gen), torch.randn(5, 2, 8, generator=gen)
    angles = torch.randn(5, 8, generator=gen)
    cos, sin = angles.cos(), angles.sin()

    def rotate(x):  # x * cos + rotate_half(x) * sin, rotate_half(a, b) = (-b, a), per head
        half = x.shape[-1] // 2
        turned = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos[:, None] + turned * sin[:, None]

    got_q, got_k = rotary(q, k, cos, sin)
    torch.testing.assert_close(got_q, rotate(q))
    torch.testing.assert_close(got_k, rotate(k))
