"""rlmods.distributional against torchrl 0.14 (the oracle), plus the C51 projection."""

import pytest
import torch
import torchrl.data as tdata
import torchrl.modules as tm
from tensordict import TensorDict
from torch import nn
from torch.testing import assert_close

from rlmods import (MLP, Categorical, DistributionalDQNnet, DistributionalQValueActor,
                    DistributionalQValueHook, DistributionalQValueModule, OneHot,
                    categorical_projection, set_validate_args)
from rlmods.distributional import expected_value
from oracle_helpers import raised as _raised

NBINS, ACTIONS = 5, 4
SUPPORT = torch.linspace(-2.0, 2.0, NBINS)


def _log_probs(*batch, seed=0):
    logits = torch.randn(*batch, NBINS, ACTIONS, generator=torch.Generator().manual_seed(seed))
    return logits.log_softmax(-2)


def test_expected_value_is_the_mean_of_the_support():
    log_probs = _log_probs(6)
    expected = (log_probs.exp() * SUPPORT[:, None]).sum(-2)
    assert_close(expected_value(log_probs, SUPPORT), expected)
    uniform = torch.full((NBINS, ACTIONS), 1.0 / NBINS).log()
    assert_close(expected_value(uniform, SUPPORT), torch.zeros(ACTIONS))


@pytest.mark.parametrize("ours,theirs", [(OneHot(ACTIONS), tdata.OneHot(ACTIONS)),
                                         (Categorical(ACTIONS), tdata.Categorical(ACTIONS))])
def test_module_matches_torchrl(ours, theirs):
    log_probs = _log_probs(7)
    mine = DistributionalQValueModule(None, support=SUPPORT, spec=ours)
    ref = tm.DistributionalQValueModule(None, support=SUPPORT, spec=theirs)
    out, expected = mine(TensorDict(action_value=log_probs)), ref(TensorDict(action_value=log_probs))
    for key in ("action", "action_value"):
        assert_close(out[key], expected[key])
    for got, want in zip(mine(log_probs), ref(log_probs)):
        assert_close(got, want)
    assert mine.out_keys == ref.out_keys and sorted(mine.state_dict()) == sorted(ref.state_dict())


def test_reference_page_actor_matches_torchrl_with_the_same_weights():
    torch.manual_seed(0)
    ref = tm.DistributionalQValueActor(tm.MLP(out_features=(3, 4), depth=2),
                                       spec=tdata.OneHot(4), support=torch.arange(3))
    td = TensorDict({"observation": torch.randn(5, 4)}, [5])
    expected = ref(td.clone())  # materialises the lazy layer
    mine = DistributionalQValueActor(MLP(out_features=(3, 4), depth=2), spec=OneHot(4),
                                     support=torch.arange(3))
    _ = mine(td.clone())
    assert sorted(mine.state_dict()) == sorted(ref.state_dict())
    mine.load_state_dict(ref.state_dict())
    out = mine(td.clone())
    assert sorted(out.keys()) == sorted(expected.keys()) == ["action", "action_value", "observation"]
    assert_close(out["action_value"], expected["action_value"])
    assert_close(out["action"], expected["action"])


def test_hook_and_log_softmax_net_match_torchrl():
    net = nn.Sequential(nn.Linear(3, NBINS * ACTIONS), nn.Unflatten(-1, (NBINS, ACTIONS)),
                        nn.LogSoftmax(-2))
    obs = torch.randn(6, 3, generator=torch.Generator().manual_seed(3))
    handle = net.register_forward_hook(tm.DistributionalQValueHook("one_hot", support=SUPPORT))
    expected = net(obs)
    handle.remove()
    _ = net.register_forward_hook(DistributionalQValueHook("one_hot", support=SUPPORT))
    for got, want in zip(net(obs), expected):
        assert_close(got, want)
    logits = TensorDict(action_value=torch.randn(6, NBINS, ACTIONS))
    assert_close(DistributionalDQNnet()(logits.clone())["action_value"],
                 tm.DistributionalDQNnet()(logits.clone())["action_value"])


