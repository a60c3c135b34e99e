"""Recurrent modules: LSTM and GRU cells and layers in Python, and their TensorDict wrappers.

``LSTMModule`` reads ``[in_key, "recurrent_state_h", "recurrent_state_c", "is_init"]`` and
writes ``[out_key, ("next", "recurrent_state_h"), ("next", "recurrent_state_c")]``;
``GRUModule`` the same with one state, ``"recurrent_state"``. A hidden state has shape
``(*batch, num_layers, hidden_size)``. One step per call by default; inside
``set_recurrent_mode(True)`` the last batch dim is time, and the state restarts from zero
wherever ``is_init`` is set. Built in chapter *Recurrent modules*; mirrors
``torchrl.modules`` of torchrl 0.14 (``LSTMCell``, ``LSTM``, ``GRUCell``, ``GRU``,
``LSTMModule``, ``GRUModule``, ``set_recurrent_mode``, ``recurrent_mode``,
``get_primers_from_module``).
"""

from __future__ import annotations

import contextlib
import contextvars
import warnings

import torch
import torch.nn.functional as F
from tensordict import TensorDict, unravel_key_list
from tensordict.nn import TensorDictModuleBase, dispatch
from torch import nn

from rlmods._checks import (InvalidValueError, check_trailing_shape, get_entry, key_str,
                            shape_str)
from rlmods._keys import IS_INIT, NEXT, RECURRENT_STATE, RECURRENT_STATE_C, RECURRENT_STATE_H
from rlmods.actors import DirectCall, read_entry, write_entry
from rlmods.envs import Compose, TensorDictPrimer
from rlmods.specs import Unbounded

# What rlmods provides in recurrent mode; torchrl also has "scan" (hoptorch) and "triton".
RECURRENT_BACKENDS = ("pad", "auto")
TORCHRL_BACKENDS = ("auto", "pad", "scan", "triton")


