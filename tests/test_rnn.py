"""Recurrent modules: cells, layers, LSTMModule/GRUModule against torch.nn and torchrl 0.14."""

import copy
import warnings

import pytest
import torch
import torchrl.envs
import torchrl.modules
from oracle_helpers import raised
from tensordict import TensorDict
from tensordict.nn import TensorDictModule, TensorDictSequential
from torch import nn

import rlmods
from rlmods import (GRU, LSTM, GRUCell, GRUModule, LSTMCell, LSTMModule, get_primers_from_module,
                    recurrent_mode, set_recurrent_mode)
from rlmods.rnn import split_trajectories

warnings.filterwarnings("ignore", message=".*dropout option adds dropout.*")
MODULES = {"lstm": (LSTMModule, torchrl.modules.LSTMModule),
           "gru": (GRUModule, torchrl.modules.GRUModule)}
STATES = {"lstm": ["recurrent_state_h", "recurrent_state_c"], "gru": ["recurrent_state"]}


def _pair(kind, **kwargs):
    """rlmods' and torchrl's module with the same arguments and weights."""
    ours_cls, theirs_cls = MODULES[kind]
    kwargs = {"input_size": 3, "hidden_size": 5, "in_key": "obs", "out_key": "y", **kwargs}
    theirs = theirs_cls(**kwargs)
    ours = ours_cls(**kwargs)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _trajectories(batch=(3,), steps=7, resets=((0, 3), (2, 5)), seed=0):
    g = torch.Generator().manual_seed(seed)
    is_init = torch.zeros(*batch, steps, 1, dtype=torch.bool)
    is_init[..., 0, :] = True
    flat = is_init.view(-1, steps)
    for row, t in resets:
        flat[row, t] = True
    return TensorDict(obs=torch.randn(*batch, steps, 3, generator=g), is_init=is_init,
                      batch_size=[*batch, steps])


def _leaves(td):
    return {key: td.get(key) for key in td.keys(True, True)}


# -- cells and layers ----------------------------------------------------------------------

@pytest.mark.parametrize("cls,torch_cls,torchrl_cls", [
    (LSTMCell, nn.LSTMCell, torchrl.modules.LSTMCell), (GRUCell, nn.GRUCell, torchrl.modules.GRUCell)])
@pytest.mark.parametrize("batched", [True, False])
def test_cells_match_torch_and_torchrl(cls, torch_cls, torchrl_cls, batched):
    ours, reference, theirs = cls(3, 4), torch_cls(3, 4), torchrl_cls(3, 4)
    reference.load_state_dict(ours.state_dict())
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(*((5,) if batched else ()), 3)
    h = torch.randn(*x.shape[:-1], 4)
    hx = (h, torch.randn_like(h)) if cls is LSTMCell else h
    for args in [(x,), (x, hx)]:
        expected, oracle = reference(*args), theirs(*args)
        got = ours(*args)
        torch.testing.assert_close(got, expected)
        torch.testing.assert_close(got, oracle)
    assert list(ours.state_dict()) == list(reference.state_dict())


def test_cell_errors():
    cell = LSTMCell(3, 4)
    with pytest.raises(ValueError, match=r"LSTMCell: input must be 1-D or 2-D, got shape \(1, 2, 3\)"):
        cell(torch.zeros(1, 2, 3))
    with pytest.raises(TypeError, match=r"LSTMCell: hx must be a tuple \(h, c\), got 1 tensor"):
        cell(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"GRUCell: hx must have as many dims as input \(2\), got "
                                         r"shape \(4,\)"):
        GRUCell(3, 4)(torch.zeros(2, 3), torch.zeros(4))


