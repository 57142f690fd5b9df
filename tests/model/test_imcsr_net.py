from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from imcsr_live.model.imcsr_net import (
    ChannelAttention,
    IMCSRNet,
    IMCSRNetConfig,
    box_mean,
    count_parameters,
    flops_per_pixel,
    set_pooling,
    split_output,
)

TINY = {"width": 8, "groups": 1, "blocks": 2, "reduction": 4}


def test_paper_configuration_size() -> None:
    net = IMCSRNet()  # defaults = the paper: 64 wide, 5 x 10 RCABs, TC input, 3 outputs
    assert count_parameters(net) == 3_762_251
    assert flops_per_pixel(net.cfg) == pytest.approx(7.45e6, rel=0.002)
    single = IMCSRNet(IMCSRNetConfig(in_frames=1, out_channels=1))
    # Head loses 2 x 9 x 64 weights, the output conv 2 x (9 x 64 + 1).
    assert count_parameters(single) == 3_762_251 - 2 * 9 * 64 - 2 * (9 * 64 + 1)


@pytest.mark.parametrize("frames", [1, 3])
@pytest.mark.parametrize("pooling", ["global", "local"])
def test_shapes_and_range(frames: int, pooling: str) -> None:
    torch.manual_seed(0)
    net = IMCSRNet(IMCSRNetConfig(in_frames=frames, out_channels=3, pooling=pooling, pool_window=16, **TINY))
    y = net(torch.rand(2, frames, 37, 45)).detach()
    assert y.shape == (2, 3, 37, 45)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_uncertainty_head_appends_log_variance() -> None:
    net = IMCSRNet(IMCSRNetConfig(out_channels=2, uncertainty=True, **TINY))
    out = net(torch.rand(1, 3, 24, 24))
    assert out.shape == (1, 4, 24, 24)
    mean, logvar = split_output(out, 2)
    assert mean.shape == logvar.shape == (1, 2, 24, 24)
    assert split_output(mean, 2)[1] is None
    with pytest.raises(ValueError, match="3 channels"):
        split_output(out[:, :3], 2)


def test_the_uncertainty_loss_does_not_reach_the_separation_weights() -> None:
    """The head's NLL trains the head alone: on a trained-size network its gradient on the shared body was ~660x
    the separation loss's (measured on pipeline cells), so sharing let it re-train the body for the variance."""
    from imcsr_live.model.losses import gaussian_nll

    torch.manual_seed(0)
    net = IMCSRNet(IMCSRNetConfig(out_channels=3, uncertainty=True, **TINY))
    x, target = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    out = net(x)
    gaussian_nll(out[:, :3].detach(), out[:, 3:], target).backward()
    grads = {n: p.grad for n, p in net.named_parameters()}
    # (the concatenated output sends zeros back through the separation path, so its gradients exist but are 0)
    body = {n: float(g.abs().sum()) for n, g in grads.items() if g is not None and not n.startswith("logvar.")}
    assert body and all(v == 0.0 for v in body.values()), body
    assert grads["logvar.weight"] is not None and float(grads["logvar.weight"].abs().sum()) > 0


def test_box_mean_matches_brute_force() -> None:
    x = torch.rand(1, 2, 13, 9, dtype=torch.float64)
    got = box_mean(x, 5)
    want = torch.empty_like(x)
    for i in range(13):
        for j in range(9):
            want[..., i, j] = x[..., max(i - 2, 0) : i + 3, max(j - 2, 0) : j + 3].mean(dim=(-1, -2))
    torch.testing.assert_close(got, want)
    # A window covering the whole image at every pixel = global mean.
    torch.testing.assert_close(box_mean(x, 64), x.mean(dim=(2, 3), keepdim=True).expand_as(x))


def test_local_pooling_equals_global_when_window_covers_image() -> None:
    torch.manual_seed(1)
    g = IMCSRNet(IMCSRNetConfig(pooling="global", **TINY))
    loc = IMCSRNet(IMCSRNetConfig(pooling="local", pool_window=200, **TINY))
    loc.load_state_dict(g.state_dict())
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(loc(x), g(x), rtol=1e-5, atol=1e-6)
    # ...but a small window reacts to local content: bright left half, dark right half.
    att_g = ChannelAttention(8, 2, "global")
    att_l = ChannelAttention(8, 2, "local", pool_window=4)
    att_l.load_state_dict(att_g.state_dict())
    f = torch.rand(1, 8, 16, 16)
    f[..., :8] *= 20
    assert float((att_l(f) - att_g(f)).abs().max()) > 1e-3


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValidationError, match="channel-attention"):
        IMCSRNetConfig(width=8, reduction=16)
    with pytest.raises(ValidationError, match=r"in_frames\s+Input should be 1 or 3"):
        IMCSRNetConfig(in_frames=2)
    with pytest.raises(ValidationError, match=r"depth\s+Extra inputs are not permitted"):
        IMCSRNetConfig(depth=3)  # unknown key


