"""Probabilistic actors: a network that writes distribution parameters, then a distribution.

``SafeProbabilisticModule`` reads the parameters, builds the distribution and writes a value
chosen by the exploration type (RANDOM samples; DETERMINISTIC, MODE, MEAN use that
statistic), optionally its log-probability under ``"<out_key>_log_prob"``, projected into
the spec when ``safe=True``. ``ProbabilisticActor`` chains a parameter network and that module.

Built in chapter *Probabilistic actors*.
"""

from __future__ import annotations

from typing import Sequence

import torch
from tensordict import TensorDictBase
from tensordict.nn import (InteractionType, ProbabilisticTensorDictModule, ProbabilisticTensorDictSequential,
                           TensorDictModule, skip_existing)
from tensordict.nn.probabilistic import interaction_type
from tensordict.utils import NestedKey
from torch import distributions as D

from rlmods._checks import require_key
from rlmods.actors import ACTION, SafeModule, SafeSequential, _as_composite, call_td_module
from rlmods.distributions import (Delta, MaskedOneHotCategorical, OneHotCategorical, OneHotOrdinal)
from rlmods.specs import Binary, Categorical, Composite, MultiCategorical, MultiOneHot, OneHot, TensorSpec

# Which distributions write one-hot values, and which write integer indices.
ONE_HOT_DISTRIBUTIONS = (D.OneHotCategorical, OneHotCategorical, MaskedOneHotCategorical, OneHotOrdinal)
INDEX_DISTRIBUTIONS = (D.Categorical,)


def check_spec_matches_distribution(spec: TensorSpec | None, distribution_class, owner: str, key) -> None:
    """Raise a ValueError when a one-hot spec meets an index distribution, or the reverse."""
    if spec is None or not isinstance(distribution_class, type):
        return
    one_hot_spec = isinstance(spec, (OneHot, MultiOneHot))
    index_spec = isinstance(spec, (Categorical, MultiCategorical)) and not isinstance(spec, Binary)
    name = distribution_class.__name__
    if one_hot_spec and issubclass(distribution_class, INDEX_DISTRIBUTIONS) and not issubclass(
            distribution_class, ONE_HOT_DISTRIBUTIONS):
        raise ValueError(f"{owner}: the spec of {key!r} is {type(spec).__name__} (one-hot values), so "
                         f"distribution_class must write one-hot samples (OneHotCategorical, "
                         f"MaskedOneHotCategorical, OneHotOrdinal), got {name} (integer indices).")
    if index_spec and issubclass(distribution_class, ONE_HOT_DISTRIBUTIONS):
        raise ValueError(f"{owner}: the spec of {key!r} is {type(spec).__name__} (integer indices), so "
                         f"distribution_class must write indices (Categorical, MaskedCategorical, Ordinal), "
                         f"got {name} (one-hot samples).")
    if spec.domain == "continuous" and issubclass(distribution_class, INDEX_DISTRIBUTIONS + ONE_HOT_DISTRIBUTIONS):
        raise ValueError(f"{owner}: the spec of {key!r} is continuous ({type(spec).__name__}), so "
                         f"distribution_class must be continuous, got {name} (discrete).")


def _sample(dist: D.Distribution, mode: InteractionType, n_empirical_estimate: int) -> torch.Tensor:
    """The value the exploration type asks for: a draw, or the matching statistic."""
    if mode is InteractionType.RANDOM:
        return dist.rsample() if dist.has_rsample else dist.sample()
    if mode is InteractionType.DETERMINISTIC:
        value = getattr(dist, "deterministic_sample", None)
        return value if value is not None else dist.mean
    if mode is InteractionType.MODE:
        return dist.mode
    if mode is InteractionType.MEDIAN:
        return dist.median
    try:  # MEAN
        return dist.mean
    except NotImplementedError:
        draws = dist.rsample((n_empirical_estimate,)) if dist.has_rsample else dist.sample((n_empirical_estimate,))
        return draws.mean(0)