def lstm_cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None, weight_hr=None):
    """One LSTM step on tensors: ``x`` ``(B, F)``, ``state = (h, c)`` → ``(h', c')``.

    Gates in torch.nn's order (input, forget, cell, output); ``weight_hr`` projects ``h``
    (``proj_size > 0``).

    Examples:
        >>> cell = nn.LSTMCell(3, 4)
        >>> x, h, c = torch.ones(2, 3), torch.zeros(2, 4), torch.zeros(2, 4)
        >>> ours = lstm_cell(x, (h, c), cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        >>> all(torch.allclose(a, b) for a, b in zip(ours, cell(x, (h, c))))
        True
    """
    h, c = state
    gates = F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)  # (B, 4H)
    i, f, g, o = gates.chunk(4, -1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    if weight_hr is not None:  # proj_size > 0: h is projected to proj_size
        h = F.linear(h, weight_hr)
    return h, c


def gru_cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One GRU step on tensors: ``x`` ``(B, F)``, ``state = (h,)`` → ``(h',)``.

    Gates in torch.nn's order (reset, update, new); the state is a 1-tuple so that LSTM and
    GRU share one loop.

    Examples:
        >>> cell = nn.GRUCell(3, 4)
        >>> x, h = torch.ones(2, 3), torch.zeros(2, 4)
        >>> (ours,) = gru_cell(x, (h,), cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        >>> torch.allclose(ours, cell(x, h))
        True
    """
    (h,) = state
    r_x, z_x, n_x = F.linear(x, weight_ih, bias_ih).chunk(3, -1)  # (B, H) each
    r_h, z_h, n_h = F.linear(h, weight_hh, bias_hh).chunk(3, -1)
    r = torch.sigmoid(r_x + r_h)
    z = torch.sigmoid(z_x + z_h)
    n = torch.tanh(n_x + r * n_h)
    return (n + z * (h - n),)  # (1 - z) * n + z * h


def fused_lstm_cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """``lstm_cell`` through torch's fused kernel (what ``nn.LSTMCell`` calls)."""
    return torch.lstm_cell(x, state, weight_ih, weight_hh, bias_ih, bias_hh)


def fused_gru_cell(x, state, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """``gru_cell`` through torch's fused kernel (what ``nn.GRUCell`` calls)."""
    return (torch.gru_cell(x, state[0], weight_ih, weight_hh, bias_ih, bias_hh),)


def weight_slots(rnn: nn.RNNBase) -> list[tuple]:
    """Where each layer's ``layer_weights`` sit in ``rnn._flat_weights`` (None: no bias).

    They depend only on the network's configuration, so a module works them out once.

    Examples:
        >>> weight_slots(nn.LSTM(3, 4, num_layers=2))
        [(0, 1, 2, 3), (4, 5, 6, 7)]
        >>> weight_slots(nn.GRU(3, 4, bias=False))
        [(0, 1, None, None)]
    """
    index = {name: i for i, name in enumerate(rnn._flat_weights_names)}
    names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] + ["weight_hr"] * (rnn.proj_size > 0)
    return [tuple(index.get(f"{name}_l{layer}") for name in names)
            for layer in range(rnn.num_layers)]


def layer_weights(rnn: nn.RNNBase, slots: list[tuple] | None = None) -> list[tuple]:
    """Each layer's ``(weight_ih, weight_hh, bias_ih, bias_hh[, weight_hr])`` (None: no bias).

    ``slots``: ``weight_slots(rnn)``, when the caller has it already. The tensors are read
    from ``rnn._flat_weights`` on every call, which torch.nn keeps current (``load_state_dict``,
    ``.to()``, a parameter assigned anew).
    """
    flat = rnn._flat_weights
    return [tuple(None if i is None else flat[i] for i in layer)
            for layer in (weight_slots(rnn) if slots is None else slots)]


def step_layers(cell, x, states, weights, dropout: float = 0.0, training: bool = False):
    """One time step through stacked layers: the top layer's output and each layer's new state.

    ``x`` is ``(B, F)``; ``states[layer]`` a tuple of ``(B, H)`` tensors; ``weights[layer]``
    what ``cell`` takes after the state. Dropout acts between layers, as in torch.nn.
    """
    new_states = []
    for layer, (state, layer_weight) in enumerate(zip(states, weights)):
        if layer and dropout:
            x = F.dropout(x, dropout, training)
        state = cell(x, state, *layer_weight)
        new_states.append(state)
        x = state[0]
    return x, new_states


def run_layers(cell, x, states, weights, dropout: float = 0.0, training: bool = False,
               reset=None):
    """The time loop: ``x`` ``(B, T, F)`` → outputs ``(B, T, H)`` and the states after each step.

    Where ``reset`` ``(B, T)`` is True the states restart from zero before step ``t``: a new
    trajectory starts there. The second result holds, for each step, every layer's state.

    Examples:
        >>> torch_lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True)
        >>> x, zeros = torch.randn(2, 5, 3), torch.zeros(2, 4)
        >>> y, history = run_layers(lstm_cell, x, [(zeros, zeros)] * 2, layer_weights(torch_lstm))
        >>> torch.allclose(y, torch_lstm(x)[0], atol=1e-6), len(history)
        (True, 5)
    """
    outputs, history = [], []
    for t, x_t in enumerate(x.unbind(1)):
        if reset is not None:
            restart = reset[:, t, None]  # (B, 1)
            states = [tuple(s.masked_fill(restart, 0.0) for s in state) for state in states]
        y, states = step_layers(cell, x_t, states, weights, dropout, training)
        outputs.append(y)
        history.append(states)
    return torch.stack(outputs, 1), history


def _check_python_args(owner: str, bidirectional, use_scan) -> None:
    if bidirectional:  # torchrl: NotImplementedError
        raise InvalidValueError(f"{owner}: bidirectional=True is not supported by the Python "
                                "implementation (as in torchrl), got True; use torch.nn's.")
    if use_scan:  # torchrl's prototype needs torch.compile and hoptorch
        raise InvalidValueError(f"{owner}: use_scan=True is not supported, got True; the Python "
                                "time loop is the only one.")


class _PythonCell(nn.RNNCellBase):
    """What LSTMCell and GRUCell share: torch.nn's parameters, unbatched inputs, the cell."""

    def forward(self, input: torch.Tensor, hx=None):
        owner = type(self).__name__
        if input.dim() not in (1, 2):
            raise ValueError(f"{owner}: input must be 1-D or 2-D, got shape "
                             f"{shape_str(input.shape)}.")
        state = (hx,) if isinstance(hx, torch.Tensor) else hx
        if state is None:
            zeros = input.new_zeros(*input.shape[:-1], self.hidden_size)
            state = (zeros,) * self.num_states
        if len(state) != self.num_states:
            raise TypeError(f"{owner}: hx must be {self.hx_doc}, got {len(state)} tensor(s).")
        for value in state:
            if value.dim() != input.dim():
                raise ValueError(f"{owner}: hx must have as many dims as input "
                                 f"({input.dim()}), got shape {shape_str(value.shape)}.")
        batched = input.dim() == 2
        if not batched:
            input, state = input.unsqueeze(0), tuple(s.unsqueeze(0) for s in state)
        out = self.cell(input, state, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if not batched:
            out = tuple(s.squeeze(0) for s in out)
        return out if self.num_states == 2 else out[0]


class LSTMCell(_PythonCell):
    """``torch.nn.LSTMCell`` written in Python (``lstm_cell``), with the same parameters.

    Reads ``input`` ``(B, F)`` or ``(F,)`` and ``hx = (h, c)`` (zeros if None); returns
    ``(h', c')``. A state_dict moves between this, ``nn.LSTMCell`` and torchrl's LSTMCell.
    Built in chapter *Recurrent modules*.

    Args:
        input_size (int): features of the input.
        hidden_size (int): features of ``h`` and ``c``.
        bias (bool): with ``bias_ih`` and ``bias_hh``. Defaults to True.
        device, dtype: of the parameters.

    Examples:
        >>> cell, reference = LSTMCell(3, 4), nn.LSTMCell(3, 4)
        >>> _ = reference.load_state_dict(cell.state_dict())
        >>> x = torch.randn(2, 3)
        >>> all(torch.allclose(a, b) for a, b in zip(cell(x), reference(x)))
        True
    """

    cell = staticmethod(lstm_cell)
    num_states, hx_doc = 2, "a tuple (h, c)"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)


class GRUCell(_PythonCell):
    """``torch.nn.GRUCell`` written in Python (``gru_cell``), with the same parameters.

    Reads ``input`` ``(B, F)`` or ``(F,)`` and ``hx`` (zeros if None); returns ``h'``.
    Built in chapter *Recurrent modules*.

    Args:
        input_size (int): features of the input.
        hidden_size (int): features of ``h``.
        bias (bool): with ``bias_ih`` and ``bias_hh``. Defaults to True.
        device, dtype: of the parameters.

    Examples:
        >>> cell, reference = GRUCell(3, 4), nn.GRUCell(3, 4)
        >>> _ = reference.load_state_dict(cell.state_dict())
        >>> x, h = torch.randn(2, 3), torch.randn(2, 4)
        >>> torch.allclose(cell(x, h), reference(x, h))
        True
    """

    cell = staticmethod(gru_cell)
    num_states, hx_doc = 1, "one tensor h"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)


class _PythonRNN:
    """What LSTM and GRU share: torch.nn's parameters and checks, :func:`run_layers`' loop."""

    def forward(self, input: torch.Tensor, hx=None):
        owner = type(self).__name__
        if input.dim() != 3:
            raise ValueError(f"{owner}: input must be 3-D (batch, time, features) with "
                             f"batch_first=True, got shape {shape_str(input.shape)}.")
        if not self.batch_first:
            input = input.transpose(0, 1)
        batch = input.shape[0]
        sizes = [self.proj_size or self.hidden_size] + [self.hidden_size] * (self.mode == "LSTM")
        state = (hx,) if isinstance(hx, torch.Tensor) else hx
        if state is None:
            state = tuple(input.new_zeros(self.num_layers, batch, size) for size in sizes)
        for value, size in zip(state, sizes):
            if value.shape != (self.num_layers, batch, size):
                raise ValueError(f"{owner}: hx must have shape "
                                 f"{shape_str((self.num_layers, batch, size))}, got shape "
                                 f"{shape_str(value.shape)}.")
        layers = list(zip(*(s.unbind(0) for s in state)))  # per layer: (h, c) or (h,)
        y, history = run_layers(self.cell, input, layers, layer_weights(self), self.dropout,
                                self.training)
        state = tuple(torch.stack(s, 0) for s in zip(*history[-1]))  # (num_layers, B, H) each
        y = y if self.batch_first else y.transpose(0, 1)
        return y, (state if self.mode == "LSTM" else state[0])


class LSTM(_PythonRNN, nn.LSTM):
    """``torch.nn.LSTM`` written in Python: a multi-layer LSTM over a time dim.

    Reads ``input`` ``(B, T, F)`` (``batch_first=True``, torchrl's default) and ``hx = (h, c)``,
    each ``(num_layers, B, H)`` (zeros if None); returns the top layer's outputs
    ``(B, T, H)`` and the final ``(h, c)``. torch.nn's parameter names, dropout between
    layers and ``proj_size``; not bidirectional (as torchrl). Built in chapter *Recurrent modules*.

    Args:
        input_size, hidden_size (int): features of the input and of the state.
        num_layers (int): stacked layers. Defaults to 1.
        batch_first (bool): ``(B, T, F)`` when True (the default), ``(T, B, F)`` otherwise.
        bias (bool): with biases. Defaults to True.
        dropout (float): dropout on each layer's output but the last, in training.
        bidirectional (bool): only False.
        proj_size (int): project ``h`` to this size (0: no projection).
        device, dtype: of the parameters.
        use_scan (bool): torchrl's prototype scan loop; only False.

    Examples:
        >>> lstm, reference = LSTM(3, 4, num_layers=2), nn.LSTM(3, 4, 2, batch_first=True)
        >>> _ = reference.load_state_dict(lstm.state_dict())
        >>> x = torch.randn(2, 5, 3)
        >>> torch.allclose(lstm(x)[0], reference(x)[0], atol=1e-6)
        True
    """

    cell = staticmethod(lstm_cell)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 batch_first: bool = True, bias: bool = True, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None,
                 use_scan: bool = False) -> None:
        _check_python_args("LSTM", bidirectional, use_scan)
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
                         dropout=dropout, proj_size=proj_size, device=device, dtype=dtype)