@pytest.mark.parametrize("cls,torch_cls,torchrl_cls", [
    (LSTM, nn.LSTM, torchrl.modules.LSTM), (GRU, nn.GRU, torchrl.modules.GRU)])
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_layers_match_torch_and_torchrl(cls, torch_cls, torchrl_cls, num_layers, bias):
    ours = cls(3, 4, num_layers=num_layers, bias=bias)
    reference = torch_cls(3, 4, num_layers=num_layers, bias=bias, batch_first=True)
    theirs = torchrl_cls(3, 4, num_layers=num_layers, bias=bias)
    reference.load_state_dict(ours.state_dict())
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 6, 3)
    h = torch.randn(num_layers, 2, 4)
    hx = (h, torch.randn_like(h)) if cls is LSTM else h
    for args in [(x,), (x, hx)]:
        torch.testing.assert_close(ours(*args), reference(*args))
        torch.testing.assert_close(ours(*args), theirs(*args))


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_lstm_projection_and_time_first_match_torch():
    ours = LSTM(3, 6, num_layers=2, proj_size=2, batch_first=False)
    reference = nn.LSTM(3, 6, num_layers=2, proj_size=2)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(7, 2, 3)  # (T, B, F)
    torch.testing.assert_close(ours(x), reference(x))


def test_dropout_acts_between_layers_only():
    """p=1 zeroes each layer's output but the last: layer 2 then sees zeros, in training only."""
    lstm = LSTM(3, 4, num_layers=2, dropout=1.0)
    x = torch.randn(2, 5, 3)
    second = nn.LSTM(4, 4, batch_first=True)
    second.load_state_dict({k.replace("_l1", "_l0"): v for k, v in lstm.state_dict().items()
                            if k.endswith("_l1")})
    torch.testing.assert_close(lstm.train()(x)[0], second(torch.zeros(2, 5, 4))[0])
    reference = nn.LSTM(3, 4, num_layers=2, dropout=1.0, batch_first=True)
    reference.load_state_dict(lstm.state_dict())
    torch.testing.assert_close(lstm.eval()(x), reference.eval()(x))


def test_layer_errors_and_their_types_match_torchrl():
    for cls, theirs in [(LSTM, torchrl.modules.LSTM), (GRU, torchrl.modules.GRU)]:
        name = cls.__name__
        with pytest.raises(NotImplementedError, match=f"{name}: bidirectional=True is not supported"):
            cls(3, 4, bidirectional=True)
        assert isinstance(raised(lambda: theirs(3, 4, bidirectional=True)), NotImplementedError)
        with pytest.raises(ValueError, match=f"{name}: use_scan=True is not supported"):
            cls(3, 4, use_scan=True)
        with pytest.raises(ValueError, match=rf"{name}: input must be 3-D .* got shape \(2, 3\)"):
            cls(3, 4)(torch.zeros(2, 3))
        assert isinstance(raised(lambda: theirs(3, 4)(torch.zeros(2, 3))), ValueError)
    with pytest.raises(ValueError, match=r"GRU: hx must have shape \(1, 2, 4\), got shape \(2, 4\)"):
        GRU(3, 4)(torch.zeros(2, 5, 3), torch.zeros(2, 4))


# -- the TensorDict modules: one step ------------------------------------------------------

@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("python_based", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("batch", [(), (4,), (2, 3)])
def test_one_step_matches_torchrl(kind, python_based, num_layers, batch):
    ours, theirs = _pair(kind, python_based=python_based, num_layers=num_layers)
    g = torch.Generator().manual_seed(1)
    td = TensorDict(obs=torch.randn(*batch, 3, generator=g),
                    is_init=torch.rand(*batch, 1, generator=g) > 0.5, batch_size=batch)
    for key in STATES[kind]:
        td[key] = torch.randn(*batch, num_layers, 5, generator=g)
    expected = _leaves(theirs(td.clone()))
    got = _leaves(ours(td.clone()))
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key])


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_missing_state_at_a_reset_is_zero_as_in_torchrl(kind):
    ours, theirs = _pair(kind)
    td = TensorDict(obs=torch.randn(4, 3), is_init=torch.ones(4, 1, dtype=torch.bool), batch_size=[4])
    torch.testing.assert_close(_leaves(ours(td.clone())), _leaves(theirs(td.clone())))


def test_one_step_bidirectional_matches_torchrl():
    ours, theirs = _pair("lstm", bidirectional=True, num_layers=2)
    td = TensorDict(obs=torch.randn(4, 3), is_init=torch.tensor([[True], [False]] * 2),
                    recurrent_state_h=torch.randn(4, 4, 5), recurrent_state_c=torch.randn(4, 4, 5),
                    batch_size=[4])
    torch.testing.assert_close(_leaves(ours(td.clone())), _leaves(theirs(td.clone())))


