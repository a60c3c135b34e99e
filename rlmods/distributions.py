"""Action distributions: squashed and truncated Gaussians, deltas, masked and ordinal categoricals.

Each class is a ``torch.distributions.Distribution`` that a probabilistic actor builds
from a network's output (``loc``/``scale``, ``logits`` or ``param``) and then samples,
scores (``log_prob``) or reads a deterministic action from (``deterministic_sample``,
``mode``, ``mean``). Built in chapter *Distributions*; mirrors
``torchrl.modules.distributions`` of torchrl 0.14.
"""

from __future__ import annotations

import math
import warnings
from enum import Enum
from numbers import Number
from typing import Callable, Sequence

import numpy as np
import torch
from tensordict.nn import NormalParamExtractor
from torch import distributions as D, nn
from torch.distributions import constraints
from torch.distributions.utils import _standard_normal, _sum_rightmost

from rlmods._checks import InvalidValueError, validate_args

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_LOG_2 = math.log(2.0)
# E[f(X)] for X ~ N(mu, s): Gauss-Hermite (nodes follow the density; for s < 1) and
# Gauss-Legendre on [-10, 0] and [0, 10] (nodes follow f; for s >= 1, f ~ 0 beyond |x| = 10).
_GH_NODES, _GH_WEIGHTS = (torch.as_tensor(a) for a in np.polynomial.hermite.hermgauss(64))
_GL_NODES, _GL_WEIGHTS = (torch.as_tensor(a) for a in np.polynomial.legendre.leggauss(32))
_GL_NODES = torch.cat([5 * _GL_NODES - 5, 5 * _GL_NODES + 5])  # (64,) on [-10, 10], split at 0
_GL_WEIGHTS = torch.cat([5 * _GL_WEIGHTS, 5 * _GL_WEIGHTS])


def _as_tensor(value, like: torch.Tensor) -> torch.Tensor:
    """``value`` (number or tensor) as a tensor on ``like``'s device and dtype."""
    return torch.as_tensor(value, device=like.device, dtype=like.dtype)


def _as_scale(scale, loc: torch.Tensor) -> torch.Tensor:
    """torchrl's ``scale`` argument: a tensor, a number, or a callable of ``loc``."""
    if callable(scale) and not isinstance(scale, torch.Tensor):
        return scale(loc)
    return _as_tensor(scale, loc)


def _check_bounds(owner: str, low, high) -> None:
    """An error unless ``high > low`` everywhere.

    Number bounds are always checked; tensor bounds only while ``rlmods.validate_args()`` is
    on and not while compiling (reading their values makes a GPU wait). The error is a
    ValueError and, as torchrl raises, a RuntimeError.
    """
    if isinstance(low, Number) and isinstance(high, Number):
        ok = high > low
    elif torch.compiler.is_compiling() or not validate_args():
        return
    else:
        ok = bool((torch.as_tensor(high) > torch.as_tensor(low)).all())
    if not ok:
        raise InvalidValueError(f"{owner}: high must be strictly greater than low, "
                                f"got low={low} and high={high}.")


