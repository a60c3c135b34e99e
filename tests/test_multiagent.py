"""rlmods.multiagent against torchrl 0.14 (the oracle), plus what rlmods adds."""

from copy import deepcopy

import pytest
import torch
import torchrl.modules as tm
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torch.testing import assert_close

from rlmods import (InvalidTypeError, InvalidValueError, Mixer, MLP, MultiAgentConvNet,
                    MultiAgentMLP, MultiAgentNetBase, QMixer, VDNMixer)
from oracle_helpers import raised as _raised

COMBOS = [(share, central) for share in (False, True) for central in (False, True)]


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _mlp_pair(share, central, use_td_params=True, **kwargs):
    kw = dict(centralized=central, share_params=share, use_td_params=use_td_params, **kwargs)
    theirs = tm.MultiAgentMLP(3, 2, 4, **kw)
    ours = MultiAgentMLP(3, 2, 4, **kw)
    return ours, theirs


# ---- differential: same stacked weights, same outputs ----------------------------------

@pytest.mark.parametrize("share,central", COMBOS)
@pytest.mark.parametrize("use_td_params", [True, False])
@pytest.mark.parametrize("batch", [(), (5,), (2, 3)])
def test_mlp_matches_torchrl(share, central, use_td_params, batch):
    ours, theirs = _mlp_pair(share, central, use_td_params, depth=2, num_cells=16)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # same names, same layout
    ours.load_state_dict(theirs.state_dict())  # a torchrl checkpoint loads as is
    x = _randn(*batch, 4, 3)
    assert_close(ours(x), theirs(x))
    assert ours(x).shape == (*batch, 4, 2)


def test_mlp_default_depth_is_one_linear_layer_as_in_torchrl():
    ours, theirs = _mlp_pair(False, False)
    assert [k for k in ours.state_dict()] == ["params.0.weight", "params.0.bias"]
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_mlp_concatenates_several_inputs_as_torchrl():
    ours, theirs = _mlp_pair(False, True, depth=1, num_cells=8)
    ours.load_state_dict(theirs.state_dict())
    a, b = _randn(5, 4, 1), _randn(5, 4, 2, seed=1)
    assert_close(ours(a, b), theirs(a, b))
    assert_close(ours(a, b), ours(torch.cat([a, b], -1)))


