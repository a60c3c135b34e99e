"""rlmods.nets against torchrl 0.14 (the oracle): signatures, state_dict keys, outputs, errors."""

import inspect

import pytest
import torch
from tensordict.nn import utils as td_utils
from torch import nn
from torch.testing import assert_close

import rlmods
from rlmods import (MLP, BatchRenorm1d, Conv3dNet, ConvNet, InvalidValueError, Squeeze2dLayer,
                    SqueezeLayer, biased_softplus, inv_softplus, mappings)
from rlmods.nets import SquashDims, expln

torchrl_modules = pytest.importorskip("torchrl.modules")
from torchrl.modules.models import batchrenorm as trl_batchrenorm  # noqa: E402
from torchrl.modules.models import utils as trl_utils  # noqa: E402

NAMES = ["MLP", "ConvNet", "Conv3dNet", "SqueezeLayer", "Squeeze2dLayer", "BatchRenorm1d",
         "mappings", "inv_softplus", "biased_softplus"]


def _torchrl(name):
    if name in ("mappings", "inv_softplus", "biased_softplus"):
        return getattr(td_utils, name)
    return getattr(torchrl_modules, name)


def _params(obj):
    """(name, kind, default) per parameter; class defaults compared by name."""
    out = []
    for p in inspect.signature(obj).parameters.values():
        default = p.default.__name__ if isinstance(p.default, type) else p.default
        out.append((p.name, p.kind, default))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_importable_with_torchrl_signature(name):
    ours = getattr(rlmods, name)
    assert _params(ours) == _params(_torchrl(name))


# ---------------------------------------------------------------- positive mappings

MAPPING_KEYS = ["softplus", "exp", "relu", "none", "expln", "biased_softplus", "biased_softplus_2.0",
                "biased_softplus_0.5_0.1", "biased_softplus_1e-3", "biased_softplus_3_1e-4"]


@pytest.mark.parametrize("key", MAPPING_KEYS)
def test_mappings_match_tensordict(key):
    x = torch.linspace(-8, 8, 161, dtype=torch.float64)
    assert_close(mappings(key)(x), td_utils.mappings(key)(x))


