"""SwinIR: parameter counts and official key layout from REFERENCE.md, strict loading, odd sizes,
window attention / shifted-window mask against naive re-computations, dropout and stochastic depth."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from labkit.infer import count_parameters
from labkit.models.swinir import (
    CONFIGS,
    DropPath,
    SwinIR,
    shifted_window_mask,
    swinir_config,
)
from labkit.weights import WeightsMismatchError, load_weights

# REFERENCE.md, "Architectures", SwinIR row.
SWINIR_COUNTS = {
    "swinir_classical_x2": 11_752_487,
    "swinir_classical_x3": 11_937_127,
    "swinir_classical_x4": 11_900_199,
    "swinir_lightweight_x4": 929_628,
}


def official_swinir_shapes(
    *, upscale: int, img_size: int, window: int, depths, embed: int, heads, mlp_ratio: float,
    upsampler: str, resi: str = "1conv", in_ch: int = 3,
) -> dict[str, tuple[int, ...]]:
    """Key -> shape of an official SwinIR state dict, written out from the layout in REFERENCE.md
    (``network_swinir.py``): parameters plus the ``relative_position_index`` and ``attn_mask`` buffers."""
    e, w2 = embed, window * window
    n_windows = (img_size // window) ** 2
    hidden = int(e * mlp_ratio)

    def conv(prefix: str, cout: int, cin: int, k: int) -> dict:
        return {f"{prefix}.weight": (cout, cin, k, k), f"{prefix}.bias": (cout,)}

    def resi_block(prefix: str) -> dict:
        if resi == "1conv":
            return conv(prefix, e, e, 3)
        q = e // 4
        return {**conv(f"{prefix}.0", q, e, 3), **conv(f"{prefix}.2", q, q, 1), **conv(f"{prefix}.4", e, q, 3)}

    s = {**conv("conv_first", e, in_ch, 3), "patch_embed.norm.weight": (e,), "patch_embed.norm.bias": (e,)}
    for i, (depth, nh) in enumerate(zip(depths, heads)):
        for j in range(depth):
            b = f"layers.{i}.residual_group.blocks.{j}"
            if j % 2 == 1:
                s[f"{b}.attn_mask"] = (n_windows, w2, w2)
            s.update({
                f"{b}.norm1.weight": (e,), f"{b}.norm1.bias": (e,),
                f"{b}.attn.relative_position_bias_table": ((2 * window - 1) ** 2, nh),
                f"{b}.attn.relative_position_index": (w2, w2),
                f"{b}.attn.qkv.weight": (3 * e, e), f"{b}.attn.qkv.bias": (3 * e,),
                f"{b}.attn.proj.weight": (e, e), f"{b}.attn.proj.bias": (e,),
                f"{b}.norm2.weight": (e,), f"{b}.norm2.bias": (e,),
                f"{b}.mlp.fc1.weight": (hidden, e), f"{b}.mlp.fc1.bias": (hidden,),
                f"{b}.mlp.fc2.weight": (e, hidden), f"{b}.mlp.fc2.bias": (e,),
            })
        s.update(resi_block(f"layers.{i}.conv"))
    s.update({"norm.weight": (e,), "norm.bias": (e,)})
    s.update(resi_block("conv_after_body"))
    if upsampler == "pixelshuffle":
        s.update(conv("conv_before_upsample.0", 64, e, 3))
        if upscale == 3:
            s.update(conv("upsample.0", 9 * 64, 64, 3))
        else:
            for k in range(int(math.log2(upscale))):
                s.update(conv(f"upsample.{2 * k}", 4 * 64, 64, 3))
        s.update(conv("conv_last", in_ch, 64, 3))
    elif upsampler == "pixelshuffledirect":
        s.update(conv("upsample.0", upscale * upscale * in_ch, e, 3))
    else:
        s.update(conv("conv_last", in_ch, e, 3))
    return s


def classical_shapes(upscale: int, img_size: int = 64) -> dict:
    return official_swinir_shapes(upscale=upscale, img_size=img_size, window=8, depths=[6] * 6, embed=180,
                                  heads=[6] * 6, mlp_ratio=2, upsampler="pixelshuffle")


def lightweight_x4_shapes(img_size: int = 64) -> dict:
    return official_swinir_shapes(upscale=4, img_size=img_size, window=8, depths=[6] * 4, embed=60,
                                  heads=[6] * 4, mlp_ratio=2, upsampler="pixelshuffledirect")


OFFICIAL = {
    "swinir_classical_x2": lambda: classical_shapes(2),
    "swinir_classical_x3": lambda: classical_shapes(3),
    "swinir_classical_x4": lambda: classical_shapes(4),
    "swinir_lightweight_x4": lightweight_x4_shapes,
}

BUFFERS = ("attn_mask", "relative_position_index")


def params_of(shapes: dict) -> int:
    return sum(math.prod(v) for k, v in shapes.items() if not k.endswith(BUFFERS))


@pytest.fixture(scope="module")
def built():
    # On the meta device: shapes and counts without allocating or initialising 12M weights.
    with torch.device("meta"):
        return {name: SwinIR(**swinir_config(name)) for name in SWINIR_COUNTS}


@pytest.mark.parametrize("name", SWINIR_COUNTS)
def test_parameter_counts_match_reference(built, name):
    assert count_parameters(built[name]) == SWINIR_COUNTS[name]
    # The test's own layout formula agrees with the reference too (so the key test below means something).
    assert params_of(OFFICIAL[name]()) == SWINIR_COUNTS[name]


@pytest.mark.parametrize("name", SWINIR_COUNTS)
def test_state_dict_keys_and_shapes_match_the_official_layout(built, name):
    got = {k: tuple(v.shape) for k, v in built[name].state_dict().items()}
    assert got == OFFICIAL[name]()


def test_attn_mask_only_in_shifted_blocks_and_bias_table_shape(built):
    sd = built["swinir_classical_x2"].state_dict()
    for i in range(6):
        for j in range(6):
            b = f"layers.{i}.residual_group.blocks.{j}"
            assert (f"{b}.attn_mask" in sd) == (j % 2 == 1)
            assert sd[f"{b}.attn.relative_position_bias_table"].shape == (225, 6)
    assert "mean" not in sd and not any(k.startswith("mean") for k in sd)
    assert sd["layers.0.residual_group.blocks.1.attn_mask"].shape == (64, 64, 64)  # (64/8)^2 windows


def test_classical_x4_has_two_upsample_stages_and_x3_one(built):
    sd4, sd3 = built["swinir_classical_x4"].state_dict(), built["swinir_classical_x3"].state_dict()
    assert "upsample.2.weight" in sd4 and "upsample.2.weight" not in sd3
    assert sd3["upsample.0.weight"].shape == (576, 64, 3, 3)


def official_like_state(shapes: dict, window: int, seed: int = 0) -> dict:
    """Random tensors with the official shapes; buffers get their documented meaning."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    index = torch.tensor([[(int(ys[a]) - int(ys[b]) + window - 1) * (2 * window - 1) + int(xs[a]) - int(xs[b]) + window - 1
                           for b in range(window * window)] for a in range(window * window)], dtype=torch.int64)
    for k, shp in shapes.items():
        if k.endswith("relative_position_index"):
            state[k] = index.clone()
        elif k.endswith("attn_mask"):
            state[k] = torch.where(torch.rand(shp, generator=g) > 0.5, 0.0, -100.0)
        else:
            state[k] = torch.randn(shp, generator=g) * 0.02
    return state


