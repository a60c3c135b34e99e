"""Distributions: torchrl signatures, differential tests against torchrl, the math, the error messages."""

import inspect
import math
import warnings

import numpy as np
import pytest
import torch
import torchrl.modules as trl
from scipy import integrate, stats
from tensordict.nn import NormalParamExtractor
from torch import nn
from torch.testing import assert_close
from torchrl.modules.distributions.discrete import ReparamGradientStrategy as TorchrlReparam

import rlmods
from rlmods.distributions import (Delta, IndependentNormal, MaskedCategorical, MaskedOneHotCategorical,
                                  NormalParamWrapper, OneHotCategorical, OneHotOrdinal, Ordinal,
                                  ReparamGradientStrategy, TanhDelta, TanhNormal, TruncatedNormal,
                                  ordinal_logits, tanh_normal_log_jacobian, tanh_normal_mean)

NAMES = ["Delta", "IndependentNormal", "NormalParamWrapper", "TanhNormal", "TruncatedNormal", "TanhDelta",
         "OneHotCategorical", "MaskedCategorical", "MaskedOneHotCategorical", "Ordinal", "OneHotOrdinal"]
F64 = torch.float64


def _params(signature):
    return [(p.name, p.kind, repr(p.default)) for p in signature.parameters.values()]


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_torchrl(name):
    assert _params(inspect.signature(getattr(rlmods, name))) == _params(inspect.signature(getattr(trl, name)))


def _seeded(fn, seed=0):
    torch.manual_seed(seed)
    return fn()


# ----------------------------------------------------------------------------- TanhNormal
BOUNDS = [{}, {"low": -2.0, "high": 3.0},
          {"low": torch.tensor([0.0, 1.0, -4.0]), "high": torch.tensor([1.0, 3.0, 5.0])}]


@pytest.mark.parametrize("bounds", BOUNDS, ids=["default", "numbers", "tensors"])
@pytest.mark.parametrize("method", ["sample", "rsample"])
def test_tanh_normal_matches_torchrl(bounds, method):
    loc, scale = _seeded(lambda: (torch.randn(5, 3), torch.rand(5, 3) + 0.2))
    ours, theirs = TanhNormal(loc, scale, **bounds), trl.TanhNormal(loc, scale, **bounds)
    a = _seeded(lambda: getattr(ours, method)((7,)), 1)
    b = _seeded(lambda: getattr(theirs, method)((7,)), 1)
    assert_close(a, b)  # same draws from the same seed
    assert_close(ours.log_prob(a.clone()), theirs.log_prob(b), rtol=1e-4, atol=1e-4)
    assert_close(ours.deterministic_sample, theirs.deterministic_sample)
    assert ours.log_prob(a).shape == (7, 5)


def test_tanh_normal_sample_statistics_match_torchrl():
    loc, scale = torch.tensor([0.5, -1.0]), torch.tensor([0.3, 1.5])
    a = TanhNormal(loc, scale, low=-2.0, high=2.0).sample((20000,))
    b = trl.TanhNormal(loc, scale, low=-2.0, high=2.0).sample((20000,))
    assert_close(a.mean(0), b.mean(0), atol=0.03, rtol=0)
    assert_close(a.std(0), b.std(0), atol=0.03, rtol=0)


@pytest.mark.parametrize("event_dims", [0, 1, 2])
def test_tanh_normal_event_dims(event_dims):
    loc = torch.randn(4, 3, 2)
    ours, theirs = TanhNormal(loc, 1.0, event_dims=event_dims), trl.TanhNormal(loc, torch.ones_like(loc), event_dims=event_dims)
    value = torch.rand(4, 3, 2) * 1.8 - 0.9
    assert_close(ours.log_prob(value), theirs.log_prob(value), rtol=1e-5, atol=1e-5)
    assert ours.log_prob(value).shape == loc.shape[:3 - event_dims]


def test_tanh_normal_log_prob_of_own_sample_is_exact_where_tanh_saturates_better_than_torchrl():
    # torchrl's log_prob(rsample()) inverts the rounded action; its rsample_and_log_prob does not.
    loc, scale = torch.tensor([20.0, -20.0, 8.0]), torch.full((3,), 0.1)
    ours, theirs = TanhNormal(loc, scale), trl.TanhNormal(loc, scale)
    action = _seeded(lambda: ours.rsample((4,)))
    _, exact = _seeded(lambda: theirs.rsample_and_log_prob((4,)))
    assert_close(ours.log_prob(action), exact)
    wrong = theirs.log_prob(_seeded(lambda: theirs.rsample((4,))))
    assert (wrong - exact).abs().max() > 1.0
    # sample_and_log_prob / rsample_and_log_prob exist and agree with torchrl's
    for name in ["rsample_and_log_prob", "sample_and_log_prob"]:
        a, lp_a = _seeded(lambda: getattr(ours, name)((4,)))
        b, lp_b = _seeded(lambda: getattr(theirs, name)((4,)))
        assert_close(a, b)
        assert_close(lp_a, lp_b)


@pytest.mark.parametrize("safe_tanh", [True, False])
def test_tanh_normal_log_prob_finite_at_the_bounds(safe_tanh):
    dist = TanhNormal(torch.zeros(3), torch.ones(3), low=-2.0, high=3.0, event_dims=0, safe_tanh=safe_tanh)
    lp = dist.log_prob(torch.tensor([-2.0, 3.0, 0.5]))
    assert torch.isfinite(lp).all()
    if not safe_tanh:  # torchrl's plain TanhTransform inverts 1 to inf
        theirs = trl.TanhNormal(torch.zeros(3), torch.ones(3), low=-2.0, high=3.0, event_dims=0, safe_tanh=False)
        assert not torch.isfinite(theirs.log_prob(torch.tensor([-2.0, 3.0, 0.5]))[:2]).any()


