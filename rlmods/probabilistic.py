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
from tensordict.nn import (CompositeDistribution, InteractionType, ProbabilisticTensorDictModule,
                           ProbabilisticTensorDictSequential, TensorDictModule)
from tensordict.nn.probabilistic import interaction_type
from tensordict.utils import NestedKey
from torch import distributions as D

from rlmods._checks import InvalidValueError, key_str
from rlmods._keys import ACTION
from rlmods._spec_args import as_composite
from rlmods.actors import DirectCall, SafeModule, SafeSequential, read_entry, write_entry
from rlmods.distributions import Delta, MaskedOneHotCategorical, OneHotCategorical, OneHotOrdinal
from rlmods.specs import (Binary, Categorical, Composite, MultiCategorical, MultiOneHot, OneHot,
                          TensorSpec)

# Which distributions write one-hot values, and which write integer indices.
ONE_HOT_DISTRIBUTIONS = (D.OneHotCategorical, OneHotCategorical, MaskedOneHotCategorical,
                         OneHotOrdinal)
INDEX_DISTRIBUTIONS = (D.Categorical,)


def check_spec_matches_distribution(spec: TensorSpec | None, distribution_class, owner: str,
                                    key) -> None:
    """Raise a ValueError when a one-hot spec meets an index distribution, or the reverse."""
    if spec is None or not isinstance(distribution_class, type):
        return
    one_hot_spec = isinstance(spec, (OneHot, MultiOneHot))
    index_spec = isinstance(spec, (Categorical, MultiCategorical)) and not isinstance(spec, Binary)
    one_hot_dist = issubclass(distribution_class, ONE_HOT_DISTRIBUTIONS)
    index_dist = issubclass(distribution_class, INDEX_DISTRIBUTIONS) and not one_hot_dist
    what = f"{owner}: the spec of {key_str(key)} is"
    name, spec_name = distribution_class.__name__, type(spec).__name__
    if one_hot_spec and index_dist:
        raise ValueError(f"{what} {spec_name} (one-hot values), so distribution_class must write "
                         f"one-hot samples (OneHotCategorical, MaskedOneHotCategorical, "
                         f"OneHotOrdinal), got {name} (integer indices).")
    if index_spec and one_hot_dist:
        raise ValueError(f"{what} {spec_name} (integer indices), so distribution_class must write "
                         f"indices (Categorical, MaskedCategorical, Ordinal), got {name} "
                         f"(one-hot samples).")
    if spec.domain == "continuous" and (one_hot_dist or index_dist):
        raise ValueError(f"{what} continuous ({spec_name}), so distribution_class must be "
                         f"continuous, got {name} (discrete).")


def _deterministic(dist: D.Distribution) -> torch.Tensor:
    """``deterministic_sample``, else the mode of a discrete and the mean of a continuous dist.

    A discrete distribution's mean is not an action (``Categorical.mean`` is NaN): tensordict,
    and so torchrl, falls back on the mode for distributions with an enumerable support.
    """
    value = getattr(dist, "deterministic_sample", None)
    if value is not None:
        return value
    base = dist.base_dist if isinstance(dist, D.Independent) else dist
    return dist.mode if base.has_enumerate_support else dist.mean


def _sample(dist: D.Distribution, mode: InteractionType, n_empirical_estimate: int) -> torch.Tensor:
    """The value the exploration type asks for: a draw, or the matching statistic."""
    if mode is InteractionType.RANDOM:
        return dist.rsample() if dist.has_rsample else dist.sample()
    if mode is InteractionType.DETERMINISTIC:
        return _deterministic(dist)
    if mode is InteractionType.MODE:
        return dist.mode
    if mode is InteractionType.MEDIAN:
        return dist.median
    try:  # MEAN
        return dist.mean
    except NotImplementedError:
        shape = (n_empirical_estimate,)
        return (dist.rsample(shape) if dist.has_rsample else dist.sample(shape)).mean(0)