def test_official_lightweight_state_dict_loads_strictly_and_is_used(tmp_path):
    state = official_like_state(lightweight_x4_shapes(), window=8)
    path = tmp_path / "002_lightweightSR_DIV2K_s64w8_SwinIR-S_x4.pth"
    torch.save({"params": state}, path)
    net = load_weights(SwinIR(**swinir_config("swinir_lightweight_x4")), path, strict=True)
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_official_3conv_state_dict_loads_strictly(tmp_path):
    kw = dict(upscale=2, img_size=16, window_size=4, depths=[2, 2], embed_dim=16, num_heads=[2, 4],
              mlp_ratio=4, resi_connection="3conv", upsampler="pixelshuffle")
    shapes = official_swinir_shapes(upscale=2, img_size=16, window=4, depths=[2, 2], embed=16, heads=[2, 4],
                                    mlp_ratio=4, upsampler="pixelshuffle", resi="3conv")
    assert "layers.1.conv.4.weight" in shapes
    state = official_like_state(shapes, window=4)
    path = tmp_path / "swinir_3conv.pth"
    torch.save({"params": state}, path)
    net = load_weights(SwinIR(**kw), path, strict=True)
    assert torch.equal(net.layers[1].conv[2].weight, state["layers.1.conv.2.weight"])


def test_attn_mask_of_another_img_size_fails_with_a_shape_error(tmp_path):
    state = official_like_state(lightweight_x4_shapes(img_size=48), window=8)
    path = tmp_path / "trained_on_48.pth"
    torch.save({"params": state}, path)
    with pytest.raises(WeightsMismatchError, match=r"attn_mask.*\(36, 64, 64\).*\(64, 64, 64\)"):
        load_weights(SwinIR(**swinir_config("swinir_lightweight_x4")), path, strict=True)
    # Built with the checkpoint's img_size it loads.
    load_weights(SwinIR(**swinir_config("swinir_lightweight_x4", img_size=48)), path, strict=True)