def _gauss_hermite(fn: Callable, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """E[fn(X)] for X ~ N(loc, scale), elementwise: nodes placed by the Gaussian."""
    nodes, weights = _GH_NODES.to(loc), _GH_WEIGHTS.to(loc)  # (64,)
    x = loc.unsqueeze(-1) + math.sqrt(2.0) * scale.unsqueeze(-1) * nodes  # (*shape, 64)
    return (fn(x) * weights).sum(-1) / math.sqrt(math.pi)


def _gauss_legendre(fn: Callable, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """E[fn(X)] for X ~ N(loc, scale) and fn ~ 0 outside [-10, 10], smooth on each side of 0."""
    x, weights = _GL_NODES.to(loc), _GL_WEIGHTS.to(loc)  # (64,)
    z = (x - loc.unsqueeze(-1)) / scale.unsqueeze(-1)  # (*shape, 64)
    density = torch.exp(-0.5 * z * z - _LOG_SQRT_2PI) / scale.unsqueeze(-1)
    return (density * (fn(x) * weights)).sum(-1)


def _sum_last(value: torch.Tensor, dims: int) -> torch.Tensor:
    """Sum over the last ``dims`` dims: torch's ``_sum_rightmost``, without its reshape for one."""
    return value.sum(-1) if dims == 1 else _sum_rightmost(value, dims)


def _half_log1m_tanh_sq(x: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(x)^2) / 2 = log 2 - x - softplus(-2x), finite for every finite x.

    No cancellation at |x| >> 1. softplus(-2x) is computed as -2 softplus(x, beta=-2) and the
    caller doubles the result with ``alpha=2``: the same floats (powers of two scale exactly),
    but a Python number in an op is wrapped in a new tensor on every call (about 1 us at
    batch 1), while ``beta`` and ``alpha`` are passed as they are.
    """
    return torch.add(_LOG_2 - x, nn.functional.softplus(x, beta=-2.0), alpha=2.0)


def tanh_normal_mean(loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """E[tanh(X)] for X ~ N(loc, scale): no closed form, so a closed part plus quadrature.

    tanh(x) ~ erf(c x) with c = sqrt(pi)/2 (same slope at 0), and E[erf(cX)] is exact:
    erf(c loc / sqrt(1 + 2 c^2 scale^2)). The small smooth remainder tanh - erf(c .),
    which vanishes for |x| > 10, goes through quadrature (error < 1e-6 for any scale).
    """
    c = math.sqrt(math.pi) / 2
    closed = torch.erf(c * loc / torch.sqrt(1 + 2 * c * c * scale * scale))
    rest = lambda x: x.tanh() - torch.erf(c * x)  # noqa: E731
    quad = torch.where(scale < 1, _gauss_hermite(rest, loc, scale),
                       _gauss_legendre(rest, loc, scale))
    return closed + quad


def tanh_normal_log_jacobian(loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """E[log(1 - tanh(X)^2)] = -2 E[log cosh X] for X ~ N(loc, scale), the entropy's tanh term.

    log cosh x = |x| + softplus(-2|x|) - log 2. For scale >= 1, E|X| is exact (folded
    normal) and softplus(-2|x|), which vanishes beyond |x| = 10, goes through quadrature;
    for scale < 1 the smooth log cosh goes through Gauss-Hermite directly.
    """
    log_cosh = lambda x: x.abs() + nn.functional.softplus(-2 * x.abs()) - _LOG_2  # noqa: E731
    abs_mean = (scale * math.sqrt(2 / math.pi) * torch.exp(-0.5 * (loc / scale) ** 2)
                + loc * torch.erf(loc / (scale * math.sqrt(2))))  # E|X|
    tail = lambda x: nn.functional.softplus(-2 * x.abs())  # noqa: E731
    large = abs_mean + _gauss_legendre(tail, loc, scale) - _LOG_2
    return -2 * torch.where(scale < 1, _gauss_hermite(log_cosh, loc, scale), large)


def tanh_normal_mode(loc: torch.Tensor, scale: torch.Tensor, iters: int = 20) -> torch.Tensor:
    """Pre-tanh argmax of the TanhNormal density: the largest root of x = |loc| + 2 s^2 tanh(x).

    d/dx [log N(x; loc, s) - log(1 - tanh(x)^2)] = 0 gives x = loc + 2 s^2 tanh(x): a
    transcendental equation, hence no closed form. The global maximum has the sign of
    ``loc``; on that side h(z) = z - |loc| - 2 s^2 tanh(z) is convex, so Newton's method
    started at |loc| + 2 s^2 (right of every root) decreases monotonically onto it.
    """
    m, c = loc.abs(), 2 * scale * scale
    z = m + c
    for _ in range(iters):
        t = z.tanh()
        z = z - (z - m - c * t) / (1 - c * (1 - t * t)).clamp_min(1e-12)
    return z.copysign(loc)


class TanhNormal(D.Distribution):
    """A Normal squashed by tanh and rescaled into ``[low, high]``.

    ``x ~ N(loc, scale)``, ``action = (high + low)/2 + (high - low)/2 * tanh(x)``;
    ``log_prob`` sums over the last ``event_dims`` dims. Built in chapter *Distributions*.

    ``log_prob`` of the tensor that ``sample``/``rsample`` just returned uses the cached
    pre-tanh draw (exact even where tanh saturates); any other value is inverted with its
    tanh clamped to ``1 - finfo(dtype).resolution``, so the bounds have a finite log_prob.
    ``deterministic_sample`` is the squashed ``loc``; ``mode`` is the density's argmax
    (``tanh_normal_mode``) and ``mean`` is E[action] (``tanh_normal_mean``):
    torchrl raises for both.

    Args:
        loc (Tensor): location of the Normal before the tanh.
        scale (Tensor, float or callable): its standard deviation, or a callable of ``loc``.
        upscale (Tensor or float): ``a`` in ``loc = a * tanh(loc / a)`` when ``tanh_loc``.
            Default 5.0.
        low (Tensor or float): lower bound of the action. Default -1.0.
        high (Tensor or float): upper bound of the action. Default 1.0.
        event_dims (int, optional): trailing dims summed by ``log_prob``.
            Default ``min(1, loc.ndim)``.
        tanh_loc (bool): squash ``loc`` with ``upscale`` first. Default False.
        safe_tanh (bool): clamp tanh to ``1 - resolution`` so samples stay inside the bounds.
            Default True.

    Examples:
        >>> dist = TanhNormal(torch.zeros(3, 2), torch.ones(3, 2), low=-2.0, high=2.0)
        >>> action = dist.rsample()
        >>> action.shape, dist.log_prob(action).shape, bool(action.abs().max() < 2)
        (torch.Size([3, 2]), torch.Size([3]), True)
        >>> dist.deterministic_sample[0]
        tensor([0., 0.])
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.greater_than(1e-6)}
    has_rsample = True
    num_params = 2

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor | float | Callable,
                 upscale: torch.Tensor | Number = 5.0, low: torch.Tensor | Number = -1.0,
                 high: torch.Tensor | Number = 1.0, event_dims: int | None = None,
                 tanh_loc: bool = False, safe_tanh: bool = True):
        if not isinstance(loc, torch.Tensor):
            loc = torch.as_tensor(loc, dtype=torch.get_default_dtype())
        _check_bounds("TanhNormal", low, high)
        self._low, self._high = low, high
        # The affine part only when the bounds are not the default (-1, 1); numbers stay numbers.
        numbers = isinstance(low, Number) and isinstance(high, Number)
        self._affine = not numbers or (low, high) != (-1.0, 1.0)
        if not numbers:
            low, high = _as_tensor(low, loc), _as_tensor(high, loc)
        self._mid, self._half = (high + low) / 2, (high - low) / 2
        self._log_half = math.log(self._half) if numbers else self._half.log()
        self.upscale, self.tanh_loc, self.safe_tanh = upscale, tanh_loc, safe_tanh
        self._event_dims = min(1, loc.ndim) if event_dims is None else event_dims
        self.update(loc, scale)

    def update(self, loc: torch.Tensor, scale: torch.Tensor | float | Callable) -> None:
        """Set new ``loc``/``scale`` in place (``tanh_loc`` applies here, as in torchrl)."""
        if self.tanh_loc:  # rlmods: no shift by the bounds' midpoint (torchrl's tanh_loc bug)
            loc = (loc / self.upscale).tanh() * self.upscale
        scale = _as_scale(scale, loc)
        bounds = self._mid.shape if isinstance(self._mid, torch.Tensor) else ()
        if scale.shape != loc.shape or bounds:  # broadcast_shapes costs 7 us: only when needed
            shape = torch.broadcast_shapes(loc.shape, scale.shape, bounds)
            if loc.shape != shape or scale.shape != shape:  # wider bounds too: one draw per entry
                loc, scale = loc.expand(shape), scale.expand(shape)
        self.loc, self.scale = loc, scale
        self._cache = None  # (action, pre-tanh draw) of the last sample
        split = loc.ndim - self._event_dims
        D.Distribution.__init__(self, loc.shape[:split], loc.shape[split:], validate_args=False)

    @property
    def low(self) -> torch.Tensor:
        return _as_tensor(self._low, self.loc)

    @property
    def high(self) -> torch.Tensor:
        return _as_tensor(self._high, self.loc)

    def _squash(self, x: torch.Tensor) -> torch.Tensor:
        y = x.tanh()
        if self.safe_tanh:  # |x| > 7.25 in float32: tanh's gradient is < 2e-6 there anyway
            lim = 1.0 - torch.finfo(y.dtype).resolution
            y = y.clamp(-lim, lim)
        return self._mid + self._half * y if self._affine else y

    def rsample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> torch.Tensor:
        if sample_shape:  # (*sample, *batch, *event)
            shape = self._extended_shape(torch.Size(sample_shape))
            noise = _standard_normal(shape, dtype=self.loc.dtype, device=self.loc.device)
        else:  # the same draw, without the shape work: empty(loc.shape).normal_()
            noise = torch.randn_like(self.loc, memory_format=torch.contiguous_format)
        x = self.loc + noise * self.scale
        action = self._squash(x)
        self._cache = (action, x)
        return action

    def sample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._cache is not None and value is self._cache[0]:
            x = self._cache[1]
        else:
            y = (value - self._mid) / self._half if self._affine else value
            lim = 1.0 - torch.finfo(y.dtype).resolution
            x = y.clamp(-lim, lim).atanh()
        z = (x - self.loc) / self.scale
        # -log(scale) - z^2/2 - log(sqrt(2 pi)): the 1/2 as an alpha, as in _half_log1m_tanh_sq
        log_normal = (-self.scale.log()).sub(z.square(), alpha=0.5) - _LOG_SQRT_2PI
        log_prob = log_normal.sub(_half_log1m_tanh_sq(x), alpha=2.0)  # - log(1 - tanh(x)^2)
        if self._affine:
            log_prob = log_prob - self._log_half
        return _sum_last(log_prob, self._event_dims)

    def rsample_and_log_prob(self, sample_shape=torch.Size()) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparametrised action and the log_prob of its own pre-tanh draw (torchrl 0.14)."""
        action = self.rsample(sample_shape)
        return action, self.log_prob(action)

    def sample_and_log_prob(self, sample_shape=torch.Size()) -> tuple[torch.Tensor, torch.Tensor]:
        """A detached action and its log_prob, which keeps score-function gradients."""
        action = self.sample(sample_shape)
        x = self._cache[1]
        self._cache = (action, x)
        return action, self.log_prob(action)

    @property
    def support(self):
        return constraints.interval(self.low, self.high)

    @property
    def deterministic_sample(self) -> torch.Tensor:
        """The squashed location ``squash(loc)``, torchrl's deterministic action."""
        return self._squash(self.loc)

    @property
    def mode(self) -> torch.Tensor:
        """The argmax of the action density, by Newton's method (``tanh_normal_mode``)."""
        return self._squash(tanh_normal_mode(self.loc, self.scale))

    @property
    def mean(self) -> torch.Tensor:
        """E[action] (closed-form erf part + Gauss-Hermite quadrature, see tanh_normal_mean)."""
        mean = tanh_normal_mean(self.loc, self.scale)
        return self._mid + self._half * mean if self._affine else mean

    def entropy(self) -> torch.Tensor:
        """H[N(loc, scale)] + E[log(1 - tanh(X)^2)] (+ log half-range), E by quadrature."""
        entropy = (0.5 + _LOG_SQRT_2PI + self.scale.log()
                   + tanh_normal_log_jacobian(self.loc, self.scale))
        if self._affine:
            entropy = entropy + self._log_half
        return _sum_last(entropy, self._event_dims)

    def get_mode(self) -> torch.Tensor:
        """torchrl's name for the mode estimate (torchrl runs Adam; here it is ``mode``)."""
        return self.mode