@pytest.mark.parametrize("share,central", COMBOS)
def test_convnet_matches_torchrl(share, central):
    kw = dict(centralized=central, share_params=share, in_features=2, num_cells=[4, 8])
    theirs, ours = tm.MultiAgentConvNet(3, **kw), MultiAgentConvNet(3, **kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    x = _randn(2, 3, 2, 16, 16)
    assert_close(ours(x), theirs(x))
    assert ours(x).shape == (2, 3, 8)


@pytest.mark.parametrize("batch", [(), (6,), (2, 3)])
def test_qmixer_matches_torchrl(batch):
    theirs, ours = tm.QMixer((2, 2), 8, 3, "cpu"), QMixer((2, 2), 8, 3, "cpu")
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    values, state = _randn(*batch, 3, 1), _randn(*batch, 2, 2, seed=1)
    assert_close(ours(values, state), theirs(values, state))
    assert ours(values, state).shape == (*batch, 1)


def test_vdn_mixer_matches_torchrl():
    values = _randn(2, 5, 3, 1)
    assert_close(VDNMixer(3, "cpu")(values), tm.VDNMixer(3, "cpu")(values))
    assert_close(VDNMixer(3, "cpu")(values), values.sum(-2))


def test_mixers_in_a_tensordict_module_with_torchrl_keys():
    td = TensorDict({"agents": TensorDict({"chosen_action_value": _randn(8, 4, 1)}, [8, 4]),
                     "state": _randn(8, 5, seed=1)}, [8])
    qmix = TensorDictModule(QMixer((5,), 16, 4, "cpu"), in_keys=[("agents", "chosen_action_value"),
                            "state"], out_keys=["chosen_action_value"])
    vdn = TensorDictModule(VDNMixer(4, "cpu"), in_keys=[("agents", "chosen_action_value")],
                           out_keys=["chosen_action_value"])
    assert qmix(td.clone())["chosen_action_value"].shape == (8, 1)
    assert_close(vdn(td.clone())["chosen_action_value"], td["agents", "chosen_action_value"].sum(1))


# ---- the mixers' math ------------------------------------------------------------------

def test_qmixer_is_monotonic_in_every_agent_value():
    mixer = QMixer((6,), 16, 5, "cpu")
    values = _randn(256, 5, 1).requires_grad_()
    state = _randn(256, 6, seed=1) * 3
    grad, = torch.autograd.grad(mixer(values, state).sum(), values)
    assert (grad >= 0).all() and (grad > 0).any()


def test_qmixer_can_represent_what_vdn_cannot():
    # [[0, 1], [1, 8]] is monotonic but not a sum: Q1(a) + Q2(b) misses it, QMIX fits it.
    payoff = torch.tensor([[0.0, 1.0], [1.0, 8.0]])
    joint = torch.cartesian_prod(torch.arange(2), torch.arange(2))  # (4, 2)
    torch.manual_seed(0)
    mixer, q = QMixer((1,), 8, 2, "cpu"), nn.Parameter(torch.zeros(2, 2))  # q[agent, action]
    opt = torch.optim.Adam([q, *mixer.parameters()], lr=0.05)
    for _ in range(600):
        chosen = q[torch.arange(2), joint].unsqueeze(-1)  # (4, 2, 1)
        loss = (mixer(chosen, torch.ones(4, 1)).squeeze(-1) - payoff.flatten()).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    best_sum = payoff.flatten() - (payoff.flatten() - payoff.mean(0).repeat(2)
                                   - payoff.mean(1).repeat_interleave(2) + payoff.mean())
    assert loss.item() < 0.05 < (payoff.flatten() - best_sum).pow(2).mean().item()


# ---- stacked parameters: what each agent owns ------------------------------------------

def test_each_agent_is_initialised_independently():
    net = MultiAgentMLP(3, 2, 4, centralized=False, share_params=False, depth=1, num_cells=8)
    for weight in net.params.values(include_nested=True, leaves_only=True):
        assert weight.shape[0] == 4
        assert all(not torch.equal(weight[0], weight[i]) for i in range(1, 4))
    same_input = _randn(5, 1, 3).expand(5, 4, 3)
    out = net(same_input)
    assert not torch.allclose(out[:, 0], out[:, 1])


def test_shared_params_have_no_agent_dim_and_give_equal_outputs_on_equal_inputs():
    net = MultiAgentMLP(3, 2, 4, centralized=False, share_params=True, depth=1, num_cells=8)
    assert net.params["0", "weight"].shape == (8, 3)
    out = net(_randn(5, 1, 3).expand(5, 4, 3))
    assert_close(out[:, 0], out[:, 3])


def test_centralized_agents_read_every_agent_input():
    net = MultiAgentMLP(3, 2, 4, centralized=True, share_params=False, depth=1, num_cells=8)
    x = _randn(5, 4, 3)
    changed = x.clone()
    changed[:, 3] += 1.0  # only agent 3's input moves
    assert not torch.allclose(net(x)[:, 0], net(changed)[:, 0])
    local = MultiAgentMLP(3, 2, 4, centralized=False, share_params=False, depth=1, num_cells=8)
    assert_close(local(x)[:, 0], local(changed)[:, 0])


def test_repr_shows_the_per_agent_stacked_parameters():
    net = MultiAgentMLP(3, 2, 4, centralized=False, share_params=False, depth=1, num_cells=8)
    text = repr(net)
    assert "params per agent:" in text and "0.weight: (4, 8, 3)" in text
    assert "2.bias: (4, 2)" in text
    shared = MultiAgentMLP(3, 2, 4, centralized=False, share_params=True, depth=1, num_cells=8)
    assert "0.weight: (8, 3)" in repr(shared) and "per agent" not in repr(shared)


@pytest.mark.parametrize("use_td_params", [True, False])
def test_state_dict_round_trips(use_td_params):
    kw = dict(centralized=False, share_params=False, depth=1, num_cells=8,
              use_td_params=use_td_params)
    a, b = MultiAgentMLP(3, 2, 4, **kw), MultiAgentMLP(3, 2, 4, **kw)
    x = _randn(5, 4, 3)
    assert not torch.allclose(a(x), b(x))
    b.load_state_dict(a.state_dict())
    assert_close(a(x), b(x))
    prefix = "params." if use_td_params else "_empty_net."
    assert all(k.startswith(prefix) for k in a.state_dict())
    assert a.state_dict()[prefix + "0.weight"].shape == (4, 8, 3)


def test_parameters_are_trainable_and_optimizer_steps_reach_every_agent():
    net = MultiAgentMLP(3, 2, 4, centralized=False, share_params=False, depth=1, num_cells=8)
    params = list(net.parameters())
    assert len(params) == 4 and all(p.requires_grad for p in params)
    before = net.params["0", "weight"].detach().clone()
    net(_randn(5, 4, 3)).pow(2).sum().backward()
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    moved = (net.params["0", "weight"] - before).flatten(1).abs().sum(1)
    assert (moved > 0).all()


def test_dropout_under_vmap_gives_each_agent_its_own_mask():
    net = MultiAgentMLP(3, 2, 4, centralized=False, share_params=False, depth=1, num_cells=256,
                        dropout=0.5)
    with torch.no_grad():  # every agent the same weights: only the masks can differ
        for weight in net.params.values(include_nested=True, leaves_only=True):
            weight.copy_(weight[:1].expand_as(weight))
    x = torch.ones(1, 4, 3)
    out = net(x)
    assert not torch.allclose(out[0, 0], out[0, 1])
    net.eval()
    out = net(x)
    assert_close(out[0, 0], out[0, 1])


def test_vmap_randomness_same_gives_every_agent_the_same_mask():
    net = MultiAgentMLP(3, 2, 4, centralized=False, share_params=False, depth=1, num_cells=256,
                        dropout=0.5, vmap_randomness="same")
    with torch.no_grad():
        for weight in net.params.values(include_nested=True, leaves_only=True):
            weight.copy_(weight[:1].expand_as(weight))
    out = net(torch.ones(1, 4, 3))
    assert_close(out[0, 0], out[0, 3])


@pytest.mark.parametrize("share,central", COMBOS)
def test_lazy_layers_work_and_each_agent_is_initialised_independently(share, central):
    net = MultiAgentMLP(None, 2, 4, centralized=central, share_params=share, depth=1, num_cells=8)
    assert not net.initialized and "lazy" in repr(net)
    x = _randn(5, 4, 3)
    out = net(x)
    assert out.shape == (5, 4, 2) and net.initialized
    reference = tm.MultiAgentMLP(3, 2, 4, centralized=central, share_params=share, depth=1,
                                 num_cells=8)
    assert list(net.state_dict()) == list(reference.state_dict())
    weight = net.params["0", "weight"]
    assert weight.shape[-1] == (12 if central else 3)
    if not share:
        assert not torch.equal(weight[0], weight[1])
    net.load_state_dict(reference.state_dict())
    assert_close(net(x), reference(x))


def test_lazy_convnet_works():
    net = MultiAgentConvNet(3, centralized=False, share_params=False, num_cells=[4])
    assert net(_randn(2, 3, 2, 9, 9)).shape == (2, 3, 4 * 3 * 3)
    assert net.params["0", "weight"].shape == (3, 4, 2, 5, 5)


def test_reset_parameters_draws_new_independent_values():
    net = MultiAgentMLP(3, 2, 4, centralized=False, share_params=False, depth=1, num_cells=8)
    before = net.params["0", "weight"].detach().clone()
    net.reset_parameters()
    after = net.params["0", "weight"]
    assert not torch.allclose(before, after)
    assert not torch.equal(after[0], after[1])
    bound = 1 / 3 ** 0.5  # nn.Linear's kaiming-uniform bound for fan_in = 3
    assert after.abs().max() <= bound


def test_stateful_net_initialises_in_place_and_out_of_place():
    net = MultiAgentMLP(3, 2, 4, centralized=False, share_params=False, depth=1, num_cells=8)
    stateful = net.get_stateful_net()
    assert stateful[0].weight.shape == (4, 8, 3)
    with torch.no_grad():
        stateful[0].weight.zero_()  # in place: the stacked parameters themselves
    assert net.params["0", "weight"].abs().sum() == 0
    stateful = net.get_stateful_net()
    stateful[0].weight = nn.Parameter(torch.ones(4, 8, 3))  # out of place: copy back
    net.from_stateful_net(stateful)
    assert bool((net.params["0", "weight"] == 1).all())


@pytest.mark.parametrize("share,central", COMBOS)
def test_compiles_with_fullgraph(share, central):
    torch._dynamo.reset()
    net = MultiAgentMLP(3, 2, 4, centralized=central, share_params=share, depth=1, num_cells=8)
    x = _randn(5, 4, 3)
    assert_close(torch.compile(net, fullgraph=True)(x), net(x))


# ---- MultiAgentNetBase: a custom per-agent network ---------------------------------------

class _PerAgentGate(MultiAgentNetBase):
    """Agent dim first: (n_agents, *B, F) -> (n_agents, *B, F), a gated linear map per agent."""

    def __init__(self, n_agents, features, **kwargs):
        self.features = features
        super().__init__(n_agents=n_agents, agent_dim=0, **kwargs)

    def _build_single_net(self, *, device=None):
        return nn.Sequential(nn.Linear(self.features, 2 * self.features, device=device),
                             nn.GLU())

    def _pre_forward_check(self, inputs):
        if inputs.shape[0] != self.n_agents:
            raise ValueError("wrong agents")
        return inputs


def test_a_custom_network_with_the_agent_dim_first():
    net = _PerAgentGate(3, 4, centralized=False, share_params=False)
    x = _randn(3, 5, 2, 4)
    out = net(x)
    assert out.shape == (3, 5, 2, 4)
    for i in range(3):  # agent i's network on agent i's slice
        single = net.get_stateful_net()
        w, b = single[0].weight[i], single[0].bias[i]
        assert_close(out[i], nn.functional.glu(x[i] @ w.T + b))


# ---- errors: each message, and the exception type torchrl raises -------------------------

def test_wrong_agent_count_names_the_shapes():
    ours, theirs = _mlp_pair(False, False)
    x = _randn(5, 3, 3)
    with pytest.raises(ValueError, match=r"MultiAgentMLP: input must have shape \(\*B, "
                                         r"n_agents=4, 3\), got shape \(5, 3, 3\)"):
        ours(x)
    assert isinstance(_raised(lambda: ours(x)), type(_raised(lambda: theirs(x))))


def test_wrong_feature_size_names_the_shapes():
    ours, theirs = _mlp_pair(False, False)
    x = _randn(5, 4, 2)
    with pytest.raises(InvalidValueError, match=r"n_agent_inputs=3\), got shape \(5, 4, 2\)"):
        ours(x)
    assert isinstance(_raised(lambda: ours(x)), type(_raised(lambda: theirs(x))))  # RuntimeError


@pytest.mark.torchrl_bug
def test_torchrl_wrong_feature_size_fails_deep_in_torch():
    _, theirs = _mlp_pair(False, False)
    with pytest.raises(RuntimeError, match="batch2 tensor"):  # names neither argument nor input
        theirs(_randn(5, 4, 2))


def test_a_one_dim_input_is_a_value_error():
    ours, _ = _mlp_pair(False, False)
    with pytest.raises(ValueError, match=r"got shape \(3,\)"):  # torchrl: IndexError
        ours(_randn(3))


@pytest.mark.parametrize("missing", ["centralized", "share_params"])
def test_centralized_and_share_params_are_required(missing):
    kwargs = {"centralized": False, "share_params": False}
    kwargs.pop(missing)
    with pytest.raises(TypeError, match=f"MultiAgentMLP: {missing} must be passed, got None"):
        MultiAgentMLP(3, 2, 4, **kwargs)
    assert isinstance(_raised(lambda: tm.MultiAgentMLP(3, 2, 4, **kwargs)), TypeError)


def test_the_old_spelling_centralised_is_accepted():
    net = MultiAgentMLP(3, 2, 4, centralised=True, share_params=True)
    assert net.centralized is True


@pytest.mark.parametrize("kwargs,match", [
    ({"n_agents": 0}, "n_agents must be a positive int, got 0"),
    ({"vmap_randomness": "sometimes"}, "vmap_randomness must be one of"),
])
def test_bad_constructor_arguments(kwargs, match):
    args = dict(n_agents=4, centralized=False, share_params=False) | kwargs
    n_agents = args.pop("n_agents")
    with pytest.raises(ValueError, match=match):
        MultiAgentMLP(3, 2, n_agents, **args)


def test_the_base_class_alone_says_what_is_missing():
    with pytest.raises(InvalidTypeError, match="MultiAgentNetBase: a subclass must define "
                                               "_build_single_net"):
        MultiAgentNetBase(n_agents=2, centralized=False, share_params=False, agent_dim=-2)
    assert isinstance(_raised(lambda: tm.MultiAgentNetBase(
        n_agents=2, centralized=False, share_params=False, agent_dim=-2)), TypeError)


def test_from_stateful_net_with_other_parameters():
    net = MultiAgentMLP(3, 2, 4, centralized=False, share_params=False)
    theirs = tm.MultiAgentMLP(3, 2, 4, centralized=False, share_params=False)
    with pytest.raises(InvalidValueError, match="MultiAgentMLP: stateful_net must hold the "):
        net.from_stateful_net(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))
    error = _raised(lambda: theirs.from_stateful_net(nn.Sequential(nn.Linear(2, 2))))
    assert isinstance(error, RuntimeError)


