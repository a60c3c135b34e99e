"""World models: Dreamer's pixel encoder and decoder, the RSSM and its rollout, the latent actor.

A recurrent state-space model (RSSM) keeps a deterministic ``belief`` ``(*B, rnn_hidden_dim)``
and a stochastic ``state`` ``(*B, state_dim)``. ``RSSMPrior`` predicts the next state from the
previous one and the action; ``RSSMPosterior`` corrects it with the encoded frame;
``ObsEncoder`` / ``ObsDecoder`` map 64x64 frames to vectors and back; ``DreamerActor`` acts
from ``(state, belief)``; ``RSSMRollout`` runs prior + posterior over a sequence and
``WorldModelWrapper`` pairs a transition model with a reward model.
Built in chapter *World models*; mirrors ``torchrl.modules`` of torchrl 0.14 (signatures,
defaults, keys and ``state_dict`` layout).
"""

from __future__ import annotations

import warnings

import torch
from tensordict import TensorDictBase
from tensordict.nn import (NormalParamExtractor, TensorDictModule, TensorDictModuleBase,
                           TensorDictSequential)
from torch import nn

from rlmods._checks import InvalidValueError, shape_str
from rlmods._keys import ACTION, BELIEF, NEXT, STATE
from rlmods.nets import MLP


def _check_size(owner: str, name: str, value: torch.Tensor, size: int | None) -> None:
    """``value`` must end with ``size`` entries (no check when ``size`` is None)."""
    if size is not None and (value.ndim == 0 or value.shape[-1] != size):
        entries = "entry" if size == 1 else "entries"
        raise InvalidValueError(f"{owner}: {name} must have {size} {entries} in its last dim, "
                                f"got shape {shape_str(value.shape)}.")


def _check_batch(owner: str, **tensors: torch.Tensor) -> None:
    """The tensors must share their leading (batch) dims."""
    batches = [value.shape[:-1] for value in tensors.values()]
    if batches.count(batches[0]) != len(batches):
        got = ", ".join(f"{name} {shape_str(value.shape)}" for name, value in tensors.items())
        raise InvalidValueError(f"{owner}: the inputs must share their leading dims, got {got}.")