def _masked_case():
    # Every action's expected value is negative and the masked action is the best one.
    support = torch.tensor([-3.0, -2.0, -1.0])
    log_probs = torch.full((2, 3, 4), 1.0 / 3).log()
    log_probs[:, :, 0] = torch.tensor([1e-6, 1e-6, 1 - 2e-6]).log()  # E = -1: the best
    mask = torch.tensor([[False, True, True, True], [False, True, True, True]])
    return support, log_probs, mask


@pytest.mark.torchrl_bug
def test_torchrl_masks_log_probs_and_can_choose_a_masked_action():
    support, log_probs, mask = _masked_case()
    ref = tm.DistributionalQValueModule("categorical", support=support, action_mask_key="mask")
    with pytest.raises(RuntimeError):  # a (batch, n) mask against (batch, atoms, n) log-probs
        ref(TensorDict(action_value=log_probs, mask=mask, batch_size=[2]))
    one = TensorDict(action_value=log_probs[:1], mask=mask[:1], batch_size=[1])
    assert ref(one)["action"].item() == 0  # masked to log-prob min, its mean 0 > -2: chosen


def test_masked_actions_are_never_chosen_better_than_torchrl():
    support, log_probs, mask = _masked_case()
    mine = DistributionalQValueModule("categorical", support=support, action_mask_key="mask")
    action = mine(TensorDict(action_value=log_probs, mask=mask, batch_size=[2]))["action"]
    assert (action != 0).all()
    one = TensorDict(action_value=log_probs[:1], mask=mask[:1], batch_size=[1])
    assert mine(one)["action"].item() != 0


def _actor_mask_case():
    net = nn.Sequential(nn.Linear(3, NBINS * ACTIONS), nn.Unflatten(-1, (NBINS, ACTIONS)))
    mask = torch.zeros(6, ACTIONS, dtype=torch.bool)
    mask[:, 1] = True
    td = TensorDict(observation=torch.randn(6, 3, generator=torch.Generator().manual_seed(4)),
                    mask=mask, batch_size=[6])
    return net, td


@pytest.mark.torchrl_bug
def test_torchrl_actor_log_softmaxes_the_mask():
    net, td = _actor_mask_case()
    with pytest.raises(RuntimeError):
        tm.DistributionalQValueActor(net, support=SUPPORT, spec=tdata.OneHot(ACTIONS),
                                     action_mask_key="mask")(td)


def test_actor_with_a_mask_better_than_torchrl():
    net, td = _actor_mask_case()
    actor = DistributionalQValueActor(net, support=SUPPORT, spec=OneHot(ACTIONS),
                                      action_mask_key="mask")
    assert (actor(td)["action"].argmax(-1) == 1).all()


# ---- the C51 projection ------------------------------------------------------------------

def _torchrl_projection(probs, reward, done, gamma, support):
    """The projection inside torchrl's DistributionalDQNLoss.forward, copied as the oracle."""
    batch_size, atoms = probs.shape
    v_min, v_max = support[0].item(), support[-1].item()
    delta_z = (v_max - v_min) / (atoms - 1)
    tz = (reward + (1 - done.to(reward.dtype)) * gamma * support).clamp(v_min, v_max)
    b = (tz - v_min) / delta_z
    low, up = b.floor().to(torch.int64), b.ceil().to(torch.int64)
    low[(up > 0) & (low == up)] -= 1
    up[(low < (atoms - 1)) & (low == up)] += 1
    m = torch.zeros(batch_size, atoms)
    offset = torch.arange(batch_size).unsqueeze(1).expand(batch_size, atoms) * atoms
    m.view(-1).index_add_(0, (low + offset).view(-1), (probs * (up.float() - b)).view(-1))
    m.view(-1).index_add_(0, (up + offset).view(-1), (probs * (b - low.float())).view(-1))
    return m