def _projected_step():
    td = TensorDict(obs=torch.randn(4, 3), is_init=torch.tensor([[True], [False]] * 2),
                    recurrent_state_h=torch.randn(4, 2, 2), recurrent_state_c=torch.randn(4, 2, 5),
                    batch_size=[4])
    return _pair("lstm", proj_size=2, num_layers=2), td


def test_one_step_with_proj_size_matches_torch_better_than_torchrl():
    (ours, _), td = _projected_step()
    out = ours(td.clone())
    keep = (~td["is_init"]).unsqueeze(-1)  # (4, 1, 1): the state restarts at is_init
    hx = tuple((td[key] * keep).transpose(0, 1) for key in STATES["lstm"])
    y, (h, c) = ours.lstm(td["obs"].unsqueeze(1), hx)  # torch.nn.LSTM, one step
    torch.testing.assert_close(out["y"], y.squeeze(1))
    torch.testing.assert_close(out["next", "recurrent_state_h"], h.transpose(0, 1))
    torch.testing.assert_close(out["next", "recurrent_state_c"], c.transpose(0, 1))


@pytest.mark.torchrl_bug
def test_torchrl_one_step_with_proj_size_fails():
    """torchrl zeroes c with zeros_like(h), whose last dim is proj_size: a RuntimeError."""
    (_, theirs), td = _projected_step()
    with pytest.raises(RuntimeError, match="must match the size"):
        theirs(td.clone())


def test_keyword_call_matches_the_tensordict_call():
    ours, _ = _pair("lstm")
    obs, h, c = torch.randn(4, 3), torch.randn(4, 1, 5), torch.randn(4, 1, 5)
    is_init = torch.zeros(4, 1, dtype=torch.bool)
    y, h_next, c_next = ours(obs=obs, recurrent_state_h=h, recurrent_state_c=c, is_init=is_init)
    td = ours(TensorDict(obs=obs, recurrent_state_h=h, recurrent_state_c=c, is_init=is_init,
                         batch_size=[4]))
    torch.testing.assert_close((y, h_next, c_next), (td["y"], td["next", "recurrent_state_h"],
                                                     td["next", "recurrent_state_c"]))


def test_state_dict_keys_match_torchrl():
    for kind in MODULES:
        ours, theirs = _pair(kind, num_layers=2)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert ours.in_keys == theirs.in_keys and ours.out_keys == theirs.out_keys


# -- the plain call's short path -----------------------------------------------------------

def _step_td(kind, batch, with_next, num_layers=2):
    g = torch.Generator().manual_seed(3)
    td = TensorDict(obs=torch.randn(*batch, 3, generator=g),
                    is_init=torch.rand(*batch, 1, generator=g) > 0.5, batch_size=batch)
    for key in STATES[kind]:
        td[key] = torch.randn(*batch, num_layers, 5, generator=g)
    if with_next:  # an env's step already wrote "next": the module writes into it
        td["next", "reward"] = torch.ones(*batch, 1)
    return td


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("batch", [(), (4,), (2, 3)])
@pytest.mark.parametrize("with_next", [False, True])
def test_plain_call_writes_what_the_fallback_and_set_write(kind, batch, with_next, monkeypatch):
    ours, _ = _pair(kind, num_layers=2)
    td = _step_td(kind, batch, with_next)
    outputs = ours(**{key: td[key] for key in ours.in_keys})  # keyword tensors: the fallback
    expected = td.clone()
    for key, value in zip(ours.out_keys, outputs):
        expected.set(key, value)
    monkeypatch.setattr(type(ours), "_fallback", lambda *args, **kwargs: 1 / 0)
    got = ours(td.clone())  # the plain call never reaches the fallback
    assert set(got.keys(True, True)) == set(expected.keys(True, True))
    for key in expected.keys(True, True):
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)
    assert got["next"].batch_size == expected["next"].batch_size == torch.Size(batch)
    assert type(got["next"]) is TensorDict