@pytest.mark.parametrize("x,error,match", [
    (_randn(2, 16, 16), ValueError, r"n_agents=3, C=2, H, W\), got shape \(2, 16, 16\)"),
    (_randn(5, 2, 2, 16, 16), ValueError, r"got shape \(5, 2, 2, 16, 16\)"),
    (_randn(5, 3, 1, 16, 16), InvalidValueError, r"in_features=2, H, W\), got shape"),
])
def test_convnet_input_errors(x, error, match):
    kw = dict(centralized=False, share_params=False, in_features=2)
    ours, theirs = MultiAgentConvNet(3, **kw), tm.MultiAgentConvNet(3, **kw)
    with pytest.raises(error, match=match):
        ours(x)
    assert isinstance(_raised(lambda: ours(x)), type(_raised(lambda: theirs(x))))


@pytest.mark.parametrize("inputs,error,match", [
    ((_randn(6, 2, 1), _randn(6, 4)), ValueError,
     r"chosen_action_value must have shape \(\*B, n_agents=3, 1\), got shape \(6, 2, 1\)"),
    ((_randn(6, 3, 1),), ValueError, r"inputs must be \(chosen_action_value, state\), got 1"),
    ((_randn(6, 3, 1), _randn(6, 5)), ValueError, r"state_shape \(4,\), got shape \(6, 5\)"),
    ((_randn(6, 3, 1), _randn(5, 4)), InvalidValueError, r"shape \(6, 4\), got shape \(5, 4\)"),
])
def test_qmixer_input_errors(inputs, error, match):
    ours, theirs = QMixer((4,), 8, 3, "cpu"), tm.QMixer((4,), 8, 3, "cpu")
    with pytest.raises(error, match=match):
        ours(*inputs)
    assert isinstance(_raised(lambda: ours(*inputs)), type(_raised(lambda: theirs(*inputs))))


