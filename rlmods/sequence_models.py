"""Sequence models: a GPT-2 decoder, the Decision Transformer and an LM-head actor-critic.

``GPT2Decoder`` is a causal transformer built from ``torch.nn`` with the parameter names of
Hugging Face's ``GPT2Model`` (state dicts load both ways). ``DecisionTransformer`` embeds
``(return_to_go, observation, action)`` steps as three tokens each, ``(*batch, T, d)`` in,
and returns the hidden state at every state token, ``(*batch, T, n_embd)``. ``DTActor`` maps
it to a deterministic action, ``OnlineDTActor`` to a Gaussian's mean and standard deviation.
``DecisionTransformerInferenceWrapper`` masks the context window and returns the last action
and return-to-go. ``LMHeadActorValueOperator`` turns a language model with a ``.transformer``
body and an ``.lm_head`` into chapter 9's ``ActorValueOperator``.

Built in chapter *Sequence models*; mirrors ``torchrl.modules`` of torchrl 0.14 (same
signatures, defaults, keys and ``state_dict`` layout) without depending on ``transformers``.
"""

from __future__ import annotations

import dataclasses
import math
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from tensordict import TensorDictBase, unravel_key
from tensordict.nn import TensorDictModuleBase, TensorDictModuleWrapper, dispatch
from torch import nn

from rlmods._checks import InvalidValueError, require_key, shape_str
from rlmods._keys import (ACTION, ATTENTION_MASK, INPUT_IDS, LM_HIDDEN, LOGITS, OBSERVATION,
                          RETURN_TO_GO)
from rlmods.actors import SafeModule, SafeSequential
from rlmods.probabilistic import SafeProbabilisticModule, SafeProbabilisticTensorDictSequential
from rlmods.specs import Composite
from rlmods.value import ActorValueOperator, ValueOperator

# GPT-2's activations by their Hugging Face names ("gelu_new" is GPT-2's own tanh-GELU).
ACTIVATIONS = {
    "relu": nn.ReLU, "gelu": nn.GELU, "gelu_new": partial(nn.GELU, approximate="tanh"),
    "gelu_pytorch_tanh": partial(nn.GELU, approximate="tanh"), "silu": nn.SiLU,
    "swish": nn.SiLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
}
INIT_STD = 0.02  # GPT-2's initializer_range
DT_CONFIG_FIELDS = ("n_embd", "n_layer", "n_head", "n_inner", "activation", "n_positions",
                    "resid_pdrop", "attn_pdrop")


class ContextLengthError(ValueError, IndexError):
    """A sequence longer than the learned positions (``n_positions``).

    A ``ValueError`` (what the mistake is) and an ``IndexError`` (what torchrl's GPT-2 raises
    from its position embedding), so that code written for either catches it.

    Examples:
        >>> issubclass(ContextLengthError, ValueError), issubclass(ContextLengthError, IndexError)
        (True, True)
    """


class Conv1D(nn.Module):
    """GPT-2's linear layer, ``y = x W + b``, with ``W`` stored ``(in_features, out_features)``.

    Reads ``(*batch, in_features)``, returns ``(*batch, out_features)``. The transpose of
    ``nn.Linear``'s layout, kept (with GPT-2's name) so that GPT-2 state dicts load as they are.
    Built in chapter *Sequence models*.

    Args:
        in_features (int): input size.
        out_features (int): output size.

    Examples:
        >>> layer = Conv1D(3, 5)
        >>> layer.weight.shape, layer(torch.ones(2, 7, 3)).shape
        (torch.Size([3, 5]), torch.Size([2, 7, 5]))
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features).normal_(std=INIT_STD))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight)
        return out.view(*x.shape[:-1], out.shape[-1])


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position ``t`` sees positions ``<= t`` only.

    Reads ``(B, T, n_embd)`` and an optional additive mask ``(B, 1, T, T)``; returns
    ``(B, T, n_embd)``. Built in chapter *Sequence models*.

    Args:
        n_embd (int): the width of the tokens.
        n_head (int): the number of heads; must divide ``n_embd``.
        attn_pdrop (float): dropout on the attention weights (training only).
        resid_pdrop (float): dropout on the output.

    Examples:
        >>> attn = CausalSelfAttention(8, 2, 0.0, 0.0)
        >>> x = torch.randn(1, 4, 8)
        >>> y = attn(x)
        >>> y.shape, torch.allclose(attn(x[:, :2])[:, :2], y[:, :2], atol=1e-6)  # causal
        (torch.Size([1, 4, 8]), True)
    """

    def __init__(self, n_embd: int, n_head: int, attn_pdrop: float, resid_pdrop: float):
        super().__init__()
        self.n_head, self.attn_pdrop = n_head, attn_pdrop
        self.c_attn = Conv1D(n_embd, 3 * n_embd)  # q, k, v side by side
        self.c_proj = Conv1D(n_embd, n_embd)
        self.resid_dropout = nn.Dropout(resid_pdrop)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        batch, steps, width = x.shape
        q, k, v = self.c_attn(x).split(width, dim=-1)
        q, k, v = (t.view(batch, steps, self.n_head, -1).transpose(1, 2) for t in (q, k, v))
        dropout = self.attn_pdrop if self.training else 0.0  # (B, H, T, D) below
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout,
                                           is_causal=mask is None)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(batch, steps, width)))