class GRU(_PythonRNN, nn.GRU):
    """``torch.nn.GRU`` written in Python: a multi-layer GRU over a time dim.

    Reads ``input`` ``(B, T, F)`` and ``hx`` ``(num_layers, B, H)`` (zeros if None); returns
    the outputs ``(B, T, H)`` and the final ``h``. As :class:`LSTM` otherwise (no
    ``proj_size``). Built in chapter *Recurrent modules*.

    Args:
        input_size, hidden_size (int): features of the input and of the state.
        num_layers (int): stacked layers. Defaults to 1.
        bias (bool): with biases. Defaults to True.
        batch_first (bool): ``(B, T, F)`` when True (the default), ``(T, B, F)`` otherwise.
        dropout (float): dropout on each layer's output but the last, in training.
        bidirectional (bool): only False.
        device, dtype: of the parameters.
        use_scan (bool): torchrl's prototype scan loop; only False.

    Examples:
        >>> gru, reference = GRU(3, 4), nn.GRU(3, 4, batch_first=True)
        >>> _ = reference.load_state_dict(gru.state_dict())
        >>> x = torch.randn(2, 5, 3)
        >>> torch.allclose(gru(x)[1], reference(x)[1], atol=1e-6)
        True
    """

    cell = staticmethod(gru_cell)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = True, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, use_scan: bool = False) -> None:
        _check_python_args("GRU", bidirectional, use_scan)
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
                         dropout=dropout, device=device, dtype=dtype)


_RECURRENT_MODE = contextvars.ContextVar("rlmods_recurrent_mode", default=None)
# The same mode where torch.compile reads it: dynamo cannot trace ContextVar.get (a graph
# break), and it traces one thread, for which this copy is exact.
_COMPILED_MODE = {"mode": None}


def recurrent_mode() -> bool | None:
    """The recurrent mode set by :class:`set_recurrent_mode` (None outside any).

    Examples:
        >>> with set_recurrent_mode(True):
        ...     recurrent_mode()
        True
        >>> recurrent_mode() is None
        True
    """
    if torch.compiler.is_compiling():
        return _COMPILED_MODE["mode"]
    return _RECURRENT_MODE.get()