def _counted(name, calls):
    """TensorDict's method ``name``, noting each call in ``calls``."""
    general = getattr(TensorDict, name)

    def method(self, *args, **kwargs):
        calls.append(name)
        return general(self, *args, **kwargs)

    return method


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_the_step_writes_into_next_without_tensordict_set(kind, monkeypatch):
    """The step's reads and writes skip TensorDict's general get/set (a few µs each)."""
    ours, _ = _pair(kind)
    td = _step_td(kind, (4,), with_next=True, num_layers=1)
    calls = []
    for name in ("get", "set"):
        monkeypatch.setattr(TensorDict, name, _counted(name, calls))
    ours(td)
    assert calls == []
    ours(td.exclude("next"))  # no "next" yet: set creates it, as for any nested key
    assert calls == ["set"]


def test_a_network_assigned_after_construction_is_planned_again():
    ours, _ = _pair("lstm")
    replacement, theirs = _pair("lstm", num_layers=2)
    ours.lstm = replacement.lstm  # two layers now: other weights, other state shapes
    td = _step_td("lstm", (4,), with_next=False)
    torch.testing.assert_close(_leaves(ours(td.clone())), _leaves(theirs(td.clone())))


def test_a_policy_sequence_calls_the_step_directly():
    module, _ = _pair("gru")
    assert rlmods.actors.sequence_step(module) == module._forward_td


# -- recurrent mode ------------------------------------------------------------------------

def test_split_trajectories():
    is_init = torch.tensor([[False, True, False], [True, False, True]])
    segment, position, starts, lengths = split_trajectories(is_init)
    assert segment.tolist() == [0, 1, 1, 2, 2, 3]
    assert position.tolist() == [0, 0, 1, 0, 1, 0]
    assert starts.tolist() == [0, 1, 3, 5] and lengths.tolist() == [1, 2, 2, 1]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("python_based", [False, True])
@pytest.mark.parametrize("batch,resets", [((), ((0, 4),)), ((3,), ((0, 3), (2, 5), (2, 6))),
                                          ((2, 2), ((1, 1), (3, 2))), ((3,), ())])
def test_recurrent_mode_matches_torchrl(kind, python_based, batch, resets):
    ours, theirs = _pair(kind, python_based=python_based, num_layers=2)
    td = _trajectories(batch, resets=resets)
    with torchrl.modules.set_recurrent_mode(True):
        expected = _leaves(theirs(td.clone()))
    with set_recurrent_mode(True):
        got = _leaves(ours(td.clone()))
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key])


def test_recurrent_mode_bidirectional_matches_torchrl():
    ours, theirs = _pair("gru", bidirectional=True)
    td = _trajectories((3,))
    with torchrl.modules.set_recurrent_mode(True):
        expected = _leaves(theirs(td.clone()))
    with set_recurrent_mode(True):
        torch.testing.assert_close(_leaves(ours(td.clone())), expected)


def _step_through(module, td, kind):
    """Sequential mode over (B, T): each step reads the state the previous one wrote."""
    outputs, state = [], {}
    for t in range(td.shape[-1]):
        step = module(td[:, t].clone().update(state))
        outputs.append(step["y"])
        state = {key: step["next", key] for key in STATES[kind]}
    return torch.stack(outputs, 1)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("python_based", [False, True])
def test_sequential_and_recurrent_mode_agree_across_resets(kind, python_based):
    module, _ = _pair(kind, python_based=python_based, num_layers=2)
    td = _trajectories((3,), steps=9, resets=((0, 3), (1, 8), (2, 2), (2, 5)))
    sequential = _step_through(module, td, kind)
    with set_recurrent_mode(True):
        torch.testing.assert_close(module(td.clone())["y"], sequential)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("t", [1, 2])
def test_recurrent_mode_restarts_a_row_at_its_second_step(kind, t):
    """A reset at t = 1 or 2 only: recurrent mode must not take its no-reset shortcut."""
    module, _ = _pair(kind)
    td = _trajectories((2,), steps=4, resets=((1, t),))
    sequential = _step_through(module, td, kind)
    with set_recurrent_mode(True):
        torch.testing.assert_close(module(td.clone())["y"], sequential)


def _with_stale_state(kind):
    """Trajectories whose stored state at an is_init step is not zero (a random primer)."""
    td = _trajectories((2,), steps=6, resets=((0, 3),))
    for key in STATES[kind]:
        td[key] = torch.randn(2, 6, 1, 5)
    return td


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_recurrent_mode_restarts_from_zero_at_is_init_better_than_torchrl(kind):
    module, _ = _pair(kind)
    td = _with_stale_state(kind)
    sequential = _step_through(module, td, kind)
    with set_recurrent_mode(True):
        torch.testing.assert_close(module(td.clone())["y"], sequential)