class Delta(D.Distribution):
    """A point mass at ``param``: samples are ``param``; log_prob is +inf there, -inf elsewhere.

    Built in chapter *Distributions*.

    Args:
        param (Tensor): the point.
        atol (float): absolute tolerance of "is the value equal to param". Default 1e-6.
        rtol (float): relative tolerance. Default 1e-6.
        batch_shape (torch.Size, optional): default ``param.shape[:-1]``.
        event_shape (torch.Size, optional): default ``param.shape[-1:]``.

    Examples:
        >>> dist = Delta(torch.tensor([[0.5, -1.0]]))
        >>> dist.sample((3,)).shape, dist.log_prob(torch.tensor([[0.5, -1.0]]))
        (torch.Size([3, 1, 2]), tensor([inf]))
    """

    arg_constraints: dict = {}
    has_rsample = True

    def __init__(self, param: torch.Tensor, atol: float = 1e-6, rtol: float = 1e-6,
                 batch_shape: torch.Size | Sequence[int] | None = None,
                 event_shape: torch.Size | Sequence[int] | None = None):
        self.update(param)
        self.atol, self.rtol = atol, rtol
        batch_shape, event_shape = torch.Size(batch_shape or ()), torch.Size(event_shape or ())
        if not batch_shape and not event_shape:
            batch_shape, event_shape = param.shape[:-1], param.shape[-1:]
        super().__init__(batch_shape, event_shape, validate_args=False)

    def update(self, param: torch.Tensor) -> None:
        """Move the point mass to ``param``."""
        self.param = param

    def expand(self, batch_shape, _instance=None) -> Delta:
        if self.batch_shape == torch.Size(batch_shape):
            return self
        return type(self)(self.param.expand(*batch_shape, *self.event_shape), self.atol, self.rtol,
                          batch_shape, self.event_shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        param = self.param.expand_as(value)
        is_equal = (value - param).abs() < self.atol + self.rtol * param.abs()
        if self.event_shape:
            is_equal = is_equal.flatten(value.ndim - len(self.event_shape)).all(-1)
        inf = torch.full_like(is_equal, float("inf"), dtype=value.dtype)
        return torch.where(is_equal, inf, -inf)

    def rsample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> torch.Tensor:
        return self.param.expand(*sample_shape, *self.param.shape)

    def sample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> torch.Tensor:
        return self.rsample(sample_shape).detach()

    @property
    def mean(self) -> torch.Tensor:
        return self.param

    @property
    def mode(self) -> torch.Tensor:
        return self.param

    @property
    def deterministic_sample(self) -> torch.Tensor:
        return self.param


class TanhDelta(Delta):
    """A point mass at ``(high + low)/2 + (high - low)/2 * tanh(param)``: a bounded action.

    Built in chapter *Distributions*. torchrl shifts ``param`` by the bounds' midpoint
    *before* the tanh (so ``param = 0`` lands near ``high`` for ``[0, 10]``); rlmods maps
    ``param = 0`` to the midpoint, for any bounds.

    Args:
        param (Tensor): the point before the tanh.
        low (Tensor or float): lower bound. Default -1.0.
        high (Tensor or float): upper bound. Default 1.0.
        event_dims (int): trailing dims of one action. Default 1.
        atol (float): absolute tolerance of log_prob's equality test. Default 1e-6.
        rtol (float): relative tolerance. Default 1e-6.
        safe (bool): clamp ``tanh`` to ``1 - resolution``. Default True.

    Examples:
        >>> TanhDelta(torch.zeros(2), low=0.0, high=10.0).mode
        tensor([5., 5.])
    """

    def __init__(self, param: torch.Tensor, low: torch.Tensor | float = -1.0,
                 high: torch.Tensor | float = 1.0, event_dims: int = 1, atol: float = 1e-6,
                 rtol: float = 1e-6, safe: bool = True):
        _check_bounds("TanhDelta", low, high)
        self.low, self.high = _as_tensor(low, param), _as_tensor(high, param)
        self.safe = safe
        split = param.ndim - event_dims
        super().__init__(param, atol, rtol, param.shape[:split], param.shape[split:])

    def update(self, param: torch.Tensor) -> None:
        y = param.tanh()
        if self.safe:
            lim = 1.0 - torch.finfo(y.dtype).resolution
            y = y + (y.clamp(-lim, lim) - y).detach()
        self.param = (self.high + self.low) / 2 + (self.high - self.low) / 2 * y

    def expand(self, batch_shape, _instance=None) -> Delta:
        point = Delta(self.param, self.atol, self.rtol, self.batch_shape, self.event_shape)
        return point.expand(batch_shape)

    @property
    def mean(self) -> torch.Tensor:
        """The point itself, as a point mass's mean is its location (torchrl raises)."""
        return self.param


class IndependentNormal(D.Independent):
    """A diagonal Normal; the last ``event_dim`` dims form one event (optional ``tanh_loc``).

    Built in chapter *Distributions*. With ``tanh_loc=True`` the location is
    ``upscale * tanh(loc / upscale)`` from construction on (torchrl applies it only in
    ``update``, so a freshly built distribution ignores the flag).

    Args:
        loc (Tensor): mean.
        scale (Tensor, float or callable): standard deviation, or a callable of ``loc``.
        upscale (float): ``a`` in ``a * tanh(loc / a)``. Default 5.0.
        tanh_loc (bool): bound the location. Default False.
        event_dim (int): trailing dims of one event. Default 1.
        **kwargs: passed to ``torch.distributions.Normal``.

    Examples:
        >>> dist = IndependentNormal(torch.zeros(4, 2), 1.0)
        >>> dist.batch_shape, dist.event_shape, dist.log_prob(torch.zeros(4, 2)).shape
        (torch.Size([4]), torch.Size([2]), torch.Size([4]))
    """

    num_params: int = 2

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor | float | Callable,
                 upscale: float = 5.0, tanh_loc: bool = False, event_dim: int = 1, **kwargs):
        self.tanh_loc, self.upscale = tanh_loc, upscale
        self._event_dim, self._kwargs = event_dim, kwargs
        self.update(loc, scale)

    def update(self, loc: torch.Tensor, scale: torch.Tensor | float | Callable) -> None:
        """Rebuild around a new ``loc``/``scale``."""
        if self.tanh_loc:
            loc = self.upscale * (loc / self.upscale).tanh()
        normal = D.Normal(loc, _as_scale(scale, loc), **{"validate_args": False, **self._kwargs})
        super().__init__(normal, self._event_dim, validate_args=False)

    @property
    def mode(self) -> torch.Tensor:
        return self.base_dist.mean

    @property
    def deterministic_sample(self) -> torch.Tensor:
        return self.base_dist.mean