class set_recurrent_mode(contextlib.ContextDecorator):
    """Switch recurrent modules to recurrent (True) or sequential (False) mode; also a decorator.

    Args:
        mode (bool, "recurrent" or "sequential", or None): True (the default) makes
            :class:`LSTMModule` and :class:`GRUModule` read a time dim; None defers to each
            module's ``default_recurrent_mode``.

    Examples:
        >>> @set_recurrent_mode("sequential")
        ... def current():
        ...     return recurrent_mode()
        >>> current()
        False
    """

    def __init__(self, mode: bool | str | None = True) -> None:
        if isinstance(mode, str) and mode.lower() in ("recurrent", "sequential"):
            mode = mode.lower() == "recurrent"
        if mode is not None and not isinstance(mode, bool):
            raise ValueError("set_recurrent_mode: mode must be a bool, 'recurrent', "
                             f"'sequential' or None, got {mode!r}.")
        self.mode = mode
        self._previous = []

    def __enter__(self) -> None:
        self._previous.append(_RECURRENT_MODE.get())
        _RECURRENT_MODE.set(self.mode)
        _COMPILED_MODE["mode"] = self.mode

    def __exit__(self, *exc_info) -> None:
        _RECURRENT_MODE.set(self._previous.pop())
        _COMPILED_MODE["mode"] = _RECURRENT_MODE.get()


def split_trajectories(is_init: torch.Tensor):
    """Cut the rows of a ``(B, T)`` batch into trajectories, a new one at each ``is_init``.

    Returns ``(segment, position, starts, lengths)``: for each of the ``B * T`` steps (row
    after row), the index of its trajectory and its step within it; for each of the ``N``
    trajectories, the flat index of its first step and its length.

    Examples:
        >>> is_init = torch.tensor([[True, False, True, False], [False, False, False, True]])
        >>> segment, position, starts, lengths = split_trajectories(is_init)
        >>> segment.tolist(), position.tolist(), lengths.tolist()
        ([0, 0, 1, 1, 2, 2, 2, 3], [0, 1, 0, 1, 0, 1, 2, 0], [2, 2, 3, 1])
    """
    first = is_init.clone()
    first[:, 0] = True  # each row starts a trajectory, mid-way or not
    first = first.reshape(-1)
    starts = first.nonzero().squeeze(-1)  # (N,)
    segment = first.cumsum(0) - 1  # (B * T,)
    position = torch.arange(first.numel(), device=first.device) - starts[segment]
    lengths = torch.diff(starts, append=starts.new_tensor([first.numel()]))
    return segment, position, starts, lengths


def _as_tuple(key) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def _write_output(tensordict, key, value) -> None:
    """``tensordict.set(key, value)``; a ``("next", name)`` key into the existing ``"next"``.

    ``set`` with a nested key finds the sub-TensorDict and sets the leaf in it, validated
    against the sub-TensorDict's batch size and device: ``write_entry`` into it does the same
    at a fraction of the cost. Where ``"next"`` is missing, ``set`` creates it.
    """
    if type(key) is tuple and len(key) == 2 and type(tensordict) is TensorDict:
        parent = tensordict._get_str(key[0], None)
        if type(parent) is TensorDict:
            tensordict, key = parent, key[1]
    write_entry(tensordict, key, value)