@pytest.mark.torchrl_bug
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_torchrl_recurrent_mode_keeps_a_stale_state_at_is_init(kind):
    """torchrl's sequential mode zeroes the state at is_init, its recurrent mode does not."""
    _, theirs = _pair(kind)
    td = _with_stale_state(kind)
    sequential = _step_through(theirs, td, kind)
    with torchrl.modules.set_recurrent_mode(True):
        recurrent = theirs(td.clone())["y"]
    assert not torch.allclose(recurrent[:, 0], sequential[:, 0])


def test_recurrent_mode_gradients_match_torchrl():
    ours, theirs = _pair("lstm", num_layers=2)
    td = _trajectories((3,))
    with torchrl.modules.set_recurrent_mode(True):
        theirs(td.clone())["y"].square().sum().backward()
    with set_recurrent_mode(True):
        ours(td.clone())["y"].square().sum().backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_modes_context_decorator_and_default():
    module = GRUModule(input_size=3, hidden_size=4, in_key="obs", out_key="y",
                       default_recurrent_mode=True)
    assert module.recurrent_mode is True and recurrent_mode() is None
    with set_recurrent_mode("sequential"):
        assert module.recurrent_mode is False
        with set_recurrent_mode():
            assert recurrent_mode() is True
        assert recurrent_mode() is False

    @set_recurrent_mode(True)
    def inside():
        return recurrent_mode()

    assert inside() is True and recurrent_mode() is None


@pytest.mark.parametrize("kind, kwargs", [
    ("lstm", {"num_layers": 2, "bias": False, "dropout": 0.25}),
    ("gru", {"num_layers": 3, "dropout": 0.5}),
    ("lstm", {"proj_size": 2}),
    ("gru", {"bias": False})])
def test_python_and_cudnn_swaps_keep_the_configuration(kind, kwargs):
    module, _ = _pair(kind, **kwargs)
    module = module.to(torch.float64).eval()
    config = ("input_size", "hidden_size", "num_layers", "bias", "dropout", "bidirectional",
              "batch_first", "proj_size")

    def settings(rnn):
        return {name: getattr(rnn, name, 0) for name in config}, rnn.training, {
            name: (p.dtype, p.shape) for name, p in rnn.named_parameters()}

    before = settings(module.rnn)
    module.make_python_based()
    assert settings(module.rnn) == before
    module.make_cudnn_based()
    assert settings(module.rnn) == before and type(module.rnn) in (nn.LSTM, nn.GRU)


def test_make_python_based_and_cudnn_based_keep_the_outputs():
    module, _ = _pair("lstm", num_layers=2)
    td = _trajectories((3,))
    with set_recurrent_mode(True):
        before = module(td.clone())["y"]
        assert isinstance(module.make_python_based().lstm, LSTM)
        torch.testing.assert_close(module(td.clone())["y"], before)
        assert type(module.make_cudnn_based().lstm) is nn.LSTM
        torch.testing.assert_close(module(td.clone())["y"], before)


# -- primers and rollouts ------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_primer_matches_torchrl(kind):
    ours, theirs = _pair(kind, num_layers=2)
    ours_primer, theirs_primer = ours.make_tensordict_primer(), theirs.make_tensordict_primer()
    assert isinstance(ours_primer, rlmods.TensorDictPrimer)
    for key in theirs_primer.primers.keys(True, True):
        assert ours_primer.primers[key].shape == theirs_primer.primers[key].shape


def test_primer_needs_next_keys_and_the_error_type_matches_torchrl():
    kwargs = dict(input_size=3, hidden_size=4, in_keys=["obs", "h"], out_keys=["y", "h2"])
    with pytest.raises(RuntimeError, match=r"GRUModule: make_tensordict_primer needs each state "
                                           r"out_key to be \('next', <in_key>\)"):
        GRUModule(**kwargs).make_tensordict_primer()
    with pytest.raises(ValueError, match="make_tensordict_primer"):
        GRUModule(**kwargs).make_tensordict_primer()
    theirs = torchrl.modules.GRUModule(**kwargs)
    assert isinstance(raised(theirs.make_tensordict_primer), RuntimeError)