class NormalParamWrapper(nn.Module):
    """Deprecated: ``operator`` followed by ``tensordict.nn.NormalParamExtractor``.

    Runs ``operator(*inputs)``, splits its (first) output in two along the last dim and
    returns ``(loc, scale, *other_outputs)`` with ``scale = mapping(raw).clamp_min(scale_lb)``.
    torchrl 0.14 raises on construction; rlmods keeps old code running and warns once.
    Built in chapter *Distributions*.

    Args:
        operator (nn.Module): the network, with ``2 * d`` outputs.
        scale_mapping (str): NormalParamExtractor's mapping. Default "biased_softplus_1.0".
        scale_lb (float): lower bound of the scale. Default 1e-4.

    Examples:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     module = NormalParamWrapper(nn.Linear(3, 4))
        >>> loc, scale = module(torch.zeros(5, 3))
        >>> loc.shape, scale.shape, bool((scale > 0).all())
        (torch.Size([5, 2]), torch.Size([5, 2]), True)
    """

    def __init__(self, operator: nn.Module, scale_mapping: str = "biased_softplus_1.0",
                 scale_lb: Number = 1e-4) -> None:
        warnings.warn("NormalParamWrapper is deprecated: use nn.Sequential(operator, "
                      "tensordict.nn.NormalParamExtractor(scale_mapping, scale_lb)) instead.",
                      DeprecationWarning, stacklevel=2)
        super().__init__()
        self.operator = operator
        self.normal_param_extractor = NormalParamExtractor(scale_mapping, scale_lb)

    def forward(self, *inputs: torch.Tensor, **kwargs) -> tuple[torch.Tensor, ...]:
        output = self.operator(*inputs, **kwargs)
        others = ()
        if not isinstance(output, torch.Tensor):
            output, *others = output
        return (*self.normal_param_extractor(output), *others)