def test_set_pooling_switches_a_trained_network() -> None:
    torch.manual_seed(2)
    g = IMCSRNet(IMCSRNetConfig(pooling="global", **TINY))
    ref = IMCSRNet(IMCSRNetConfig(pooling="local", pool_window=8, **TINY))
    ref.load_state_dict(g.state_dict())
    x = torch.rand(1, 3, 24, 24)
    switched = set_pooling(g, "local", 8)
    assert switched.cfg.pooling == "local" and switched.cfg.pool_window == 8
    torch.testing.assert_close(switched(x), ref(x))


def _randomise_context_fuse(net: IMCSRNet, seed: int = 1) -> None:
    """The branch's projection starts at zero (it contributes nothing); give it weights to see what it reaches."""
    assert net.context is not None
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        net.context.fuse.weight.copy_(torch.randn(net.context.fuse.weight.shape, generator=gen) * 0.5)


def test_a_new_context_branch_leaves_the_output_unchanged() -> None:
    """Zero-initialised projection: a network with the branch, loaded with a plain network's weights, separates
    exactly as that network (so fine-tuning starts from the trained model's output)."""
    torch.manual_seed(0)
    plain = IMCSRNet(IMCSRNetConfig(**TINY))
    wide = IMCSRNet(IMCSRNetConfig(context_width=6, **TINY))
    missing, unexpected = wide.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("context.") for k in missing)
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(wide(x), plain(x))
        _randomise_context_fuse(wide)
        assert not torch.allclose(wide(x), plain(x))


def test_context_branch_reaches_exactly_its_receptive_radius() -> None:
    """An impulse conv_radius pixels away changes the output pixel, through the branch alone; nothing beyond the
    reach of convolutions plus local pooling does (the analytic radius: 1 + sum of the dilations through the branch,
    + 1 per body / tail / output convolution)."""
    from imcsr_live.model.imcsr_net import conv_radius

    cfg = IMCSRNetConfig(context_width=4, context_dilations=(1, 2, 4), pooling="local", pool_window=3, **TINY)
    torch.manual_seed(0)
    net = IMCSRNet(cfg).double()
    _randomise_context_fuse(net)
    r = conv_radius(cfg)
    assert r == 1 + 7 + 2 * 1 * 2 + 2
    # local pooling over a 3 x 3 window reaches 1 px further per attention layer
    reach = r + cfg.groups * cfg.blocks
    size, c = 2 * reach + 13, reach + 6
    base = torch.rand(1, 3, size, size, dtype=torch.float64)

    def changed_at_centre(dy: int) -> bool:
        x = base.clone()
        x[0, :, c + dy, c] += 1.0
        with torch.no_grad():
            return bool((net(x) - net(base))[0, :, c, c].abs().max() > 0)

    assert changed_at_centre(r)  # the body alone sees r - 7
    assert conv_radius(cfg.model_copy(update={"context_width": 0})) == r - 7
    assert not changed_at_centre(reach + 1)
    assert not changed_at_centre(reach + 5)


def test_context_branch_costs_what_flops_per_pixel_says() -> None:
    cfg = IMCSRNetConfig(context_width=16, width=24, groups=2, blocks=3, reduction=4)
    plain = cfg.model_copy(update={"context_width": 0})
    # entry conv 3 -> 16, ten dilated 16 -> 16 convs, the 1 x 1 projection 16 -> 24
    added = 2 * 9 * 3 * 16 + 10 * 2 * 9 * 16 * 16 + 2 * 16 * 24
    assert flops_per_pixel(cfg) - flops_per_pixel(plain) == added
    extra_params = count_parameters(IMCSRNet(cfg)) - count_parameters(IMCSRNet(plain))
    assert extra_params == (9 * 3 * 16 + 16) + 10 * (9 * 16 * 16 + 16) + (16 * 24 + 24)
    with pytest.raises(ValidationError, match="each must be 1-64"):
        IMCSRNetConfig(context_width=8, context_dilations=(1, 128))