def test_expln_gradient_matches_tensordict():
    x = torch.linspace(-3, 3, 61, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    expln(x).sum().backward()
    td_utils.expln(x_ref).sum().backward()
    assert_close(x.grad, x_ref.grad)
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("bias", [1.0, 0.3, 5.0, torch.tensor([0.5, 2.0])])
def test_inv_softplus_matches_tensordict(bias):
    ours, ref = inv_softplus(bias), td_utils.inv_softplus(bias)
    assert type(ours) is type(ref)
    assert_close(torch.as_tensor(ours), torch.as_tensor(ref))


@pytest.mark.parametrize("bias, min_val", [(1.0, 0.01), (0.2, 0.1), (4.0, 1e-4)])
def test_biased_softplus_matches_tensordict(bias, min_val):
    x = torch.randn(50, generator=torch.Generator().manual_seed(0))
    ours, ref = biased_softplus(bias, min_val), td_utils.biased_softplus(bias, min_val)
    assert_close(ours(x), ref(x))
    assert_close(ours(torch.zeros(1)), torch.tensor([bias]))


@pytest.mark.parametrize("key, match", [
    ("tanh", "key must be one of .* got 'tanh'"),
    ("biased_softplus_1_2_3", r"key must be one of .*biased_softplus_<bias>\[_<min_val>\].* got 'biased_softplus_1_2_3'"),
    ("biased_softplus_", "key must be one of"),
    ("my_biased_softplus_1", "key must be one of"),
    ("biased_softplus_one", r"key must be 'biased_softplus_<bias>\[_<min_val>\]' with float numbers, got 'biased_softplus_one'"),
])
def test_mappings_errors(key, match):
    # tensordict raises NotImplementedError for an unknown key; rlmods an InvalidValueError (both)
    with pytest.raises(ValueError, match=f"mappings: {match}"):
        mappings(key)


def test_mappings_see_tensordicts_custom_mappings():
    name = "rlmods_test_halve"
    assert name not in td_utils._MAPPINGS
    try:
        td_utils.add_custom_mapping(name, lambda x: x / 2)
        x = torch.arange(4.0)
        assert_close(mappings(name)(x), td_utils.mappings(name)(x))
    finally:
        td_utils._MAPPINGS.pop(name, None)
    with pytest.raises(ValueError, match=f"got '{name}'"):
        mappings(name)


# ---------------------------------------------------------------- squeeze layers

def test_squeeze_layers_match_torchrl():
    x = torch.randn(4, 3, 1, 1)
    assert_close(SqueezeLayer()(x[..., 0]), trl_utils.SqueezeLayer()(x[..., 0]))
    assert_close(Squeeze2dLayer()(x), trl_utils.Squeeze2dLayer()(x))
    assert_close(SqueezeLayer((-3, -1))(x.view(4, 1, 3, 1)), trl_utils.SqueezeLayer((-3, -1))(x.view(4, 1, 3, 1)))
    assert_close(SquashDims(2)(x), trl_utils.SquashDims(2)(x))


def test_squeeze_layer_errors():
    with pytest.raises(ValueError, match=r"SqueezeLayer: dims must all be negative .* got \(-1, 0\)"):
        SqueezeLayer((-1, 0))
    with pytest.raises(ValueError, match=r"Squeeze2dLayer: input must have size 1 in dims \(-2, -1\), "
                                         r"got shape \(4, 3, 2, 1\)"):
        Squeeze2dLayer()(torch.zeros(4, 3, 2, 1))


# ---------------------------------------------------------------- MLP

MLP_CASES = {
    "pendulum_actor": dict(in_features=17, out_features=6, num_cells=[256, 256]),
    "depth_only": dict(in_features=5, out_features=2, depth=3),
    "int_cells": dict(in_features=5, out_features=2, depth=2, num_cells=7),
    "linear_only": dict(in_features=5, out_features=2),
    "shaped_out": dict(in_features=4, out_features=(2, 3), num_cells=[8]),
    "torch_size_out": dict(in_features=4, out_features=torch.Size([6]), num_cells=[8]),
    "activate_last": dict(in_features=4, out_features=3, num_cells=[8], activate_last_layer=True,
                          activation_class=nn.ReLU),
    "dropout_norm": dict(in_features=4, out_features=3, num_cells=[8, 8], dropout=0.5,
                         norm_class=nn.LayerNorm, norm_kwargs={"normalized_shape": 8}),
    "per_layer_kwargs": dict(in_features=4, out_features=3, num_cells=[8, 9], activation_class=nn.LeakyReLU,
                             activation_kwargs=[{"negative_slope": 0.1}, {"negative_slope": 0.3}],
                             norm_class=nn.LayerNorm,
                             norm_kwargs=[{"normalized_shape": 8}, {"normalized_shape": 9}],
                             layer_kwargs=[{"bias": False}, {}, {}]),
    "no_last_bias": dict(in_features=4, out_features=3, num_cells=[8], bias_last_layer=False),
    "single_bias": dict(in_features=4, out_features=3, num_cells=[8], single_bias_last_layer=True),
    "function_activation": dict(in_features=4, out_features=3, num_cells=[8], activation_class=lambda: torch.relu),
}


@pytest.mark.parametrize("case", sorted(MLP_CASES))
def test_mlp_matches_torchrl(case):
    kwargs = MLP_CASES[case]
    torch.manual_seed(0)
    ref = torchrl_modules.MLP(**kwargs).eval()
    torch.manual_seed(0)
    ours = MLP(**kwargs).eval()
    ref_state = ref.state_dict()
    assert list(ours.state_dict()) == list(ref_state)
    for key, value in ours.state_dict().items():  # same seed, same construction order: same init
        assert_close(value, ref_state[key])
    ours.load_state_dict(ref_state)
    x = torch.randn(2, 5, kwargs["in_features"])
    assert_close(ours(x), ref(x))
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in ref]