def test_vdn_input_errors():
    with pytest.raises(ValueError, match=r"VDNMixer: inputs must be chosen_action_value, got 2"):
        VDNMixer(3, "cpu")(_randn(6, 3, 1), _randn(6, 4))
    with pytest.raises(ValueError, match=r"VDNMixer: chosen_action_value must have shape "
                                         r"\(\*B, n_agents=3, 1\), got shape \(6, 3\)"):
        VDNMixer(3, "cpu")(_randn(6, 3))


def test_mixer_base_says_mix_is_missing():
    with pytest.raises(NotImplementedError, match="Mixer must define mix"):
        Mixer(2, False, (), "cpu")(_randn(4, 2, 1))


@pytest.mark.torchrl_bug
def test_torchrl_qmixer_pairs_states_with_values_by_flat_index():
    mixer = tm.QMixer((4,), 8, 3, "cpu")
    out = mixer(_randn(3, 2, 3, 1), _randn(2, 3, 4))  # batch (3, 2) against batch (2, 3)
    assert out.shape == (3, 2, 1)  # accepted: rows are paired in flattened order


def test_qmixer_rejects_mismatched_batch_dims_better_than_torchrl():
    with pytest.raises(InvalidValueError, match=r"shape \(3, 2, 4\), got shape \(2, 3, 4\)"):
        QMixer((4,), 8, 3, "cpu")(_randn(3, 2, 3, 1), _randn(2, 3, 4))