def _tanh_density(dist):
    return lambda y: math.exp(dist.log_prob(torch.tensor([y], dtype=F64)).item())


@pytest.mark.parametrize("loc,scale", [(0.3, 0.8), (1.5, 1.2), (-2.0, 0.4)])
def test_tanh_normal_integrates_to_one_and_mean_mode_entropy_match_the_math(loc, scale):
    dist = TanhNormal(torch.tensor([loc], dtype=F64), torch.tensor([scale], dtype=F64), low=-2.0, high=3.0)
    pdf = _tanh_density(dist)
    assert integrate.quad(pdf, -2.0, 3.0, limit=200)[0] == pytest.approx(1.0, abs=1e-5)
    mean = integrate.quad(lambda y: y * pdf(y), -2.0, 3.0, limit=200)[0]
    assert dist.mean.item() == pytest.approx(mean, abs=1e-5)
    entropy = integrate.quad(lambda y: -pdf(y) * math.log(max(pdf(y), 1e-300)), -2.0, 3.0, limit=200)[0]
    assert dist.entropy().item() == pytest.approx(entropy, abs=1e-4)
    grid = torch.linspace(-2.0, 3.0, 100001, dtype=F64)[1:-1].unsqueeze(-1)
    best = grid[dist.log_prob(grid).argmax()].item()
    assert dist.mode.item() == pytest.approx(best, abs=1e-4)


def test_tanh_normal_sample_histogram_matches_the_density():
    loc, scale, low, high = 0.5, 0.9, -2.0, 3.0
    samples = TanhNormal(torch.tensor(loc), torch.tensor(scale), low=low, high=high).sample((200000,))
    edges = np.linspace(low, high, 41)
    counts, _ = np.histogram(samples.numpy(), edges)
    with np.errstate(divide="ignore"):  # arctanh(+-1) = +-inf at the outer edges
        cdf = stats.norm.cdf((np.arctanh(np.clip((edges - 0.5) / 2.5, -1, 1)) - loc) / scale)
    expected = np.diff(cdf) * len(samples)
    assert np.max(np.abs(counts - expected) / np.sqrt(expected + 1)) < 5


def test_tanh_normal_mean_and_log_jacobian_accurate_for_any_scale():
    for m in [-6.0, -0.5, 0.0, 1.0, 8.0]:
        for s in [0.01, 0.5, 0.99, 1.0, 5.0, 100.0]:
            pdf = lambda x: stats.norm.pdf(x, m, s)  # noqa: E731
            lo, hi = m - 12 * s, m + 12 * s
            points = [0.0] if lo < 0 < hi else None
            mean = integrate.quad(lambda x: np.tanh(x) * pdf(x), lo, hi, points=points, limit=500)[0]
            logcosh = lambda x: np.abs(x) + np.log1p(np.exp(-2 * np.abs(x))) - np.log(2)  # noqa: E731
            jac = -2 * integrate.quad(lambda x: logcosh(x) * pdf(x), lo, hi, points=points, limit=500)[0]
            args = torch.tensor(m, dtype=F64), torch.tensor(s, dtype=F64)
            assert tanh_normal_mean(*args).item() == pytest.approx(mean, abs=1e-7)
            assert tanh_normal_log_jacobian(*args).item() == pytest.approx(jac, abs=1e-7)


def test_tanh_normal_mode_and_mean_do_not_raise_better_than_torchrl():
    loc, scale = torch.tensor([[0.2, -3.0]]), torch.tensor([[0.5, 2.0]])
    dist = TanhNormal(loc, scale)
    assert dist.mode.shape == dist.mean.shape == (1, 2)
    assert_close(dist.get_mode(), dist.mode)
    with pytest.raises(RuntimeError):
        _ = trl.TanhNormal(loc, scale).mode
    with pytest.raises(NotImplementedError):
        _ = trl.TanhNormal(loc, scale).mean
    mc = dist.sample((200000,)).mean(0)
    assert_close(dist.mean, mc, atol=0.01, rtol=0)


def test_tanh_normal_bimodal_mode_is_the_global_maximum():
    # scale^2 > 1/2 and loc = 0.1: two local maxima, the global one on loc's side.
    dist = TanhNormal(torch.tensor([0.1], dtype=F64), torch.tensor([1.5], dtype=F64))
    grid = torch.linspace(-1, 1, 200001, dtype=F64)[1:-1].unsqueeze(-1)
    assert dist.mode.item() == pytest.approx(grid[dist.log_prob(grid).argmax()].item(), abs=1e-4)
    assert dist.mode.item() > 0.9


def test_tanh_normal_tanh_loc_matches_torchrl_for_symmetric_bounds():
    loc, scale = torch.randn(4, 2) * 10, torch.ones(4, 2)
    ours, theirs = TanhNormal(loc, scale, tanh_loc=True, upscale=3.0), trl.TanhNormal(loc, scale, tanh_loc=True, upscale=3.0)
    assert_close(ours.deterministic_sample, theirs.deterministic_sample)
    assert_close(ours.loc, 3.0 * (loc / 3.0).tanh())


def test_tanh_normal_tanh_loc_with_asymmetric_bounds_better_than_torchrl():
    # torchrl adds the bounds' midpoint (5) to the pre-tanh loc: loc=0 lands at ~10, not 5.
    loc, scale = torch.zeros(1, 2), torch.ones(1, 2)
    ours = TanhNormal(loc, scale, low=0.0, high=10.0, tanh_loc=True)
    theirs = trl.TanhNormal(loc, scale, low=0.0, high=10.0, tanh_loc=True)
    assert_close(ours.deterministic_sample, torch.full((1, 2), 5.0))
    assert (theirs.deterministic_sample > 9.99).all()


LOCS = {"contiguous": lambda: torch.randn(5, 3), "transposed": lambda: torch.randn(3, 5).t(),
        "chunked": lambda: torch.randn(5, 6).chunk(2, -1)[0]}