class GPT2MLP(nn.Module):
    """GPT-2's position-wise feed-forward net: ``n_embd -> n_inner -> n_embd``.

    Reads and returns ``(*batch, n_embd)``. Built in chapter *Sequence models*.

    Args:
        n_embd (int): the width of the tokens.
        n_inner (int): the hidden width.
        activation (str): a key of ``ACTIVATIONS`` (``"relu"``, ``"gelu_new"``, ...).
        resid_pdrop (float): dropout on the output.

    Examples:
        >>> GPT2MLP(8, 32, "relu", 0.0)(torch.zeros(2, 8)).shape
        torch.Size([2, 8])
    """

    def __init__(self, n_embd: int, n_inner: int, activation: str, resid_pdrop: float):
        super().__init__()
        self.c_fc = Conv1D(n_embd, n_inner)
        self.act = ACTIVATIONS[activation]()
        self.c_proj = Conv1D(n_inner, n_embd)
        self.dropout = nn.Dropout(resid_pdrop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class GPT2Block(nn.Module):
    """One pre-norm transformer block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``.

    Reads and returns ``(B, T, n_embd)``. Built in chapter *Sequence models*.

    Args:
        n_embd, n_head, n_inner, activation, resid_pdrop, attn_pdrop: as in ``GPT2Decoder``.
        layer_norm_epsilon (float): the layer norms' epsilon.

    Examples:
        >>> GPT2Block(8, 2, 32, "relu", 0.0, 0.0)(torch.zeros(1, 3, 8)).shape
        torch.Size([1, 3, 8])
    """

    def __init__(self, n_embd: int, n_head: int, n_inner: int, activation: str,
                 resid_pdrop: float, attn_pdrop: float, layer_norm_epsilon: float = 1e-5):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=layer_norm_epsilon)
        self.attn = CausalSelfAttention(n_embd, n_head, attn_pdrop, resid_pdrop)
        self.ln_2 = nn.LayerNorm(n_embd, eps=layer_norm_epsilon)
        self.mlp = GPT2MLP(n_embd, n_inner, activation, resid_pdrop)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))


