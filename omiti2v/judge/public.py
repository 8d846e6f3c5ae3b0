"""The published shapes of the registered judge checkpoints, for random-weight builds at real size.

No weights are downloaded: each judge's text and vision config numbers are written down here (with where they
were read), and its family's `family_config` wires them to the tiny tokenizer's special tokens. The memory
planner's tests and `benchmarks/judge_throughput.py --judge NAME` use them; the vocabulary keeps the
checkpoints' row count.
"""

from __future__ import annotations

from importlib import import_module

from .families import JUDGES

_QWEN25_VISION = {"depth": 32, "hidden_size": 1280, "num_heads": 16, "patch_size": 14, "spatial_merge_size": 2,
                  "temporal_patch_size": 2, "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31],
                  "tokens_per_second": 2, "hidden_act": "silu"}
_QWEN25_TEXT = {"vocab_size": 152064, "max_position_embeddings": 128000, "rms_norm_eps": 1e-6,
                "rope_parameters": {"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1000000.0}}
_QWEN3VL_VISION = {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16, "patch_size": 16,
                   "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 2304,
                   "deepstack_visual_indexes": [8, 16, 24], "hidden_act": "gelu_pytorch_tanh"}
_QWEN3VL_TEXT = {"vocab_size": 151936, "head_dim": 128, "max_position_embeddings": 262144, "rms_norm_eps": 1e-6,
                 "rope_parameters": {"rope_type": "default", "mrope_section": [24, 20, 20], "mrope_interleaved": True,
                                     "rope_theta": 5000000.0}}
_QWEN3_TEXT = {"model_type": "qwen3", "vocab_size": 151936, "head_dim": 128, "max_position_embeddings": 40960,
               "rms_norm_eps": 1e-6, "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
               "tie_word_embeddings": False}
_INTERNVIT = {"image_size": 448, "patch_size": 14, "hidden_act": "gelu", "layer_norm_eps": 1e-6}

# judge name -> (text config, vision config), each the checkpoint's published numbers.
PUBLIC_SHAPES: dict[str, tuple[dict, dict]] = {
    # config.json of Qwen/Qwen2.5-VL-7B-Instruct and Qwen/Qwen2.5-VL-32B-Instruct
    "qwen2.5-vl-7b": ({**_QWEN25_TEXT, "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                       "num_attention_heads": 28, "num_key_value_heads": 4},
                      {**_QWEN25_VISION, "intermediate_size": 3420, "out_hidden_size": 3584}),
    "qwen2.5-vl-32b": ({**_QWEN25_TEXT, "hidden_size": 5120, "intermediate_size": 27648, "num_hidden_layers": 64,
                        "num_attention_heads": 40, "num_key_value_heads": 8},
                       {**_QWEN25_VISION, "intermediate_size": 3456, "out_hidden_size": 5120}),
    # Qwen3-VL-8B-Instruct / -32B-Instruct: read from config.json copies of fine-tunes that keep the shapes
    # (huggingface.co/Steinate/Cortex, huggingface.co/quanliang/F1); the Qwen/ repos' own files were not stored
    "qwen3-vl-8b": ({**_QWEN3VL_TEXT, "hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36,
                     "num_attention_heads": 32, "num_key_value_heads": 8},
                    {**_QWEN3VL_VISION, "out_hidden_size": 4096}),
    "qwen3-vl-32b": ({**_QWEN3VL_TEXT, "hidden_size": 5120, "intermediate_size": 25600, "num_hidden_layers": 64,
                      "num_attention_heads": 64, "num_key_value_heads": 8},
                     {**_QWEN3VL_VISION, "out_hidden_size": 5120}),
    # InternVL3.5-8B: llm_config of huggingface.co/OpenGVLab/InternVL3_5-8B config.json (Qwen3-8B) and the
    # InternViT-300M-448px config.json (huggingface.co/OpenGVLab/InternViT-300M-448px)
    "internvl3.5-8b": ({**_QWEN3_TEXT, "hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36,
                        "num_attention_heads": 32, "num_key_value_heads": 8},
                       {**_INTERNVIT, "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                        "num_attention_heads": 16, "attention_bias": True, "use_qk_norm": False,
                        "norm_type": "layer_norm"}),
    # InternVL3.5-38B: InternViT-6B-448px (config.json of huggingface.co/OpenGVLab/InternViT-6B-448px-V1-5: 45
    # layers, qk-norm, RMSNorm) and Qwen3-32B (the text shapes of Qwen3-VL-32B above), per the InternVL3.5 card
    "internvl3.5-38b": ({**_QWEN3_TEXT, "hidden_size": 5120, "intermediate_size": 25600, "num_hidden_layers": 64,
                         "num_attention_heads": 64, "num_key_value_heads": 8},
                        {**_INTERNVIT, "hidden_size": 3200, "intermediate_size": 12800, "num_hidden_layers": 45,
                         "num_attention_heads": 25, "attention_bias": False, "use_qk_norm": True,
                         "norm_type": "rms_norm"}),
}


def _family(name: str):
    """(the family's builder module, text shapes, vision shapes) of judge `name`."""
    if name not in PUBLIC_SHAPES:
        raise ValueError(f"no published shapes for judge {name!r}; known: {', '.join(sorted(PUBLIC_SHAPES))}")
    return import_module(JUDGES.lookup(name).tiny_module), *PUBLIC_SHAPES[name]


def public_config(name: str, tokenizer):
    """Judge `name`'s config at its checkpoint's published shapes, wired to `tokenizer`'s special tokens."""
    module, text, vision = _family(name)
    return module.family_config(tokenizer, text, vision)


def public_processor(name: str):
    """The family's processor with the tiny tokenizer, sized as judge `name`'s checkpoint."""
    module, _, vision = _family(name)
    return module.public_processor(vision)