class SafeProbabilisticModule(DirectCall, ProbabilisticTensorDictModule):
    """A ``ProbabilisticTensorDictModule`` with an output spec checked against the distribution.

    Reads the distribution parameters (``in_keys``), writes the sample (``out_keys``) and, with
    ``return_log_prob=True``, ``"<out_key>_log_prob"`` (tensordict 0.14's name; older guides say
    ``"sample_log_prob"``). The value written follows ``exploration_type()``, else
    ``default_interaction_type`` (``DETERMINISTIC``, as torchrl's docstring says).

    Built in chapter *Probabilistic actors*.

    Args:
        in_keys (NestedKey, list or dict): the distribution's parameters (``"loc"``,
            ``"scale"``...).
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
        >>> params = TensorDict(loc=torch.zeros(10), scale=torch.full((10,), 10.0), batch_size=[10])
        >>> data = module(params)
        >>> bool(data["action"].abs().max() <= 1), data["action_log_prob"].shape
        (True, torch.Size([10]))
    """

    def __init__(self, in_keys, out_keys=None, spec: TensorSpec | None = None, *,
                 safe: bool = False,
                 default_interaction_type: InteractionType = InteractionType.DETERMINISTIC,
                 distribution_class: type = Delta, distribution_kwargs: dict | None = None,
                 return_log_prob: bool = False, log_prob_keys: list[NestedKey] | None = None,
                 log_prob_key: NestedKey | None = None, cache_dist: bool = False,
                 n_empirical_estimate: int = 1000, num_samples: int | torch.Size | None = None,
                 generator: torch.Generator | int | NestedKey | None = None):
        super().__init__(in_keys=in_keys, out_keys=out_keys,
                         default_interaction_type=default_interaction_type,
                         distribution_class=distribution_class,
                         distribution_kwargs=distribution_kwargs, return_log_prob=return_log_prob,
                         cache_dist=cache_dist, n_empirical_estimate=n_empirical_estimate,
                         log_prob_keys=log_prob_keys, log_prob_key=log_prob_key,
                         num_samples=num_samples, generator=generator)
        self._set_spec(spec, safe)
        # tensordict re-derives log_prob_key on every access; it cannot change after init
        self._short_log_prob_key = self.log_prob_key if len(self._out_keys) == 1 else None
        self._direct = self._direct_ok()

    def _set_spec(self, spec: TensorSpec | None, safe: bool) -> None:
        """Store ``spec`` as a Composite over the out_keys, checked against the distribution."""
        owner = type(self).__name__
        spec = as_composite(spec, list(self._out_keys), owner)  # a clash: InvalidValueError
        for key in self._out_keys:
            check_spec_matches_distribution(spec[key], self.distribution_class, owner, key)
        if safe and all(spec.get(key) is None for key in self._out_keys):
            raise InvalidValueError(f"{owner}: safe=True needs a spec for at least one out_key, "
                                    f"got no spec for out_keys={self._out_keys}.")
        self.safe = safe
        self.spec = spec

    spec = SafeModule.spec
    random = SafeModule.random
    random_sample = SafeModule.random_sample

    def _direct_ok(self) -> bool:
        """The plain call writes one tensor-valued sample, with no generator or sample shape."""
        return (len(self._out_keys) == 1 and self.num_samples is None
                and self._generator is None and self._generator_key is None)

    def _forward_td(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Build the distribution, pick the value, project it (``safe=True``), write it, log_prob.

        The plain call; tensors passed as keywords, num_samples, generators, composite
        distributions, ``tensordict_out`` and ``set_skip_existing`` go through
        ``ProbabilisticTensorDictModule.forward`` (whose output is then projected when
        ``safe=True``).
        """
        dist = self._build_dist(tensordict)
        mode = interaction_type() or self.default_interaction_type
        if (self.return_log_prob and mode is InteractionType.RANDOM
                and hasattr(dist, "rsample_and_log_prob")):
            pair = dist.rsample_and_log_prob() if dist.has_rsample else dist.sample_and_log_prob()
            value, log_prob = pair
        else:
            value = _sample(dist, mode, self.n_empirical_estimate)
            log_prob = dist.log_prob(value) if self.return_log_prob else None
        key = self._out_keys[0]
        if self.safe and key in self._projections:
            value = self._projections[key].project(value)
        write_entry(tensordict, key, value)
        if log_prob is not None:
            write_entry(tensordict, self._short_log_prob_key, log_prob)
        return tensordict

    def _build_dist(self, tensordict: TensorDictBase) -> D.Distribution:
        """``get_dist`` on the short path, with a one-line KeyError naming a missing parameter."""
        params = {}
        for dist_key, key in zip(self.dist_keys, self.in_keys):
            value = read_entry(tensordict, key, self)
            params[dist_key if isinstance(dist_key, str) else dist_key[-1]] = value
        return self.distribution_class(**params, **self.distribution_kwargs)

    def _fallback(self, *args, **kwargs):
        """tensordict's forward, projected into the spec when ``safe=True``.

        Called with tensors as keywords (``module(loc=..., scale=...)``), tensordict returns
        the out_keys' tensors; they are projected too (torchrl's safe hook fails there).
        """
        out = ProbabilisticTensorDictModule.forward(self, *args, **kwargs)
        if not self.safe:
            return out
        if isinstance(out, TensorDictBase):
            return self._project(out)
        keys = list(self.out_keys)  # the dispatch returns one tensor per out_key, in order
        values = [out] if isinstance(out, torch.Tensor) else list(out)
        values = [self._projections[k].project(v) if k in self._projections else v
                  for k, v in zip(keys, values)]
        return values[0] if isinstance(out, torch.Tensor) else tuple(values)

    def _project(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Project every out_key that has a spec (``safe=True``), in place."""
        for key, spec in self._projections.items():
            value = tensordict.get(key, None)
            if value is not None:
                tensordict.set(key, spec.project(value))
        return tensordict


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
        super(ProbabilisticTensorDictSequential, self).__init__(*modules,
                                                                partial_tolerant=partial_tolerant)

    forward = DirectCall.forward

    def _direct_ok(self) -> bool:
        return SafeSequential._direct_ok(self) and self._requires_sample

    def _fallback(self, *args, **kwargs):
        return ProbabilisticTensorDictSequential.forward(self, *args, **kwargs)