def test_projection_matches_torchrl_and_preserves_mass_and_mean():
    g = torch.Generator().manual_seed(0)
    support = torch.linspace(0.0, 10.0, 11)
    probs = torch.rand(64, 11, generator=g).softmax(-1)
    reward = torch.randint(0, 3, (64, 1), generator=g).float()  # integer shifts hit atoms exactly
    reward[::2] += 0.37
    done = torch.rand(64, 1, generator=g) < 0.2
    projected = categorical_projection(probs, reward, done, 0.9, support)
    assert_close(projected, _torchrl_projection(probs, reward, done, 0.9, support))
    assert_close(projected.sum(-1), torch.ones(64))
    target = (reward + 0.9 * (~done) * support).clamp(0.0, 10.0)
    assert_close((projected * support).sum(-1), (probs * target).sum(-1))


def test_projection_of_a_terminal_step_is_the_reward():
    support = torch.linspace(0.0, 4.0, 5)
    probs = torch.full((1, 5), 0.2)
    projected = categorical_projection(probs, torch.tensor([2.5]), torch.tensor([True]), 0.99, support)
    assert_close(projected, torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.0]]))


# ---- error messages ------------------------------------------------------------------------

def test_errors():
    module = DistributionalQValueModule("one_hot", support=SUPPORT)
    with pytest.raises(ValueError, match=r"'action_value' must have 5 atoms in dim -2 \(one per "
                                         r"support point\), got shape \(2, 3, 4\)\."):
        module(TensorDict(action_value=torch.zeros(2, 3, 4)))
    with pytest.raises(ValueError, match="must hold log-softmax values \\(<= 0\\), got a maximum of 1.0000"):
        module(TensorDict(action_value=torch.ones(2, NBINS, 4)))
    with pytest.raises(KeyError, match="DistributionalQValueModule: expected key 'action_value'"):
        module(TensorDict(observation=torch.zeros(2)))
    with pytest.raises(ValueError, match="support must be a 1-d tensor"):
        DistributionalQValueModule("one_hot", support=torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"DistributionalDQNnet: 'action_value' must have at least "
                                         r"2 dims \(\*batch, atoms, actions\), got shape \(5,\)\."):
        DistributionalDQNnet()(TensorDict(action_value=torch.zeros(5)))
    with pytest.raises(ValueError, match="DistributionalDQNnet: out_keys must have one key per in_key"):
        DistributionalDQNnet(in_keys=["a", "b"], out_keys=["a"])
    with pytest.raises(ValueError, match="action_space and spec must agree"):
        DistributionalQValueActor(nn.Linear(3, 4), support=SUPPORT, spec=OneHot(4),
                                  action_space="categorical")


# ---- a mask with an atom dim, as torchrl accepts it -----------------------------------------

@pytest.mark.parametrize("space,ours,theirs", [
    ("one_hot", OneHot(ACTIONS), tdata.OneHot(ACTIONS)),
    ("categorical", Categorical(ACTIONS), tdata.Categorical(ACTIONS)),
])
def test_mask_with_an_atom_dim_matches_torchrl(space, ours, theirs):
    # A (batch, atoms, n) mask, the same for every atom. With a positive support a masked action
    # (expected value 0 in torchrl) is never the best, so torchrl's action is the right one.
    support = torch.linspace(1.0, 3.0, NBINS)
    log_probs = _log_probs(6)
    allowed = torch.rand(6, ACTIONS, generator=torch.Generator().manual_seed(3)) > 0.5
    allowed[:, 1] = True
    mask = allowed.unsqueeze(-2).expand(6, NBINS, ACTIONS)
    mine = DistributionalQValueModule(space, support=support, spec=ours, action_mask_key="mask")
    ref = tm.DistributionalQValueModule(space, support=support, spec=theirs,
                                        action_mask_key="mask")
    out = mine(TensorDict(action_value=log_probs, mask=mask, batch_size=[6]))
    expected = ref(TensorDict(action_value=log_probs, mask=mask, batch_size=[6]))
    assert_close(out["action"], expected["action"])
    flat = mine(TensorDict(action_value=log_probs, mask=allowed, batch_size=[6]))
    assert_close(out["action"], flat["action"])  # same as the (batch, n) mask