def _check_noise(owner: str, noise: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Standard normal noise shaped like ``std``: a fresh draw, or the given one checked."""
    if noise is None:
        return torch.randn_like(std)
    if noise.shape != std.shape:
        raise InvalidValueError(f"{owner}: noise must have the state's shape "
                                f"{shape_str(std.shape)}, got shape {shape_str(noise.shape)}.")
    return noise


def _channels_argument(owner: str, channels: int, num_layers: int, depth: int | None) -> int:
    """torchrl's ``depth`` alias for ``channels`` (with its warning) and the num_layers check."""
    if depth is not None:
        warnings.warn(f"{owner}: the depth argument will soon mean the depth of the network; "
                      "use channels for the layer size and num_layers for the depth.",
                      stacklevel=3)
        channels = depth
    if num_layers < 1:  # torchrl: RuntimeError
        raise InvalidValueError(f"{owner}: num_layers must be at least 1, got {num_layers}.")
    return channels


def conv_out_size(size: int, num_layers: int) -> int:
    """Side of the encoder's output for an input side ``size``: ``(size - 4) // 2 + 1``, repeated.

    Built in chapter *World models*.

    Examples:
        >>> [conv_out_size(64, n) for n in (1, 2, 3, 4)]
        [31, 14, 6, 2]
        >>> conv_out_size(16, 4)  # too small: a 16x16 frame does not survive 4 layers
        0
    """
    for _ in range(num_layers):
        size = (size - 4) // 2 + 1
        if size < 1:
            return 0
    return size


class ObsEncoder(nn.Module):
    """Dreamer's pixel encoder: ``num_layers`` convolutions (kernel 4, stride 2), ReLU after each.

    Maps frames ``(*B, C, H, W)`` to vectors ``(*B, D)``; a 64x64 frame gives
    ``D = 8 * channels * 2 * 2`` (1024 with the defaults). Channels double at every layer.
    Same ``state_dict`` layout as torchrl (``encoder.0.weight``, ``encoder.2.weight``, ...).
    Built in chapter *World models*.

    Args:
        channels (int): output channels of the first layer. Defaults to 32.
        num_layers (int): number of convolutions. Defaults to 4.
        in_channels (int, optional): input channels; ``None`` makes the first layer lazy.
        depth (int, optional): torchrl's deprecated alias for ``channels`` (warns).
        device (torch.device, optional): where the parameters live.

    Examples:
        >>> encoder = ObsEncoder(channels=8, in_channels=3)
        >>> encoder(torch.zeros(5, 2, 3, 64, 64)).shape
        torch.Size([5, 2, 256])
    """

    def __init__(self, channels=32, num_layers=4, in_channels=None, depth=None, device=None):
        channels = _channels_argument(type(self).__name__, channels, num_layers, depth)
        super().__init__()
        if in_channels is None:
            layers = [nn.LazyConv2d(channels, 4, stride=2, device=device), nn.ReLU()]
        else:
            layers = [nn.Conv2d(in_channels, channels, 4, stride=2, device=device), nn.ReLU()]
        for k in range(1, num_layers):  # channels * 2**(k-1) -> channels * 2**k
            layers += [nn.Conv2d(channels * 2 ** (k - 1), channels * 2**k, 4, stride=2,
                                 device=device), nn.ReLU()]
        self.encoder = nn.Sequential(*layers)
        self.num_layers = num_layers

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        self._check_frames(observation)
        *batch, C, H, W = observation.shape
        latent = self.encoder(observation.reshape(-1, C, H, W))  # (N, C', H', W')
        return latent.reshape(*batch, -1)  # (*B, D)

    def _check_frames(self, observation: torch.Tensor) -> None:
        """Frames ``(*B, C, H, W)`` with the layer's channel count, large enough for the stack."""
        owner = type(self).__name__
        if observation.ndim < 3:
            raise InvalidValueError(f"{owner}: observation must have shape (*batch, C, H, W), "
                                    f"got shape {shape_str(observation.shape)}.")
        first = self.encoder[0]
        C, H, W = observation.shape[-3:]
        if not isinstance(first, nn.LazyConv2d) and C != first.in_channels:
            raise InvalidValueError(f"{owner}: observation must have {first.in_channels} channels "
                                    f"(dim -3), got shape {shape_str(observation.shape)}.")
        if conv_out_size(H, self.num_layers) < 1 or conv_out_size(W, self.num_layers) < 1:
            smallest = 4
            while conv_out_size(smallest, self.num_layers) < 1:
                smallest += 1
            raise InvalidValueError(f"{owner}: observation frames must be at least "
                                    f"{smallest}x{smallest} for {self.num_layers} layers "
                                    f"(Dreamer uses 64x64), got shape "
                                    f"{shape_str(observation.shape)}.")


class ObsDecoder(nn.Module):
    """Dreamer's pixel decoder: ``(state, belief)`` to a frame, by transposed convolutions.

    Reads ``state`` ``(*B, state_dim)`` and ``rnn_hidden`` (the belief) ``(*B, rnn_hidden_dim)``;
    writes frames ``(*B, out_channels, H, W)``, 64x64 with the default kernel sizes
    ``[5, 5, 6, 6]``. A linear layer maps the latent to ``32 * channels`` features, seen as a
    1x1 image; each layer then roughly doubles the side and halves the channels.
    Same ``state_dict`` layout as torchrl (``state_to_latent.0``, ``decoder.0``, ...).
    Built in chapter *World models*.

    Args:
        channels (int): channels of the last hidden layer. Defaults to 32.
        num_layers (int): number of transposed convolutions. Defaults to 4.
        kernel_sizes (int or list of int, optional): one per layer; defaults to ``[5, 5, 6, 6]``
            for 4 layers, else 5 for every layer.
        latent_dim (int, optional): ``state_dim + rnn_hidden_dim``; ``None`` makes the first
            layer lazy.
        out_channels (int): channels of the frames. Defaults to 3 (RGB).
        depth (int, optional): torchrl's deprecated alias for ``channels`` (warns).
        device (torch.device, optional): where the parameters live.

    Examples:
        >>> decoder = ObsDecoder(channels=8, latent_dim=30 + 200)
        >>> decoder(torch.zeros(5, 2, 30), torch.zeros(5, 2, 200)).shape
        torch.Size([5, 2, 3, 64, 64])
    """

    def __init__(self, channels=32, num_layers=4, kernel_sizes=None, latent_dim=None,
                 out_channels=3, depth=None, device=None):
        owner = type(self).__name__
        channels = _channels_argument(owner, channels, num_layers, depth)
        super().__init__()
        linear_out = channels * 8 * 2 * 2
        first = (nn.LazyLinear(linear_out, device=device) if latent_dim is None
                 else nn.Linear(latent_dim, linear_out, device=device))
        self.state_to_latent = nn.Sequential(first, nn.ReLU())
        if kernel_sizes is None:
            kernel_sizes = [5, 5, 6, 6] if num_layers == 4 else 5
        if isinstance(kernel_sizes, int):
            kernel_sizes = [kernel_sizes] * num_layers
        if len(kernel_sizes) != num_layers:
            raise ValueError(f"{owner}: kernel_sizes must have num_layers={num_layers} entries, "
                             f"got {list(kernel_sizes)}.")
        # Hidden widths from the input side: 32c (the 1x1 latent image), ..., 4c, 2c, c.
        widths = [linear_out] + [channels * 2**k for k in reversed(range(num_layers - 1))]
        layers = []
        for i, (width, kernel) in enumerate(zip(widths, kernel_sizes)):
            out = widths[i + 1] if i + 1 < num_layers else out_channels
            layers += [nn.ConvTranspose2d(width, out, kernel, stride=2, device=device), nn.ReLU()]
        # torchrl's order: no ReLU after the last layer; one before it for a single layer.
        self.decoder = nn.Sequential(*(layers[:-1] if num_layers > 1 else layers[-1::-1]))
        self.latent_dim = latent_dim
        self._depth = channels

    def forward(self, state: torch.Tensor, rnn_hidden: torch.Tensor) -> torch.Tensor:
        owner = type(self).__name__
        _check_batch(owner, state=state, rnn_hidden=rnn_hidden)
        latent = torch.cat([state, rnn_hidden], dim=-1)  # (*B, latent_dim)
        _check_size(owner, "cat([state, rnn_hidden], -1)", latent, self.latent_dim)
        latent = self.state_to_latent(latent)  # (*B, 32c)
        *batch, D = latent.shape
        frames = self.decoder(latent.reshape(-1, D, 1, 1))  # (N, C, H, W)
        return frames.reshape(*batch, *frames.shape[1:])


class RSSMPrior(nn.Module):
    """The RSSM's transition: ``(state, belief, action)`` to the prior over the next state.

    ``belief' = GRU(ELU(W [state, action]), belief)``; ``prior_mean, prior_std`` come from the
    new belief through an MLP (``std = max(softplus(.), scale_lb)``), and
    ``state' = prior_mean + noise * prior_std``. Reads ``state`` ``(*B, state_dim)``, ``belief``
    ``(*B, rnn_hidden_dim)`` and ``action`` ``(*B, action_dim)``, for any leading dims ``*B``;
    returns ``(prior_mean, prior_std, state', belief')``.
    Same ``state_dict`` layout as torchrl (``rnn`` is an ``nn.GRUCell``).
    Built in chapter *World models*.

    Args:
        action_spec (TensorSpec): the action spec; its last dim is the action size.
        hidden_dim (int): width of the projections and the GRU's input. Defaults to 200.
        rnn_hidden_dim (int): size of the belief (the GRU's hidden state). Defaults to 200.
        state_dim (int): size of the stochastic state. Defaults to 30.
        scale_lb (float): lower bound of ``prior_std``. Defaults to 0.1.
        action_dim (int, optional): the action size; read from ``action_spec`` when omitted.
        device (torch.device, optional): where the parameters live.

    Examples:
        >>> from rlmods.specs import Bounded
        >>> prior = RSSMPrior(Bounded(-1.0, 1.0, (2,)), hidden_dim=16, rnn_hidden_dim=8,
        ...                   state_dim=4)
        >>> out = prior(torch.zeros(5, 3, 4), torch.zeros(5, 3, 8), torch.zeros(5, 3, 2))
        >>> [tuple(t.shape) for t in out]
        [(5, 3, 4), (5, 3, 4), (5, 3, 4), (5, 3, 8)]
    """

    def __init__(self, action_spec, hidden_dim=200, rnn_hidden_dim=200, state_dim=30,
                 scale_lb=0.1, action_dim=None, device=None):
        super().__init__()
        action_dim = self._action_dim(action_spec, action_dim)
        self.rnn = nn.GRUCell(hidden_dim, rnn_hidden_dim, device=device)
        self.action_state_projector = nn.Sequential(
            nn.Linear(state_dim + action_dim, hidden_dim, device=device), nn.ELU())
        self.rnn_to_prior_projector = nn.Sequential(
            nn.Linear(rnn_hidden_dim, hidden_dim, device=device), nn.ELU(),  # torchrl: hidden_dim
            nn.Linear(hidden_dim, 2 * state_dim, device=device),
            NormalParamExtractor(scale_lb=scale_lb, scale_mapping="softplus"))
        self.state_dim, self.rnn_hidden_dim, self.action_dim = state_dim, rnn_hidden_dim, action_dim
        self.action_shape = action_spec.shape

    def _action_dim(self, action_spec, action_dim) -> int:
        """The action size: ``action_dim``, or the spec's last dim; they must agree."""
        owner = type(self).__name__
        if action_spec is None or not action_spec.shape:
            raise ValueError(f"{owner}: action_spec must be a spec with a last (action) dim, "
                             f"got {action_spec!r}.")
        if action_dim is not None and action_dim != action_spec.shape[-1]:
            raise ValueError(f"{owner}: action_dim must match the action_spec's last dim "
                             f"{action_spec.shape[-1]}, got action_dim={action_dim}.")
        return action_spec.shape[-1]

    def forward(self, state, belief, action, noise=None):
        owner = type(self).__name__
        _check_size(owner, "state", state, self.state_dim)
        _check_size(owner, ACTION, action, self.action_dim)
        if belief is None:  # the GRU starts from zeros, as in torchrl
            _check_batch(owner, state=state, action=action)
        else:
            _check_size(owner, "belief", belief, self.rnn_hidden_dim)
            _check_batch(owner, state=state, belief=belief, action=action)
        action_state = self.action_state_projector(torch.cat([state, action], dim=-1))  # (*B, H)
        if action_state.ndim <= 2:  # what nn.GRUCell takes: (H,) or (N, H)
            belief = self.rnn(action_state, belief)
        else:  # flatten the leading dims around the GRU and restore them
            *batch, hidden = action_state.shape
            flat = None if belief is None else belief.reshape(-1, self.rnn_hidden_dim)
            belief = self.rnn(action_state.reshape(-1, hidden), flat)
            belief = belief.reshape(*batch, self.rnn_hidden_dim)  # (*B, rnn_hidden_dim)
        prior_mean, prior_std = self.rnn_to_prior_projector(belief)  # (*B, state_dim) each
        state = prior_mean + _check_noise(owner, noise, prior_std) * prior_std
        return prior_mean, prior_std, state, belief


class RSSMPosterior(nn.Module):
    """The RSSM's correction: ``(belief, encoded frame)`` to the posterior over the state.

    ``posterior_mean, posterior_std = MLP([belief, obs_embedding])`` (``std`` floored at
    ``scale_lb``) and ``state = posterior_mean + noise * posterior_std``. Reads ``belief``
    ``(*B, rnn_hidden_dim)`` and ``obs_embedding`` ``(*B, obs_embed_dim)``; returns
    ``(posterior_mean, posterior_std, state)``, each ``(*B, state_dim)``.
    Same ``state_dict`` layout as torchrl.
    Built in chapter *World models*.

    Args:
        hidden_dim (int): width of the hidden layer. Defaults to 200.
        state_dim (int): size of the stochastic state. Defaults to 30.
        scale_lb (float): lower bound of ``posterior_std``. Defaults to 0.1.
        rnn_hidden_dim (int, optional): size of the belief.
        obs_embed_dim (int, optional): size of the encoded frame. With both sizes the first
            layer is built now, else it is lazy; a given size is checked at every call.
        device (torch.device, optional): where the parameters live.

    Examples:
        >>> posterior = RSSMPosterior(hidden_dim=16, state_dim=4, rnn_hidden_dim=8,
        ...                           obs_embed_dim=32)
        >>> mean, std, state = posterior(torch.zeros(5, 8), torch.zeros(5, 32))
        >>> state.shape, bool((std >= 0.1).all())
        (torch.Size([5, 4]), True)
    """

    def __init__(self, hidden_dim=200, state_dim=30, scale_lb=0.1, rnn_hidden_dim=None,
                 obs_embed_dim=None, device=None):
        super().__init__()
        if rnn_hidden_dim is not None and obs_embed_dim is not None:
            first = nn.Linear(rnn_hidden_dim + obs_embed_dim, hidden_dim, device=device)
        else:
            first = nn.LazyLinear(hidden_dim, device=device)
        self.obs_rnn_to_post_projector = nn.Sequential(
            first, nn.ELU(), nn.Linear(hidden_dim, 2 * state_dim, device=device),
            NormalParamExtractor(scale_lb=scale_lb, scale_mapping="softplus"))
        self.hidden_dim, self.state_dim = hidden_dim, state_dim
        self.rnn_hidden_dim, self.obs_embed_dim = rnn_hidden_dim, obs_embed_dim

    def forward(self, belief, obs_embedding, noise=None):
        owner = type(self).__name__
        _check_size(owner, "belief", belief, self.rnn_hidden_dim)
        _check_size(owner, "obs_embedding", obs_embedding, self.obs_embed_dim)
        _check_batch(owner, belief=belief, obs_embedding=obs_embedding)
        features = torch.cat([belief, obs_embedding], dim=-1)
        if self.rnn_hidden_dim is None or self.obs_embed_dim is None:  # a lazy first layer
            first = self.obs_rnn_to_post_projector[0]
            if not isinstance(first, nn.LazyLinear):  # it sized itself at the first call
                _check_size(owner, "cat([belief, obs_embedding], -1)", features,
                            first.in_features)
        posterior_mean, posterior_std = self.obs_rnn_to_post_projector(features)
        state = posterior_mean + _check_noise(owner, noise, posterior_std) * posterior_std
        return posterior_mean, posterior_std, state


class DreamerActor(nn.Module):
    """Dreamer's actor network: ``(state, belief)`` to the ``loc`` and ``scale`` of the action.

    An ``MLP`` (lazy input size) with ``2 * out_features`` outputs, split by
    ``NormalParamExtractor`` into ``loc`` and ``scale = biased_softplus(std_bias, std_min_val)``;
    both ``(*B, out_features)``. Dreamer samples the action from a ``TanhNormal`` built on them.
    Same ``state_dict`` layout as torchrl (``backbone.0.weight``, ...).
    Built in chapter *World models*.

    Args:
        out_features (int): the action size.
        depth (int): number of hidden layers. Defaults to 4.
        num_cells (int): hidden width. Defaults to 200.
        activation_class: the activation. Defaults to ``nn.ELU``.
        std_bias (float): the scale when the network outputs 0. Defaults to 5.0.
        std_min_val (float): the scale's lower bound. Defaults to 1e-4.
        device (torch.device, optional): where the parameters live.

    Examples:
        >>> actor = DreamerActor(2, depth=2, num_cells=16)
        >>> loc, scale = actor(torch.zeros(5, 4), torch.zeros(5, 8))
        >>> loc.shape, bool((scale > 0).all())
        (torch.Size([5, 2]), True)
    """

    def __init__(self, out_features, depth=4, num_cells=200, activation_class=nn.ELU,
                 std_bias=5.0, std_min_val=1e-4, device=None):
        super().__init__()
        self.backbone = MLP(out_features=2 * out_features, depth=depth, num_cells=num_cells,
                            activation_class=activation_class, device=device)
        self.backbone.append(
            NormalParamExtractor(scale_mapping=f"biased_softplus_{std_bias}_{std_min_val}"))

    def forward(self, state, belief):
        _check_batch(type(self).__name__, state=state, belief=belief)
        loc, scale = self.backbone(state, belief)
        return loc, scale


class RSSMRollout(TensorDictModuleBase):
    """Runs an RSSM prior and posterior along the last batch dim (time) of a tensordict.

    At step ``t`` the prior reads ``state`` and ``belief`` (at ``t = 0`` the tensordict's own,
    usually zeros from a primer; later the posterior's ``("next", "state")`` and the prior's
    ``("next", "belief")`` of step ``t - 1``) and the action; the posterior reads the new
    belief and the encoded frame. Returns the steps stacked along time.
    Built in chapter *World models*.

    Args:
        rssm_prior (TensorDictModule): the prior, writing ``("next", "belief")`` and more.
        rssm_posterior (TensorDictModule): the posterior, writing ``("next", "state")``.
        use_scan (bool): torchrl's ``torch._higher_order_ops.scan`` loop; only ``False`` (the
            Python loop, same results) is supported.
        compile_step (bool): ``torch.compile`` the prior + posterior step. Defaults to False.
        compile_backend (str): the backend for ``compile_step``. Defaults to ``"inductor"``.
        compile_mode (str, optional): the mode for ``compile_step``.

    Examples:
        >>> from tensordict import TensorDict
        >>> from rlmods.actors import SafeModule
        >>> from rlmods.specs import Unbounded
        >>> prior = SafeModule(RSSMPrior(Unbounded(1), 8, 8, 2), ["state", "belief", "action"],
        ...                    [("next", "prior_mean"), ("next", "prior_std"), "_",
        ...                     ("next", "belief")])
        >>> posterior = SafeModule(RSSMPosterior(8, 2), [("next", "belief"), ("next", "embed")],
        ...                        [("next", "posterior_mean"), ("next", "posterior_std"),
        ...                         ("next", "state")])
        >>> td = TensorDict(state=torch.zeros(3, 5, 2), belief=torch.zeros(3, 5, 8),
        ...                 action=torch.zeros(3, 5, 1), next={"embed": torch.zeros(3, 5, 6)},
        ...                 batch_size=[3, 5])
        >>> out = RSSMRollout(prior, posterior)(td)
        >>> out["next", "state"].shape, bool((out["state"][:, 1:] == out["next", "state"][:, :-1]).all())
        (torch.Size([3, 5, 2]), True)
    """

    def __init__(self, rssm_prior: TensorDictModule, rssm_posterior: TensorDictModule,
                 use_scan: bool = False, compile_step: bool = False,
                 compile_backend: str = "inductor", compile_mode: str | None = None):
        super().__init__()
        if use_scan:
            raise ValueError(f"{type(self).__name__}: use_scan must be False (rlmods runs the "
                             "Python loop, which gives the same results), got True.")
        sequence = TensorDictSequential(rssm_prior, rssm_posterior)
        self.in_keys, self.out_keys = sequence.in_keys, sequence.out_keys
        self.rssm_prior, self.rssm_posterior = rssm_prior, rssm_posterior
        self.compile_step, self.compile_backend, self.compile_mode = (
            compile_step, compile_backend, compile_mode)
        self._step_fn = (torch.compile(self._step, backend=compile_backend, mode=compile_mode)
                         if compile_step else self._step)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        return self.rssm_posterior(self.rssm_prior(tensordict))

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        if tensordict.ndim == 0:
            raise ValueError(f"{type(self).__name__}: the tensordict must have a time dim (its "
                             f"last batch dim), got batch size {shape_str(tensordict.shape)}.")
        steps = tensordict.exclude(*self.out_keys).unbind(-1)  # T tensordicts of shape (*B,)
        outputs = []
        for t, step in enumerate(steps):
            if t:  # the posterior state and the belief of step t - 1 feed the prior at t
                step.set(STATE, outputs[-1].get((NEXT, STATE)))
                step.set(BELIEF, outputs[-1].get((NEXT, BELIEF)))
            outputs.append(self._step_fn(step))
        return torch.stack(outputs, tensordict.ndim - 1)


class WorldModelWrapper(TensorDictSequential):
    """A transition model followed by a reward model, as one ``TensorDictSequential``.

    Reads what the transition model reads; writes the world state it predicts and the reward
    the reward model reads off it. Built in chapter *World models*.

    Args:
        transition_model (TensorDictModule): writes the (imagined) next world state.
        reward_model (TensorDictModule): reads the world state and writes a reward.

    Examples:
        >>> from tensordict import TensorDict
        >>> transition = TensorDictModule(lambda s: s + 1, ["state"], [("next", "state")])
        >>> reward = TensorDictModule(lambda s: -s.abs().sum(-1, keepdim=True),
        ...                           [("next", "state")], [("next", "reward")])
        >>> model = WorldModelWrapper(transition, reward)
        >>> model(TensorDict(state=torch.zeros(2, 3), batch_size=[2]))["next", "reward"].tolist()
        [[-3.0], [-3.0]]
        >>> model.get_reward_operator() is reward
        True
    """

    def __init__(self, transition_model: TensorDictModule, reward_model: TensorDictModule):
        super().__init__(transition_model, reward_model)

    def get_transition_model_operator(self) -> TensorDictModule:
        """The transition model: world state (or observation) to the next world state."""
        return self.module[0]

    def get_reward_operator(self) -> TensorDictModule:
        """The reward model: world state to reward."""
        return self.module[1]