class SafeProbabilisticModule(ProbabilisticTensorDictModule):
    """A ``ProbabilisticTensorDictModule`` with an output spec, validated against the distribution.

    Reads the distribution parameters (``in_keys``), writes the sample (``out_keys``) and, with
    ``return_log_prob=True``, ``"<out_key>_log_prob"`` (tensordict 0.14's name; older guides say
    ``"sample_log_prob"``). The value written follows ``exploration_type()``, else
    ``default_interaction_type`` (``DETERMINISTIC``, as torchrl's docstring says).

    Built in chapter *Probabilistic actors*.

    Args:
        in_keys (NestedKey, list or dict): the distribution's parameters (``"loc"``, ``"scale"``...).
        out_keys (NestedKey or list, optional): where the sample goes.
        spec (TensorSpec, optional): the sample's domain.

    Keyword Args:
        safe (bool): project the sample into ``spec``. Defaults to ``False``.
        default_interaction_type (InteractionType): used when no exploration type is set.
        distribution_class (type): defaults to ``Delta``.
        distribution_kwargs (dict, optional): extra arguments of the distribution.
        return_log_prob (bool): also write the log-probability. Defaults to ``False``.
        log_prob_keys, log_prob_key, cache_dist, n_empirical_estimate, num_samples, generator:
            as in ``tensordict.nn.ProbabilisticTensorDictModule``.

    Examples:
        >>> from tensordict import TensorDict
        >>> from rlmods.specs import Bounded
        >>> module = SafeProbabilisticModule(in_keys=["loc", "scale"], out_keys=["action"],
        ...     distribution_class=torch.distributions.Normal, spec=Bounded(-1.0, 1.0, shape=()),
        ...     safe=True, default_interaction_type=InteractionType.RANDOM, return_log_prob=True)
        >>> data = module(TensorDict(loc=torch.zeros(10), scale=torch.full((10,), 10.0), batch_size=[10]))
        >>> bool(data["action"].abs().max() <= 1), data["action_log_prob"].shape
        (True, torch.Size([10]))
    """

    def __init__(self, in_keys, out_keys=None, spec: TensorSpec | None = None, *, safe: bool = False,
                 default_interaction_type: InteractionType = InteractionType.DETERMINISTIC,
                 distribution_class: type = Delta, distribution_kwargs: dict | None = None,
                 return_log_prob: bool = False, log_prob_keys: list[NestedKey] | None = None,
                 log_prob_key: NestedKey | None = None, cache_dist: bool = False,
                 n_empirical_estimate: int = 1000, num_samples: int | torch.Size | None = None,
                 generator: torch.Generator | int | NestedKey | None = None):
        super().__init__(in_keys=in_keys, out_keys=out_keys, default_interaction_type=default_interaction_type,
                         distribution_class=distribution_class, distribution_kwargs=distribution_kwargs,
                         return_log_prob=return_log_prob, cache_dist=cache_dist,
                         n_empirical_estimate=n_empirical_estimate, log_prob_keys=log_prob_keys,
                         log_prob_key=log_prob_key, num_samples=num_samples, generator=generator)
        owner = type(self).__name__
        spec = _as_composite(spec, list(self._out_keys), owner)
        for key in self._out_keys:
            check_spec_matches_distribution(spec[key], self.distribution_class, owner, key)
        if safe and all(spec.get(key) is None for key in self._out_keys):
            raise ValueError(f"{owner}: safe=True needs a spec for at least one out_key, got no spec "
                             f"for out_keys={self._out_keys}.")
        self.safe = safe
        self.spec = spec
        # tensordict re-derives log_prob_key on every access; it cannot change after init
        self._short_log_prob_key = self.log_prob_key if len(self._out_keys) == 1 else None

    spec = SafeModule.spec
    random = SafeModule.random
    random_sample = SafeModule.random_sample

    def forward(self, *args, **kwargs) -> TensorDictBase:
        """Build the distribution, pick the value, project (``safe=True``), write it and its log_prob.

        The common call on one tensor-valued sample takes this short path; num_samples,
        generators, composite distributions, ``tensordict_out`` and ``set_skip_existing`` go
        through ``ProbabilisticTensorDictModule.forward`` (then projected when ``safe=True``).
        """
        if (len(args) != 1 or kwargs or not isinstance(args[0], TensorDictBase) or len(self._out_keys) != 1
                or self.num_samples is not None or self._generator is not None or self._generator_key is not None
                or skip_existing()):
            out = super().forward(*args, **kwargs)
            return self._project(out) if self.safe and isinstance(out, TensorDictBase) else out
        tensordict = args[0]
        params = {}
        for dist_key, key in zip(self.dist_keys, self.in_keys):
            value = tensordict.get(key, None)
            params[dist_key if isinstance(dist_key, str) else dist_key[-1]] = (
                value if value is not None else require_key(tensordict, key, type(self).__name__))
        dist = self.distribution_class(**params, **self.distribution_kwargs)
        mode = interaction_type() or self.default_interaction_type
        key = self._out_keys[0]
        if self.return_log_prob and mode is InteractionType.RANDOM and hasattr(dist, "rsample_and_log_prob"):
            value, log_prob = dist.rsample_and_log_prob() if dist.has_rsample else dist.sample_and_log_prob()
        else:
            value = _sample(dist, mode, self.n_empirical_estimate)
            log_prob = dist.log_prob(value) if self.return_log_prob else None
        if self.safe and key in self._projections:
            value = self._projections[key].project(value)
        tensordict.set(key, value)
        if log_prob is not None:
            tensordict.set(self._short_log_prob_key, log_prob)
        return tensordict

    def _project(self, tensordict: TensorDictBase) -> TensorDictBase:
        for key, spec in self._projections.items():
            value = tensordict.get(key, None)
            if value is not None:
                tensordict.set(key, spec.project(value))
        return tensordict