@pytest.mark.torchrl_bug
def test_torchrl_qmixer_rejects_a_list_state_shape_at_the_first_call():
    mixer = tm.QMixer([4], 8, 3, "cpu")
    with pytest.raises(ValueError, match="expected state with ending shape"):
        mixer(_randn(6, 3, 1), _randn(6, 4))


def test_qmixer_accepts_a_list_or_int_state_shape_better_than_torchrl():
    values, state = _randn(6, 3, 1), _randn(6, 4)
    for shape in ([4], 4):
        assert QMixer(shape, 8, 3, "cpu")(values, state).shape == (6, 1)


@pytest.mark.torchrl_bug
def test_torchrl_qmixer_fails_on_a_non_contiguous_state():
    state = _randn(3, 2, 4).transpose(0, 1)  # (2, 3, 4), not contiguous
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        tm.QMixer((4,), 8, 3, "cpu")(_randn(2, 3, 3, 1), state)


def test_qmixer_takes_a_non_contiguous_state_better_than_torchrl():
    ours, theirs = QMixer((4,), 8, 3, "cpu"), tm.QMixer((4,), 8, 3, "cpu")
    ours.load_state_dict(theirs.state_dict())
    state, values = _randn(3, 2, 4).transpose(0, 1), _randn(2, 3, 3, 1)
    assert_close(ours(values, state), theirs(values, state.contiguous()))


class _Linears(MultiAgentNetBase):
    """The smallest subclass: one bare nn.Linear per agent."""

    def _build_single_net(self, *, device=None):
        return nn.Linear(3, 2, device=device)

    def _pre_forward_check(self, inputs):
        return inputs


class _TorchrlLinears(tm.MultiAgentNetBase):
    def _build_single_net(self, *, device=None):
        return nn.Linear(3, 2, device=device)

    def _pre_forward_check(self, inputs):
        return inputs


@pytest.mark.torchrl_bug
def test_torchrl_reset_parameters_skips_a_network_that_is_one_layer():
    net = _TorchrlLinears(n_agents=3, centralized=False, share_params=False, agent_dim=-2)
    before = net.params["weight"].detach().clone()
    with pytest.warns(UserWarning, match="did not find any parameters to reset"):
        net.reset_parameters()
    assert torch.equal(net.params["weight"], before)


def test_reset_parameters_of_a_one_layer_network_better_than_torchrl():
    net = _Linears(n_agents=3, centralized=False, share_params=False, agent_dim=-2)
    before = net.params["weight"].detach().clone()
    net.reset_parameters()
    after = net.params["weight"]
    assert not torch.equal(after, before) and not torch.equal(after[0], after[1])


def test_agent_dim_is_required_and_n_agents_must_be_an_int():
    with pytest.raises(TypeError, match="_Linears: agent_dim must be passed, got None"):
        _Linears(n_agents=3, centralized=False, share_params=False)
    with pytest.raises(ValueError, match="n_agents must be a positive int, got True"):
        _Linears(n_agents=True, centralized=False, share_params=False, agent_dim=-2)
    with pytest.raises(ValueError, match="n_agents must be a positive int, got 2.0"):
        QMixer((4,), 8, 2.0, "cpu")


def test_an_output_without_the_agent_dim_is_an_error():
    class Summing(_Linears):  # a network that drops the agent dim
        def _build_single_net(self, *, device=None):
            return nn.Sequential(nn.Linear(3, 2, device=device), nn.Flatten(-2, -1))

    net = Summing(n_agents=3, centralized=False, share_params=True, agent_dim=-2)
    with pytest.raises(ValueError, match=r"Summing: the output must have n_agents=3 in dim 1, "
                                         r"got shape \(5, 6\)"):
        net(_randn(5, 3, 3))


def test_vmap_randomness_error_rejects_dropout():
    net = MultiAgentMLP(3, 2, 4, centralized=False, share_params=False, depth=1, num_cells=8,
                        dropout=0.5, vmap_randomness="error")
    with pytest.raises(RuntimeError, match="randomness"):
        net(_randn(5, 4, 3))
    net.eval()
    assert net(_randn(5, 4, 3)).shape == (5, 4, 2)