def test_mlp_concatenates_inputs_like_torchrl():
    ref = torchrl_modules.MLP(in_features=5, out_features=1, num_cells=[16])
    ours = MLP(in_features=5, out_features=1, num_cells=[16])
    ours.load_state_dict(ref.state_dict())
    obs, act = torch.randn(7, 3), torch.randn(7, 2)
    assert_close(ours(obs, act), ref(obs, act))


def test_mlp_lazy_first_layer_and_checkpoint():
    ref = torchrl_modules.MLP(out_features=2, num_cells=[8, 8])
    ours = MLP(out_features=2, num_cells=[8, 8])
    assert isinstance(ours[0], nn.LazyLinear)
    x = torch.randn(3, 11)
    ref(x)  # materialise torchrl's, then load its checkpoint into our still-lazy net
    ours.load_state_dict(ref.state_dict())
    assert ours[0].weight.shape == (8, 11)
    assert_close(ours(x), ref(x))


def test_mlp_device_argument():
    mlp = MLP(in_features=3, out_features=2, num_cells=[4], norm_class=nn.LayerNorm,
              norm_kwargs={"normalized_shape": 4}, single_bias_last_layer=True, device="meta")
    assert {p.device.type for p in mlp.parameters()} == {"meta"}


@pytest.mark.parametrize("kwargs, match", [
    (dict(in_features=3), "MLP: out_features must be an int or a shape, got None"),
    (dict(in_features=3, out_features=2, num_cells=8), "MLP: depth must be given when num_cells is an int, got num_cells=8 and depth=None"),
    (dict(in_features=3, out_features=2, num_cells=[8, 8], depth=3), r"MLP: num_cells must have depth=3 entries, got \[8, 8\]"),
    (dict(in_features=3, out_features=2, num_cells=[8, 8], activation_kwargs=[{}]),
     "MLP: activation_kwargs must be a dict or a list of 2 dicts .* got a list of 1"),
    (dict(in_features=3, out_features=2, num_cells=[8], norm_class=nn.LayerNorm, norm_kwargs=[{}, {}]),
     "MLP: norm_kwargs must be a dict or a list of 1 dicts .* got a list of 2"),
    (dict(in_features=3, out_features=2, num_cells=[8], layer_kwargs=[{}]),
     "MLP: layer_kwargs must be a dict or a list of 2 dicts .* got a list of 1"),
    (dict(out_features=2, layer_class=nn.Bilinear), "MLP: in_features must be given for layer_class=.*Bilinear.*no lazy version.*got None"),
])
def test_mlp_construction_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP(**kwargs)


def test_mlp_input_size_error():
    with pytest.raises(ValueError, match=r"MLP: input must have in_features=3 entries in its last dim .* got shape \(2, 4\)"):
        MLP(in_features=3, out_features=2)(torch.zeros(2, 4))


# ---------------------------------------------------------------- ConvNet and Conv3dNet