def tiny(**kw) -> SwinIR:
    base = dict(embed_dim=12, depths=[2], num_heads=[2], window_size=4, img_size=16, mlp_ratio=2.0)
    return SwinIR(**{**base, **kw})


@pytest.mark.parametrize("upsampler", ["pixelshuffle", "pixelshuffledirect"])
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("hw", [(17, 23), (8, 8)])
def test_odd_input_sizes_give_exact_output_sizes(upsampler, scale, hw):
    torch.manual_seed(0)
    net = tiny(upscale=scale, upsampler=upsampler).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, *hw))
    assert y.shape == (2, 3, hw[0] * scale, hw[1] * scale)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("hw", [(17, 23), (8, 8)])
def test_no_upsampler_and_nearest_conv_sizes(hw):
    torch.manual_seed(0)
    with torch.no_grad():
        assert tiny(upscale=1, upsampler="").eval()(torch.rand(1, 3, *hw)).shape == (1, 3, *hw)
        assert tiny(upscale=4, upsampler="nearest+conv").eval()(torch.rand(1, 3, *hw)).shape == (1, 3, 4 * hw[0], 4 * hw[1])
    with pytest.raises(ValueError, match="upscale=1"):
        tiny(upscale=2, upsampler="")


def test_tiny_input_smaller_than_the_padding_works():
    with torch.no_grad():
        y = tiny(upscale=2).eval()(torch.rand(1, 3, 2, 3))  # reflect impossible -> replicate
    assert y.shape == (1, 3, 4, 6) and torch.isfinite(y).all()


def test_output_is_near_input_mean_structure_for_gray_and_rgb():
    # 1-channel model: mean 0, output has 1 channel
    with torch.no_grad():
        y = tiny(in_chans=1, upscale=2).eval()(torch.rand(1, 1, 8, 8))
    assert y.shape == (1, 1, 16, 16)


def naive_window_attention(attn, x, mask):
    """softmax(q k^T / sqrt(d) + B + mask) v, head by head, window by window (no SDPA)."""
    bw, n, c = x.shape
    h = attn.num_heads
    d = c // h
    qkv = x @ attn.qkv.weight.T + attn.qkv.bias
    q, k, v = qkv[..., :c], qkv[..., c:2 * c], qkv[..., 2 * c:]
    ws = attn.window_size[0]
    out = torch.zeros(bw, n, c)
    for wi in range(bw):
        for hi in range(h):
            sl = slice(hi * d, (hi + 1) * d)
            logits = q[wi, :, sl] @ k[wi, :, sl].T * d ** -0.5
            for a in range(n):
                for b in range(n):
                    dy = a // ws - b // ws + ws - 1
                    dx = a % ws - b % ws + ws - 1
                    logits[a, b] += attn.relative_position_bias_table[dy * (2 * ws - 1) + dx, hi]
            if mask is not None:
                logits = logits + mask[wi % mask.shape[0]]
            out[wi, :, sl] = torch.softmax(logits, -1) @ v[wi, :, sl]
    return out @ attn.proj.weight.T + attn.proj.bias