class _RecurrentModule(DirectCall, TensorDictModuleBase):
    """What LSTMModule and GRUModule share: keys, modes, one step, a padded sequence."""

    def _setup(self, rnn, in_key, in_keys, out_key, out_keys, default_recurrent_mode) -> None:
        owner = type(self).__name__
        if not isinstance(rnn, self.torch_class):
            expected = f"torch.nn.{self.torch_class.__name__}"
            raise TypeError(f"{owner}: {self.rnn_name} must be a {expected} (or rlmods' "
                            f"{self.python_class.__name__}), got {type(rnn).__name__}.")
        if not rnn.batch_first:
            raise ValueError(f"{owner}: the {self.rnn_name} must have batch_first=True, got False.")
        setattr(self, self.rnn_name, rnn)
        self.in_keys = self._keys(owner, "in", in_key, in_keys, self.DEFAULT_IN_KEYS)
        self.out_keys = self._keys(owner, "out", out_key, out_keys, self.DEFAULT_OUT_KEYS)
        if self.in_keys[-1] != IS_INIT:
            self.in_keys = [*self.in_keys, IS_INIT]
        self._recurrent_mode = default_recurrent_mode
        self._plan = (None,)
        self._planned()  # worked out now, so that a call only reads it

    def _keys(self, owner, kind, key, keys, defaults) -> list:
        if (key is None) == (keys is None):
            raise ValueError(f"{owner}: give exactly one of {kind}_key and {kind}_keys, got "
                             f"{kind}_key={key!r} and {kind}_keys={keys!r}.")
        keys = unravel_key_list([key, *defaults] if keys is None else list(keys))
        count = 1 + len(defaults)
        if len(keys) != count and not (kind == "in" and len(keys) == count + 1
                                       and keys[-1] == IS_INIT):
            extra = f" (and optionally {IS_INIT!r} last)" if kind == "in" else ""
            raise ValueError(f"{owner}: {kind}_keys must hold the {kind}put key and "
                             f"{len(defaults)} recurrent state key(s){extra}, got {keys}.")
        return keys

    @property
    def rnn(self) -> nn.RNNBase:
        return self._modules[self.rnn_name]

    @property
    def recurrent_mode(self) -> bool:
        mode = recurrent_mode()
        return bool(self._recurrent_mode) if mode is None else mode

    @recurrent_mode.setter
    def recurrent_mode(self, value) -> None:  # torchrl: RuntimeError
        raise InvalidValueError(f"{type(self).__name__}: recurrent_mode cannot be set on the "
                                "module, got an assignment; use `with set_recurrent_mode(True):` "
                                "or default_recurrent_mode=.")

    def _state_shapes(self) -> list[tuple]:
        """``(num_layers * directions, size)`` of each recurrent state."""
        rnn = self.rnn
        layers = rnn.num_layers * (2 if rnn.bidirectional else 1)
        sizes = [rnn.proj_size or rnn.hidden_size] + [rnn.hidden_size] * (rnn.mode == "LSTM")
        return [(layers, size) for size in sizes]

    def _planned(self) -> tuple:
        """``(network, cell, weight slots, state shapes)``: what a call needs from the network.

        Worked out at construction, and again when the network held is no longer the one
        planned for (``make_python_based``, or a network assigned to the attribute).
        """
        rnn = self.rnn
        if self._plan[0] is not rnn:
            python = isinstance(rnn, _PythonRNN) or rnn.proj_size > 0
            cell = self.python_cell if python else self.fused_cell
            self._plan = (rnn, cell, weight_slots(rnn), self._state_shapes())
        return self._plan

    def _forward_td(self, tensordict):
        x = read_entry(tensordict, self.in_keys[0], self)  # (*batch, F)
        is_init = get_entry(tensordict, self.in_keys[-1])  # (*batch, 1)
        if is_init is None:
            owner = type(self).__name__
            raise KeyError(f"{owner}: expected key {IS_INIT!r} (True where a trajectory starts) "
                           "in the input tensordict; add InitTracker() to the environment: "
                           "TransformedEnv(env, InitTracker()).")
        states = [get_entry(tensordict, key) for key in self.in_keys[1:-1]]
        if self.recurrent_mode:
            y, states = self._sequence(tensordict.batch_size, x, states, is_init)
        else:
            y, states = self._step(x, states, is_init)
        # out_keys_source: every output's key, also after select_out_keys (torchrl: IndexError)
        for key, value in zip(self.out_keys_source, (y, *states)):
            _write_output(tensordict, key, value)
        return tensordict

    @dispatch
    def _fallback(self, tensordict):
        """Tensors in (``module(obs=..., is_init=...)``), the out_keys' tensors out."""
        return self._forward_td(tensordict)

    def _check_states(self, states, batch_shape, is_init, shapes) -> None:
        """Shapes only (no value is read): ``is_init`` and each state given."""
        owner = type(self).__name__
        if is_init.shape != (*batch_shape, 1):
            check_trailing_shape(is_init, (*batch_shape, 1), owner, key_str(IS_INIT))
        missing = []
        for key, value, shape in zip(self.in_keys[1:-1], states, shapes):
            if value is None:
                missing.append(key)
            elif value.shape != (*batch_shape, *shape):
                check_trailing_shape(value, (*batch_shape, *shape), owner, key_str(key))
        if missing and len(missing) < len(states):
            raise KeyError(f"{owner}: expected every recurrent state key in the input "
                           f"tensordict, {missing} missing.")

    def _missing_state_error(self) -> KeyError:
        """What a rollout in an env without the primer runs into (torchrl: silent zeros)."""
        owner = type(self).__name__
        keys = ", ".join(key_str(key) for key in self.in_keys[1:-1])
        return KeyError(f"{owner}: expected the recurrent state {keys} in the input tensordict "
                        "at a step that does not start a trajectory (is_init is False): the "
                        "environment does not carry the state from step to step. Add the "
                        "primer: env.append_transform(get_primers_from_module(policy)).")

    def _step(self, x, states, is_init):
        """Sequential mode: one step for every entry of the batch; the state restarts at is_init."""
        rnn, cell, slots, shapes = self._planned()
        batch_shape = x.shape[:-1]
        self._check_states(states, batch_shape, is_init, shapes)
        flat = len(batch_shape) == 1  # (B, ...) already: a reshape would cost a tensor op
        x = x if flat else x.reshape(-1, x.shape[-1])  # (B, F)
        if states[0] is None:
            if not bool(is_init.all()):
                raise self._missing_state_error()
            zeros = {shape: x.new_zeros(x.shape[0], *shape) for shape in shapes}  # h, c: one
            states = [zeros[shape] for shape in shapes]
        else:
            restart = is_init.reshape(-1, 1, 1)  # (B, 1, 1)
            states = [(s if flat else s.reshape(-1, *s.shape[-2:])).masked_fill(restart, 0.0)
                      for s in states]
        if rnn.bidirectional:  # both directions over a one-step sequence: torch.nn's layer
            y, states = self._run(x.unsqueeze(1), states)
            y = y.squeeze(1)
        else:
            layers = list(zip(*(s.unbind(1) for s in states)))  # per layer: (h, c) or (h,)
            y, layers = step_layers(cell, x, layers, layer_weights(rnn, slots), rnn.dropout,
                                    rnn.training)
            # (B, layers, H) each; of one layer, a view: cheaper than a stack of one
            states = [torch.stack(s, 1) if len(s) > 1 else s[0].unsqueeze(1)
                      for s in zip(*layers)]
        if flat:
            return y, states
        return (y.reshape(*batch_shape, -1),
                [s.reshape(*batch_shape, *s.shape[1:]) for s in states])

    def _sequence(self, batch_size, x, states, is_init):
        """Recurrent mode: the last batch dim is time; each trajectory starts from zeros."""
        owner = type(self).__name__
        if not batch_size:
            raise ValueError(f"{owner}: in recurrent mode the tensordict needs a time dim (its "
                             "last batch dim), got batch_size ().")
        shapes = self._planned()[3]
        self._check_states(states, batch_size, is_init, shapes)
        steps = batch_size[-1]
        x = x.reshape(-1, steps, x.shape[-1])  # (B, T, F)
        resets = is_init.reshape(-1, steps)  # (B, T)
        first = [x.new_zeros(x.shape[0], *shape) if s is None  # the state stored at step 0
                 else s.reshape(-1, steps, *shape)[:, 0]
                 for s, shape in zip(states, shapes)]
        # torch.compile cannot branch on values: it traces the loop, which handles any resets
        if not torch.compiler.is_compiling() and not resets[:, 1:].any():  # one per row: one call
            restart = resets[:, :1, None]  # (B, 1, 1)
            y, finals = self._run(x, [s.masked_fill(restart, 0.0) for s in first])
            outs = [final.new_zeros(final.shape[0], steps, *final.shape[1:]) for final in finals]
            for out, final in zip(outs, finals):  # as torchrl: the final state at the last step
                out[:, -1] = final
        elif self.rnn.bidirectional:  # the backward direction needs each trajectory apart
            y, outs = self._padded(x, first, resets)
        else:
            y, outs = self._loop(x, first, resets)
        return (y.reshape(*batch_size, -1),
                [out.reshape(*batch_size, *out.shape[2:]) for out in outs])

    def _loop(self, x, first, resets):
        """Resets inside rows: step through time, zeroing the state at each ``is_init``.

        As torchrl, the output states hold each trajectory's final state at its last step,
        zeros elsewhere.
        """
        rnn, cell, slots, _ = self._planned()
        layers = list(zip(*(s.unbind(1) for s in first)))  # per layer: (h, c) or (h,)
        y, history = run_layers(cell, x, layers, layer_weights(rnn, slots), rnn.dropout,
                                rnn.training, reset=resets)
        ends = torch.ones_like(resets)  # the last step of each trajectory
        ends[:, :-1] = resets[:, 1:]
        outs = []
        for k in range(len(first)):  # state k after each step: (B, T, layers, H)
            after = torch.stack([torch.stack([layer[k] for layer in step], 1) for step in history],
                                1)
            outs.append(after.masked_fill(~ends[..., None, None], 0.0))
        return y, outs

    def _padded(self, x, first, resets):
        """Resets inside rows, bidirectional: cut the rows into trajectories, pad, run, unpad."""
        batch, steps = resets.shape
        segment, position, starts, lengths = split_trajectories(resets)
        restart = resets.reshape(-1)[starts].view(-1, 1, 1)  # (N, 1, 1)
        rows = starts // steps  # a trajectory inside a row starts at is_init: from zero
        first = [s[rows].masked_fill(restart, 0.0) for s in first]
        padded = x.new_zeros(len(starts), int(lengths.max()), x.shape[-1])  # (N, T', F)
        padded[segment, position] = x.reshape(batch * steps, -1)
        y, finals = self._run(padded, first, lengths)
        outs = []
        for final in finals:  # each trajectory's final state at its last step
            out = final.new_zeros(batch * steps, *final.shape[1:])
            out[starts + lengths - 1] = final
            outs.append(out.view(batch, steps, *final.shape[1:]))
        return y[segment, position].view(batch, steps, -1), outs

    def _run(self, x, states, lengths=None):
        """``x`` ``(N, T, F)`` from ``states`` ``(N, layers, H)`` → outputs and final states.

        ``lengths`` ``(N,)``: the real steps of each padded row, which torch.nn's layer reads
        from a packed sequence.
        """
        hx = tuple(s.transpose(0, 1).contiguous() for s in states)  # (layers, N, H) each
        hx = hx if len(hx) > 1 else hx[0]
        if lengths is None:
            y, hx = self.rnn(x, hx)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                                       enforce_sorted=False)
            y, hx = self.rnn(packed, hx)
            y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        hx = hx if isinstance(hx, tuple) else (hx,)
        return y, [h.transpose(0, 1) for h in hx]

    def make_tensordict_primer(self) -> TensorDictPrimer:
        """A primer that puts zero recurrent states in every reset (and declares them)."""
        owner = type(self).__name__
        primers = {}
        for in_key, out_key, shape in zip(self.in_keys[1:-1], self.out_keys_source[1:],
                                          self._state_shapes()):
            if _as_tuple(out_key) != (NEXT, *_as_tuple(in_key)):  # torchrl: RuntimeError
                raise InvalidValueError(
                    f"{owner}: make_tensordict_primer needs each state out_key to be "
                    f"('next', <in_key>), got in_keys={self.in_keys} and out_keys="
                    f"{self.out_keys_source}.")
            primers[in_key] = Unbounded(shape=shape)
        return TensorDictPrimer(primers, expand_specs=True)

    def make_python_based(self):
        """Swap the torch.nn layer for the Python one (same weights); returns self."""
        return self._swap(self.python_class)

    def make_cudnn_based(self):
        """Swap the Python layer for torch.nn's fused one (same weights); returns self."""
        return self._swap(self.torch_class)

    def _swap(self, cls):
        old = self.rnn
        if type(old) is cls:
            return self
        extra = {"proj_size": old.proj_size} if old.mode == "LSTM" else {}
        new = cls(input_size=old.input_size, hidden_size=old.hidden_size,
                  num_layers=old.num_layers, bias=old.bias, batch_first=True,
                  dropout=old.dropout, bidirectional=old.bidirectional, **extra)
        new.load_state_dict(old.state_dict())
        weight = next(old.parameters())
        new = new.to(device=weight.device, dtype=weight.dtype).train(old.training)
        setattr(self, self.rnn_name, new)
        return self