def test_the_repr_in_full():
    net = MultiAgentMLP(3, 2, 2, centralized=False, share_params=False, depth=1, num_cells=2)
    assert repr(net) == """MultiAgentMLP(
  MLP(
    (0): Linear(in_features=3, out_features=2, bias=True)
    (1): Tanh()
    (2): Linear(in_features=2, out_features=2, bias=True)
  ),
  n_agents=2, share_params=False, centralized=False, agent_dim=-2,
  params per agent:
    0.weight: (2, 2, 3)
    0.bias: (2, 2)
    2.weight: (2, 2, 2)
    2.bias: (2, 2)
)"""
    lazy = MultiAgentMLP(None, 2, 2, centralized=True, share_params=True)
    assert repr(lazy) == ("MultiAgentMLP(\n  (lazy: shapes known at the first call),\n  "
                          "n_agents=2, share_params=True, centralized=True, agent_dim=-2)")


def test_device_reaches_every_parameter():
    nets = [MultiAgentMLP(3, 2, 4, centralized=False, share_params=False, device="meta", depth=1),
            MultiAgentConvNet(3, centralized=True, share_params=False, in_features=2,
                              num_cells=[4], device="meta"),
            QMixer((4,), 8, 3, "meta")]
    for net in nets:
        assert {p.device.type for p in net.parameters()} == {"meta"}
    assert VDNMixer(3, "meta").device == "meta" and QMixer(4, 8, 3, "meta").device == "meta"


def test_the_template_holds_no_parameters_of_its_own():
    net = _Linears(n_agents=3, centralized=False, share_params=False, agent_dim=-2)
    assert list(net.state_dict()) == ["params.weight", "params.bias"]  # use_td_params=True
    assert net._empty_net.weight.device.type == "meta"
    assert net.get_stateful_net(copy=False) is net._empty_net
    copied = net.get_stateful_net()
    assert copied is not net._empty_net and copied.weight.shape == (3, 2, 3)


def test_shared_params_build_one_network():
    calls = []

    class Counting(_Linears):
        def _build_single_net(self, *, device=None):
            calls.append(1)
            return nn.Linear(3, 2, device=device)

    Counting(n_agents=5, centralized=False, share_params=True, agent_dim=-2)
    assert len(calls) == 1
    Counting(n_agents=5, centralized=False, share_params=False, agent_dim=-2)
    assert len(calls) == 6


def test_one_agent_is_a_team():
    net = MultiAgentMLP(3, 2, 1, centralized=False, share_params=False)
    assert net(_randn(5, 1, 3)).shape == (5, 1, 2)
    assert VDNMixer(1, "cpu")(_randn(5, 1, 1)).shape == (5, 1)


@pytest.mark.parametrize("n_agents", [0, True])
def test_mixers_reject_a_bad_n_agents(n_agents):
    with pytest.raises(ValueError, match=f"VDNMixer: n_agents must be a positive int, got"):
        VDNMixer(n_agents, "cpu")
    with pytest.raises(ValueError, match=f"QMixer: n_agents must be a positive int, got"):
        QMixer((4,), 8, n_agents, "cpu")


def test_a_subclass_without_pre_forward_check_says_so():
    class Half(MultiAgentNetBase):
        def _build_single_net(self, *, device=None):
            return nn.Linear(3, 2, device=device)

    net = Half(n_agents=2, centralized=False, share_params=False, agent_dim=-2)
    with pytest.raises(InvalidTypeError, match="Half: a subclass must define _pre_forward_check"):
        net(_randn(4, 2, 3))


def test_a_lazy_mlp_names_n_agent_inputs_in_its_error():
    net = MultiAgentMLP(None, 2, 4, centralized=False, share_params=False)
    with pytest.raises(ValueError, match=r"\(\*B, n_agents=4, n_agent_inputs\), got shape"):
        net(_randn(5, 3, 3))


def test_vmap_func_module_maps_dim_zero_by_default():
    params = TensorDict.from_modules(*[nn.Linear(3, 2) for _ in range(4)], as_module=False)
    run = MultiAgentNetBase.vmap_func_module(nn.Linear(3, 2))  # in_dims=0, out_dims=0
    x = _randn(4, 5, 3)
    expected = torch.stack([x[i] @ params["weight"][i].T + params["bias"][i] for i in range(4)])
    assert_close(run(params, x), expected)
    drop = MultiAgentNetBase.vmap_func_module(nn.Dropout(0.5))  # randomness="error"
    with pytest.raises(RuntimeError, match="randomness"):
        drop(TensorDict(batch_size=[4]), x)


