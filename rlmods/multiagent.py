"""Multi-agent networks: one network definition, parameters stacked per agent, run with vmap.

A multi-agent network reads ``(*B, n_agents, *features)`` and writes
``(*B, n_agents, *out)``: each agent's slice goes through that agent's copy of the network.
The copies' parameters are stacked along a leading agent dim (``TensorDict.from_modules``)
and ``torch.vmap`` runs the one definition over them, with no Python loop over agents. A
network of ``nn.Linear`` layers and elementwise activations (an ``MLP``) skips vmap's fixed
cost: one ``torch.baddbmm`` per layer computes it for all agents from the stacked weights.
The value mixers turn the agents' chosen-action values ``(*B, n_agents, 1)`` into the team's
``(*B, 1)``: ``VDNMixer`` sums them, ``QMixer`` mixes them monotonically.
Built in chapter *Multi-agent networks*; mirrors ``torchrl.modules`` of torchrl 0.14
(``MultiAgentNetBase``, ``MultiAgentMLP``, ``MultiAgentConvNet``, ``QMixer``, ``VDNMixer``).
"""

from __future__ import annotations

import math
from copy import deepcopy

import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictParams
from torch import nn

from rlmods._checks import InvalidTypeError, InvalidValueError, shape_str
from rlmods._keys import CHOSEN_ACTION_VALUE, STATE
from rlmods.nets import MLP, ConvNet

VMAP_RANDOMNESS = ("different", "same", "error")  # torch.vmap's randomness modes
# Activation layers that act on each entry alone and hold no tensors: one call serves every
# agent. Not here: layers that mix entries (Softmax, GLU), or hold parameters (PReLU), buffers
# (norm layers) or randomness (Dropout); a network with one of them runs under vmap.
ELEMENTWISE = (nn.Identity, nn.Tanh, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU,
               nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid, nn.Softplus, nn.Softsign, nn.Hardtanh,
               nn.Hardswish, nn.Hardsigmoid, nn.LogSigmoid, nn.Tanhshrink)


def _is_lazy(module: nn.Module) -> bool:
    """Whether ``module`` holds a parameter or buffer whose shape is not known yet."""
    lazy = (nn.parameter.UninitializedParameter, nn.parameter.UninitializedBuffer)
    return any(isinstance(t, lazy) for t in (*module.parameters(), *module.buffers()))


def _linear_plan(net: nn.Module) -> tuple | None:
    """``net`` as a plan of ``nn.Linear`` layers and elementwise activations, or None.

    ``net`` qualifies when it is an ``nn.Sequential`` (or an ``MLP`` that keeps its flat output)
    of exactly ``nn.Linear`` and ``ELEMENTWISE`` layers. In the plan a ``Linear`` is its name,
    under which the stacked parameters hold its weights; an activation is the layer itself.
    """
    if type(net) not in (nn.Sequential, MLP) or getattr(net, "_reshape_out", False):
        return None
    plan = []
    for name, layer in net.named_children():
        if type(layer) is nn.Linear:
            plan.append(name)
        elif type(layer) in ELEMENTWISE:
            plan.append(layer)
        else:  # anything else runs under vmap
            return None
    return tuple(plan)


def _run_linear_plan(plan: tuple, params: TensorDict, h: torch.Tensor,
                     per_agent: bool) -> torch.Tensor:
    """Run ``plan`` (see ``_linear_plan``) on ``h`` with the weights in ``params``.

    Per agent, ``h`` is ``(n, M, in)`` and each weight ``(n, out, in)``: one ``baddbmm`` per
    layer computes ``h_i W_i^T + b_i`` for all agents. Shared, ``h`` is ``(..., in)``.
    """
    for step in plan:
        if isinstance(step, nn.Module):  # an elementwise activation: all agents at once
            h = step.forward(h)  # its function alone: nn.Module's call machinery costs 1.5 us
            continue
        layer = params._get_str(step, None)  # tensordict's private read: 0.1 us, get: 1-2 us
        weight, bias = layer._get_str("weight", None), layer._get_str("bias", None)
        if not per_agent:
            h = nn.functional.linear(h, weight, bias)  # (..., in) -> (..., out)
        elif bias is None:
            h = torch.bmm(h, weight.mT)
        else:
            h = torch.baddbmm(bias.unsqueeze(1), h, weight.mT)  # (n, M, in) -> (n, M, out)
    return h