@pytest.mark.parametrize("make_loc", LOCS.values(), ids=LOCS.keys())
def test_tanh_normal_plain_draw_matches_torchrl_for_any_layout(make_loc):
    # rsample() without a sample shape takes randn_like(loc): the same draw as torch's
    # empty(shape).normal_(), in row-major order whatever loc's strides (a transposed loc too).
    loc = _seeded(make_loc)
    scale = torch.rand(5, 3) + 0.2
    for method in ["rsample", "rsample_and_log_prob", "sample_and_log_prob"]:
        a = _seeded(lambda: getattr(TanhNormal(loc, scale), method)(), 1)
        b = _seeded(lambda: getattr(trl.TanhNormal(loc, scale), method)(), 1)
        assert_close(a, b)
    assert a[0].shape == (5, 3)


def test_tanh_normal_builds_without_broadcast_shapes_when_shapes_match(monkeypatch):
    # torch.broadcast_shapes costs ~7 us at batch 1: it runs only when a shape differs.
    calls = []
    broadcast = torch.broadcast_shapes
    monkeypatch.setattr(torch, "broadcast_shapes", lambda *s: calls.append(s) or broadcast(*s))
    TanhNormal(torch.zeros(5, 3), torch.ones(5, 3), low=-2.0, high=3.0)
    assert calls == []
    dist = TanhNormal(torch.zeros(5, 3), torch.ones(3))
    assert len(calls) == 1 and dist.scale.shape == (5, 3)
    dist = TanhNormal(torch.zeros(3), torch.ones(3), low=-torch.ones(2, 3), high=torch.ones(2, 3))
    assert len(calls) == 2 and dist.loc.shape == (2, 3)