def _log_ndtr_diff(alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """log(Phi(beta) - Phi(alpha)) for alpha < beta, accurate deep in either tail.

    Both are mapped to the lower tail first (Phi(b) - Phi(a) = Phi(-a) - Phi(-b)), where
    log_ndtr keeps its relative precision; then log(e^u - e^v) = u + log(1 - e^(v - u)).
    """
    upper = alpha + beta > 0
    lo, hi = torch.where(upper, -beta, alpha), torch.where(upper, -alpha, beta)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return log_hi + torch.log(-torch.expm1(log_lo - log_hi))


def _times_log_pdf(x: torch.Tensor, log_z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """phi(x) / Z and x * phi(x) / Z in log space, both 0 at x = +-inf."""
    ratio = torch.exp(-0.5 * x * x - _LOG_SQRT_2PI - log_z)
    return ratio, torch.where(x.isinf(), torch.zeros_like(x), x * ratio)


class TruncatedNormal(D.Distribution):
    """A Normal(loc, scale) restricted to ``[low, high]`` and renormalised (event: last dim).

    With alpha = (low - loc)/scale, beta = (high - loc)/scale and Z = Phi(beta) - Phi(alpha):
    log_prob = log phi((x - loc)/scale) - log scale - log Z inside the bounds and -inf outside,
    mean = loc + scale (phi(alpha) - phi(beta)) / Z and entropy =
    log(sqrt(2 pi e) scale Z) + (alpha phi(alpha) - beta phi(beta)) / (2 Z). Z and the ratios
    are computed in log space, so they stay right when a bound lies deep in a tail
    (torchrl clamps Z to 1e-6 and gets the mean, entropy and samples wrong there).
    Built in chapter *Distributions*.

    Args:
        loc (Tensor): location of the untruncated Normal.
        scale (Tensor, float or callable): its standard deviation (clamped to >= 1e-6).
        upscale (Tensor or float): ``a`` in ``loc = a * tanh(loc / a)`` when ``tanh_loc``.
            Default 5.0.
        low (Tensor or float): lower bound. Default -1.0.
        high (Tensor or float): upper bound. Default 1.0.
        tanh_loc (bool): squash ``loc`` first. Default False.

    Examples:
        >>> dist = TruncatedNormal(torch.zeros(2, 3), torch.ones(2, 3), low=0.0, high=1.0)
        >>> dist.batch_shape, dist.event_shape, dist.mean[0].round(decimals=4)
        (torch.Size([2]), torch.Size([3]), tensor([0.4599, 0.4599, 0.4599]))
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.greater_than(1e-6)}
    has_rsample = True
    num_params: int = 2

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor | float | Callable,
                 upscale: torch.Tensor | float = 5.0, low: torch.Tensor | float = -1.0,
                 high: torch.Tensor | float = 1.0, tanh_loc: bool = False):
        _check_bounds("TruncatedNormal", low, high)
        self.low, self.high = _as_tensor(low, loc), _as_tensor(high, loc)
        self.upscale, self.tanh_loc = upscale, tanh_loc
        self.update(loc, scale)

    def update(self, loc: torch.Tensor, scale: torch.Tensor | float | Callable) -> None:
        """Set new ``loc``/``scale`` and recompute the normaliser."""
        if self.tanh_loc:
            loc = (loc / self.upscale).tanh() * self.upscale
        scale = _as_scale(scale, loc).clamp_min(1e-6)
        self.loc, self.scale, low, high = torch.broadcast_tensors(loc, scale, self.low, self.high)
        self._alpha, self._beta = (low - self.loc) / self.scale, (high - self.loc) / self.scale
        self._log_z = _log_ndtr_diff(self._alpha, self._beta)
        D.Distribution.__init__(self, self.loc.shape[:-1], self.loc.shape[-1:], validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        z = (value - self.loc) / self.scale
        log_prob = -0.5 * z * z - _LOG_SQRT_2PI - self.scale.log() - self._log_z
        inside = (value >= self.low) & (value <= self.high)
        return torch.where(inside, log_prob, -torch.inf).sum(-1)

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        """P(X <= value), elementwise."""
        z = ((value - self.loc) / self.scale).clamp(self._alpha, self._beta)
        return torch.exp(_log_ndtr_diff(self._alpha, z) - self._log_z).nan_to_num(0.0)

    def icdf(self, value: torch.Tensor) -> torch.Tensor:
        """The quantile function, elementwise, by the lower-tail inverse of Phi."""
        upper = self._alpha + self._beta > 0  # work in the lower tail: x -> -x
        lo = torch.where(upper, -self._beta, self._alpha)
        u = torch.where(upper, 1 - value, value)
        z = torch.special.ndtri(torch.special.ndtr(lo) + u * self._log_z.exp())
        z = torch.where(upper, -z, z).clamp(self._alpha, self._beta)
        return self.loc + self.scale * z

    def rsample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        return self.icdf(torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device))

    @property
    def device(self) -> torch.device:
        """The device of the parameters (torchrl's attribute)."""
        return self.loc.device

    @property
    def mean(self) -> torch.Tensor:
        ratio_a, _ = _times_log_pdf(self._alpha, self._log_z)
        ratio_b, _ = _times_log_pdf(self._beta, self._log_z)
        return (self.loc + self.scale * (ratio_a - ratio_b)).clamp(self.low, self.high)

    @property
    def variance(self) -> torch.Tensor:
        ratio_a, times_a = _times_log_pdf(self._alpha, self._log_z)
        ratio_b, times_b = _times_log_pdf(self._beta, self._log_z)
        return self.scale ** 2 * (1 + times_a - times_b - (ratio_a - ratio_b) ** 2)

    @property
    def mode(self) -> torch.Tensor:
        return torch.maximum(torch.minimum(self.loc, self.high), self.low)

    @property
    def deterministic_sample(self) -> torch.Tensor:
        return self.mean

    @property
    def support(self):
        return constraints.independent(constraints.interval(self.low, self.high), 1)

    def entropy(self) -> torch.Tensor:
        _, times_a = _times_log_pdf(self._alpha, self._log_z)
        _, times_b = _times_log_pdf(self._beta, self._log_z)
        entropy = 0.5 + _LOG_SQRT_2PI + self.scale.log() + self._log_z + 0.5 * (times_a - times_b)
        return entropy.sum(-1)


class ReparamGradientStrategy(Enum):
    """How ``rsample`` of a one-hot distribution carries gradients (torchrl's enum, same names)."""

    PassThrough = 1
    RelaxedOneHot = 2


def _grad_method(owner: str, grad_method) -> ReparamGradientStrategy:
    """Our enum from ours, torchrl's (same member names) or a member name string."""
    name = getattr(grad_method, "name", grad_method)
    if name not in ReparamGradientStrategy.__members__:
        names = list(ReparamGradientStrategy.__members__)
        raise ValueError(f"{owner}: grad_method must be one of {names}, got {grad_method!r}.")
    return ReparamGradientStrategy[name]


def _one_hot_rsample(sample: torch.Tensor, logits: torch.Tensor, grad_method) -> torch.Tensor:
    """A one-hot ``sample`` (*S, *B, n) whose gradient flows to ``logits`` (*B, n).

    PassThrough: value of the sample, gradient of the softmax probabilities.
    RelaxedOneHot: a Gumbel-softmax draw (temperature 1), hardened to its argmax, with
    the relaxed draw's gradient (straight-through).
    """
    if grad_method is ReparamGradientStrategy.PassThrough:
        probs = logits.softmax(-1)
        return sample + probs - probs.detach()
    temperature = torch.ones((), dtype=logits.dtype, device=logits.device)
    relaxed = D.RelaxedOneHotCategorical(temperature, logits=logits, validate_args=False)
    soft = relaxed.rsample(sample.shape[:-logits.ndim])
    hard = nn.functional.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
    return hard + soft - soft.detach()


class OneHotCategorical(D.Categorical):
    """A categorical distribution on one-hot vectors, with reparametrised samples.

    Samples, ``mode`` and ``log_prob``'s input have shape ``(*batch, n)``. Built in chapter
    *Distributions*. ``mode`` is the one-hot of the first argmax: torchrl returns a
    multi-hot vector when logits tie.

    Args:
        logits (Tensor, optional): unnormalised log-probabilities ``(*batch, n)``.
        probs (Tensor, optional): probabilities, exclusive with ``logits``.
        grad_method (ReparamGradientStrategy): ``rsample``'s gradient: PassThrough (default)
            or RelaxedOneHot (straight-through Gumbel-softmax).
        **kwargs: passed to ``torch.distributions.Categorical``.

    Examples:
        >>> dist = OneHotCategorical(logits=torch.zeros(2, 3))
        >>> dist.mode, dist.log_prob(dist.mode).exp()
        (tensor([[1, 0, 0],
                [1, 0, 0]]), tensor([0.3333, 0.3333]))
    """

    num_params: int = 1

    def __init__(self, logits: torch.Tensor | None = None, probs: torch.Tensor | None = None,
                 grad_method: ReparamGradientStrategy = ReparamGradientStrategy.PassThrough,
                 **kwargs) -> None:
        if logits is not None and logits.shape[-1] == 1:  # torchrl squeezes a trailing 1
            logits = logits[..., 0]
        if probs is not None and probs.shape[-1] == 1:
            probs = probs[..., 0]
        self.grad_method = _grad_method(type(self).__name__, grad_method)
        super().__init__(probs=probs, logits=logits, **{"validate_args": False, **kwargs})
        self.num_samples = self._num_events

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return super().log_prob(value.argmax(-1))

    def sample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> torch.Tensor:
        return nn.functional.one_hot(super().sample(torch.Size(sample_shape)), self.num_samples)

    def rsample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> torch.Tensor:
        sample = self.sample(sample_shape).to(self.logits.dtype)
        return _one_hot_rsample(sample, self.logits, self.grad_method)

    @property
    def mode(self) -> torch.Tensor:
        return nn.functional.one_hot(self.logits.argmax(-1), self.num_samples)

    @property
    def deterministic_sample(self) -> torch.Tensor:
        return self.mode


def _check_masked_args(owner: str, logits, probs, mask, indices) -> None:
    """Exactly one of logits/probs and one of mask/indices, with a bool mask or integer indices."""
    if (mask is None) == (indices is None):
        raise ValueError(f"{owner}: exactly one of mask or indices must be given, "
                         f"got {'both' if mask is not None else 'neither'}.")
    if (logits is None) == (probs is None):
        raise ValueError(f"{owner}: exactly one of logits or probs must be given, "
                         f"got {'both' if logits is not None else 'neither'}.")
    if mask is not None and mask.dtype != torch.bool:
        raise TypeError(f"{owner}: mask must be a bool tensor, got dtype {mask.dtype}.")
    if indices is not None and (indices.dtype.is_floating_point or indices.dtype == torch.bool):
        raise TypeError(f"{owner}: indices must be an integer tensor, "
                        f"got dtype {indices.dtype}.")


class MaskedCategorical(D.Categorical):
    """A categorical over the allowed actions only: a dense ``mask`` or sparse ``indices``.

    Dense: ``mask`` (bool, like ``logits``) marks the allowed actions. Sparse: ``indices``
    ``(*batch, k)`` lists them, padded with ``padding_value``. Disallowed actions get
    log-probability ``neg_inf`` and are never sampled; ``mode`` is the best *allowed*
    action whatever ``neg_inf`` is, and ``entropy`` sums over allowed actions only.
    Built in chapter *Distributions*.

    Args:
        logits (Tensor, optional): unnormalised log-probabilities ``(*batch, n)``.
        probs (Tensor, optional): probabilities; masked ones are zeroed and the rest renormalised.

    Keyword Args:
        mask (Tensor, optional): bool ``(*batch, n)``, True where allowed. Exclusive with
            ``indices``.
        indices (Tensor, optional): int ``(*batch, k)``, the allowed actions (exclusive with
            ``mask``).
        neg_inf (float): log_prob of a disallowed action. Default ``-inf``.
        padding_value (int, optional): the filler of ``indices``. Default None.
        use_cross_entropy (bool): accepted for torchrl compatibility; the numbers do not depend
            on it.
        padding_side (str): accepted for torchrl compatibility. Default "left".

    Examples:
        >>> mask = torch.tensor([True, False, True, True])
        >>> dist = MaskedCategorical(logits=torch.zeros(4), mask=mask)
        >>> dist.mode, dist.log_prob(torch.arange(4)).exp()
        (tensor(0), tensor([0.3333, 0.0000, 0.3333, 0.3333]))
    """

    def __init__(self, logits: torch.Tensor | None = None, probs: torch.Tensor | None = None, *,
                 mask: torch.Tensor | None = None, indices: torch.Tensor | None = None,
                 neg_inf: float = float("-inf"), padding_value: int | None = None,
                 use_cross_entropy: bool = True, padding_side: str = "left") -> None:
        _check_masked_args(type(self).__name__, logits, probs, mask, indices)
        self._sparse_mask, self._mask = indices is not None, mask if mask is not None else indices
        self.neg_inf, self._padding_value, self._padding_side = neg_inf, padding_value, padding_side
        self.use_cross_entropy = use_cross_entropy
        params = logits if logits is not None else probs.log()
        self.num_samples = params.shape[-1]
        if self._sparse_mask:  # allowed: (*batch, k) positions of real (not padding) indices
            allowed = (indices != padding_value if padding_value is not None
                       else torch.ones_like(indices, dtype=torch.bool))
            self._indices = indices.masked_fill(~allowed, 0)
            params = params.gather(-1, self._indices)
        else:
            allowed = mask
        self._allowed = allowed.expand_as(params)
        super().__init__(logits=params.masked_fill(~self._allowed, neg_inf), validate_args=False)

    @property
    def mask(self) -> torch.Tensor:
        """The dense mask (a ValueError for sparse ``indices``, as in torchrl)."""
        if self._sparse_mask:
            raise ValueError(f"{type(self).__name__}: mask is undefined for sparse indices; "
                             "read the indices instead.")
        return self._mask

    @property
    def padding_value(self) -> int:
        return self._padding_value if self._padding_value is not None else 0

    @property
    def padding_side(self) -> str:
        return self._padding_side

    def _position(self, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(position in the logits, allowed?) of action ids ``value`` (*S, *B)."""
        if not self._sparse_mask:
            value = value.long().expand(torch.broadcast_shapes(value.shape, self.batch_shape))
            allowed = self._allowed.expand(*value.shape, self.num_samples)
            inside = (value >= 0) & (value < self.num_samples)
            value = value.clamp(0, self.num_samples - 1)
            return value, inside & allowed.gather(-1, value.unsqueeze(-1)).squeeze(-1)
        match = (self._mask == value.unsqueeze(-1)) & self._allowed  # (*S, *B, k)
        return match.int().argmax(-1), match.any(-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        position, allowed = self._position(value)
        log_prob = D.Categorical.log_prob(self, position)
        return torch.where(allowed, log_prob, torch.full_like(log_prob, self.neg_inf))

    def sample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> torch.Tensor:
        position = D.Categorical.sample(self, torch.Size(sample_shape))  # (*S, *B)
        return self._to_action(position)

    def _to_action(self, position: torch.Tensor) -> torch.Tensor:
        if not self._sparse_mask:
            return position
        indices = self._indices.expand(*position.shape, self._indices.shape[-1])
        return indices.gather(-1, position.unsqueeze(-1)).squeeze(-1)

    @property
    def mode(self) -> torch.Tensor:
        """The most likely allowed action (disallowed ones are excluded, not just down-weighted)."""
        return self._to_action(self.logits.masked_fill(~self._allowed, -torch.inf).argmax(-1))

    @property
    def deterministic_sample(self) -> torch.Tensor:
        return self.mode

    def entropy(self) -> torch.Tensor:
        log_p = self.logits
        return -torch.where(self._allowed, log_p.exp() * log_p, torch.zeros_like(log_p)).sum(-1)


class MaskedOneHotCategorical(MaskedCategorical):
    """:class:`MaskedCategorical` in one-hot form: samples and values are ``(*batch, n)``.

    Built in chapter *Distributions*. ``rsample`` follows ``grad_method`` as in
    :class:`OneHotCategorical`; ``mode`` is always a single allowed one-hot (torchrl returns
    a multi-hot vector when logits tie).

    Args:
        logits, probs, mask, indices, neg_inf, padding_value: as in :class:`MaskedCategorical`.
        grad_method (ReparamGradientStrategy): PassThrough (default) or RelaxedOneHot.

    Examples:
        >>> mask = torch.tensor([False, True, True, True])
        >>> dist = MaskedOneHotCategorical(logits=torch.zeros(4), mask=mask)
        >>> dist.mode, dist.sample((5,)).sum(0)[0].item()
        (tensor([0, 1, 0, 0]), 0)
    """

    def __init__(self, logits: torch.Tensor | None = None, probs: torch.Tensor | None = None,
                 mask: torch.Tensor | None = None, indices: torch.Tensor | None = None,
                 neg_inf: float = float("-inf"), padding_value: int | None = None,
                 grad_method: ReparamGradientStrategy = ReparamGradientStrategy.PassThrough,
                 ) -> None:
        self.grad_method = _grad_method(type(self).__name__, grad_method)
        super().__init__(logits=logits, probs=probs, mask=mask, indices=indices,
                         neg_inf=neg_inf, padding_value=padding_value)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return super().log_prob(value.argmax(-1))

    def sample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> torch.Tensor:
        return nn.functional.one_hot(super().sample(sample_shape), self.num_samples)

    def rsample(self, sample_shape: torch.Size | Sequence[int] = torch.Size()) -> torch.Tensor:
        logits = self.logits
        if self._sparse_mask:  # back to the full action space, -inf where not allowed
            full = logits.new_full((*logits.shape[:-1], self.num_samples), -torch.inf)
            allowed = logits.masked_fill(~self._allowed, -torch.inf)
            logits = full.scatter_reduce(-1, self._indices, allowed, "amax")
        sample = self.sample(sample_shape).to(logits.dtype)
        return _one_hot_rsample(sample, logits, self.grad_method)

    @property
    def mode(self) -> torch.Tensor:
        return nn.functional.one_hot(super().mode, self.num_samples)


def ordinal_logits(scores: torch.Tensor) -> torch.Tensor:
    """Ordinal log-probabilities from scores ``(*batch, n)`` (Tang & Agrawal 2020, eq. 4).

    logit_k = sum_{i <= k} log sigmoid(s_i) + sum_{i > k} log sigmoid(-s_i): atom k means
    "at least k steps up, and no further", which makes neighbouring atoms share mass.
    """
    log_up, log_down = nn.functional.logsigmoid(scores), nn.functional.logsigmoid(-scores)
    down_after = log_down.flip(-1).cumsum(-1).flip(-1) - log_down  # sum_{i > k}
    return log_up.cumsum(-1) + down_after


class Ordinal(D.Categorical):
    """A categorical distribution over ordered atoms, parametrised by ordinal ``scores``.

    Built in chapter *Distributions*; the logits are ``ordinal_logits`` of the scores.

    Args:
        scores (Tensor): ``(*batch, n)``, typically a network's output.

    Examples:
        >>> Ordinal(torch.tensor([5.0, 5.0, -5.0, -5.0])).mode
        tensor(1)
    """

    def __init__(self, scores: torch.Tensor):
        super().__init__(logits=ordinal_logits(scores), validate_args=False)


class OneHotOrdinal(OneHotCategorical):
    """:class:`Ordinal` in one-hot form. Built in chapter *Distributions*.

    Args:
        scores (Tensor): ``(*batch, n)``, typically a network's output.

    Examples:
        >>> OneHotOrdinal(torch.tensor([5.0, 5.0, -5.0, -5.0])).mode
        tensor([0, 1, 0, 0])
    """

    def __init__(self, scores: torch.Tensor):
        super().__init__(logits=ordinal_logits(scores))
