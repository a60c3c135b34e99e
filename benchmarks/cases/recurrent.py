"""Case 4: ``LSTMModule`` / ``GRUModule``, one step at batch 1 and 128 steps with resets."""

from __future__ import annotations

import torch
from tensordict import TensorDict

import rlmods
from benchmarks.common import OBS_DIM
from benchmarks.registry import case, torchrl_or_none

HIDDEN = 64
STEPS, QUICK_STEPS = 128, 16
RESET_PROBABILITY = 0.02  # about two or three new trajectories per row of 128 steps


def _modules(kind: str, device):
    """rlmods' module, torchrl's with the same weights (or None), the torch.nn cell."""
    ours = getattr(rlmods, f"{kind}Module")(input_size=OBS_DIM, hidden_size=HIDDEN,
                                            in_key="observation", out_key="features",
                                            device=device)
    torchrl = torchrl_or_none()
    theirs = None
    if torchrl is not None:
        theirs = getattr(torchrl.modules, f"{kind}Module")(
            input_size=OBS_DIM, hidden_size=HIDDEN, in_key="observation", out_key="features",
            device=device)
        theirs.load_state_dict(ours.state_dict())
    cell = getattr(torch.nn, f"{kind}Cell")(OBS_DIM, HIDDEN, device=device)
    cell.load_state_dict({name.removesuffix("_l0"): value
                          for name, value in ours.rnn.state_dict().items()})
    return ours, theirs, cell


def _state_keys(kind: str) -> list[str]:
    return ["recurrent_state_h", "recurrent_state_c"] if kind == "LSTM" else ["recurrent_state"]


def _step_case(setting, kind: str) -> dict:
    ours, theirs, cell = _modules(kind, setting.device)
    generator = torch.Generator().manual_seed(0)
    batch, device = setting.batch, setting.device
    obs = torch.randn(batch, OBS_DIM, generator=generator).to(device)
    states = [torch.randn(batch, HIDDEN, generator=generator).to(device) for _ in _state_keys(kind)]
    td = TensorDict({"observation": obs, "is_init": torch.zeros(batch, 1, dtype=torch.bool),
                     **{key: s.unsqueeze(1) for key, s in zip(_state_keys(kind), states)}},
                    batch_size=[batch], device=device)
    hx = tuple(states) if kind == "LSTM" else states[0]
    candidates = {"torch": lambda: cell(obs, hx), "rlmods": lambda: ours(td)}
    if theirs is not None:
        candidates["torchrl"] = lambda: theirs(td)
    return candidates


STEP_GOALS = {1: {"rlmods/torch": 1.5, "rlmods/torchrl": 0.2}}


@case("lstm_step", batches=(1,), goals=STEP_GOALS)
def lstm_step(setting):
    """LSTMModule (hidden 64), one step, vs a bare nn.LSTMCell."""
    return _step_case(setting, "LSTM")


@case("gru_step", batches=(1,), goals=STEP_GOALS)
def gru_step(setting):
    """GRUModule (hidden 64), one step, vs a bare nn.GRUCell."""
    return _step_case(setting, "GRU")


def loop_by_hand(cell, x, resets, states):
    """The floor: the fused cell over time, the state zeroed in the rows that restart.

    ``x`` ``(B, T, F)``, ``resets`` ``(B, T, 1)``; returns the outputs ``(B, T, H)``.
    """
    outputs = []
    for x_t, reset_t in zip(x.unbind(1), resets.unbind(1)):
        states = tuple(s.masked_fill(reset_t, 0.0) for s in states)
        states = cell(x_t, states) if len(states) == 2 else (cell(x_t, states[0]),)
        outputs.append(states[0])
    return torch.stack(outputs, 1)


def _sequence_case(setting, kind: str) -> dict:
    ours, theirs, cell = _modules(kind, setting.device)
    steps = QUICK_STEPS if setting.quick else STEPS
    batch, device = setting.batch, setting.device
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, steps, OBS_DIM, generator=generator).to(device)
    resets = torch.rand(batch, steps, 1, generator=generator) < RESET_PROBABILITY
    resets[:, 0] = True
    resets = resets.to(device)
    td = TensorDict({"observation": x, "is_init": resets}, batch_size=[batch, steps],
                    device=device)
    zeros = tuple(torch.zeros(batch, HIDDEN, device=device) for _ in _state_keys(kind))

    def rlmods_sequence():
        with rlmods.set_recurrent_mode(True):
            return ours(td.copy())

    candidates = {"torch": lambda: loop_by_hand(cell, x, resets, zeros),
                  "rlmods": rlmods_sequence}
    if theirs is not None:
        from torchrl.modules import set_recurrent_mode

        def torchrl_sequence():
            with set_recurrent_mode(True):
                return theirs(td.copy())

        candidates["torchrl"] = torchrl_sequence
    return candidates


@case("lstm_sequence_resets", batches=(32,), goals={32: {}})
def lstm_sequence(setting):
    """LSTMModule, 128 steps in recurrent mode with resets, vs a loop of nn.LSTMCell."""
    return _sequence_case(setting, "LSTM")


@case("gru_sequence_resets", batches=(32,), goals={32: {}})
def gru_sequence(setting):
    """GRUModule, 128 steps in recurrent mode with resets, vs a loop of nn.GRUCell."""
    return _sequence_case(setting, "GRU")