def test_get_primers_from_module():
    lstm = LSTMModule(input_size=3, hidden_size=8, in_key="obs", out_key="h1")
    gru = GRUModule(input_size=8, hidden_size=4, in_key="h1", out_key="h2")
    one = get_primers_from_module(TensorDictSequential(lstm))
    assert sorted(one.primers.keys()) == ["recurrent_state_c", "recurrent_state_h"]
    both = get_primers_from_module(TensorDictSequential(lstm, gru))
    assert isinstance(both, rlmods.Compose) and len(both) == 2
    assert both[1].primers["recurrent_state"].shape == (1, 4)
    with pytest.warns(UserWarning, match="no primers found"):
        assert get_primers_from_module(nn.Linear(2, 2)) is None
    broken = GRUModule(input_size=3, hidden_size=4, in_keys=["obs", "h"], out_keys=["y", "h2"])
    with pytest.raises(RuntimeError, match="make_tensordict_primer"):
        get_primers_from_module(TensorDictSequential(lstm, broken))
    with pytest.warns(UserWarning, match="skipped submodules .*GRUModule"):
        assert get_primers_from_module(TensorDictSequential(lstm, broken), strict=False) is not None


def _policy(core):
    head = TensorDictModule(nn.Linear(8, 1), in_keys=["y"], out_keys=["logit"])
    act = TensorDictModule(lambda logit: (logit > 0).long().squeeze(-1), in_keys=["logit"],
                           out_keys=["action"])
    return TensorDictSequential(core, head, act)


def _cartpole(*transforms):
    env = rlmods.GymEnv("CartPole-v1", categorical_action_encoding=True)
    env = rlmods.TransformedEnv(env, rlmods.Compose(*transforms))
    env.set_seed(0)
    return env


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_rollout_carries_the_state_and_recurrent_mode_replays_it(kind):
    torch.manual_seed(0)
    core = MODULES[kind][0](input_size=4, hidden_size=8, in_key="observation", out_key="y")
    policy = _policy(core)
    env = _cartpole(rlmods.InitTracker(), get_primers_from_module(policy))
    with torch.no_grad():
        rollout = env.rollout(60, policy, break_when_any_done=False)
    is_init = rollout["is_init"].squeeze(-1)
    assert is_init[0] and is_init[1:].any()  # episodes restart inside the rollout
    for key in STATES[kind]:
        carried = rollout[key][1:][~is_init[1:]]
        written = rollout["next", key][:-1][~is_init[1:]]
        torch.testing.assert_close(carried, written)  # the state goes on from step to step
        assert rollout[key][is_init].abs().sum() == 0  # and restarts from zero
    with set_recurrent_mode(True), torch.no_grad():
        replay = policy(rollout.clone())
    torch.testing.assert_close(replay["y"], rollout["y"])
    torch.testing.assert_close(replay["action"], rollout["action"])


def test_rollout_without_the_primer_raises_better_than_torchrl():
    policy = _policy(LSTMModule(input_size=4, hidden_size=8, in_key="observation", out_key="y"))
    with pytest.raises(KeyError, match=r"LSTMModule: expected the recurrent state "
                                       r"'recurrent_state_h', 'recurrent_state_c' .* Add the "
                                       r"primer: env.append_transform\(get_primers_from_module"):
        _cartpole(rlmods.InitTracker()).rollout(5, policy)
    with pytest.raises(KeyError, match=r"LSTMModule: expected key 'is_init' .* add "
                                       r"InitTracker\(\) to the environment"):
        _cartpole().rollout(5, policy)


@pytest.mark.torchrl_bug
def test_torchrl_rollout_without_the_primer_silently_forgets():
    """torchrl drops the written state: every step starts from zeros, and nothing is raised."""
    torch.manual_seed(0)
    core = torchrl.modules.LSTMModule(input_size=4, hidden_size=8, in_key="observation",
                                      out_key="y")
    policy = _policy(core)
    base = torchrl.envs.GymEnv("CartPole-v1", categorical_action_encoding=True)
    env = torchrl.envs.TransformedEnv(base, torchrl.envs.InitTracker())
    with torch.no_grad():
        rollout = env.rollout(5, policy)
    assert "recurrent_state_h" not in rollout.keys()
    with torch.no_grad():  # each step's output is that of a zero state: no memory
        fresh = policy(rollout.exclude("y", ("next", "recurrent_state_h")).set(
            "is_init", torch.ones(5, 1, dtype=torch.bool)))
    torch.testing.assert_close(fresh["y"], rollout["y"])