CONV_CASES = {
    "default": dict(in_features=3),
    "per_layer": dict(in_features=3, num_cells=[8, 16], kernel_sizes=[3, (2, 3)], strides=[2, 1], paddings=1,
                      activation_class=nn.ReLU),
    "depth_int_cells": dict(in_features=3, depth=2, num_cells=4, kernel_sizes=3),
    "norm": dict(in_features=3, num_cells=[4, 6], norm_class=nn.InstanceNorm2d,
                 norm_kwargs=[{"num_features": 4, "affine": True}, {"num_features": 6, "affine": True}]),
    "squeeze": dict(in_features=3, num_cells=[4, 5], kernel_sizes=[5, 6], strides=1, aggregator_class=None,
                    squeeze_output=True),
    "leaky_kwargs": dict(in_features=3, num_cells=[4], activation_class=nn.LeakyReLU,
                         activation_kwargs={"negative_slope": 0.2}),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
@pytest.mark.parametrize("batch", [(), (2,), (2, 3)])
def test_convnet_matches_torchrl(case, batch):
    kwargs = CONV_CASES[case]
    torch.manual_seed(0)
    ref = torchrl_modules.ConvNet(**kwargs).eval()
    torch.manual_seed(0)
    ours = ConvNet(**kwargs).eval()
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(*batch, 3, 10, 10)
    assert_close(ours(x), ref(x))


@pytest.mark.parametrize("batch", [(), (2,), (2, 3)])
def test_conv3dnet_matches_torchrl(batch):
    kwargs = dict(in_features=2, num_cells=[4, 5], kernel_sizes=[3, (1, 2, 3)], strides=[1, 2], depth=2)
    ref = torchrl_modules.Conv3dNet(**kwargs)
    ours = Conv3dNet(**kwargs)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(*batch, 2, 5, 8, 8)
    assert_close(ours(x), ref(x))


def test_conv3dnet_defaults_and_squeeze_match_torchrl():
    ref = torchrl_modules.Conv3dNet(in_features=1, depth=1, kernel_sizes=4, aggregator_class=None, squeeze_output=True)
    ours = Conv3dNet(in_features=1, depth=1, kernel_sizes=4, aggregator_class=None, squeeze_output=True)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(5, 1, 4, 4, 4)
    assert ours(x).shape == (5, 32)
    assert_close(ours(x), ref(x))


@pytest.mark.parametrize("net", ["ConvNet", "Conv3dNet"])
def test_conv_lazy_first_layer_and_checkpoint(net):
    ref, ours = getattr(torchrl_modules, net)(num_cells=[4, 4]), getattr(rlmods, net)(num_cells=[4, 4])
    x = torch.randn(2, 5, *(6,) * (2 if net == "ConvNet" else 3))
    ref(x)
    ours.load_state_dict(ref.state_dict())
    assert_close(ours(x), ref(x))


def test_default_atari_dqn_matches_torchrl():
    ref, ours = torchrl_modules.ConvNet.default_atari_dqn(6), ConvNet.default_atari_dqn(6)
    x = torch.rand(2, 4, 84, 84)
    ref(x)
    ours.load_state_dict(ref.state_dict())
    assert_close(ours(x), ref(x))
    assert ours(x).shape == (2, 6)


@pytest.mark.torchrl_bug
@pytest.mark.parametrize("net", ["ConvNet", "Conv3dNet"])
def test_torchrl_conv_ignores_bias_last_layer(net):
    # torchrl's test `i < len(in_features) - 1` is true for every conv
    ref = getattr(torchrl_modules, net)(in_features=2, num_cells=[4, 4], bias_last_layer=False)
    assert "2.bias" in ref.state_dict()


@pytest.mark.parametrize("net", ["ConvNet", "Conv3dNet"])
def test_conv_bias_last_layer_better_than_torchrl(net):
    # rlmods drops the last bias, as the argument says; otherwise the two nets agree.
    ref = getattr(torchrl_modules, net)(in_features=2, num_cells=[4, 4], bias_last_layer=False)
    ours = getattr(rlmods, net)(in_features=2, num_cells=[4, 4], bias_last_layer=False)
    assert "2.bias" not in ours.state_dict()
    state = ref.state_dict()
    state.pop("2.bias")
    ours.load_state_dict(state)
    with torch.no_grad():
        ref[2].bias.zero_()
    x = torch.randn(3, 2, *(7,) * (2 if net == "ConvNet" else 3))
    assert_close(ours(x), ref(x))


def test_convnet_depth_without_num_cells_better_than_torchrl():
    # rlmods uses [32] * depth, as torchrl's own Conv3dNet does.
    assert ConvNet(depth=2).num_cells == [32, 32]


@pytest.mark.torchrl_bug
def test_torchrl_convnet_rejects_its_own_default_num_cells():
    # torchrl's ConvNet fills num_cells with [32, 32, 32] whatever the depth, then rejects depth=2
    with pytest.raises(RuntimeError, match="length conflict"):
        torchrl_modules.ConvNet(depth=2)


@pytest.mark.parametrize("net", ["ConvNet", "Conv3dNet"])
@pytest.mark.parametrize("kwargs, match", [
    (dict(depth=0), "depth must be at least 1, got 0"),
    (dict(num_cells=8), "depth must be given when num_cells, kernel_sizes, strides and paddings are all ints, got depth=None"),
    (dict(num_cells=[4, 4], kernel_sizes=[3, 3, 3]), r"num_cells must have depth=3 entries, got \[4, 4\]"),
    (dict(num_cells=[4, 4], strides=[1]), r"num_cells must have depth=1 entries, got \[4, 4\]"),
    (dict(depth=2, kernel_sizes=[3]), r"kernel_sizes must have depth=2 entries, got \[3\]"),
    (dict(depth=2, activation_kwargs=[{}]), "activation_kwargs must be a dict or a list of 2 dicts .* got a list of 1"),
    (dict(depth=2, norm_class=nn.Identity, norm_kwargs=[{}]), "norm_kwargs must be a dict or a list of 2 dicts .* got a list of 1"),
])
def test_conv_construction_errors(net, kwargs, match):
    with pytest.raises(ValueError, match=f"{net}: {match}"):
        getattr(rlmods, net)(**kwargs)


def test_conv_input_errors():
    with pytest.raises(ValueError, match=r"ConvNet: input must have at least 3 dims \(C, H, W\), got shape \(8, 8\)"):
        ConvNet(in_features=1)(torch.zeros(8, 8))
    with pytest.raises(ValueError, match=r"Conv3dNet: input must have at least 4 dims \(C, D, H, W\), got shape \(1, 8, 8\)"):
        Conv3dNet(in_features=1)(torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match=r"ConvNet: input must have in_features=3 channels in dim -3, got shape \(2, 4, 8, 8\)"):
        ConvNet(in_features=3)(torch.zeros(2, 4, 8, 8))


# ---------------------------------------------------------------- BatchRenorm1d

def _pair(**kwargs):
    ref = trl_batchrenorm.BatchRenorm1d(4, **kwargs)
    ours = BatchRenorm1d(4, **kwargs)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-1, 1)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _batch(step, n=16):
    g = torch.Generator().manual_seed(step)
    return torch.randn(n, 4, generator=g) * (1 + step % 3) + step  # drifting mean and scale