def _reset_recursive(module: nn.Module) -> None:
    """Call ``reset_parameters`` of the module and of every submodule that has one."""
    for layer in module.modules():  # the module itself first: a bare nn.Linear resets too
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()


class MultiAgentNetBase(nn.Module):
    """A network per agent from one definition: parameters stacked, forward vmapped over agents.

    Subclasses say how one agent's network is built (``_build_single_net``) and check the
    input (``_pre_forward_check``, which also flattens the agent dim into the features when
    ``centralized``). Reads ``(*B, n_agents, *features)`` with the agent dim at ``agent_dim``
    and writes ``(*B, n_agents, *out)``. The parameters live in ``self.params``, a TensorDict
    whose leaves have a leading dim of ``n_agents`` (none when ``share_params``). A network
    that is an ``nn.Sequential`` of ``nn.Linear`` layers and ``ELEMENTWISE`` activations runs
    without vmap, one batched matrix product per layer, with the same results.

    Built in chapter *Multi-agent networks*.

    Keyword Args:
        n_agents (int): the number of agents.
        centralized (bool): each agent sees every agent's input (the agent dim is flattened
            into the features). Required.
        share_params (bool): one network for all agents instead of one each. Required.
        agent_dim (int): the input's agent dim. Required.
        vmap_randomness (str): ``torch.vmap``'s randomness: ``"different"`` (each agent its own
            dropout mask, the default), ``"same"`` or ``"error"``.
        use_td_params (bool): the parameters are registered as ``params.*`` (a
            ``TensorDictParams``), else inside ``_empty_net.*``: torchrl's two
            ``state_dict`` layouts. Defaults to True.
        **kwargs: passed to ``_build_single_net``.

    Examples:
        >>> class Linears(MultiAgentNetBase):
        ...     def _build_single_net(self, *, device=None):
        ...         return nn.Linear(3, 2, device=device)
        ...     def _pre_forward_check(self, inputs):
        ...         return inputs
        >>> net = Linears(n_agents=5, centralized=False, share_params=False, agent_dim=-2)
        >>> net(torch.zeros(7, 5, 3)).shape, net.params["weight"].shape
        (torch.Size([7, 5, 2]), torch.Size([5, 2, 3]))
    """

    def __init__(self, *, n_agents: int, centralized: bool | None = None,
                 share_params: bool | None = None, agent_dim: int | None = None,
                 vmap_randomness: str = "different", use_td_params: bool = True, **kwargs):
        super().__init__()
        name = type(self).__name__
        centralized = kwargs.pop("centralised", centralized)  # torchrl's older spelling
        for argument, value in (("centralized", centralized), ("share_params", share_params),
                                ("agent_dim", agent_dim)):
            if value is None:  # torchrl: TypeError
                raise TypeError(f"{name}: {argument} must be passed, got None.")
        if isinstance(n_agents, bool) or not isinstance(n_agents, int) or n_agents < 1:
            raise ValueError(f"{name}: n_agents must be a positive int, got {n_agents!r}.")
        if vmap_randomness not in VMAP_RANDOMNESS:
            raise ValueError(f"{name}: vmap_randomness must be one of {VMAP_RANDOMNESS}, "
                             f"got {vmap_randomness!r}.")
        self.n_agents, self.centralized, self.share_params = n_agents, centralized, share_params
        self.agent_dim, self.vmap_randomness = agent_dim, vmap_randomness
        self.use_td_params = use_td_params
        # One independently initialised network per agent (a single one when shared).
        nets = [self._build_single_net(**kwargs) for _ in range(1 if share_params else n_agents)]
        self.initialized = not _is_lazy(nets[0])
        if self.initialized:
            self._make_params(nets)
        else:  # shapes known at the first call (see _materialize)
            self._lazy_nets = nn.ModuleList(nets)

    def _build_single_net(self, *, device=None, **kwargs) -> nn.Module:
        """One agent's network (subclasses build it)."""
        raise InvalidTypeError(f"{type(self).__name__}: a subclass must define "
                               "_build_single_net, got none.")

    def _pre_forward_check(self, inputs: torch.Tensor) -> torch.Tensor:
        """Check the input's shape; flatten the agent dim into the features when centralized."""
        raise InvalidTypeError(f"{type(self).__name__}: a subclass must define "
                               "_pre_forward_check, got none.")

    def _make_params(self, nets: list[nn.Module]) -> None:
        """Stack the networks' parameters per agent; keep the first network, emptied, to run."""
        as_module = self.use_td_params
        params = (TensorDict.from_module(nets[0], as_module=as_module) if self.share_params
                  else TensorDict.from_modules(*nets, as_module=as_module))  # leaves (n, ...)
        self._empty_net = nets[0]
        self._plan = _linear_plan(nets[0])  # None: any other network, run under vmap
        if self.use_td_params:  # the state_dict reads params.*
            TensorDict.from_module(nets[0]).data.to("meta").to_module(
                nets[0], preserve_module_state=False)
        else:  # the state_dict reads _empty_net.*, as in torchrl
            params.to_module(nets[0], preserve_module_state=False)
        self.params = params

    @staticmethod
    def vmap_func_module(module: nn.Module, in_dims=0, out_dims=0, randomness: str = "error",
                         *, chunk_size: int | None = None):
        """``module`` as a function ``(params, *inputs)``, vmapped over stacked ``params``."""

        def exec_module(params, *inputs):
            with params.to_module(module, preserve_module_state=False):
                return module(*inputs)

        return torch.vmap(exec_module, in_dims=in_dims, out_dims=out_dims, randomness=randomness,
                          chunk_size=chunk_size)

    def _materialize(self, inputs: torch.Tensor, agent_dim: int) -> None:
        """Lazy layers: run each agent's network once on its own input, then stack them."""
        nets = list(self._lazy_nets)
        with torch.no_grad():
            for i, net in enumerate(nets):
                shared_input = self.share_params or self.centralized
                net(inputs if shared_input else inputs.select(agent_dim, i))
        del self._lazy_nets
        self._make_params(nets)
        self.initialized = True

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        x = inputs[0] if len(inputs) == 1 else torch.cat(inputs, -1)
        agent_dim = self.agent_dim + x.dim() if self.agent_dim < 0 else self.agent_dim
        x = self._pre_forward_check(x)  # (*B, n, *features), or (*B, n * F...) if centralized
        if not self.initialized:
            self._materialize(x, agent_dim)
        if self._plan is not None:  # Linear layers and elementwise activations: no vmap
            out = self._forward_linear(x, agent_dim)
        elif not self.share_params:  # one network per agent: vmap over the stacked params
            run = self.vmap_func_module(self._empty_net, (0, None if self.centralized
                                                          else agent_dim), agent_dim,
                                        randomness=self.vmap_randomness)
            out = run(self.params, x)  # (*B, n, *out)
        else:  # one network: the agent dim is just another batch dim
            with self.params.to_module(self._empty_net, preserve_module_state=False):
                out = self._empty_net(x)
        if self.share_params and self.centralized:  # one input for all: give each agent a view
            out = out.unsqueeze(agent_dim)
            out = out.expand(*out.shape[:agent_dim], self.n_agents, *out.shape[agent_dim + 1:])
        if out.dim() <= agent_dim or out.shape[agent_dim] != self.n_agents:
            raise ValueError(f"{type(self).__name__}: the output must have n_agents="
                             f"{self.n_agents} in dim {agent_dim}, "
                             f"got shape {shape_str(out.shape)}.")
        return out

    def _forward_linear(self, x: torch.Tensor, agent_dim: int) -> torch.Tensor:
        """The vmapped network's output, computed on the stacked parameters directly."""
        params = self.params  # read at every call: never a stale copy of the weights
        if isinstance(params, TensorDictParams):
            params = params._param_td  # the plain TensorDict it wraps, cheaper to read
        if self.share_params:  # one set of weights: the agent dim is a batch dim
            return _run_linear_plan(self._plan, params, x, per_agent=False)
        n = self.n_agents  # agent dim first: (n, *b, F), every agent the whole x if centralized
        h = x.expand(n, *x.shape) if self.centralized else x.movedim(agent_dim, 0)
        batch = h.shape[1:-1]
        if len(batch) != 1:  # baddbmm takes one batch dim (a reshape costs 1 us: only if needed)
            h = h.reshape(n, math.prod(batch), h.shape[-1])  # (n, M, F)
        h = _run_linear_plan(self._plan, params, h, per_agent=True)  # (n, M, out)
        if len(batch) != 1:
            h = h.reshape(n, *batch, h.shape[-1])
        return h.movedim(0, agent_dim)  # (*B, n, out)

    def get_stateful_net(self, copy: bool = True) -> nn.Module:
        """The network holding the stacked parameters (say, to re-initialise them in place)."""
        net = deepcopy(self._empty_net) if copy else self._empty_net
        self.params.to_module(net, preserve_module_state=False)
        return net

    def from_stateful_net(self, stateful_net: nn.Module) -> None:
        """Copy the parameters of a network from ``get_stateful_net`` back in."""
        params = TensorDict.from_module(stateful_net, as_module=True)
        ours, theirs = set(self.params.keys(True, True)), set(params.keys(True, True))
        if ours != theirs:  # torchrl: RuntimeError
            raise InvalidValueError(
                f"{type(self).__name__}: stateful_net must hold the parameters {sorted(ours)}, "
                f"got {sorted(theirs)}.")
        self.params.data.update_(params.data)

    def reset_parameters(self) -> None:
        """Re-initialise the parameters: each agent independently (vmap, randomness "different")."""

        def reset(params):
            with params.to_module(self._empty_net, preserve_module_state=False):
                _reset_recursive(self._empty_net)
            return params

        with torch.no_grad():
            if self.share_params:
                reset(self.params)
            else:
                torch.vmap(reset, randomness="different")(self.params.data)

    def __repr__(self) -> str:
        name = type(self).__name__
        settings = (f"n_agents={self.n_agents}, share_params={self.share_params}, "
                    f"centralized={self.centralized}, agent_dim={self.agent_dim}")
        if not self.initialized:
            return f"{name}(\n  (lazy: shapes known at the first call),\n  {settings})"
        net = "\n  ".join(repr(self._empty_net).splitlines())
        per_agent = "" if self.share_params else " per agent"
        lines = [f"    {'.'.join(k)}: {shape_str(v.shape)}" for k, v in
                 self.params.items(include_nested=True, leaves_only=True)]
        return (f"{name}(\n  {net},\n  {settings},\n  params{per_agent}:\n"
                + "\n".join(lines) + "\n)")