# -- argument errors -----------------------------------------------------------------------

BAD_ARGUMENTS = [
    ({"recurrent_backend": "scan"}, ValueError, r"recurrent_backend 'scan' is not provided by "
                                                r"rlmods, use one of \['pad', 'auto'\]"),
    ({"recurrent_backend": "fast"}, ValueError, r"recurrent_backend must be one of \['pad', "
                                                r"'auto'\], got 'fast'"),
    ({"recurrent_recompute": "full"}, ValueError, "recurrent_recompute must be 'none' with the "
                                                  "'pad' backend"),
    ({"recurrent_recompute": "some"}, ValueError, "recurrent_recompute must be 'none' or 'full'"),
    ({"recurrent_compute_dtype": torch.bfloat16}, ValueError, "recurrent_compute_dtype is only "
                                                              "used by torchrl's triton backend"),
    ({"recurrent_matmul_precision": "tf32"}, ValueError, "recurrent_matmul_precision is only used"),
    ({"batch_first": False}, ValueError, "batch_first must be True, got False"),
    ({"hidden_size": None}, ValueError, "hidden_size must be passed"),
    ({"python_based": True, "bidirectional": True}, ValueError, "python_based=True does not "
                                                                "support bidirectional=True"),
    ({"in_keys": ["obs", "h", "c"]}, ValueError, "give exactly one of in_key and in_keys"),
    ({"out_key": None}, ValueError, r"give exactly one of out_key and out_keys, got out_key=None "
                                    r"and out_keys=None"),
]


@pytest.mark.parametrize("kwargs,error,match", BAD_ARGUMENTS)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match="LSTMModule: " + match):
        LSTMModule(**{"input_size": 3, "hidden_size": 4, "in_key": "obs", "out_key": "y", **kwargs})


@pytest.mark.parametrize("kwargs", [kwargs for kwargs, *_ in BAD_ARGUMENTS
                                    if "recurrent_backend" not in kwargs
                                    and "recurrent_compute_dtype" not in kwargs
                                    and "recurrent_matmul_precision" not in kwargs])
def test_bad_argument_error_types_match_torchrl(kwargs):
    full = {"input_size": 3, "hidden_size": 4, "in_key": "obs", "out_key": "y", **kwargs}
    ours = raised(lambda: LSTMModule(**full))
    assert isinstance(ours, type(raised(lambda: torchrl.modules.LSTMModule(**full))))


def test_wrapping_a_layer():
    gru = nn.GRU(3, 4, batch_first=True)
    module = GRUModule(gru=gru, in_key="obs", out_key="y")
    assert module.gru is gru
    with pytest.raises(ValueError, match="GRUModule: give either a layer or input_size/"):
        GRUModule(input_size=3, gru=gru, in_key="obs", out_key="y")
    with pytest.raises(ValueError, match="GRUModule: the gru must have batch_first=True"):
        GRUModule(gru=nn.GRU(3, 4), in_key="obs", out_key="y")
    with pytest.raises(TypeError, match="GRUModule: gru must be a torch.nn.GRU .*got LSTM"):
        GRUModule(gru=nn.LSTM(3, 4, batch_first=True), in_key="obs", out_key="y")