def _run(module, tensordict: TensorDictBase) -> TensorDictBase:
    """``module(tensordict)``; a plain ``TensorDictModule`` runs through rlmods' short path."""
    if (type(module) is TensorDictModule and not (module._forward_hooks or module._forward_pre_hooks)
            and module._kwargs is None and module.method is None and not module._get_kwargs and module.inplace is True):
        return call_td_module(module, tensordict, {})
    return module(tensordict)


class SafeProbabilisticTensorDictSequential(ProbabilisticTensorDictSequential, SafeSequential):
    """A ``ProbabilisticTensorDictSequential`` with a spec: modules, then a probabilistic module.

    Reads what its first modules need; writes their outputs, the sample and its log_prob.

    Built in chapter *Probabilistic actors*.

    Args:
        *modules: TensorDict modules ending in a ``ProbabilisticTensorDictModule``.
        partial_tolerant (bool): run only the modules whose inputs are present.

    Examples:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import NormalParamExtractor
        >>> net = TensorDictModule(NormalParamExtractor(), in_keys=["x"], out_keys=["loc", "scale"])
        >>> head = SafeProbabilisticModule(in_keys=["loc", "scale"], out_keys=["action"],
        ...                                distribution_class=torch.distributions.Normal)
        >>> seq = SafeProbabilisticTensorDictSequential(net, head)
        >>> seq(TensorDict(x=torch.zeros(4)))["action"]
        tensor([0., 0.])
    """

    def __init__(self, *modules, partial_tolerant: bool = False) -> None:
        super().__init__(*modules, partial_tolerant=partial_tolerant)
        super(ProbabilisticTensorDictSequential, self).__init__(*modules, partial_tolerant=partial_tolerant)

    def forward(self, *args, **kwargs) -> TensorDictBase:
        """Run the modules in order; uncommon calls go through tensordict's forward."""
        if (len(args) != 1 or kwargs or not isinstance(args[0], TensorDictBase) or self.partial_tolerant
                or self.inplace not in (None, True) or self._select_before_return or not self._requires_sample
                or skip_existing()):
            return super().forward(*args, **kwargs)
        tensordict = args[0]
        for module in self.module:
            tensordict = _run(module, tensordict)
        return tensordict


class ProbabilisticActor(SafeProbabilisticTensorDictSequential):
    """A stochastic actor: a parameter network followed by a distribution; writes ``"action"``.

    Reads the network's in_keys; writes its outputs (e.g. ``"loc"``, ``"scale"``), ``"action"``
    and, with ``return_log_prob=True``, ``"action_log_prob"``.

    Built in chapter *Probabilistic actors*.

    Args:
        module (TensorDictModule): writes the distribution's parameters.
        in_keys (NestedKey, list or dict): the parameters the distribution reads.
        out_keys (list of NestedKey, optional): defaults to ``["action"]``.

    Keyword Args:
        spec (TensorSpec, optional): the action spec.
        **kwargs: ``SafeProbabilisticModule``'s keyword arguments (``distribution_class``,
            ``distribution_kwargs``, ``return_log_prob``, ``safe``, ``default_interaction_type``...).

    Examples:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import NormalParamExtractor
        >>> from rlmods.distributions import TanhNormal
        >>> net = TensorDictModule(torch.nn.Sequential(torch.nn.Linear(3, 4), NormalParamExtractor()),
        ...                        in_keys=["observation"], out_keys=["loc", "scale"])
        >>> actor = ProbabilisticActor(net, in_keys=["loc", "scale"], distribution_class=TanhNormal,
        ...                            distribution_kwargs={"low": -1.0, "high": 1.0}, return_log_prob=True)
        >>> data = actor(TensorDict(observation=torch.randn(5, 3), batch_size=[5]))
        >>> data["action"].shape, data["action_log_prob"].shape
        (torch.Size([5, 2]), torch.Size([5]))
    """

    def __init__(self, module: TensorDictModule, in_keys: NestedKey | Sequence[NestedKey],
                 out_keys: Sequence[NestedKey] | None = None, *, spec: TensorSpec | None = None, **kwargs):
        out_keys = [ACTION] if out_keys is None else out_keys
        if len(out_keys) == 1 and isinstance(spec, TensorSpec) and not isinstance(spec, Composite):
            spec = Composite({out_keys[0]: spec})
        super().__init__(module, SafeProbabilisticModule(in_keys=in_keys, out_keys=out_keys, spec=spec, **kwargs))
