"""Batched window attention in the judge's vision tower equals transformers' stock per-window loop."""

from unittest import mock

import pytest
import torch
import torch.nn.functional as F

from omiti2v.judge.vision_attention import (
    _window_groups,
    install_batched_window_attention,
    remove_batched_window_attention,
)


def qwen25_tower():
    from transformers import Qwen2_5_VisionTransformerPretrainedModel, Qwen2_5_VLVisionConfig

    # window 56 px = 4x4 patches: a 6x10 patch grid leaves edge windows of 2 columns (unequal lengths)
    config = Qwen2_5_VLVisionConfig(depth=3, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=48,
                                    patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                                    fullatt_block_indexes=[2])
    config._attn_implementation = "sdpa"
    return Qwen2_5_VisionTransformerPretrainedModel._from_config(config, attn_implementation="sdpa"), 14


def qwen3_tower():
    from transformers import Qwen3VLVisionConfig, Qwen3VLVisionModel

    config = Qwen3VLVisionConfig(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=48,
                                 patch_size=16, spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=64,
                                 deepstack_visual_indexes=[1])
    return Qwen3VLVisionModel._from_config(config, attn_implementation="sdpa"), 16


def tower_output(tower, pixels, grid):
    out = tower(pixels, grid_thw=grid)
    out = getattr(out, "pooler_output", out)  # transformers 5.2x: an output object; before: the merged tensor
    return (out[0] if isinstance(out, tuple) else out).detach()


@pytest.mark.parametrize("build", [qwen25_tower, qwen3_tower], ids=["qwen2.5-vl", "qwen3-vl"])
def test_batched_windows_equal_the_stock_loop_with_fewer_calls(build):
    torch.manual_seed(0)
    tower, patch = build()
    tower.eval()
    grid = torch.tensor([[3, 6, 10], [2, 4, 6]])  # two videos of different sizes in one call, as the stage batches
    pixels = torch.randn(int(grid.prod(-1).sum()), 3 * 2 * patch * patch)
    sdpa = F.scaled_dot_product_attention
    with torch.no_grad(), mock.patch("torch.nn.functional.scaled_dot_product_attention", wraps=sdpa) as calls:
        stock = tower_output(tower, pixels, grid)
        stock_calls = calls.call_count
        calls.reset_mock()
        assert install_batched_window_attention(tower) == len(tower.blocks)
        batched = tower_output(tower, pixels, grid)
        batched_calls = calls.call_count
        remove_batched_window_attention(tower)
        again = tower_output(tower, pixels, grid)
    torch.testing.assert_close(batched, stock, rtol=1e-5, atol=1e-6)
    assert torch.equal(again, stock)  # removal restores the stock forward exactly
    assert batched_calls < stock_calls / 2, (batched_calls, stock_calls)


def test_window_groups_cover_every_token_once_grouped_by_length():
    cu = torch.tensor([0, 4, 8, 10, 10, 14, 16])  # lengths 4, 4, 2, 0 (empty window), 4, 2
    groups = _window_groups(cu)
    assert sorted(groups) == [2, 4]
    assert groups[4].tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [10, 11, 12, 13]]
    assert groups[2].tolist() == [[8, 9], [14, 15]]
    assert sorted(torch.cat([g.flatten() for g in groups.values()]).tolist()) == list(range(16))