def _check_backend(owner: str, recurrent_backend, recurrent_compute_dtype, recurrent_recompute,
                   recurrent_matmul_precision) -> None:
    if recurrent_backend not in TORCHRL_BACKENDS:
        raise ValueError(f"{owner}: recurrent_backend must be one of {list(RECURRENT_BACKENDS)}, "
                         f"got {recurrent_backend!r}.")
    if recurrent_backend not in RECURRENT_BACKENDS:  # torchrl's optional backends
        raise InvalidValueError(f"{owner}: recurrent_backend {recurrent_backend!r} is not "
                                f"provided by rlmods, use one of {list(RECURRENT_BACKENDS)}.")
    if recurrent_recompute not in ("none", "full"):
        raise ValueError(f"{owner}: recurrent_recompute must be 'none' or 'full', got "
                         f"{recurrent_recompute!r}.")
    if recurrent_recompute != "none":  # as torchrl: only for its scan and triton backends
        raise ValueError(f"{owner}: recurrent_recompute must be 'none' with the "
                         f"{recurrent_backend!r} backend, got {recurrent_recompute!r}.")
    if recurrent_compute_dtype != torch.float32:  # only torchrl's triton backend reads them
        raise InvalidValueError(f"{owner}: recurrent_compute_dtype is only used by torchrl's "
                                f"triton backend, got {recurrent_compute_dtype}.")
    if recurrent_matmul_precision != "auto":
        raise InvalidValueError(f"{owner}: recurrent_matmul_precision is only used by "
                                f"torchrl's triton backend, got {recurrent_matmul_precision!r}.")