def _plain_tanh_normal(loc, scale):
    """The textbook tanh-normal, one Python-number op at a time (rlmods' code before its tuning)."""
    x = loc + torch.randn_like(loc) * scale
    lim = 1 - torch.finfo(loc.dtype).resolution  # safe_tanh
    action = x.tanh().clamp(-lim, lim)
    log_normal = -0.5 * ((x - loc) / scale) ** 2 - scale.log() - 0.5 * math.log(2 * math.pi)
    log_jacobian = 2.0 * (math.log(2.0) - x - nn.functional.softplus(-2.0 * x))
    return action, (log_normal - log_jacobian).sum(-1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tanh_normal_sample_and_log_prob_equal_the_textbook_formula_bit_for_bit(dtype):
    # The fused ops (softplus's beta, sub's alpha) must give the same floats and the same
    # gradients as the plain formula: a trained seed must not move. |loc| up to ~20 covers
    # softplus's threshold and the safe_tanh clamp.
    results = []
    for build in [lambda lo, sc: TanhNormal(lo, sc).rsample_and_log_prob(), _plain_tanh_normal]:
        loc = _seeded(lambda: torch.randn(64, 6, dtype=dtype) * 6).requires_grad_()
        scale = _seeded(lambda: torch.rand(64, 6, dtype=dtype) + 0.05, 1).requires_grad_()
        action, log_prob = _seeded(lambda: build(loc, scale), 2)
        (0.2 * log_prob.mean() - (action * action * torch.arange(6.0, dtype=dtype)).sum()).backward()
        results.append([action, log_prob, loc.grad, scale.grad])
    for ours, plain in zip(*results):
        assert torch.equal(ours, plain)


def test_tanh_normal_callable_scale_update_and_gradients():
    loc = torch.zeros(3, 2, requires_grad=True)
    dist = TanhNormal(loc, torch.ones_like)
    assert_close(dist.scale, torch.ones(3, 2))
    action = dist.rsample()
    action.sum().backward()
    assert loc.grad is not None and (loc.grad != 0).all()
    dist.update(torch.ones(3, 2), 0.5)
    assert_close(dist.deterministic_sample, torch.full((3, 2), math.tanh(1.0)))
    assert TanhNormal(torch.zeros(2), 1.0).batch_shape == () and TanhNormal(torch.zeros(2), 1.0).event_shape == (2,)


@pytest.mark.parametrize("cls,kwargs", [(TanhNormal, {"scale": 1.0}), (TruncatedNormal, {"scale": 1.0}), (TanhDelta, {})])
def test_bounds_error(cls, kwargs):
    with pytest.raises(ValueError, match=rf"{cls.__name__}: high must be strictly greater than low, got low=1.0 and high=1.0"):
        cls(torch.zeros(2), low=1.0, high=1.0, **kwargs)
    with pytest.raises(ValueError, match=rf"{cls.__name__}: high must be strictly greater than low"):
        cls(torch.zeros(2), low=torch.tensor([0.0, 2.0]), high=torch.tensor([1.0, 1.0]), **kwargs)


# ----------------------------------------------------------------------------- Delta, TanhDelta
def test_delta_matches_torchrl():
    param = torch.randn(4, 3)
    ours, theirs = Delta(param), trl.Delta(param)
    for value in [param, param + 1.0, torch.cat([param[:2], param[2:] + 1])]:
        assert_close(ours.log_prob(value), theirs.log_prob(value))
    assert_close(ours.sample((5,)), theirs.sample((5,)))
    assert ours.batch_shape == theirs.batch_shape and ours.event_shape == theirs.event_shape
    for name in ["mode", "mean", "deterministic_sample"]:
        assert_close(getattr(ours, name), getattr(theirs, name))
    assert ours.expand((2, 4)).sample().shape == theirs.expand((2, 4)).sample().shape == (2, 4, 3)
    assert ours.rsample().requires_grad is False and Delta(param.requires_grad_()).rsample().requires_grad


def test_tanh_delta_matches_torchrl_for_default_bounds():
    param = torch.randn(4, 3) * 0.5
    ours, theirs = TanhDelta(param), trl.TanhDelta(param)
    assert_close(ours.mode, theirs.mode)
    assert_close(ours.deterministic_sample, theirs.deterministic_sample)
    assert_close(ours.sample((2,)), theirs.sample((2,)))
    assert_close(ours.log_prob(ours.mode), theirs.log_prob(theirs.mode))
    assert_close(ours.log_prob(ours.mode * 0.5), theirs.log_prob(theirs.mode * 0.5))


def test_tanh_delta_bounds_and_mean_better_than_torchrl():
    # torchrl shifts param by the bounds' midpoint before tanh: param 0 -> ~10 for [0, 10].
    ours, theirs = TanhDelta(torch.zeros(2), low=0.0, high=10.0), trl.TanhDelta(torch.zeros(2), low=0.0, high=10.0)
    assert_close(ours.mode, torch.full((2,), 5.0))
    assert (theirs.mode > 9.99).all()
    assert_close(ours.mean, ours.mode)
    with pytest.raises(AttributeError):
        _ = theirs.mean


def test_tanh_delta_log_prob_of_its_own_mode_better_than_torchrl():
    # Where tanh saturates torchrl's atanh round trip misses its own point: log_prob(mode) = -inf.
    param = torch.tensor([[0.1, 6.0, -7.0]])
    ours, theirs = TanhDelta(param), trl.TanhDelta(param)
    assert ours.log_prob(ours.mode).item() == float("inf")
    assert theirs.log_prob(theirs.mode).item() == -float("inf")


# ----------------------------------------------------------------------------- IndependentNormal, NormalParamWrapper
def test_independent_normal_matches_torchrl():
    loc, scale = torch.randn(5, 3), torch.rand(5, 3) + 0.1
    ours, theirs = IndependentNormal(loc, scale), trl.IndependentNormal(loc, scale)
    value = torch.randn(2, 5, 3)
    assert_close(ours.log_prob(value), theirs.log_prob(value))
    assert_close(ours.entropy(), theirs.entropy())
    assert_close(ours.mode, theirs.mode)
    assert_close(ours.deterministic_sample, theirs.deterministic_sample)
    assert_close(_seeded(lambda: ours.rsample((3,))), _seeded(lambda: theirs.rsample((3,))))
    ours.update(loc + 1, 2.0)
    theirs.update(loc + 1, torch.full_like(loc, 2.0))
    assert_close(ours.log_prob(value), theirs.log_prob(value))


def test_independent_normal_tanh_loc_applies_at_construction_better_than_torchrl():
    loc = torch.full((2, 3), 50.0)
    ours, theirs = IndependentNormal(loc, 1.0, tanh_loc=True), trl.IndependentNormal(loc, 1.0, tanh_loc=True)
    assert_close(ours.mode, torch.full((2, 3), 5.0 * math.tanh(10.0)))
    assert_close(theirs.mode, loc)  # torchrl ignores tanh_loc until update()


def test_normal_param_wrapper_warns_and_matches_extractor():
    torch.manual_seed(0)
    net = nn.Linear(3, 4)
    with pytest.warns(DeprecationWarning, match="NormalParamWrapper is deprecated: .*NormalParamExtractor"):
        wrapper = NormalParamWrapper(net, scale_mapping="exp", scale_lb=0.01)
    x = torch.randn(5, 3)
    loc, scale = wrapper(x)
    ref_loc, ref_scale = NormalParamExtractor("exp", 0.01)(net(x))
    assert_close(loc, ref_loc)
    assert_close(scale, ref_scale)
    with pytest.raises(RuntimeError, match="deprecated"):  # torchrl 0.14 no longer constructs it
        trl.NormalParamWrapper(net)


def test_normal_param_wrapper_passes_extra_outputs_through():
    class TwoOut(nn.Module):
        def forward(self, x):
            return torch.cat([x, x], -1), x.sum(-1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loc, scale, extra = NormalParamWrapper(TwoOut())(torch.ones(2, 3))
    assert loc.shape == scale.shape == (2, 3) and extra.shape == (2,)


# ----------------------------------------------------------------------------- TruncatedNormal
TRUNC_CASES = [(0.0, 1.0, -1.0, 1.0), (0.3, 0.5, 0.0, 2.0), (2.0, 3.0, -1.0, 1.0),
               (0.0, 1.0, 5.0, 6.0), (0.0, 1.0, 8.0, 9.0), (0.0, 1.0, -12.0, -10.0), (0.0, 0.1, 1.0, 2.0)]


@pytest.mark.parametrize("loc,scale,low,high", TRUNC_CASES)
def test_truncated_normal_matches_scipy(loc, scale, low, high):
    dist = TruncatedNormal(torch.tensor([loc], dtype=F64), torch.tensor([scale], dtype=F64), low=low, high=high)
    ref = stats.truncnorm((low - loc) / scale, (high - loc) / scale, loc=loc, scale=scale)
    x = low + (high - low) * np.array([0.0, 0.1, 0.5, 0.97, 1.0])
    value = torch.tensor(x, dtype=F64).unsqueeze(-1)
    assert_close(dist.log_prob(value), torch.tensor(ref.logpdf(x), dtype=F64))
    assert_close(dist.cdf(value).squeeze(-1), torch.tensor(ref.cdf(x), dtype=F64))
    assert dist.mean.item() == pytest.approx(ref.mean(), rel=1e-9)
    assert dist.variance.item() == pytest.approx(ref.var(), rel=1e-6)
    # scipy's entropy fails deep in the tail (nan, or -3.2 instead of -1.11 at [8, 9]): integrate instead
    pdf = lambda t: math.exp(dist.log_prob(torch.tensor([t], dtype=F64)).item())  # noqa: E731
    assert integrate.quad(pdf, low, high)[0] == pytest.approx(1.0, abs=1e-8)
    entropy = integrate.quad(lambda t: -pdf(t) * math.log(max(pdf(t), 1e-300)), low, high)[0]
    assert dist.entropy().item() == pytest.approx(entropy, abs=1e-6)
    samples = dist.sample((20000,)).squeeze(-1).numpy()
    assert samples.min() >= low and samples.max() <= high
    assert stats.kstest(samples, ref.cdf).pvalue > 1e-4


@pytest.mark.parametrize("loc,scale,low,high", TRUNC_CASES[:3])
def test_truncated_normal_matches_torchrl_away_from_the_tails(loc, scale, low, high):
    loc_t, scale_t = torch.full((2, 3), loc), torch.full((2, 3), scale)
    ours, theirs = TruncatedNormal(loc_t, scale_t, low=low, high=high), trl.TruncatedNormal(loc_t, scale_t, low=low, high=high)
    value = torch.linspace(low + 0.01, high - 0.01, 3).expand(2, 3)
    assert_close(ours.log_prob(value), theirs.log_prob(value), rtol=1e-4, atol=1e-4)
    assert_close(ours.mean, theirs.mean, rtol=1e-4, atol=1e-4)
    assert_close(ours.entropy(), theirs.entropy(), rtol=1e-4, atol=1e-4)
    assert_close(ours.mode, theirs.mode, rtol=1e-5, atol=1e-5)
    assert_close(ours.deterministic_sample, theirs.deterministic_sample, rtol=1e-4, atol=1e-4)
    a, b = ours.sample((20000,)), theirs.sample((20000,))
    assert_close(a.mean(0), b.mean(0), atol=0.02, rtol=0)
    assert ours.log_prob(torch.full((2, 3), high + 0.1)).isneginf().all()


def test_truncated_normal_deep_tail_better_than_torchrl():
    # [5, 6] for N(0, 1): torchrl clamps Z to 1e-6; its mean falls outside the support.
    loc, scale = torch.zeros(1), torch.ones(1)
    ours, theirs = TruncatedNormal(loc, scale, low=5.0, high=6.0), trl.TruncatedNormal(loc, scale, low=5.0, high=6.0)
    ref = stats.truncnorm(5.0, 6.0)
    assert ours.mean.item() == pytest.approx(ref.mean(), rel=1e-5)
    assert theirs.mean.item() < 5.0
    assert ours.sample((1000,)).std() > 0.1 and theirs.sample((1000,)).std() < 1e-3  # torchrl's all sit at 5


def test_truncated_normal_float32_deep_tail_and_tanh_loc():
    dist = TruncatedNormal(torch.zeros(1), 0.1, low=1.0, high=2.0)  # alpha = 10
    ref = stats.truncnorm(10.0, 20.0, scale=0.1)
    assert dist.mean.item() == pytest.approx(ref.mean(), rel=1e-5)
    assert torch.isfinite(dist.entropy()).all()
    # [15, 16]: Phi(15) rounds to 1 in float32, so Z needs the lower-tail form
    far = TruncatedNormal(torch.zeros(1), 1.0, low=15.0, high=16.0)
    assert far.mean.item() == pytest.approx(stats.truncnorm(15.0, 16.0).mean(), rel=1e-5)
    assert far.log_prob(torch.tensor([15.5])).item() == pytest.approx(stats.truncnorm(15.0, 16.0).logpdf(15.5), rel=1e-4)
    samples = TruncatedNormal(torch.zeros(1), 1.0, low=10.0, high=11.0).sample((5000,)).squeeze(-1).double().numpy()
    assert stats.kstest(samples, stats.truncnorm(10.0, 11.0).cdf).pvalue > 1e-4
    assert_close(TruncatedNormal(torch.full((1,), 50.0), 1.0, tanh_loc=True).loc, torch.full((1,), 5 * math.tanh(10.0)))


# ----------------------------------------------------------------------------- OneHotCategorical
def test_one_hot_categorical_matches_torchrl():
    logits = torch.randn(5, 4)
    ours, theirs = OneHotCategorical(logits=logits), trl.OneHotCategorical(logits=logits)
    sample = _seeded(lambda: ours.sample((6,)))
    assert_close(sample, _seeded(lambda: theirs.sample((6,))))
    assert_close(ours.log_prob(sample), theirs.log_prob(sample))
    assert_close(ours.entropy(), theirs.entropy())
    assert_close(ours.mode, theirs.mode)
    assert_close(ours.deterministic_sample, theirs.deterministic_sample)
    probs = logits.softmax(-1)
    assert_close(OneHotCategorical(probs=probs).log_prob(sample), trl.OneHotCategorical(probs=probs).log_prob(sample))


def test_one_hot_categorical_frequencies_match_probs():
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4])
    freq = OneHotCategorical(probs=probs).sample((100000,)).float().mean(0)
    assert_close(freq, probs, atol=0.01, rtol=0)
    assert_close(OneHotCategorical(probs=probs).log_prob(torch.eye(4)).exp().sum(), torch.tensor(1.0))