def _default_out_keys(distribution_class, distribution_kwargs: dict) -> list:
    """``["action"]``, or a CompositeDistribution's sample names (``name_map`` values if given)."""
    if distribution_class is not CompositeDistribution:
        return [ACTION]
    if "distribution_map" not in distribution_kwargs:
        raise KeyError("ProbabilisticActor: a CompositeDistribution needs 'distribution_map' in "
                       f"distribution_kwargs, got keys {sorted(distribution_kwargs)}.")
    name_map = distribution_kwargs.get("name_map")
    names = name_map.values() if name_map is not None else distribution_kwargs["distribution_map"]
    return list(names)


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
            ``distribution_kwargs``, ``return_log_prob``, ``safe``,
            ``default_interaction_type``...).

    Examples:
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import NormalParamExtractor
        >>> from rlmods.distributions import TanhNormal
        >>> mlp = torch.nn.Sequential(torch.nn.Linear(3, 4), NormalParamExtractor())
        >>> net = TensorDictModule(mlp, in_keys=["observation"], out_keys=["loc", "scale"])
        >>> actor = ProbabilisticActor(net, in_keys=["loc", "scale"], distribution_class=TanhNormal,
        ...                            distribution_kwargs={"low": -1.0, "high": 1.0},
        ...                            return_log_prob=True)
        >>> data = actor(TensorDict(observation=torch.randn(5, 3), batch_size=[5]))
        >>> data["action"].shape, data["action_log_prob"].shape
        (torch.Size([5, 2]), torch.Size([5]))
    """

    def __init__(self, module: TensorDictModule, in_keys: NestedKey | Sequence[NestedKey],
                 out_keys: Sequence[NestedKey] | None = None, *, spec: TensorSpec | None = None,
                 **kwargs):
        if out_keys is None:
            out_keys = _default_out_keys(kwargs.get("distribution_class"),
                                         kwargs.get("distribution_kwargs") or {})
        if len(out_keys) == 1 and isinstance(spec, TensorSpec) and not isinstance(spec, Composite):
            spec = Composite({out_keys[0]: spec})
        head = SafeProbabilisticModule(in_keys=in_keys, out_keys=out_keys, spec=spec, **kwargs)
        super().__init__(module, head)