def _build_rnn(owner: str, module_cls, given, python_based: bool, **kwargs):
    """The module given (``lstm=``/``gru=``), else a new Python or torch.nn layer."""
    if given is not None:
        if kwargs["input_size"] is not None or kwargs["hidden_size"] is not None:
            raise ValueError(f"{owner}: give either a layer or input_size/hidden_size, not both.")
        return given
    if not kwargs["batch_first"]:
        raise ValueError(f"{owner}: batch_first must be True, got False.")
    if not kwargs["hidden_size"]:
        raise ValueError(f"{owner}: hidden_size must be passed, got {kwargs['hidden_size']!r}.")
    if python_based and kwargs["bidirectional"]:
        raise ValueError(f"{owner}: python_based=True does not support bidirectional=True.")
    cls = module_cls.python_class if python_based else module_cls.torch_class
    return cls(**kwargs)


class LSTMModule(_RecurrentModule):
    """An LSTM on a tensordict: one step per call, or a whole time dim in recurrent mode.

    Reads ``in_keys = [value, h, c, "is_init"]`` and writes ``out_keys = [out, ("next", h),
    ("next", c)]``; ``value`` is ``(*batch, input_size)``, ``h`` and ``c`` are
    ``(*batch, num_layers, hidden_size)``, ``out`` is ``(*batch, hidden_size)``. Sequential
    mode (the default) runs one step and zeroes the state where ``is_init``; inside
    ``set_recurrent_mode(True)`` the last batch dim is time: every trajectory (a row, cut
    again wherever ``is_init`` is set) starts from its first step's state, zero where
    ``is_init``, and the output states hold each trajectory's final state at its last step
    (zeros elsewhere), as torchrl's. Without ``is_init`` or, after a first step, without the
    states, it raises and says which transform to add. Built in chapter *Recurrent modules*.

    Args:
        input_size, hidden_size, num_layers, bias, dropout, proj_size, bidirectional: as in
            ``torch.nn.LSTM``; ``batch_first`` must be True.
        python_based (bool): use :class:`LSTM` (Python cells) instead of ``torch.nn.LSTM``.
        recurrent_backend (str): ``"pad"`` (the default) or ``"auto"`` (the same here).
        recurrent_compute_dtype, recurrent_recompute, recurrent_matmul_precision: torchrl's
            options of its other backends; only their defaults.

    Keyword Args:
        in_key, out_key: the value keys; the state keys are then ``"recurrent_state_h"`` and
            ``"recurrent_state_c"`` (read at the root, written under ``"next"``).
        in_keys, out_keys: all keys, instead.
        device: of the parameters.
        lstm (nn.LSTM, optional): a layer to wrap (with ``batch_first=True``).
        default_recurrent_mode (bool, optional): the mode outside ``set_recurrent_mode``.

    Examples:
        >>> from tensordict import TensorDict
        >>> module = LSTMModule(input_size=3, hidden_size=8, in_key="obs", out_key="features")
        >>> td = TensorDict(obs=torch.randn(4, 3), is_init=torch.ones(4, 1, dtype=torch.bool),
        ...                 batch_size=[4])
        >>> td = module(td)
        >>> td["features"].shape, td["next", "recurrent_state_h"].shape
        (torch.Size([4, 8]), torch.Size([4, 1, 8]))
        >>> with set_recurrent_mode(True):
        ...     out = module(TensorDict(obs=torch.randn(4, 10, 3),
        ...                             is_init=torch.zeros(4, 10, 1, dtype=torch.bool),
        ...                             batch_size=[4, 10]))
        >>> out["features"].shape
        torch.Size([4, 10, 8])
    """

    DEFAULT_IN_KEYS = [RECURRENT_STATE_H, RECURRENT_STATE_C]
    DEFAULT_OUT_KEYS = [(NEXT, RECURRENT_STATE_H), (NEXT, RECURRENT_STATE_C)]
    rnn_name, python_class, torch_class = "lstm", LSTM, nn.LSTM
    python_cell, fused_cell = staticmethod(lstm_cell), staticmethod(fused_lstm_cell)

    def __init__(self, input_size: int | None = None, hidden_size: int | None = None,
                 num_layers: int = 1, bias: bool = True, batch_first=True, dropout=0,
                 proj_size=0, bidirectional=False, python_based=False,
                 recurrent_backend: str = "pad", recurrent_compute_dtype=torch.float32,
                 recurrent_recompute: str = "none", recurrent_matmul_precision: str = "auto",
                 *, in_key=None, in_keys=None, out_key=None, out_keys=None, device=None,
                 lstm=None, default_recurrent_mode: bool | None = None):
        super().__init__()
        owner = type(self).__name__
        _check_backend(owner, recurrent_backend, recurrent_compute_dtype, recurrent_recompute,
                       recurrent_matmul_precision)
        lstm = _build_rnn(owner, type(self), lstm, python_based, input_size=input_size,
                          hidden_size=hidden_size, num_layers=num_layers, bias=bias,
                          batch_first=batch_first, dropout=dropout, proj_size=proj_size,
                          bidirectional=bidirectional, device=device)
        self.recurrent_backend = recurrent_backend
        self._setup(lstm, in_key, in_keys, out_key, out_keys, default_recurrent_mode)