class MultiAgentMLP(MultiAgentNetBase):
    """An MLP per agent: ``(*B, n_agents, n_agent_inputs) -> (*B, n_agents, n_agent_outputs)``.

    Each agent's network is ``rlmods.MLP``. With ``centralized`` each agent reads every agent's
    input (``n_agents * n_agent_inputs`` features); with ``share_params`` all agents use one MLP.
    With neither ``depth`` nor ``num_cells`` the MLP is one linear layer, as in torchrl 0.14's
    code (its docstring says a depth of 3).

    Built in chapter *Multi-agent networks*.

    Args:
        n_agent_inputs (int or None): features per agent; ``None`` makes the first layer lazy.
        n_agent_outputs (int): outputs per agent.
        n_agents (int): the number of agents.

    Keyword Args:
        centralized (bool): each agent reads all agents' inputs. Required.
        share_params (bool): one MLP for all agents. Required.
        device: where the parameters live.
        depth (int, optional): number of hidden layers (``rlmods.MLP``'s).
        num_cells (int or list of int, optional): hidden sizes (``rlmods.MLP``'s).
        activation_class: defaults to ``nn.Tanh``.
        use_td_params (bool): torchrl's ``state_dict`` layout switch. Defaults to True.
        **kwargs: ``vmap_randomness``, or passed to ``rlmods.MLP`` (``dropout``, ...).

    Examples:
        >>> mlp = MultiAgentMLP(3, 2, n_agents=6, centralized=False, share_params=False, depth=2)
        >>> mlp(torch.zeros(64, 6, 3)).shape, mlp.params["0", "weight"].shape
        (torch.Size([64, 6, 2]), torch.Size([6, 32, 3]))
    """

    def __init__(self, n_agent_inputs: int | None, n_agent_outputs: int, n_agents: int, *,
                 centralized: bool | None = None, share_params: bool | None = None, device=None,
                 depth: int | None = None, num_cells=None, activation_class=nn.Tanh,
                 use_td_params: bool = True, **kwargs):
        self.n_agent_inputs, self.n_agent_outputs = n_agent_inputs, n_agent_outputs
        self.depth, self.num_cells, self.activation_class = depth, num_cells, activation_class
        super().__init__(n_agents=n_agents, centralized=centralized, share_params=share_params,
                         device=device, agent_dim=-2, use_td_params=use_td_params, **kwargs)

    def _build_single_net(self, *, device=None, **kwargs) -> nn.Module:
        n_in = self.n_agent_inputs
        if self.centralized and n_in is not None:
            n_in = n_in * self.n_agents  # every agent's features
        return MLP(in_features=n_in, out_features=self.n_agent_outputs, depth=self.depth,
                   num_cells=self.num_cells, activation_class=self.activation_class,
                   device=device, **kwargs)

    def _pre_forward_check(self, inputs: torch.Tensor) -> torch.Tensor:
        name, n, f = type(self).__name__, self.n_agents, self.n_agent_inputs
        features = "n_agent_inputs" if f is None else f
        if inputs.dim() < 2 or inputs.shape[-2] != n:  # torchrl: ValueError
            raise ValueError(f"{name}: input must have shape (*B, n_agents={n}, {features}), "
                             f"got shape {shape_str(inputs.shape)}.")
        if f is not None and inputs.shape[-1] != f:  # torchrl: RuntimeError (in the matmul)
            raise InvalidValueError(f"{name}: input must have shape (*B, {n}, n_agent_inputs="
                                    f"{f}), got shape {shape_str(inputs.shape)}.")
        return inputs.flatten(-2, -1) if self.centralized else inputs  # (*B, n * F)