@pytest.mark.parametrize("use_td_params", [True, False])
def test_convnet_paddings_kwargs_and_layout_match_torchrl(use_td_params):
    kw = dict(centralized=False, share_params=False, in_features=2, num_cells=[4, 4],
              kernel_sizes=3, strides=1, paddings=1, activation_class=nn.ReLU,
              use_td_params=use_td_params)
    theirs, ours = tm.MultiAgentConvNet(3, **kw), MultiAgentConvNet(3, **kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    x = _randn(2, 3, 2, 6, 6)
    assert_close(ours(x), theirs(x))
    assert ours(x[0]).shape == (3, 4 * 6 * 6)  # no batch dim at all
    no_bias = MultiAgentConvNet(3, centralized=False, share_params=False, in_features=2,
                                num_cells=[4], bias_last_layer=False)
    assert ("0", "bias") not in no_bias.params.keys(True, True)


def test_mlp_activation_class_matches_torchrl():
    ours, theirs = _mlp_pair(False, True, depth=1, num_cells=8, activation_class=nn.ReLU)
    ours.load_state_dict(theirs.state_dict())
    x = _randn(5, 4, 3)
    assert_close(ours(x), theirs(x))
    assert isinstance(ours.get_stateful_net()[1], nn.ReLU)


def test_shared_reset_parameters_redraws():
    net = MultiAgentMLP(3, 2, 4, centralized=False, share_params=True, depth=1, num_cells=8)
    before = net.params["0", "weight"].detach().clone()
    net.reset_parameters()
    assert not torch.equal(net.params["0", "weight"], before)


def test_an_output_that_lost_the_agent_dim_entirely_is_an_error():
    class Reducing(_Linears):  # (B, n, F) -> (B,) with shared parameters: agent dim 1 is gone
        def _build_single_net(self, *, device=None):
            return nn.Sequential(nn.Linear(3, 1, device=device), nn.Flatten(-2, -1),
                                 nn.Flatten(0, -1))

    net = Reducing(n_agents=3, centralized=False, share_params=True, agent_dim=-2)
    with pytest.raises(ValueError, match=r"Reducing: the output must have n_agents=3 in dim 1, "
                                         r"got shape \(15,\)"):
        net(_randn(5, 3, 3))


def test_the_repr_of_a_shared_network_in_full():
    net = MultiAgentMLP(3, 2, 2, centralized=True, share_params=True)
    assert repr(net) == """MultiAgentMLP(
  MLP(
    (0): Linear(in_features=6, out_features=2, bias=True)
  ),
  n_agents=2, share_params=True, centralized=True, agent_dim=-2,
  params:
    0.weight: (2, 6)
    0.bias: (2,)
)"""


def test_a_lazy_convnet_names_the_channels_in_its_error():
    net = MultiAgentConvNet(3, centralized=False, share_params=False)
    with pytest.raises(ValueError, match=r"MultiAgentConvNet: input must have shape "
                                         r"\(\*B, n_agents=3, C, H, W\), got shape \(2, 16, 16\)"):
        net(_randn(2, 16, 16))


# ---- Linear layers and elementwise activations: no vmap, the same numbers -------------------

def _vmap_twin(net):
    """A copy of ``net`` that runs its forward under vmap (the path of any other network)."""
    twin = deepcopy(net)
    twin._plan = None
    return twin


def _outputs_and_grads(net, x):
    out = net(x)
    return out, torch.autograd.grad(out.pow(2).sum(), list(net.parameters()))


@pytest.mark.parametrize("share,central", COMBOS)
@pytest.mark.parametrize("n_agents", [1, 3])
@pytest.mark.parametrize("batch", [(), (5,), (2, 3), (0, 2)])
def test_linear_layers_run_without_vmap_and_match_it_with_gradients(share, central, n_agents,
                                                                    batch):
    net = MultiAgentMLP(3, 2, n_agents, centralized=central, share_params=share, depth=2,
                        num_cells=8, activation_class=nn.ELU)
    assert net._plan is not None
    x = _randn(*batch, n_agents, 3)
    out, grads = _outputs_and_grads(net, x)
    expected, expected_grads = _outputs_and_grads(_vmap_twin(net), x)
    assert out.shape == expected.shape == (*batch, n_agents, 2)
    assert_close(out, expected)
    assert_close(grads, expected_grads)


@pytest.mark.parametrize("share,central", COMBOS)
def test_a_last_layer_without_bias_matches_torchrl(share, central):
    ours, theirs = _mlp_pair(share, central, depth=1, num_cells=8, bias_last_layer=False)
    assert ours._plan is not None and "params.1.bias" not in ours.state_dict()
    ours.load_state_dict(theirs.state_dict())
    x = _randn(2, 3, 4, 3)
    assert_close(ours(x), theirs(x))


def test_only_a_stack_of_linear_layers_and_elementwise_activations_skips_vmap(monkeypatch):
    def no_vmap(*args, **kwargs):
        raise AssertionError("vmap called")

    monkeypatch.setattr(MultiAgentNetBase, "vmap_func_module", staticmethod(no_vmap))
    kw = dict(centralized=False, share_params=False, depth=2, num_cells=8)
    for activation in (nn.Tanh, nn.ReLU, nn.ELU, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.Softplus):
        MultiAgentMLP(3, 2, 4, activation_class=activation, **kw)(_randn(5, 4, 3))
    MultiAgentMLP(None, 2, 4, **kw)(_randn(5, 4, 3))  # lazy: decided once the sizes are known
    for not_plain in (dict(dropout=0.1), dict(norm_class=nn.LayerNorm, norm_kwargs={
            "normalized_shape": 8}), dict(activation_class=nn.PReLU),
            dict(single_bias_last_layer=True)):
        net = MultiAgentMLP(3, 2, 4, **{**kw, **not_plain})
        with pytest.raises(AssertionError, match="vmap called"):
            net(_randn(5, 4, 3))
    for make in (lambda: MLP(3, (1, 2), depth=1), lambda: nn.Linear(3, 2),
                 lambda: nn.Sequential(nn.Linear(3, 2), nn.Softmax(-1))):
        net = _PerAgent(make, n_agents=4, centralized=False, share_params=False)
        with pytest.raises(AssertionError, match="vmap called"):
            net(_randn(4, 5, 3))


class _PerAgent(MultiAgentNetBase):
    """Agent dim first, (n_agents, *B, F) -> (n_agents, *B, ...): the network ``make()``."""

    def __init__(self, make, **kwargs):
        self.make = make
        super().__init__(agent_dim=0, **kwargs)

    def _build_single_net(self, *, device=None):
        return self.make()

    def _pre_forward_check(self, inputs):
        return inputs


@pytest.mark.parametrize("share", [False, True])
def test_a_custom_sequential_with_the_agent_dim_first_matches_a_loop_over_agents(share):
    make = lambda: nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))  # noqa: E731
    net = _PerAgent(make, n_agents=3, centralized=False, share_params=share)
    assert net._plan is not None
    x = _randn(3, 2, 5, 3)
    single = net.get_stateful_net()
    for i in range(3):
        w0, b0, w2, b2 = (single[0].weight, single[0].bias, single[2].weight, single[2].bias)
        if not share:
            w0, b0, w2, b2 = w0[i], b0[i], w2[i], b2[i]
        assert_close(net(x)[i], (x[i] @ w0.T + b0).relu() @ w2.T + b2)