class GRUModule(_RecurrentModule):
    """A GRU on a tensordict: one step per call, or a whole time dim in recurrent mode.

    Reads ``in_keys = [value, h, "is_init"]`` and writes ``out_keys = [out, ("next", h)]``;
    shapes and modes as :class:`LSTMModule`, with one state (default key
    ``"recurrent_state"``). Built in chapter *Recurrent modules*.

    Args:
        input_size, hidden_size, num_layers, bias, dropout, bidirectional: as in
            ``torch.nn.GRU``; ``batch_first`` must be True.
        python_based (bool): use :class:`GRU` (Python cells) instead of ``torch.nn.GRU``.
        recurrent_backend (str): ``"pad"`` (the default) or ``"auto"`` (the same here).
        recurrent_compute_dtype, recurrent_recompute, recurrent_matmul_precision: torchrl's
            options of its other backends; only their defaults.

    Keyword Args:
        in_key, out_key, in_keys, out_keys, device, default_recurrent_mode: as in
            :class:`LSTMModule`.
        gru (nn.GRU, optional): a layer to wrap (with ``batch_first=True``).

    Examples:
        >>> from tensordict import TensorDict
        >>> module = GRUModule(input_size=3, hidden_size=8, in_key="obs", out_key="features")
        >>> primer = module.make_tensordict_primer()
        >>> primer.primers["recurrent_state"].shape
        torch.Size([1, 8])
        >>> td = TensorDict(obs=torch.randn(3), is_init=torch.tensor([True]))
        >>> module(td)["next", "recurrent_state"].shape
        torch.Size([1, 8])
    """

    DEFAULT_IN_KEYS = [RECURRENT_STATE]
    DEFAULT_OUT_KEYS = [(NEXT, RECURRENT_STATE)]
    rnn_name, python_class, torch_class = "gru", GRU, nn.GRU
    python_cell, fused_cell = staticmethod(gru_cell), staticmethod(fused_gru_cell)

    def __init__(self, input_size: int | None = None, hidden_size: int | None = None,
                 num_layers: int = 1, bias: bool = True, batch_first=True, dropout=0,
                 bidirectional=False, python_based=False, recurrent_backend: str = "pad",
                 recurrent_compute_dtype=torch.float32, recurrent_recompute: str = "none",
                 recurrent_matmul_precision: str = "auto", *, in_key=None, in_keys=None,
                 out_key=None, out_keys=None, device=None, gru=None,
                 default_recurrent_mode: bool | None = None):
        super().__init__()
        owner = type(self).__name__
        _check_backend(owner, recurrent_backend, recurrent_compute_dtype, recurrent_recompute,
                       recurrent_matmul_precision)
        gru = _build_rnn(owner, type(self), gru, python_based, input_size=input_size,
                         hidden_size=hidden_size, num_layers=num_layers, bias=bias,
                         batch_first=batch_first, dropout=dropout, bidirectional=bidirectional,
                         device=device)
        self.recurrent_backend = recurrent_backend
        self._setup(gru, in_key, in_keys, out_key, out_keys, default_recurrent_mode)


def get_primers_from_module(module: nn.Module, warn: bool = True, strict: bool = True):
    """The primers of every submodule that has ``make_tensordict_primer`` (a Compose if several).

    Args:
        module (nn.Module): the policy (or any module holding recurrent modules).
        warn (bool): warn when no submodule has a primer (then None is returned).
        strict (bool): let a submodule's error propagate; if False, warn and skip it.

    Examples:
        >>> from tensordict.nn import TensorDictSequential
        >>> policy = TensorDictSequential(
        ...     LSTMModule(input_size=3, hidden_size=8, in_key="obs", out_key="h1"),
        ...     GRUModule(input_size=8, hidden_size=4, in_key="h1", out_key="h2"))
        >>> sorted(get_primers_from_module(policy).transforms[0].primers.keys())
        ['recurrent_state_c', 'recurrent_state_h']
    """
    primers, failures = [], []
    for submodule in module.modules():
        if not hasattr(submodule, "make_tensordict_primer"):
            continue
        try:
            primers.append(submodule.make_tensordict_primer())
        except Exception as error:  # noqa: BLE001 - reported below when strict=False
            if strict:
                raise
            failures.append(f"{type(submodule).__name__}: {error}")
    if failures:
        warnings.warn("get_primers_from_module: skipped submodules whose primer could not be "
                      "built: " + "; ".join(failures), stacklevel=2)
    if not primers:
        if warn:
            warnings.warn("get_primers_from_module: no primers found in the module.", stacklevel=2)
        return None
    return primers[0] if len(primers) == 1 else Compose(*primers)