class MultiAgentConvNet(MultiAgentNetBase):
    """A ConvNet per agent: ``(*B, n_agents, C, H, W) -> (*B, n_agents, features)``.

    Each agent's network is ``rlmods.ConvNet``; with ``centralized`` the agents' images are
    stacked on the channels (``n_agents * C`` input channels).

    Built in chapter *Multi-agent networks*.

    Args:
        n_agents (int): the number of agents.
        centralized (bool): each agent reads all agents' images. Required.
        share_params (bool): one ConvNet for all agents. Required.

    Keyword Args:
        in_features (int, optional): channels per agent; ``None`` makes the first conv lazy.
        device: where the parameters live.
        num_cells, kernel_sizes, strides, paddings, activation_class: as ``rlmods.ConvNet``'s,
            with torchrl's defaults here (kernel 5, stride 2, padding 0, ``nn.ELU``).
        use_td_params (bool): torchrl's ``state_dict`` layout switch. Defaults to True.
        **kwargs: ``vmap_randomness``, or passed to ``rlmods.ConvNet``.

    Examples:
        >>> cnn = MultiAgentConvNet(3, centralized=False, share_params=False, in_features=2,
        ...                         num_cells=[4, 8])
        >>> cnn(torch.zeros(5, 3, 2, 16, 16)).shape
        torch.Size([5, 3, 8])
    """

    def __init__(self, n_agents: int, centralized: bool | None = None,
                 share_params: bool | None = None, *, in_features: int | None = None,
                 device=None, num_cells=None, kernel_sizes=5, strides=2, paddings=0,
                 activation_class=nn.ELU, use_td_params: bool = True, **kwargs):
        self.in_features, self.num_cells = in_features, num_cells
        self.kernel_sizes, self.strides, self.paddings = kernel_sizes, strides, paddings
        self.activation_class = activation_class
        super().__init__(n_agents=n_agents, centralized=centralized, share_params=share_params,
                         device=device, agent_dim=-4, use_td_params=use_td_params, **kwargs)

    def _build_single_net(self, *, device=None, **kwargs) -> nn.Module:
        channels = self.in_features
        if self.centralized and channels is not None:
            channels = channels * self.n_agents  # every agent's image, on the channels
        return ConvNet(in_features=channels, num_cells=self.num_cells,
                       kernel_sizes=self.kernel_sizes, strides=self.strides,
                       paddings=self.paddings, activation_class=self.activation_class,
                       device=device, **kwargs)

    def _pre_forward_check(self, inputs: torch.Tensor) -> torch.Tensor:
        name, n, c = type(self).__name__, self.n_agents, self.in_features
        channels = "C" if c is None else f"C={c}"
        if inputs.dim() < 4 or inputs.shape[-4] != n:  # torchrl: ValueError
            raise ValueError(f"{name}: input must have shape (*B, n_agents={n}, {channels}, H, W),"
                             f" got shape {shape_str(inputs.shape)}.")
        if c is not None and inputs.shape[-3] != c:  # torchrl: RuntimeError (in the conv)
            raise InvalidValueError(f"{name}: input must have shape (*B, {n}, in_features={c}, "
                                    f"H, W), got shape {shape_str(inputs.shape)}.")
        return inputs.flatten(-4, -3) if self.centralized else inputs  # (*B, n * C, H, W)