class GPT2Decoder(nn.Module):
    """A GPT-2 decoder from ``torch.nn``, with the parameter names of Hugging Face's ``GPT2Model``.

    Reads token ids ``(B, T)`` or embeddings ``(B, T, n_embd)`` (and an optional padding mask
    ``(B, T)``, 1 for real tokens); returns the last hidden state ``(B, T, n_embd)``.
    The defaults are GPT-2's. Built in chapter *Sequence models*.

    Args:
        n_embd (int): the width of the tokens. Defaults to 768.
        n_layer (int): the number of blocks. Defaults to 12.
        n_head (int): attention heads per block; must divide ``n_embd``. Defaults to 12.
        n_inner (int, optional): the MLP's hidden width. Defaults to ``4 * n_embd``.
        activation (str): the MLP's activation (``ACTIVATIONS``). Defaults to ``"gelu_new"``.
        n_positions (int): the longest sequence (learned positions). Defaults to 1024.
        resid_pdrop, attn_pdrop, embd_pdrop (float): dropout rates. Default to 0.1.
        vocab_size (int): the number of token ids. Defaults to 50257.
        layer_norm_epsilon (float): defaults to 1e-5.

    Examples:
        >>> decoder = GPT2Decoder(n_embd=16, n_layer=2, n_head=2, n_positions=32, vocab_size=11)
        >>> decoder(input_ids=torch.tensor([[1, 2, 3]])).shape
        torch.Size([1, 3, 16])
        >>> decoder(inputs_embeds=torch.zeros(2, 5, 16)).shape
        torch.Size([2, 5, 16])
    """

    def __init__(self, n_embd: int = 768, n_layer: int = 12, n_head: int = 12,
                 n_inner: int | None = None, activation: str = "gelu_new", n_positions: int = 1024,
                 resid_pdrop: float = 0.1, attn_pdrop: float = 0.1, embd_pdrop: float = 0.1,
                 vocab_size: int = 50257, layer_norm_epsilon: float = 1e-5):
        super().__init__()
        _check_decoder_args(type(self).__name__, n_embd, n_head, activation)
        n_inner = 4 * n_embd if n_inner is None else n_inner
        self.n_embd, self.n_positions = n_embd, n_positions
        self.wte = nn.Embedding(vocab_size, n_embd)  # token ids -> vectors
        self.wpe = nn.Embedding(n_positions, n_embd)  # learned positions
        self.drop = nn.Dropout(embd_pdrop)
        self.h = nn.ModuleList(
            GPT2Block(n_embd, n_head, n_inner, activation, resid_pdrop, attn_pdrop,
                      layer_norm_epsilon) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, eps=layer_norm_epsilon)
        self._init_weights(n_layer)

    def _init_weights(self, n_layer: int) -> None:
        """GPT-2's initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer)."""
        nn.init.normal_(self.wte.weight, std=INIT_STD)
        nn.init.normal_(self.wpe.weight, std=INIT_STD)
        for block in self.h:
            for proj in (block.attn.c_proj, block.mlp.c_proj):
                nn.init.normal_(proj.weight, std=INIT_STD / math.sqrt(2 * n_layer))

    def forward(self, input_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        if (input_ids is None) == (inputs_embeds is None):  # Hugging Face: ValueError
            raise ValueError(f"{type(self).__name__}: exactly one of input_ids and inputs_embeds "
                             "must be given, got "
                             f"{'both' if input_ids is not None else 'neither'}.")
        x = self.wte(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, C)
        self._check_embeddings(x)
        x = self.drop(x + self.wpe.weight[: x.shape[-2]])
        mask = None if attention_mask is None else padding_mask(attention_mask, x.dtype)
        for block in self.h:
            x = block(x, mask)
        return self.ln_f(x)

    def _check_embeddings(self, x: torch.Tensor) -> None:
        owner = type(self).__name__
        if x.ndim != 3 or x.shape[-1] != self.n_embd:
            raise InvalidValueError(f"{owner}: the embeddings must have shape (batch, steps, "
                                    f"n_embd={self.n_embd}), got shape {shape_str(x.shape)}.")
        if x.shape[-2] > self.n_positions:
            raise ContextLengthError(f"{owner}: a sequence of {x.shape[-2]} tokens must fit in "
                                     f"n_positions={self.n_positions}, got embeddings of shape "
                                     f"{shape_str(x.shape)}.")


def _check_decoder_args(owner: str, n_embd: int, n_head: int, activation: str) -> None:
    if n_embd % n_head:  # Hugging Face: ValueError
        raise ValueError(f"{owner}: n_embd must be divisible by n_head, got n_embd={n_embd} "
                         f"and n_head={n_head}.")
    if activation not in ACTIVATIONS:  # Hugging Face: KeyError
        raise ValueError(f"{owner}: activation must be one of {sorted(ACTIVATIONS)}, "
                         f"got {activation!r}.")


def padding_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """An additive mask ``(B, 1, T, T)``: 0 where query ``i`` may see key ``j``, else very negative.

    ``j <= i`` (causal) and ``attention_mask[b, j] == 1`` (a real token). The dtype's lowest
    number rather than ``-inf``: a padded query that sees nothing gets uniform weights, not NaN.

    Examples:
        >>> m = padding_mask(torch.tensor([[0, 1, 1]]), torch.float32)
        >>> (m[0, 0] == 0).int().tolist()
        [[0, 0, 0], [0, 1, 0], [0, 1, 1]]
    """
    steps = attention_mask.shape[-1]
    causal = torch.ones(steps, steps, dtype=torch.bool, device=attention_mask.device).tril()
    allowed = causal & attention_mask.bool()[:, None, None, :]
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
        ~allowed, torch.finfo(dtype).min)


def dt_config(config, owner: str) -> dict:
    """A Decision Transformer config as a dict: ``None`` (the defaults), a dataclass or a mapping.

    Every field of ``DecisionTransformer.DTConfig`` must be there, and nothing else.

    Examples:
        >>> dt_config(None, "Demo")["n_embd"]
        256
    """
    if config is None:
        config = DecisionTransformer.default_config()
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    try:
        config = dict(config)
    except (TypeError, ValueError) as err:  # torchrl: TypeError
        raise TypeError(f"{owner}: config must be a DTConfig or a dict with the fields "
                        f"{list(DT_CONFIG_FIELDS)}, got {type(config).__name__}.") from err
    missing = [name for name in DT_CONFIG_FIELDS if name not in config]
    if missing:  # torchrl: KeyError
        raise KeyError(f"{owner}: config must have the fields {list(DT_CONFIG_FIELDS)}, "
                       f"missing {missing}.")
    unknown = sorted(set(config) - set(DT_CONFIG_FIELDS))
    if unknown:  # torchrl ignores them
        raise ValueError(f"{owner}: config must have only the fields {list(DT_CONFIG_FIELDS)}, "
                         f"got unknown {unknown}.")
    return config