def test_window_attention_matches_a_naive_computation():
    torch.manual_seed(1)
    net = tiny().eval()
    blk = net.layers[0].residual_group.blocks[1]
    attn = blk.attn
    with torch.no_grad():
        attn.relative_position_bias_table.normal_()
        x = torch.randn(2 * 16, 16, 12)  # batch 2 x 16 windows of 4x4 tokens
        mask = blk.attn_mask
        torch.testing.assert_close(attn(x, mask), naive_window_attention(attn, x, mask), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(attn(x), naive_window_attention(attn, x, None), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("h,w,ws", [(16, 16, 4), (8, 12, 4), (16, 24, 8)])
def test_shifted_window_mask_blocks_exactly_the_wrapped_pairs(h, w, ws):
    shift = ws // 2
    m = shifted_window_mask(h, w, ws, shift)
    assert m.shape == ((h // ws) * (w // ws), ws * ws, ws * ws)
    # After rolling by -shift, token (y, x) came from across the border iff y >= h - shift (or x >= w - shift);
    # two tokens of one window may attend iff they agree on both "wrapped" flags.
    k = 0
    for wy in range(h // ws):
        for wx in range(w // ws):
            ys = [wy * ws + t // ws for t in range(ws * ws)]
            xs = [wx * ws + t % ws for t in range(ws * ws)]
            for a in range(ws * ws):
                for b in range(ws * ws):
                    same = (ys[a] >= h - shift) == (ys[b] >= h - shift) and (xs[a] >= w - shift) == (xs[b] >= w - shift)
                    assert m[k, a, b] == (0.0 if same else -100.0)
            k += 1


def test_mask_computed_on_the_fly_equals_the_stored_one():
    torch.manual_seed(0)
    a = tiny(img_size=16).eval()
    b = tiny(img_size=8).eval()  # other attn_mask buffers, same weights otherwise
    b.load_state_dict({k: v for k, v in a.state_dict().items() if not k.endswith("attn_mask")}, strict=False)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))  # a uses its buffer, b computes the 16x16 mask
        assert not torch.equal(a(x), a(torch.rand(1, 3, 16, 16)))


def test_shift_disabled_when_img_size_not_larger_than_window():
    net = tiny(img_size=4, window_size=8)
    blk = net.layers[0].residual_group.blocks[1]
    assert blk.shift_size == 0 and blk.window_size == 4 and blk.attn_mask is None
    assert net.state_dict()["layers.0.residual_group.blocks.0.attn.relative_position_bias_table"].shape == (49, 2)


def test_eval_is_deterministic_and_train_uses_dropout_and_drop_path():
    torch.manual_seed(0)
    net = tiny(drop_rate=0.1, attn_drop_rate=0.1, drop_path_rate=0.1, depths=[2, 2], num_heads=[2, 2])
    x = torch.rand(2, 3, 12, 12)
    net.eval()
    with torch.no_grad():
        y1, y2 = net(x), net(x)
    assert torch.equal(y1, y2) and torch.isfinite(y1).all()
    net.train()
    with torch.no_grad():
        assert not torch.allclose(net(x), net(x))
    # stochastic depth grows linearly 0 -> 0.1 over the 4 blocks (official rule)
    rates = [b.drop_path.drop_prob if isinstance(b.drop_path, DropPath) else 0.0
             for layer in net.layers for b in layer.residual_group.blocks]
    assert rates == pytest.approx([0.0, 0.1 / 3, 0.2 / 3, 0.1])


def test_drop_path_per_sample_train_only():
    dp = DropPath(0.5)
    x = torch.ones(4000, 3, 5)
    dp.eval()
    assert torch.equal(dp(x), x)
    dp.train()
    torch.manual_seed(0)
    y = dp(x)
    per_sample = y.flatten(1)
    assert torch.all(per_sample == per_sample[:, :1])  # whole sample kept or dropped
    assert set(per_sample[:, 0].unique().tolist()) == {0.0, 2.0}  # kept ones rescaled by 1/(1-p)
    assert abs(y.mean().item() - 1.0) < 0.05
    with pytest.raises(ValueError):
        DropPath(1.0)


def test_gradients_flow_and_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    a = tiny(upscale=2, drop_path_rate=0.0)
    b = copy.deepcopy(a)
    for blk_layer in b.layers:
        blk_layer.residual_group.use_checkpoint = True
    x = torch.rand(2, 3, 8, 8)
    a(x).square().mean().backward()
    b(x).square().mean().backward()
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        assert p.grad is not None, n
        torch.testing.assert_close(p.grad, q.grad, atol=1e-6, rtol=1e-5)


def test_configs_and_errors():
    cfg = swinir_config("swinir_003_x2")
    assert cfg["window_size"] == 4 and cfg["resi_connection"] == "3conv" and cfg["mlp_ratio"] == 4
    assert cfg["depths"] == (6,) * 4 and cfg["drop_rate"] == 0.1 and cfg["upscale"] == 2
    assert swinir_config("swinir_classical_x2", img_size=48)["img_size"] == 48
    assert CONFIGS["swinir_classical_x2"]["img_size"] == 64  # overrides do not leak into CONFIGS
    with pytest.raises(KeyError, match="swinir_classical_x2"):
        swinir_config("swinir_nope")
    with pytest.raises(ValueError, match="patch_size"):
        tiny(patch_size=2)
    with pytest.raises(ValueError, match="resi_connection"):
        tiny(resi_connection="2conv")
    with pytest.raises(ValueError, match="upsampler"):
        tiny(upsampler="bilinear")
    with pytest.raises(ValueError, match="divisible"):
        tiny(embed_dim=10, num_heads=[3])


def test_003_config_builds_with_3conv_layout():
    with torch.device("meta"):
        net = SwinIR(**swinir_config("swinir_003_x2"))
    sd = net.state_dict()
    assert sd["layers.3.conv.0.weight"].shape == (45, 180, 3, 3)
    assert sd["layers.0.residual_group.blocks.1.attn_mask"].shape == (256, 16, 16)  # (64/4)^2 windows of 4x4
    assert sd["layers.0.residual_group.blocks.0.mlp.fc1.weight"].shape == (720, 180)