def test_bad_keys_and_shapes_at_call_time():
    module = LSTMModule(input_size=3, hidden_size=4, in_key="obs", out_key="y")
    with pytest.raises(ValueError, match=r"LSTMModule: in_keys must hold the input key and 2 "
                                         r"recurrent state key\(s\) \(and optionally 'is_init'"):
        LSTMModule(input_size=3, hidden_size=4, in_keys=["obs", "h"], out_key="y")
    td = TensorDict(obs=torch.zeros(2, 3), is_init=torch.zeros(2, 1, dtype=torch.bool),
                    recurrent_state_h=torch.zeros(2, 1, 5), recurrent_state_c=torch.zeros(2, 1, 4),
                    batch_size=[2])
    with pytest.raises(ValueError, match=r"LSTMModule: 'recurrent_state_h' must end with shape "
                                         r"\(2, 1, 4\), got shape \(2, 1, 5\)"):
        module(td)
    with pytest.raises(KeyError, match=r"LSTMModule: expected every recurrent state key .*"
                                       r"\['recurrent_state_c'\] missing"):
        module(td.exclude("recurrent_state_c").set("recurrent_state_h", torch.zeros(2, 1, 4)))
    with pytest.raises(KeyError, match="LSTMModule: expected key 'obs'"):
        module(td.exclude("obs"))
    with set_recurrent_mode(True), pytest.raises(ValueError, match=r"LSTMModule: in recurrent "
                                                                   r"mode the tensordict needs a "
                                                                   r"time dim"):
        module(TensorDict(obs=torch.zeros(3), is_init=torch.ones(1, dtype=torch.bool)))
    with pytest.raises(RuntimeError, match="LSTMModule: recurrent_mode cannot be set"):
        module.recurrent_mode = True
    with pytest.raises(ValueError, match="set_recurrent_mode: mode must be a bool, 'recurrent', "
                                         "'sequential' or None, got 'yes'"):
        set_recurrent_mode("yes")


@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_mode_from_stored_states_matches_torchrl(bidirectional):
    """Rows that start mid-trajectory (is_init False at step 0) start from the stored state."""
    ours, theirs = _pair("lstm", bidirectional=bidirectional, num_layers=2)
    td = _trajectories((3,), resets=((0, 3), (1, 5)))
    td["is_init"][1:, 0] = False
    layers = 4 if bidirectional else 2
    for key in STATES["lstm"]:
        td[key] = torch.zeros(3, 7, layers, 5)
        td[key][1:, 0] = torch.randn(2, layers, 5)  # zero wherever is_init (torchrl's bug)
    with torchrl.modules.set_recurrent_mode(True):
        expected = _leaves(theirs(td.clone()))
    with set_recurrent_mode(True):
        torch.testing.assert_close(_leaves(ours(td.clone())), expected)


def test_python_cells_and_layers_work_under_vmap():
    """What the Python versions are for (torch.nn's fused kernels refuse torch.vmap)."""
    cell, lstm = LSTMCell(3, 4), LSTM(3, 4, num_layers=2)
    x, h = torch.randn(5, 2, 3), torch.zeros(5, 2, 4)
    h_out, _ = torch.vmap(lambda x, h, c: cell(x, (h, c)))(x, h, h)
    torch.testing.assert_close(h_out[3], cell(x[3], (h[3], h[3]))[0])
    xs = torch.randn(5, 2, 6, 3)
    torch.testing.assert_close(torch.vmap(lambda x: lstm(x)[0])(xs)[1], lstm(xs[1])[0])


def test_select_out_keys_writes_each_output_under_its_own_key_better_than_torchrl():
    """After select_out_keys the outputs still pair with every out_key (torchrl: IndexError)."""
    torch.manual_seed(0)
    full = LSTMModule(3, 8, in_key="observation", out_key="features")
    selected = copy.deepcopy(full)
    selected.select_out_keys(("next", "recurrent_state_h"))
    td = TensorDict(observation=torch.randn(2, 3), is_init=torch.zeros(2, 1, dtype=torch.bool),
                    recurrent_state_h=torch.randn(2, 1, 8), recurrent_state_c=torch.randn(2, 1, 8),
                    batch_size=[2])
    reference, out = full(td.clone()), selected(td.clone())
    torch.testing.assert_close(out["next", "recurrent_state_h"],
                               reference["next", "recurrent_state_h"])
    assert "features" not in out.keys()
    primed = [sorted(module.make_tensordict_primer().primers.keys()) for module in (selected, full)]
    assert primed[0] == primed[1] == ["recurrent_state_c", "recurrent_state_h"]



@pytest.mark.parametrize("shape", [(2, 2), (2,), (2, 1, 1)])
def test_is_init_of_the_wrong_shape_names_it(shape):
    module, _ = _pair("gru")
    td = TensorDict(obs=torch.randn(2, 3), is_init=torch.ones(shape, dtype=torch.bool),
                    batch_size=[2])
    with pytest.raises(ValueError, match=r"GRUModule: 'is_init' must end with shape \(2, 1\)"):
        module(td)