def test_one_hot_categorical_mode_with_ties_better_than_torchrl():
    ours, theirs = OneHotCategorical(logits=torch.zeros(2, 3)), trl.OneHotCategorical(logits=torch.zeros(2, 3))
    assert_close(ours.mode, torch.tensor([[1, 0, 0], [1, 0, 0]]))
    assert_close(theirs.mode, torch.ones(2, 3, dtype=torch.long))  # not a valid one-hot action


@pytest.mark.parametrize("grad_method", [ReparamGradientStrategy.PassThrough, ReparamGradientStrategy.RelaxedOneHot,
                                         TorchrlReparam.RelaxedOneHot, "PassThrough"])
def test_one_hot_categorical_rsample_gradients(grad_method):
    logits = torch.randn(3, 4, requires_grad=True)
    sample = OneHotCategorical(logits=logits, grad_method=grad_method).rsample((2,))
    assert sample.shape == (2, 3, 4)
    assert_close(sample.sum(-1), torch.ones(2, 3))
    assert_close(sample.detach(), sample.detach().round())  # one-hot values, soft gradients
    (sample * torch.arange(4.0)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_one_hot_pass_through_gradient_is_the_softmax_gradient():
    logits = torch.randn(4, requires_grad=True)
    weights = torch.arange(4.0)
    (OneHotCategorical(logits=logits).rsample() * weights).sum().backward()
    expected = torch.autograd.functional.jacobian(lambda z: z.softmax(-1), logits.detach()).T @ weights
    assert_close(logits.grad, expected)


def test_one_hot_categorical_grad_method_error():
    with pytest.raises(ValueError, match=r"OneHotCategorical: grad_method must be one of \['PassThrough', 'RelaxedOneHot'\], got 'gumbel'"):
        OneHotCategorical(logits=torch.zeros(3), grad_method="gumbel")
    with pytest.raises(ValueError, match="MaskedOneHotCategorical: grad_method must be one of"):
        MaskedOneHotCategorical(logits=torch.zeros(3), mask=torch.ones(3, dtype=torch.bool), grad_method=3)


# ----------------------------------------------------------------------------- MaskedCategorical
MASK = torch.tensor([[True, False, True, True], [False, True, True, False]])


def _per_action(dist, n=4, batch=2):
    """log_prob of each action 0..n-1 for every batch entry: (n, batch), one call per action."""
    return torch.stack([dist.log_prob(torch.full((batch,), a)) for a in range(n)])


def test_masked_categorical_dense_matches_torchrl():
    logits = torch.randn(2, 4)
    ours, theirs = MaskedCategorical(logits=logits, mask=MASK), trl.MaskedCategorical(logits=logits, mask=MASK)
    sample = _seeded(lambda: ours.sample((50,)))
    assert_close(sample, _seeded(lambda: theirs.sample((50,))))
    assert MASK.gather(-1, sample.T).all()  # never a masked action
    assert_close(_per_action(ours), _per_action(theirs))
    assert_close(ours.entropy(), theirs.entropy())
    assert_close(ours.mode, theirs.mode)
    assert_close(ours.deterministic_sample, theirs.deterministic_sample)
    assert_close(_per_action(ours).exp().sum(0), torch.ones(2))
    probs = logits.softmax(-1)
    assert_close(_per_action(MaskedCategorical(probs=probs, mask=MASK)),
                 _per_action(trl.MaskedCategorical(probs=probs, mask=MASK)))
    assert ours.mask is MASK


def test_masked_categorical_log_prob_of_a_batch_of_samples_better_than_torchrl():
    # torchrl's cross-entropy path fails when the value has sample dims in front of the batch dims.
    logits = torch.randn(2, 4)
    ours, theirs = MaskedCategorical(logits=logits, mask=MASK), trl.MaskedCategorical(logits=logits, mask=MASK)
    sample = ours.sample((5,))
    assert_close(ours.log_prob(sample), torch.stack([theirs.log_prob(s) for s in sample]))
    with pytest.raises(ValueError, match="batch_size"):
        theirs.log_prob(sample)


def test_masked_categorical_sparse_matches_torchrl():
    logits = torch.randn(2, 4)
    indices = torch.tensor([[0, 2, 3], [1, 2, 0]])
    ours, theirs = MaskedCategorical(logits=logits, indices=indices), trl.MaskedCategorical(logits=logits, indices=indices)
    sample = _seeded(lambda: ours.sample((20,)))
    assert_close(sample, _seeded(lambda: theirs.sample((20,))))
    assert_close(_per_action(ours), _per_action(theirs))
    assert_close(ours.mode, theirs.mode)
    assert_close(ours.entropy(), theirs.entropy())
    assert_close(_per_action(ours).exp().sum(0), torch.ones(2))
    assert ours.log_prob(torch.tensor([1, 3])).isneginf().all()
    with pytest.raises(ValueError, match="MaskedCategorical: mask is undefined for sparse indices"):
        _ = ours.mask


def test_masked_categorical_padding_and_neg_inf():
    logits = torch.tensor([0.0, 1.0, 2.0, 3.0])
    indices = torch.tensor([-1, 0, 2])
    ours = MaskedCategorical(logits=logits, indices=indices, padding_value=-1, neg_inf=-1e6)
    theirs = trl.MaskedCategorical(logits=logits, indices=indices, padding_value=-1, neg_inf=-1e6)
    actions = torch.arange(4)
    assert_close(ours.log_prob(actions), theirs.log_prob(actions))
    assert ours.log_prob(torch.tensor(1)).item() == -1e6
    assert_close(ours.mode, theirs.mode)
    assert set(ours.sample((200,)).unique().tolist()) <= {0, 2}
    assert ours.padding_value == -1 and ours.padding_side == "left"


def test_masked_categorical_padded_entropy_finite_better_than_torchrl():
    logits, indices = torch.tensor([0.0, 1.0, 2.0, 3.0]), torch.tensor([-1, 0, 2])
    ours = MaskedCategorical(logits=logits, indices=indices, padding_value=-1)
    theirs = trl.MaskedCategorical(logits=logits, indices=indices, padding_value=-1)
    p = torch.tensor([1.0, math.e ** 2]) / (1 + math.e ** 2)
    assert_close(ours.entropy(), -(p * p.log()).sum())
    assert theirs.entropy().isnan()


def test_masked_categorical_mode_is_allowed_with_finite_neg_inf_better_than_torchrl():
    # A finite neg_inf above the allowed logits: torchrl's mode picks the masked action.
    logits, mask = torch.tensor([-2e4, 0.0, -3e4, -2.5e4]), torch.tensor([True, False, True, True])
    ours = MaskedCategorical(logits=logits, mask=mask, neg_inf=-1e4)
    theirs = trl.MaskedCategorical(logits=logits, mask=mask, neg_inf=-1e4)
    assert ours.mode.item() == 0 and theirs.mode.item() == 1
    assert mask[ours.mode] and torch.isfinite(ours.log_prob(ours.mode))


@pytest.mark.parametrize("kwargs,error,match", [
    ({"logits": torch.zeros(3)}, ValueError, "MaskedCategorical: exactly one of mask or indices must be given, got neither"),
    ({"logits": torch.zeros(3), "mask": torch.ones(3, dtype=torch.bool), "indices": torch.tensor([0])}, ValueError,
     "MaskedCategorical: exactly one of mask or indices must be given, got both"),
    ({"mask": torch.ones(3, dtype=torch.bool)}, ValueError, "MaskedCategorical: exactly one of logits or probs must be given, got neither"),
    ({"logits": torch.zeros(3), "probs": torch.ones(3) / 3, "mask": torch.ones(3, dtype=torch.bool)}, ValueError,
     "MaskedCategorical: exactly one of logits or probs must be given, got both"),
    ({"logits": torch.zeros(3), "mask": torch.ones(3)}, TypeError, r"MaskedCategorical: mask must be a bool tensor, got dtype torch.float32"),
    ({"logits": torch.zeros(3), "indices": torch.tensor([0.0, 1.0])}, TypeError,
     r"MaskedCategorical: indices must be an integer tensor, got dtype torch.float32"),
])
def test_masked_categorical_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        MaskedCategorical(**kwargs)


# ----------------------------------------------------------------------------- MaskedOneHotCategorical
def test_masked_one_hot_categorical_matches_torchrl():
    logits = torch.randn(2, 4)
    for kwargs in [{"mask": MASK}, {"indices": torch.tensor([[0, 2, 3], [1, 2, 3]])}]:
        ours, theirs = MaskedOneHotCategorical(logits=logits, **kwargs), trl.MaskedOneHotCategorical(logits=logits, **kwargs)
        sample = _seeded(lambda: ours.sample())
        assert_close(sample, _seeded(lambda: theirs.sample()))
        assert_close(ours.log_prob(sample), theirs.log_prob(sample))
        assert_close(ours.mode, theirs.mode)
        assert_close(ours.entropy(), theirs.entropy())
        assert ours.sample((30,)).shape == (30, 2, 4)
        assert_close(ours.log_prob(torch.eye(4).unsqueeze(1)).exp().sum(0), torch.ones(2))


def test_masked_one_hot_mode_with_ties_better_than_torchrl():
    mask = torch.tensor([True, False, True, True])
    ours, theirs = MaskedOneHotCategorical(logits=torch.zeros(4), mask=mask), trl.MaskedOneHotCategorical(logits=torch.zeros(4), mask=mask)
    assert_close(ours.mode, torch.tensor([1, 0, 0, 0]))
    assert_close(theirs.mode, torch.tensor([1, 0, 1, 1]))


@pytest.mark.parametrize("grad_method", list(ReparamGradientStrategy))
@pytest.mark.parametrize("sparse", [False, True])
def test_masked_one_hot_rsample(grad_method, sparse):
    logits = torch.randn(2, 4, requires_grad=True)
    kwargs = {"indices": torch.tensor([[0, 2, -1, 3], [1, 2, 3, -1]]), "padding_value": -1} if sparse else {"mask": MASK}
    dist = MaskedOneHotCategorical(logits=logits, grad_method=grad_method, **kwargs)
    sample = dist.rsample((100,))
    assert sample.shape == (100, 2, 4)
    allowed = torch.tensor([[True, False, True, True], [False, True, True, True]]) if sparse else MASK
    assert (sample.detach()[..., ~allowed] == 0).all()
    (sample * torch.arange(4.0)).sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- Ordinal
def test_ordinal_logits_follow_equation_4():
    scores = torch.randn(3, 5, dtype=F64)
    log_up, log_down = torch.nn.functional.logsigmoid(scores), torch.nn.functional.logsigmoid(-scores)
    expected = torch.stack([log_up[:, :k + 1].sum(-1) + log_down[:, k + 1:].sum(-1) for k in range(5)], -1)
    assert_close(ordinal_logits(scores), expected)


def test_ordinal_matches_torchrl():
    scores = torch.randn(3, 5)
    ours, theirs = Ordinal(scores), trl.Ordinal(scores)
    assert_close(ours.logits, theirs.logits)
    sample = _seeded(lambda: ours.sample((10,)))
    assert_close(sample, _seeded(lambda: theirs.sample((10,))))
    assert_close(ours.log_prob(sample), theirs.log_prob(sample))
    assert_close(ours.entropy(), theirs.entropy())
    assert_close(ours.probs.sum(-1), torch.ones(3))
    one_hot, theirs_one_hot = OneHotOrdinal(scores), trl.OneHotOrdinal(scores)
    sample = _seeded(lambda: one_hot.sample((10,)))
    assert_close(sample, _seeded(lambda: theirs_one_hot.sample((10,))))
    assert_close(one_hot.log_prob(sample), theirs_one_hot.log_prob(sample))
    assert_close(one_hot.mode, theirs_one_hot.mode)


# ----------------------------------------------------------------------------- issue 9: parity and pinned differences
def test_truncated_normal_device_matches_torchrl():
    ours = TruncatedNormal(torch.zeros(2, 3, dtype=F64), torch.ones(2, 3, dtype=F64))
    theirs = trl.TruncatedNormal(torch.zeros(2, 3), torch.ones(2, 3))
    assert isinstance(ours.device, torch.device) and ours.device == theirs.device
    assert ours.device == ours.sample().device


def test_tanh_normal_broadcasts_to_wider_bounds_like_torchrl():
    # loc (3,), bounds (2, 3): one independent draw per row, each row scaled by its own bounds.
    loc, scale = torch.tensor([0.2, -0.5, 1.0]), torch.tensor([0.5, 1.0, 2.0])
    low = torch.tensor([[-1.0, -1.0, -1.0], [-3.0, -2.0, -4.0]])
    ours, theirs = TanhNormal(loc, scale, low=low, high=-low), trl.TanhNormal(loc, scale, low=low, high=-low)
    assert ours.batch_shape == theirs.batch_shape == (2,)
    torch.manual_seed(0)
    a = ours.rsample((4,))
    torch.manual_seed(0)
    b = theirs.rsample((4,))
    assert a.shape == (4, 2, 3) and not torch.equal(a[:, 0] / 1.0, a[:, 1] / -low[1])
    assert_close(a, b)
    assert_close(ours.log_prob(a.clone()), theirs.log_prob(b), rtol=1e-4, atol=1e-4)
    assert_close(ours.deterministic_sample, theirs.deterministic_sample)


@pytest.mark.torchrl_bug
def test_tanh_normal_default_valued_wider_bounds_are_dropped_torchrl():
    # torchrl skips the affine map when the bounds equal (-1, 1), and with it their shape.
    bounds = torch.ones(2, 3)
    theirs = trl.TanhNormal(torch.zeros(3), torch.ones(3), low=-bounds, high=bounds)
    assert theirs.batch_shape == () and theirs.rsample().shape == (3,)


def test_tanh_normal_default_valued_wider_bounds_better_than_torchrl():
    # rlmods: the shape of a distribution does not depend on the values of its bounds.
    bounds = torch.ones(2, 3)
    ours = TanhNormal(torch.zeros(3), torch.ones(3), low=-bounds, high=bounds)
    assert ours.batch_shape == (2,) and ours.rsample((5,)).shape == (5, 2, 3)
    assert ours.log_prob(ours.rsample()).shape == (2,)


def test_masked_categorical_finite_neg_inf_log_prob_of_a_masked_action():
    # A documented difference: rlmods returns neg_inf itself for a masked action; torchrl
    # normalises the masked logit like the others (neg_inf - logsumexp). Allowed actions agree.
    logits, mask = torch.tensor([0.0, 1.0, 2.0, 0.5]), torch.tensor([True, False, True, True])
    ours = MaskedCategorical(logits=logits, mask=mask, neg_inf=-1e4)
    theirs = trl.MaskedCategorical(logits=logits, mask=mask, neg_inf=-1e4)
    actions = torch.arange(4)
    assert_close(ours.log_prob(actions)[mask], theirs.log_prob(actions)[mask])
    assert ours.log_prob(torch.tensor(1)).item() == -1e4
    normaliser = torch.logsumexp(logits[mask], -1)
    assert_close(theirs.log_prob(torch.tensor(1)), -1e4 - normaliser)


def test_tensor_bound_check_follows_validate_args():
    low, high = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 1.0])
    for cls, kwargs in [(TanhNormal, {"scale": 1.0}), (TruncatedNormal, {"scale": 1.0}), (TanhDelta, {})]:
        with rlmods.set_validate_args(False):
            cls(torch.zeros(2), low=low, high=high, **kwargs)  # unchecked: no GPU sync
            with pytest.raises(ValueError, match=f"{cls.__name__}: high must be strictly greater"):
                cls(torch.zeros(2), low=1.0, high=1.0, **kwargs)  # numbers: always checked
        with pytest.raises(ValueError, match=f"{cls.__name__}: high must be strictly greater"):
            cls(torch.zeros(2), low=low, high=high, **kwargs)