class DecisionTransformer(nn.Module):
    """The Decision Transformer: a GPT-2 over interleaved (return-to-go, state, action) tokens.

    Reads ``observation`` ``(*batch, T, state_dim)``, ``action`` ``(*batch, T, action_dim)`` and
    ``return_to_go`` ``(*batch, T, 1)``; returns the hidden state at each state token,
    ``(*batch, T, n_embd)``. Built in chapter *Sequence models*.

    Args:
        state_dim (int): the observation's size.
        action_dim (int): the action's size.
        config (DTConfig or dict, optional): the transformer's fields (``n_embd``, ``n_layer``,
            ``n_head``, ``n_inner``, ``activation``, ``n_positions``, ``resid_pdrop``,
            ``attn_pdrop``). Defaults to ``default_config()``.
        device (torch.device, optional): where the parameters are created.

    Examples:
        >>> config = DecisionTransformer.default_config()
        >>> config.n_embd = 128
        >>> config.n_embd, config.n_layer, config.n_head, config.n_inner, config.n_positions
        (128, 4, 4, 1024, 1024)
        >>> model = DecisionTransformer(state_dim=4, action_dim=2, config=config)
        >>> model(torch.randn(3, 32, 10, 4), torch.randn(3, 32, 10, 2),
        ...       torch.randn(3, 32, 10, 1)).shape
        torch.Size([3, 32, 10, 128])
    """

    @dataclass
    class DTConfig:
        """Default configuration for DecisionTransformer."""

        n_embd: Any = 256
        n_layer: Any = 4
        n_head: Any = 4
        n_inner: Any = 1024
        activation: Any = "relu"
        n_positions: Any = 1024
        resid_pdrop: Any = 0.1
        attn_pdrop: Any = 0.1

        def __repr__(self):
            fields = [f"{f.name}: {getattr(self, f.name)}" for f in dataclasses.fields(self)]
            return f"{type(self).__name__}({', '.join(fields)})"

    @classmethod
    def default_config(cls):
        """``DTConfig()``: 4 blocks of width 256, 4 heads, a ReLU MLP of 1024, dropout 0.1."""
        return cls.DTConfig()

    def __init__(self, state_dim, action_dim, config: dict | DTConfig = None,
                 device: torch.device | None = None):
        super().__init__()
        config = dt_config(config, type(self).__name__)
        self.state_dim, self.action_dim = state_dim, action_dim
        self.hidden_size = config["n_embd"]
        with torch.device(device) if device is not None else nullcontext():
            self.transformer = GPT2Decoder(**config, vocab_size=1)  # no token ids in a DT
            self.embed_return = nn.Linear(1, self.hidden_size)
            self.embed_state = nn.Linear(state_dim, self.hidden_size)
            self.embed_action = nn.Linear(action_dim, self.hidden_size)
            self.embed_ln = nn.LayerNorm(self.hidden_size)

    def forward(self, observation: torch.Tensor, action: torch.Tensor,
                return_to_go: torch.Tensor) -> torch.Tensor:
        self._check_inputs(observation, action, return_to_go)
        *batch, steps, _ = observation.shape
        tokens = torch.stack((self.embed_return(return_to_go), self.embed_state(observation),
                              self.embed_action(action)), dim=-2)  # (*B, T, 3, H)
        tokens = self.embed_ln(tokens.reshape(-1, 3 * steps, self.hidden_size))  # R1 s1 a1 R2..
        hidden = self.transformer(inputs_embeds=tokens)  # (B', 3T, H)
        return hidden[:, 1::3].reshape(*batch, steps, self.hidden_size)  # the state tokens

    def _check_inputs(self, observation: torch.Tensor, action: torch.Tensor,
                      return_to_go: torch.Tensor) -> None:
        owner = type(self).__name__
        for name, value, size in ((OBSERVATION, observation, self.state_dim),
                                  (ACTION, action, self.action_dim),
                                  (RETURN_TO_GO, return_to_go, 1)):
            if value.ndim < 2 or value.shape[-1] != size:  # torchrl: RuntimeError
                raise InvalidValueError(f"{owner}: {name} must have shape (*batch, steps, "
                                        f"{size}), got shape {shape_str(value.shape)}.")
        if not observation.shape[:-1] == action.shape[:-1] == return_to_go.shape[:-1]:
            raise InvalidValueError(
                f"{owner}: observation, action and return_to_go must share (*batch, steps), "
                f"got shapes {shape_str(observation.shape)}, {shape_str(action.shape)} and "
                f"{shape_str(return_to_go.shape)}.")
        steps, positions = observation.shape[-2], self.transformer.n_positions
        if 3 * steps > positions:  # torchrl: IndexError from the position embedding
            raise ContextLengthError(
                f"{owner}: {steps} steps make {3 * steps} tokens (return, state, action per "
                f"step), more than n_positions={positions}; got observation of shape "
                f"{shape_str(observation.shape)}.")