def _paper(x, running_mean, running_var, weight, bias, r_max, d_max, eps=1e-5):
    """Algorithm 1 of Ioffe (2017), written out."""
    mean, var = x.mean(0), x.var(0, unbiased=False)
    std, running_std = (var + eps).sqrt(), (running_var + eps).sqrt()
    r = (std / running_std).clamp(1 / r_max, r_max)
    d = ((mean - running_mean) / running_std).clamp(-d_max, d_max)
    return ((x - mean) / std * r + d) * weight + bias


def test_batchrenorm_matches_torchrl_before_its_factor_overgrows():
    ref, ours = _pair(warmup_steps=3)
    for step in range(6):  # torchrl's factor n // 3 is 0 then 1: the range where it is right
        x = _batch(step).requires_grad_()
        x_ref = x.detach().clone().requires_grad_()
        y, y_ref = ours(x), ref(x_ref)
        assert_close(y, y_ref)
        (y * torch.arange(4.0)).sum().backward()
        (y_ref * torch.arange(4.0)).sum().backward()
        assert_close(x.grad, x_ref.grad)
        assert_close(ours.running_mean, ref.running_mean)
        assert_close(ours.running_var, ref.running_var)
    assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 6
    ours.eval(), ref.eval()
    assert_close(ours(_batch(9)), ref(_batch(9)))


def test_batchrenorm_is_batchnorm_during_warmup():
    norm, bn = BatchRenorm1d(4, momentum=0.1, warmup_steps=100), nn.BatchNorm1d(4, momentum=0.1)
    for step in range(5):
        for shape in [(16, 4), (8, 4, 3)]:
            x = torch.randn(*shape, generator=torch.Generator().manual_seed(step)) * 3 + 1
            assert_close(norm(x), bn(x))
            assert_close(norm.running_var, bn.running_var)
            assert_close(norm.running_mean, bn.running_mean)