def _build(lib, name, **kwargs):
    return getattr(lib, name)(**kwargs)


_ERROR_CASES = {
    "tanh_normal_number_bounds": ("TanhNormal", dict(loc=torch.zeros(2), scale=1.0, low=1.0, high=-1.0)),
    "tanh_normal_tensor_bounds": ("TanhNormal", dict(loc=torch.zeros(2), scale=1.0, low=torch.ones(2),
                                                     high=torch.zeros(2))),
    "truncated_normal_bounds": ("TruncatedNormal", dict(loc=torch.zeros(2), scale=1.0, low=1.0, high=0.0)),
    "tanh_delta_bounds": ("TanhDelta", dict(param=torch.zeros(2), low=1.0, high=0.0)),
    "masked_both_mask_and_indices": ("MaskedCategorical", dict(logits=torch.zeros(3), mask=torch.ones(3).bool(),
                                                               indices=torch.tensor([0]))),
    "masked_neither_mask_nor_indices": ("MaskedCategorical", dict(logits=torch.zeros(3))),
    "masked_both_logits_and_probs": ("MaskedCategorical", dict(logits=torch.zeros(3), probs=torch.ones(3) / 3,
                                                               mask=torch.ones(3).bool())),
    "masked_float_mask": ("MaskedCategorical", dict(logits=torch.zeros(3), mask=torch.ones(3))),
}


@pytest.mark.parametrize("case", sorted(_ERROR_CASES))
def test_error_types_match_torchrl(case):
    name, kwargs = _ERROR_CASES[case]
    with pytest.raises((RuntimeError, ValueError, TypeError, KeyError)) as theirs:
        _build(trl, name, **kwargs)
    with pytest.raises((RuntimeError, ValueError, TypeError, KeyError), match=name) as ours:
        _build(rlmods, name, **kwargs)
    assert isinstance(ours.value, type(theirs.value)), (type(ours.value), type(theirs.value))


def test_sparse_mask_property_error_type_matches_torchrl():
    kwargs = dict(logits=torch.zeros(3), indices=torch.tensor([0, 2]))
    with pytest.raises(ValueError) as theirs:
        _ = trl.MaskedCategorical(**kwargs).mask
    with pytest.raises(ValueError, match="MaskedCategorical: mask is undefined") as ours:
        _ = MaskedCategorical(**kwargs).mask
    assert isinstance(ours.value, type(theirs.value))