class Mixer(nn.Module):
    """A value mixer: the agents' chosen-action values ``(*B, n_agents, 1)`` -> ``(*B, 1)``.

    Subclasses define ``mix``; ``forward`` checks the shapes (and the global state's, when the
    mixer needs one) first.

    Built in chapter *Multi-agent networks*.

    Args:
        n_agents (int): the number of agents.
        needs_state (bool): ``forward`` takes the global state as its second input.
        state_shape (tuple of int): the state's shape without batch dims.
        device: where the parameters live.
    """

    def __init__(self, n_agents: int, needs_state: bool, state_shape, device):
        super().__init__()
        name = type(self).__name__
        if isinstance(n_agents, bool) or not isinstance(n_agents, int) or n_agents < 1:
            raise ValueError(f"{name}: n_agents must be a positive int, got {n_agents!r}.")
        shape = (state_shape,) if isinstance(state_shape, int) else state_shape
        self.n_agents, self.needs_state, self.device = n_agents, needs_state, device
        self.state_shape = torch.Size(shape)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        name, n = type(self).__name__, self.n_agents
        if len(inputs) != 1 + self.needs_state:  # torchrl: ValueError
            expected = (f"({CHOSEN_ACTION_VALUE}, {STATE})" if self.needs_state
                        else CHOSEN_ACTION_VALUE)
            raise ValueError(f"{name}: inputs must be {expected}, got {len(inputs)} tensors.")
        values, state = inputs[0], inputs[1] if self.needs_state else None
        if values.dim() < 2 or values.shape[-2:] != (n, 1):
            raise ValueError(f"{name}: chosen_action_value must have shape (*B, n_agents={n}, 1), "
                             f"got shape {shape_str(values.shape)}.")
        batch, shape = values.shape[:-2], self.state_shape
        if state is not None and state.shape[state.dim() - len(shape):] != shape:
            raise ValueError(f"{name}: state must end with state_shape {shape_str(shape)}, "
                             f"got shape {shape_str(state.shape)}.")
        if state is not None and state.shape != batch + shape:  # torchrl: RuntimeError or none
            raise InvalidValueError(
                f"{name}: state must have the batch dims of chosen_action_value, shape "
                f"{shape_str(batch + shape)}, got shape {shape_str(state.shape)}.")
        return self.mix(values, state)  # (*B, 1)

    def mix(self, chosen_action_value: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        """``(*B, n_agents, 1)`` (and the state) -> ``(*B, 1)`` (subclasses define it)."""
        raise NotImplementedError(f"{type(self).__name__} must define mix.")


class VDNMixer(Mixer):
    """Value-decomposition networks (Sunehag et al., 2017): ``Q_tot = sum_a Q_a``.

    Reads ``(*B, n_agents, 1)``, writes ``(*B, 1)``.

    Built in chapter *Multi-agent networks*.

    Args:
        n_agents (int): the number of agents.
        device: unused (VDN has no parameters); kept for torchrl's signature.

    Examples:
        >>> VDNMixer(n_agents=3, device="cpu")(torch.ones(4, 3, 1)).squeeze(-1).tolist()
        [3.0, 3.0, 3.0, 3.0]
    """

    def __init__(self, n_agents: int, device):
        super().__init__(n_agents=n_agents, needs_state=False, state_shape=(), device=device)

    def mix(self, chosen_action_value: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        return chosen_action_value.sum(-2)  # (*B, 1)


class QMixer(Mixer):
    """QMIX (Rashid et al., 2018): a state-conditioned mixing network, monotonic in each Q_a.

    ``Q_tot = |W_2(s)|^T elu(|W_1(s)|^T q + b_1(s)) + V(s)``: hypernetworks of the state give
    the mixing weights, made non-negative by ``abs``, so ``dQ_tot / dQ_a >= 0``. Reads
    ``(*B, n_agents, 1)`` and the state ``(*B, *state_shape)``, writes ``(*B, 1)``. Parameter
    names are torchrl's (``hyper_w_1``, ``hyper_w_final``, ``hyper_b_1``, ``V``).

    Built in chapter *Multi-agent networks*.

    Args:
        state_shape (tuple of int): the state's shape without batch dims.
        mixing_embed_dim (int): the width of the mixing network's hidden layer.
        n_agents (int): the number of agents.
        device: where the parameters live.

    Examples:
        >>> qmix = QMixer(state_shape=(4,), mixing_embed_dim=8, n_agents=3, device="cpu")
        >>> qmix(torch.zeros(5, 2, 3, 1), torch.zeros(5, 2, 4)).shape
        torch.Size([5, 2, 1])
    """

    def __init__(self, state_shape, mixing_embed_dim: int, n_agents: int, device):
        super().__init__(n_agents=n_agents, needs_state=True, state_shape=state_shape,
                         device=device)
        self.embed_dim, self.state_dim = mixing_embed_dim, math.prod(self.state_shape)
        sd, e = self.state_dim, mixing_embed_dim
        self.hyper_w_1 = nn.Linear(sd, e * n_agents, device=device)  # W_1(s): (n, e)
        self.hyper_w_final = nn.Linear(sd, e, device=device)  # W_2(s): (e, 1)
        self.hyper_b_1 = nn.Linear(sd, e, device=device)  # b_1(s): (e,)
        self.V = nn.Sequential(nn.Linear(sd, e, device=device), nn.ReLU(),
                               nn.Linear(e, 1, device=device))  # V(s), the last bias

    def mix(self, chosen_action_value: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        batch = chosen_action_value.shape[:-2]
        s = state.reshape(*batch, self.state_dim)  # (*B, S)
        q = chosen_action_value.transpose(-2, -1)  # (*B, 1, n)
        w1 = self.hyper_w_1(s).abs().unflatten(-1, (self.n_agents, self.embed_dim))  # (*B, n, e)
        b1 = self.hyper_b_1(s).unsqueeze(-2)  # (*B, 1, e)
        hidden = nn.functional.elu(q @ w1 + b1)  # (*B, 1, e)
        w2 = self.hyper_w_final(s).abs().unsqueeze(-1)  # (*B, e, 1)
        return (hidden @ w2).squeeze(-1) + self.V(s)  # (*B, 1)