def orthogonal_init(layer: nn.Linear) -> nn.Linear:
    """torchrl's head initialisation: an orthogonal weight and a zero bias.

    Examples:
        >>> w = orthogonal_init(nn.Linear(8, 2)).weight
        >>> torch.allclose(w @ w.T, torch.eye(2), atol=1e-6)
        True
    """
    nn.init.orthogonal_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class DTActor(nn.Module):
    """The Decision Transformer's deterministic actor: a linear head on every state token.

    Reads ``observation``, ``action`` and ``return_to_go`` as ``DecisionTransformer``; returns
    ``(*batch, T, action_dim)``: at step ``t``, the action predicted from the tokens up to
    ``s_t``. Built in chapter *Sequence models*.

    Args:
        state_dim (int): the observation's size.
        action_dim (int): the action's size.
        transformer_config (DTConfig or dict, optional): defaults to ``default_config()``.
        device (torch.device, optional): where the parameters are created.

    Examples:
        >>> config = DTActor.default_config()
        >>> config.n_embd, config.n_inner
        (512, 2048)
        >>> small = dict(vars(config), n_embd=32, n_inner=64, n_layer=1)
        >>> model = DTActor(state_dim=4, action_dim=2, transformer_config=small)
        >>> model(torch.randn(32, 10, 4), torch.randn(32, 10, 2), torch.randn(32, 10, 1)).shape
        torch.Size([32, 10, 2])
    """

    def __init__(self, state_dim: int, action_dim: int,
                 transformer_config: dict | DecisionTransformer.DTConfig = None,
                 device: torch.device | None = None):
        super().__init__()
        if transformer_config is None:
            transformer_config = self.default_config()
        config = dt_config(transformer_config, type(self).__name__)
        self.transformer = DecisionTransformer(state_dim, action_dim, config, device)
        self.action_layer = orthogonal_init(nn.Linear(config["n_embd"], action_dim,
                                                      device=device))

    def forward(self, observation: torch.Tensor, action: torch.Tensor,
                return_to_go: torch.Tensor) -> torch.Tensor:
        return self.action_layer(self.transformer(observation, action, return_to_go))

    @classmethod
    def default_config(cls):
        """Default configuration for :class:`DTActor`: width 512, MLP 2048, 4 blocks, 4 heads."""
        return DecisionTransformer.DTConfig(n_embd=512, n_layer=4, n_head=4, n_inner=2048,
                                            activation="relu", n_positions=1024,
                                            resid_pdrop=0.1, attn_pdrop=0.1)