def test_a_softmax_over_dim_zero_is_left_to_vmap():
    # Dim 0 of one agent's input is its batch dim; on the stacked tensors it is the agents'.
    make = lambda: nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=0))  # noqa: E731
    net = _PerAgent(make, n_agents=3, centralized=False, share_params=False)
    x = _randn(3, 5, 3)
    out = net(x)
    assert_close(out.sum(1), torch.ones(3, 2))  # each agent's softmax over its own batch


@pytest.mark.parametrize("use_td_params", [True, False])
@pytest.mark.parametrize("share", [False, True])
def test_the_weights_are_read_at_every_call(use_td_params, share):
    kw = dict(centralized=False, share_params=share, depth=1, num_cells=8,
              use_td_params=use_td_params)
    net, other = MultiAgentMLP(3, 2, 4, **kw), MultiAgentMLP(3, 2, 4, **kw)
    x = _randn(5, 4, 3)
    net(x)  # a first call, as a cache would need
    net.to(torch.float64)  # new tensors behind the same parameters
    assert net(x.double()).dtype == torch.float64
    assert_close(net(x.double()), _vmap_twin(net)(x.double()))
    net.to(torch.float32)
    net.load_state_dict(other.state_dict())  # copied in place
    assert_close(net(x), other(x))
    if use_td_params:  # assign=True replaces the tensors (in _empty_net with the other layout)
        net.load_state_dict(MultiAgentMLP(3, 2, 4, **kw).state_dict(), assign=True)
        assert_close(net(x), _vmap_twin(net)(x))
        assert not torch.allclose(net(x), other(x))
    stateful = other.get_stateful_net()
    with torch.no_grad():
        stateful[0].weight.add_(1.0)  # in place, into other's stacked parameters
    net.from_stateful_net(stateful)
    assert_close(net(x), other(x))


@pytest.mark.parametrize("share", [False, True])
def test_parameters_swapped_in_with_to_module_are_used(share):
    net = MultiAgentMLP(3, 2, 4, centralized=False, share_params=share, depth=1, num_cells=8)
    x = _randn(5, 4, 3)
    before = net(x)  # a first call, as a cache would need
    ones = TensorDict.from_module(net).detach().clone().apply(torch.ones_like)
    with ones.to_module(net):  # as a loss swaps in its target parameters
        swapped = net(x)
    hidden = torch.tanh(x.sum(-1, keepdim=True) + 1)  # every unit of the hidden layer
    assert_close(swapped, (8 * hidden + 1).expand(5, 4, 2))
    assert_close(net(x), before)


@pytest.mark.parametrize("share", [False, True])
def test_an_ensemble_of_networks_vmapped_from_outside(share):
    net = MultiAgentMLP(3, 2, 4, centralized=False, share_params=share, depth=1, num_cells=8)
    members = [net, MultiAgentMLP(3, 2, 4, centralized=False, share_params=share, depth=1,
                                  num_cells=8)]
    stacked = TensorDict.from_modules(*members, as_module=False)
    x = _randn(5, 4, 3)

    def run(params, x):
        with params.to_module(net):
            return net(x)

    expected = torch.stack([member(x) for member in members])
    assert_close(torch.vmap(run, (0, None))(stacked, x), expected)