def test_mask_with_an_atom_dim_allows_an_action_with_any_allowed_atom():
    support = torch.tensor([-1.0, 0.0, 1.0])
    log_probs = torch.full((3, 2), 0.5).log()
    log_probs[:, 1] = torch.tensor([0.0, 0.0, 1.0]).clamp_min(1e-6).log()  # action 1: E ~ 1
    mask = torch.tensor([[True, False], [True, False], [True, True]])  # (atoms, n)
    module = DistributionalQValueModule("categorical", support=support, action_mask_key="mask")
    assert module(TensorDict(action_value=log_probs, mask=mask))["action"].item() == 1
    assert module(TensorDict(action_value=log_probs, mask=mask.any(-2)))["action"].item() == 1
    none = torch.tensor([[True, False]] * 3)  # every atom of action 1 masked
    assert module(TensorDict(action_value=log_probs, mask=none))["action"].item() == 0


# ---- the value check behind the validation switch --------------------------------------------

def test_positive_log_probs_are_checked_only_while_validating():
    module = DistributionalQValueModule("one_hot", support=SUPPORT)
    with pytest.raises(ValueError, match="must hold log-softmax values"):
        module(torch.ones(NBINS, ACTIONS))
    with set_validate_args(False):
        assert module(torch.ones(NBINS, ACTIONS))[0].sum().item() == 1


# ---- exception types: a torchrl user's `except` keeps working ------------------------------

ERROR_CASES = {
    "support length differs from the atoms": (
        lambda: DistributionalQValueModule("one_hot", SUPPORT)(torch.zeros(2, 3, ACTIONS)),
        lambda: tm.DistributionalQValueModule("one_hot", SUPPORT)(torch.zeros(2, 3, ACTIONS))),
    "positive log-probs": (
        lambda: DistributionalQValueModule("one_hot", SUPPORT)(torch.ones(NBINS, ACTIONS)),
        lambda: tm.DistributionalQValueModule("one_hot", SUPPORT)(torch.ones(NBINS, ACTIONS))),
    "missing action_value": (
        lambda: DistributionalQValueModule("one_hot", SUPPORT)(TensorDict(q=torch.zeros(2))),
        lambda: tm.DistributionalQValueModule("one_hot", SUPPORT)(TensorDict(q=torch.zeros(2)))),
    "missing action mask": (
        lambda: DistributionalQValueModule("one_hot", SUPPORT, action_mask_key="m")(
            TensorDict(action_value=_log_probs())),
        lambda: tm.DistributionalQValueModule("one_hot", SUPPORT, action_mask_key="m")(
            TensorDict(action_value=_log_probs()))),
    "a spec as action_space (hook)": (
        lambda: DistributionalQValueHook(OneHot(ACTIONS), SUPPORT),
        lambda: tm.DistributionalQValueHook(tdata.OneHot(ACTIONS), SUPPORT)),
    "a spec as action_space (actor)": (
        lambda: DistributionalQValueActor(nn.Linear(3, 4), SUPPORT, action_space=OneHot(4)),
        lambda: tm.DistributionalQValueActor(nn.Linear(3, 4), SUPPORT,
                                             action_space=tdata.OneHot(4))),
    "action_space and spec disagree": (
        lambda: DistributionalQValueModule("categorical", SUPPORT, spec=OneHot(4)),
        lambda: tm.DistributionalQValueModule("categorical", SUPPORT, spec=tdata.OneHot(4))),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_error_types_match_torchrl(case):
    ours, theirs = ERROR_CASES[case]
    expected = _raised(theirs)
    assert isinstance(_raised(ours), type(expected)), (type(_raised(ours)), type(expected))