class OnlineDTActor(nn.Module):
    """The Online Decision Transformer's actor: a Gaussian's mean and std at every state token.

    Reads as ``DecisionTransformer``; returns ``(mu, std)``, each ``(*batch, T, action_dim)``,
    with ``log std`` squashed by ``tanh`` into ``[log_std_min, log_std_max] = [-5, 2]``.
    Built in chapter *Sequence models*.

    Args:
        state_dim (int): the observation's size.
        action_dim (int): the action's size.
        transformer_config (DTConfig or dict, optional): defaults to ``default_config()``.
        device (torch.device, optional): where the parameters are created.

    Examples:
        >>> small = dict(vars(OnlineDTActor.default_config()), n_embd=32, n_inner=64, n_layer=1)
        >>> model = OnlineDTActor(state_dim=4, action_dim=2, transformer_config=small)
        >>> mu, std = model(torch.randn(32, 10, 4), torch.randn(32, 10, 2),
        ...                 torch.randn(32, 10, 1))
        >>> mu.shape, std.shape, bool(std.min() >= math.exp(-5))
        (torch.Size([32, 10, 2]), torch.Size([32, 10, 2]), True)
    """

    def __init__(self, state_dim: int, action_dim: int,
                 transformer_config: dict | DecisionTransformer.DTConfig = None,
                 device: torch.device | None = None):
        super().__init__()
        if transformer_config is None:
            transformer_config = self.default_config()
        config = dt_config(transformer_config, type(self).__name__)
        self.transformer = DecisionTransformer(state_dim, action_dim, config, device)
        width = config["n_embd"]
        self.action_layer_mean = orthogonal_init(nn.Linear(width, action_dim, device=device))
        self.action_layer_logstd = orthogonal_init(nn.Linear(width, action_dim, device=device))
        self.log_std_min, self.log_std_max = -5.0, 2.0

    def forward(self, observation: torch.Tensor, action: torch.Tensor,
                return_to_go: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.transformer(observation, action, return_to_go)  # (*B, T, H)
        squashed = torch.tanh(self.action_layer_logstd(hidden))  # in [-1, 1]
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (squashed + 1)
        return self.action_layer_mean(hidden), log_std.exp()

    @classmethod
    def default_config(cls):
        """Default configuration for :class:`OnlineDTActor`: as ``DTActor.default_config()``."""
        return DTActor.default_config()


def masked_context(observation: torch.Tensor, action: torch.Tensor, return_to_go: torch.Tensor,
                   inference_context: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero all but the last ``inference_context`` steps; move the actions one step earlier.

    Reads ``(*batch, T, d)`` tensors whose last action is the one taken *before* the last
    observation; returns tensors of the same shapes in which step ``t`` holds the action taken
    at ``s_t`` and the last step's action (not taken yet) is zero. Only the last
    ``inference_context - 1`` past actions are kept. Inputs are never modified; the
    observation and return-to-go come back as they are when no step is masked.

    Examples:
        >>> obs = torch.arange(1.0, 5.0).view(4, 1)
        >>> o, a, r = masked_context(obs, obs, obs, 2)
        >>> o.flatten().tolist(), a.flatten().tolist()
        ([0.0, 0.0, 3.0, 4.0], [0.0, 0.0, 4.0, 0.0])
    """
    steps = observation.shape[-2]
    start = max(steps - inference_context, 0)
    if start:
        observation, return_to_go = observation.clone(), return_to_go.clone()
        observation[..., :start, :] = 0
        return_to_go[..., :start, :] = 0
    shifted = torch.zeros_like(action)
    kept = min(inference_context - 1, steps - 1)  # past actions that stay visible
    if kept > 0:
        shifted[..., steps - 1 - kept: steps - 1, :] = action[..., steps - kept:, :]
    return observation, shifted, return_to_go


class DecisionTransformerInferenceWrapper(TensorDictModuleWrapper):
    """Runs a Decision Transformer policy on a context window and keeps its last step.

    Reads ``observation``, ``action`` and ``return_to_go``, each ``(*batch, T, d)``, masks them
    with ``masked_context``, runs the policy, and returns a copy of the tensordict with the last
    step's ``action`` ``(*batch, action_dim)`` and ``return_to_go`` ``(*batch, 1)``, the full
    (unmasked) observation and the policy's other outputs. Built in chapter *Sequence models*.

    Args:
        policy (TensorDictModule): reads the three keys, writes the action sequence.

    Keyword Args:
        inference_context (int): how many of the last steps stay visible. Defaults to 5.
        spec (TensorSpec, optional): the action's spec (or a Composite). Defaults to the
            policy's.
        device (torch.device, optional): where the spec goes.

    Examples:
        >>> from tensordict import TensorDict
        >>> small = dict(vars(DTActor.default_config()), n_embd=32, n_inner=64, n_layer=1)
        >>> actor = SafeModule(DTActor(state_dim=4, action_dim=2, transformer_config=small),
        ...                    in_keys=["observation", "action", "return_to_go"],
        ...                    out_keys=["action"])
        >>> policy = DecisionTransformerInferenceWrapper(actor)
        >>> td = policy(TensorDict(observation=torch.randn(1, 20, 4),
        ...                        action=torch.randn(1, 20, 2),
        ...                        return_to_go=torch.randn(1, 20, 1), batch_size=[1]))
        >>> td["action"].shape, td["return_to_go"].shape, td["observation"].shape
        (torch.Size([1, 2]), torch.Size([1, 1]), torch.Size([1, 20, 4]))
    """

    def __init__(self, policy: TensorDictModuleBase, *, inference_context: int = 5,
                 spec=None, device: torch.device | None = None):
        owner = type(self).__name__
        if not isinstance(policy, TensorDictModuleBase):
            raise TypeError(f"{owner}: policy must be a TensorDict module, "
                            f"got {type(policy).__name__}.")
        if isinstance(inference_context, bool) or not isinstance(inference_context, int) \
                or inference_context < 1:  # torchrl accepts 0 and negative values
            raise ValueError(f"{owner}: inference_context must be an int >= 1, "
                             f"got {inference_context!r}.")
        super().__init__(policy)
        self.observation_key, self.return_to_go_key = OBSERVATION, RETURN_TO_GO
        self.action_key = self.out_action_key = ACTION
        self.inference_context = inference_context
        self._spec = self._wrapper_spec(spec, device)
        self.check_keys()

    def _wrapper_spec(self, spec, device) -> Composite:
        if spec is not None and not isinstance(spec, Composite):
            spec = Composite({self.action_key: spec}, shape=spec.shape[:-1])
        elif spec is None and isinstance(getattr(self.td_module, "spec", None), Composite):
            spec = self.td_module.spec.clone()
            if self.action_key not in spec.keys():
                spec[self.action_key] = None
        elif spec is None:
            spec = Composite({key: None for key in self.td_module.out_keys})
        return spec if device is None else spec.to(device)

    @property
    def in_keys(self):
        return [self.observation_key, self.action_key, self.return_to_go_key]

    @property
    def out_keys(self):
        keys = {self.observation_key, self.action_key, self.return_to_go_key}
        return sorted(keys.union(self.td_module.out_keys), key=str)

    def set_tensor_keys(self, **kwargs) -> None:
        """Rename the keys: ``observation``, ``action``, ``return_to_go``, ``out_action``."""
        owner = type(self).__name__
        names = {OBSERVATION: "observation_key", ACTION: "action_key",  # argument: attribute
                 RETURN_TO_GO: "return_to_go_key", "out_action": "out_action_key"}
        unknown = sorted(set(kwargs) - set(names))
        if unknown:  # torchrl: TypeError
            raise TypeError(f"{owner}: set_tensor_keys accepts {sorted(names)}, "
                            f"got unknown {unknown}.")
        keys = {attr: unravel_key(kwargs.get(name, getattr(self, attr)))
                for name, attr in names.items()}
        if keys["out_action_key"] not in self.td_module.out_keys:  # torchrl: ValueError
            raise ValueError(f"{owner}: out_action must be one of the policy's out_keys "
                             f"{self.td_module.out_keys}, got {keys['out_action_key']!r}.")
        for attr, key in keys.items():
            setattr(self, attr, key)

    def check_keys(self) -> None:
        """Check that the policy writes the output action key (done at construction)."""
        self.set_tensor_keys()

    def step(self, frames: int = 1) -> None:
        """Nothing to anneal (collectors call ``policy.step``)."""

    def mask_context(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Write the masked context (``masked_context``) into ``tensordict``; return it."""
        owner = type(self).__name__
        observation = require_key(tensordict, self.observation_key, owner)
        action = require_key(tensordict, self.action_key, owner)
        return_to_go = require_key(tensordict, self.return_to_go_key, owner)
        if not observation.shape[:-1] == action.shape[:-1] == return_to_go.shape[:-1]:
            raise ValueError(f"{owner}: observation, action and return_to_go must share "
                             f"(*batch, steps), got shapes {shape_str(observation.shape)}, "
                             f"{shape_str(action.shape)} and {shape_str(return_to_go.shape)}.")
        inputs = (observation, action, return_to_go)
        masked = masked_context(*inputs, self.inference_context)
        for key, value, new in zip(self.in_keys, inputs, masked):
            if new is not value:  # nothing to mask: no write
                tensordict.set(key, new)
        return tensordict

    @dispatch
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        tensordict = tensordict.clone(False)  # a copy: the caller's context stays as it was
        observation = require_key(tensordict, self.observation_key, type(self).__name__)
        tensordict = self.td_module(self.mask_context(tensordict))
        action = tensordict.get(self.out_action_key)  # (*batch, T, action_dim)
        if tensordict.ndim == action.ndim - 1:  # the time dim is a batch dim: drop it
            tensordict.batch_size = tensordict.batch_size[:-1]
        tensordict.set(self.out_action_key, action[..., -1, :])
        tensordict.set(self.return_to_go_key, tensordict.get(self.return_to_go_key)[..., -1, :])
        if tensordict.get(self.observation_key) is not observation:  # it was masked
            tensordict.set(self.observation_key, observation)
        return tensordict


def last_hidden_state(output) -> torch.Tensor:
    """The hidden states a transformer body returns: a tensor, a tuple's first entry, or the
    ``"last_hidden_state"`` of a Hugging Face output.

    Examples:
        >>> x = torch.zeros(2, 3, 4)
        >>> all(last_hidden_state(out) is x for out in (x, (x, None), {"last_hidden_state": x}))
        True
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict):  # a Hugging Face ModelOutput is an OrderedDict
        return output["last_hidden_state"]
    return output[0]


class LastTokenHidden(TensorDictModuleBase):
    """Runs a language model's body and writes the hidden state of the last position.

    Reads ``input_ids`` ``(*batch, T)`` and ``attention_mask`` ``(*batch, T)``; writes ``"x"``
    ``(*batch, n_embd)``. The body is any module called as
    ``module(input_ids=..., attention_mask=...)`` that returns hidden states (a tensor, a tuple
    or a Hugging Face output). Built in chapter *Sequence models*.

    Args:
        module (nn.Module): the body (``base_model.transformer``).

    Examples:
        >>> from tensordict import TensorDict
        >>> body = LastTokenHidden(GPT2Decoder(n_embd=8, n_layer=1, n_head=2, vocab_size=5))
        >>> td = TensorDict(input_ids=torch.tensor([[1, 2, 3]]),
        ...                 attention_mask=torch.ones(1, 3, dtype=torch.long), batch_size=[1])
        >>> body(td)["x"].shape
        torch.Size([1, 8])
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self.in_keys, self.out_keys = [INPUT_IDS, ATTENTION_MASK], [LM_HIDDEN]

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        owner = type(self).__name__
        input_ids = require_key(tensordict, INPUT_IDS, owner)  # (*B, T)
        attention_mask = require_key(tensordict, ATTENTION_MASK, owner)
        hidden = last_hidden_state(self.module(input_ids=input_ids,
                                               attention_mask=attention_mask))  # (*B, T, H)
        tensordict.set(LM_HIDDEN, hidden[..., -1, :])
        return tensordict


class LMHeadActorValueOperator(ActorValueOperator):
    """An actor-critic from a language model: its body is shared, its ``lm_head`` is the policy.

    Reads ``input_ids`` and ``attention_mask`` ``(*batch, T)``; writes ``"x"`` (the last
    token's hidden state), ``"logits"`` ``(*batch, vocab)``, ``"action"`` (the next token,
    ``(*batch,)``, from a categorical distribution), ``"action_log_prob"`` and
    ``"state_value"`` ``(*batch, 1)``, from a new linear critic without bias.
    Built in chapter *Sequence models*.

    Args:
        base_model (nn.Module): a module with a ``.transformer`` body and an ``.lm_head``
            linear layer, shaped like a Hugging Face ``*LMHeadModel``.

    Examples:
        >>> from tensordict import TensorDict
        >>> class TinyLM(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.transformer = GPT2Decoder(n_embd=8, n_layer=1, n_head=2, vocab_size=5)
        ...         self.lm_head = nn.Linear(8, 5, bias=False)
        >>> model = LMHeadActorValueOperator(TinyLM())
        >>> td = model(TensorDict(input_ids=torch.tensor([[1, 2, 3]]),
        ...                       attention_mask=torch.ones(1, 3, dtype=torch.long),
        ...                       batch_size=[1]))
        >>> td["logits"].shape, td["action"].shape, td["state_value"].shape
        (torch.Size([1, 5]), torch.Size([1]), torch.Size([1, 1]))
    """

    def __init__(self, base_model: nn.Module):
        owner = type(self).__name__
        for part in ("transformer", "lm_head"):  # torchrl: AttributeError
            if not isinstance(getattr(base_model, part, None), nn.Module):
                raise TypeError(f"{owner}: base_model must have a .transformer body and an "
                                f".lm_head linear layer, got {type(base_model).__name__} "
                                f"without .{part}.")
        lm_head = base_model.lm_head
        if not isinstance(getattr(lm_head, "in_features", None), int):
            raise TypeError(f"{owner}: base_model.lm_head must be a linear layer with "
                            f"in_features, got {type(lm_head).__name__}.")
        weight = lm_head.weight  # the critic lives where the head does (torchrl: default device)
        critic = nn.Linear(lm_head.in_features, 1, bias=False, device=weight.device,
                           dtype=weight.dtype)
        common = SafeSequential(LastTokenHidden(base_model.transformer))  # torchrl's layout
        policy = SafeProbabilisticTensorDictSequential(
            SafeModule(lm_head, in_keys=[LM_HIDDEN], out_keys=[LOGITS]),
            SafeProbabilisticModule(in_keys=[LOGITS], out_keys=[ACTION],
                                    distribution_class=torch.distributions.Categorical,
                                    return_log_prob=True))
        super().__init__(common, policy, ValueOperator(critic, in_keys=[LM_HIDDEN]))