def test_batchrenorm_3d_running_var_better_than_torchrl():
    # For (N, C, L) input each feature has N * L values; rlmods (and nn.BatchNorm1d) correct
    # the running variance with N * L / (N * L - 1).
    ref, ours = _pair(warmup_steps=10)
    x = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(0))
    assert_close(ours(x), ref(x))
    var = x.transpose(0, 1).reshape(4, -1).var(1, unbiased=True)
    assert_close(ours.running_var, 0.99 + 0.01 * var)


@pytest.mark.torchrl_bug
def test_torchrl_batchrenorm_3d_running_var_uses_n_only():
    # torchrl's unbiased correction uses N / (N - 1) whatever L is
    ref = trl_batchrenorm.BatchRenorm1d(4, warmup_steps=10)
    x = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(0))
    ref(x)
    biased = x.transpose(0, 1).reshape(4, -1).var(1, unbiased=False)
    assert_close(ref.running_var, 0.99 + 0.01 * biased * 2 / (2 - 1))


def test_batchrenorm_smooth_follows_the_paper_schedule():
    ref, ours = _pair(warmup_steps=4, smooth=True)
    for step in range(6):
        x = _batch(step)
        f = min(step / 4, 1.0)
        expected = _paper(x, ours.running_mean.clone(), ours.running_var.clone(), ours.weight.detach(),
                          ours.bias.detach(), 1 + 2 * f, 5 * f)
        y, y_ref = ours(x), ref(x)
        assert_close(y, expected)
        if step in (0, 4):  # bounds closed or just fully open: torchrl agrees
            assert_close(y, y_ref)
        elif step in (1, 2, 3):  # torchrl scales r - 1 and d by f instead of clipping at f's bounds
            assert not torch.allclose(y, y_ref, atol=1e-3)


def test_batchrenorm_warmup_factor_better_than_torchrl():
    # torchrl's `num_batches_tracked.clamp_max(warmup_steps)` is not in place: the counter keeps
    # growing and its factor n // warmup_steps becomes 2, 3, ... so r and d leave [1/max_r, max_r]
    # and [-max_d, max_d]. rlmods caps the factor at 1: the paper's bounds hold forever.
    ours = BatchRenorm1d(4, warmup_steps=2)
    for step in range(4):
        ours(_batch(step))
    assert float(ours.warmup_factor()) == 1.0
    assert_close(_std_far_above_max_r(ours), torch.full((4,), 3.0), rtol=1e-4, atol=1e-4)  # max_r
    ours.num_batches_tracked.fill_(10**6)
    assert float(ours.warmup_factor()) == 1.0


def _std_far_above_max_r(net):
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1)) * 1000  # r far above max_r
    with torch.no_grad():
        net.weight.fill_(1.0), net.bias.fill_(0.0)
        return net(x).std(0, unbiased=False)


@pytest.mark.torchrl_bug
def test_torchrl_batchrenorm_factor_keeps_growing():
    ref = trl_batchrenorm.BatchRenorm1d(4, warmup_steps=2)
    for step in range(4):
        ref(_batch(step))
    assert int(ref.num_batches_tracked) == 4  # factor 4 // 2 = 2: r bound 1 + 2 * 2
    assert_close(_std_far_above_max_r(ref), torch.full((4,), 5.0), rtol=1e-4, atol=1e-4)


def test_batchrenorm_torchrl_checkpoint_loads():
    ref, ours = _pair(warmup_steps=2)
    for step in range(3):
        ref(_batch(step))
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    ours.eval(), ref.eval()
    assert_close(ours(_batch(7)), ref(_batch(7)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_features=0), "num_features must be a positive int, got 0"),
    (dict(num_features=4, momentum=0.0), r"momentum must be in \(0, 1\], got 0.0"),
    (dict(num_features=4, max_r=0.5), "max_r must be >= 1, got 0.5"),
    (dict(num_features=4, max_d=-1.0), "max_d must be >= 0, got -1.0"),
    (dict(num_features=4, warmup_steps=-1), "warmup_steps must be >= 0, got -1"),
])
def test_batchrenorm_construction_errors(kwargs, match):
    with pytest.raises(ValueError, match=f"BatchRenorm1d: {match}"):
        BatchRenorm1d(**kwargs)


def test_batchrenorm_input_errors():
    norm = BatchRenorm1d(4)
    with pytest.raises(ValueError, match=r"BatchRenorm1d: input must have shape \(N, 4\) or \(N, 4, L\), got shape \(4,\)"):
        norm(torch.zeros(4))
    with pytest.raises(ValueError, match=r"BatchRenorm1d: input must have shape \(N, 4\) .* got shape \(2, 3\)"):
        norm(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"BatchRenorm1d: input must have more than one value per feature .* got shape \(1, 4\)"):
        norm(torch.zeros(1, 4))
    assert norm.eval()(torch.zeros(1, 4)).shape == (1, 4)  # fine in eval mode


def test_batchrenorm_no_warmup_renormalises_from_the_start():
    ref, ours = _pair(warmup_steps=0)
    x = _batch(5)
    assert float(ours.warmup_factor()) == 1.0
    assert_close(ours(x), ref(x))


def _error_cases():
    """(name, call with rlmods or torchrl as ``lib``): the same mistake in both libraries."""
    yield "mlp num_cells int without depth", lambda lib: lib.MLP(in_features=3, out_features=2,
                                                                 num_cells=8)
    yield "mlp depth conflict", lambda lib: lib.MLP(in_features=3, out_features=2,
                                                    num_cells=[8, 8], depth=3)
    yield "mlp out_features None", lambda lib: lib.MLP(in_features=3)
    yield "mlp input size", lambda lib: lib.MLP(in_features=3, out_features=2)(torch.zeros(2, 4))
    yield "squeeze non-negative dim", lambda lib: lib.SqueezeLayer((-1, 0))
    yield "squeeze a non-singleton", lambda lib: lib.Squeeze2dLayer()(torch.zeros(4, 3, 2, 1))
    for net in ("ConvNet", "Conv3dNet"):
        yield f"{net} depth 0", lambda lib, net=net: getattr(lib, net)(depth=0)
        yield f"{net} all ints", lambda lib, net=net: getattr(lib, net)(num_cells=8)
        yield f"{net} length conflict", lambda lib, net=net: getattr(lib, net)(
            num_cells=[4, 4], kernel_sizes=[3, 3, 3])
    yield "ConvNet too few dims", lambda lib: lib.ConvNet(in_features=1)(torch.zeros(8, 8))
    yield "Conv3dNet too few dims", lambda lib: lib.Conv3dNet(in_features=1)(torch.zeros(1, 8, 8))
    yield "ConvNet channels", lambda lib: lib.ConvNet(in_features=3)(torch.zeros(2, 4, 8, 8))
    yield "BatchRenorm1d num_features 0", lambda lib: lib.BatchRenorm1d(0)(torch.randn(8, 4))
    yield "BatchRenorm1d 1-d input", lambda lib: lib.BatchRenorm1d(4)(torch.zeros(4))
    yield "BatchRenorm1d channels", lambda lib: lib.BatchRenorm1d(4)(torch.zeros(2, 3))
    yield "mappings unknown key", lambda lib: lib.mappings("tanh")
    yield "mappings three numbers", lambda lib: lib.mappings("biased_softplus_1_2_3")
    yield "mappings not a number", lambda lib: lib.mappings("biased_softplus_one")


class _TorchrlNames:
    """torchrl's names, with the mappings from tensordict (where torchrl takes them)."""

    def __getattr__(self, name):
        return _torchrl(name)


@pytest.mark.parametrize("name", [case[0] for case in _error_cases()])
def test_error_types_match_torchrl(name):
    call = next(case[1] for case in _error_cases() if case[0] == name)
    try:
        call(_TorchrlNames())
    except Exception as err:  # whatever torchrl raises is what a torchrl user catches
        expected = type(err)
    else:
        pytest.fail(f"torchrl raised nothing for {name!r}")
    with pytest.raises(expected):
        call(rlmods)
    with pytest.raises(ValueError):  # and what rlmods promises: a ValueError
        call(rlmods)


def test_invalid_value_error_is_a_runtime_error():
    with pytest.raises(InvalidValueError, match="MLP: depth must be given"):
        MLP(in_features=3, out_features=2, num_cells=8)
