"""Every family of modules runs under ``torch.compile(fullgraph=True)`` with identical outputs.

``fullgraph=True`` turns any graph break into an error. The graphs are built with the
``aot_eager`` backend (dynamo's capture and AOTAutograd, no code generation: the same
graph breaks as inductor, in a fraction of the compile time, and random ops that draw
from the global generator as eager mode does); one test runs inductor end to end.
"""

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import InteractionType, NormalParamExtractor, TensorDictModule
from torch import nn

from rlmods import (Actor, AdditiveGaussianModule, Bounded, Categorical, ConsistentDropoutModule,
                    DistributionalQValueActor, EGreedyModule, ExplorationType, GRUModule,
                    LSTMModule, NoisyLinear, OneHot, OrnsteinUhlenbeckProcessModule,
                    ProbabilisticActor, QValueActor, SafeModule, SafeSequential, TanhModule,
                    TanhNormal, ValueOperator, set_exploration_type, set_recurrent_mode)
from rlmods import (ActorCriticOperator, ActorCriticWrapper, ActorValueOperator, MultiAgentMLP,
                    QMixer, VDNMixer)

B, OBS, N = 4, 3, 4


def _net(out=2):
    return nn.Sequential(nn.Linear(OBS, 8), nn.Tanh(), nn.Linear(8, out))


class _Critic(nn.Module):
    """A Q-network: the observation (or hidden) and the action in, one value out."""

    def __init__(self, features=OBS):
        super().__init__()
        self.net = nn.Linear(features + 2, 1)

    def forward(self, observation, action):
        return self.net(torch.cat([observation, action], -1))


def _data(**extra):
    generator = torch.Generator().manual_seed(1)
    return TensorDict({"observation": torch.randn(B, OBS, generator=generator), **extra}, [B])


def _mask():
    return torch.tensor([[True, False, True, True]] * B)


def _one_hot_actions():
    return torch.eye(N, dtype=torch.long)[torch.arange(B) % N]


def _params():
    return TensorDictModule(nn.Sequential(_net(4), NormalParamExtractor()), ["observation"],
                            ["loc", "scale"])


def assert_compiled_matches_eager(module, data, seed=0, backend="aot_eager", exact=True):
    compiled = torch.compile(module, fullgraph=True, dynamic=False, backend=backend)
    for _ in range(2):  # the second call runs the cached graph
        torch.manual_seed(seed)
        expected = module(data.clone())
        torch.manual_seed(seed)
        got = compiled(data.clone())
        assert set(got.keys(True, True)) == set(expected.keys(True, True))
        for key, value in expected.items(True, True):
            tolerance = {"rtol": 0, "atol": 0} if exact else {}  # else float32's defaults
            torch.testing.assert_close(got.get(key), value, **tolerance, msg=str(key))
    return compiled


FAMILIES = {
    "actors": {
        "Actor, safe": lambda: (Actor(_net(), spec=Bounded(-0.1, 0.1, (2,)), safe=True), _data()),
        "SafeModule, two outputs": lambda: (
            SafeModule(lambda x: (x + 1, x.sum(-1, keepdim=True)), ["observation"], ["h", "s"]),
            _data()),
        "SafeSequential": lambda: (SafeSequential(
            SafeModule(_net(), ["observation"], ["hidden"]),
            Actor(nn.Linear(2, 1), in_keys=["hidden"])), _data()),
        "TanhModule": lambda: (TanhModule(["observation"], ["y"], low=-2.0, high=3.0), _data()),
        "Actor over NoisyLinear": lambda: (Actor(NoisyLinear(OBS, 2)), _data()),
    },
    "probabilistic": {
        "TanhNormal, deterministic": lambda: (ProbabilisticActor(
            _params(), ["loc", "scale"], distribution_class=TanhNormal, return_log_prob=True),
            _data()),
        "TanhNormal, sample + log_prob": lambda: (ProbabilisticActor(
            _params(), ["loc", "scale"], distribution_class=TanhNormal, return_log_prob=True,
            default_interaction_type=InteractionType.RANDOM), _data()),
        "Normal, safe": lambda: (ProbabilisticActor(
            _params(), ["loc", "scale"], spec=Bounded(-0.5, 0.5, (2,)), safe=True,
            distribution_class=torch.distributions.Normal,
            default_interaction_type=InteractionType.RANDOM), _data()),
    },
    "qvalue": {
        "categorical": lambda: (QValueActor(_net(N), spec=Categorical(N)), _data()),
        "one-hot": lambda: (QValueActor(_net(N), spec=OneHot(N)), _data()),
        "masked": lambda: (QValueActor(_net(N), spec=OneHot(N), action_mask_key="action_mask"),
                           _data(action_mask=_mask())),
        "distributional": lambda: (DistributionalQValueActor(
            nn.Sequential(_net(5 * N), nn.Unflatten(-1, (5, N))),
            support=torch.linspace(-1.0, 1.0, 5), spec=Categorical(N)), _data()),
    },
    "exploration": {
        "EGreedyModule": lambda: (EGreedyModule(OneHot(N), 0.5),
                                  TensorDict(action=_one_hot_actions(), batch_size=[B])),
        "EGreedyModule, masked": lambda: (
            EGreedyModule(OneHot(N), 0.5, action_mask_key="action_mask"),
            TensorDict(action=_one_hot_actions(), action_mask=_mask(), batch_size=[B])),
        "EGreedyModule over QValueActor": lambda: (SafeSequential(
            QValueActor(_net(N), spec=OneHot(N)), EGreedyModule(OneHot(N), 0.5)), _data()),
        "AdditiveGaussianModule": lambda: (
            AdditiveGaussianModule(Bounded(-1.0, 1.0, (OBS,)), action_key="observation"), _data()),
        "OrnsteinUhlenbeckProcessModule": lambda: (
            OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (OBS,)), action_key="observation"),
            _data(is_init=torch.ones(B, 1, dtype=torch.bool))),
        "ConsistentDropoutModule": lambda: (ConsistentDropoutModule(0.5, in_keys="observation"),
                                            _data()),
    },
    "value": {
        "ValueOperator, state value": lambda: (ValueOperator(_net(1)), _data()),
        "ValueOperator, state-action value": lambda: (ValueOperator(
            _Critic(), in_keys=["observation", "action"]), _data(action=torch.ones(B, 2))),
        "ActorValueOperator, probabilistic policy": lambda: (ActorValueOperator(
            SafeModule(_net(8), ["observation"], ["hidden"]), ProbabilisticActor(
                TensorDictModule(nn.Sequential(nn.Linear(8, 4), NormalParamExtractor()),
                                 ["hidden"], ["loc", "scale"]), ["loc", "scale"],
                distribution_class=TanhNormal, return_log_prob=True,
                default_interaction_type=InteractionType.RANDOM),
            ValueOperator(nn.Linear(8, 1), in_keys=["hidden"])), _data()),
        "ActorCriticOperator": lambda: (ActorCriticOperator(
            SafeModule(_net(8), ["observation"], ["hidden"]),
            Actor(nn.Linear(8, 2), in_keys=["hidden"]),
            ValueOperator(_Critic(8), in_keys=["hidden", "action"])), _data()),
        "ActorCriticWrapper": lambda: (ActorCriticWrapper(
            Actor(_net()), ValueOperator(_net(1))), _data()),
    },
}
CASES = [(family, name) for family, cases in FAMILIES.items() for name in cases]


@pytest.mark.parametrize("family, name", CASES, ids=[f"{f}: {n}" for f, n in CASES])
def test_compiles_without_graph_breaks_and_matches_eager(family, name):
    module, data = FAMILIES[family][name]()
    with torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
        assert_compiled_matches_eager(module, data)


def _recurrent_data(kind, batch_size):
    generator = torch.Generator().manual_seed(2)
    keys = ["recurrent_state_h", "recurrent_state_c"] if kind == "LSTM" else ["recurrent_state"]
    is_init = torch.zeros(B, 5, 1, dtype=torch.bool)
    is_init[:, 0], is_init[1, 3] = True, True  # a restart inside a row (recurrent mode)
    if len(batch_size) == 1:  # one step: rows 0 and 3 restart, rows 1 and 2 go on
        is_init = torch.tensor([[True], [False], [False], [True]])
    return TensorDict({"observation": torch.randn(*batch_size, OBS, generator=generator),
                       "is_init": is_init,
                       **{key: torch.randn(*batch_size, 1, 8, generator=generator)
                          for key in keys}}, batch_size)


@pytest.mark.parametrize("cls", [LSTMModule, GRUModule], ids=["LSTMModule", "GRUModule"])
def test_recurrent_modules_compile_in_both_modes_and_match_eager(cls):
    # dynamo refuses any torch.nn.RNNBase unless allow_rnn is set: a torch switch, not ours.
    module = cls(input_size=OBS, hidden_size=8, in_key="observation", out_key="features")
    kind = cls.__name__[:-len("Module")]
    with torch.no_grad(), torch._dynamo.config.patch(allow_rnn=True):
        # AOTAutograd decomposes the fused GRU cell: the last bit of a float may differ
        compiled = assert_compiled_matches_eager(module, _recurrent_data(kind, [B]), exact=False)
        data = _recurrent_data(kind, [B, 5])  # (B, T): one compiled module, both modes
        for mode in (False, True, False):  # the mode is a guard: each switch takes its graph
            with set_recurrent_mode(mode):
                got, expected = compiled(data.clone()), module(data.clone())
            assert got["features"].shape == (B, 5, 8)
            for key, value in expected.items(True, True):
                torch.testing.assert_close(got.get(key), value, msg=str((mode, key)))


MULTIAGENT = {  # networks on bare tensors: (n_agents=4) agents' inputs -> per-agent outputs
    "MultiAgentMLP": lambda: (MultiAgentMLP(OBS, 2, N, centralized=False, share_params=False,
                                            depth=1, num_cells=8), (torch.randn(B, N, OBS),)),
    "MultiAgentMLP, shared, centralized": lambda: (MultiAgentMLP(
        OBS, 2, N, centralized=True, share_params=True, depth=1, num_cells=8),
        (torch.randn(B, N, OBS),)),
    "VDNMixer": lambda: (VDNMixer(N, device="cpu"), (torch.randn(B, N, 1),)),
    "QMixer": lambda: (QMixer(state_shape=(OBS,), mixing_embed_dim=8, n_agents=N, device="cpu"),
                       (torch.randn(B, N, 1), torch.randn(B, OBS))),
}


@pytest.mark.parametrize("name", list(MULTIAGENT))
def test_multiagent_nets_compile_without_graph_breaks_and_match_eager(name):
    torch.manual_seed(0)
    module, inputs = MULTIAGENT[name]()
    compiled = torch.compile(module, fullgraph=True, dynamic=False, backend="aot_eager")
    with torch.no_grad():
        for _ in range(2):  # the second call runs the cached graph
            torch.testing.assert_close(compiled(*inputs), module(*inputs), rtol=0, atol=0)


def test_inductor_compiles_an_actor_that_matches_eager():
    module, data = FAMILIES["qvalue"]["one-hot"]()
    with torch.no_grad():
        compiled = torch.compile(module, fullgraph=True, dynamic=False)
        got, expected = compiled(data.clone()), module(data.clone())
    assert torch.equal(got["action"], expected["action"])
    torch.testing.assert_close(got["action_value"], expected["action_value"])


def test_sixteen_compiled_modules_with_different_keys_coexist():
    # Modules of one class share one forward; dynamo keeps compiled graphs per code object and
    # allows recompile_limit (8) of them, so without a forward of its own per module the ninth
    # module with new keys fails (a hard error under fullgraph=True).
    assert torch._dynamo.config.recompile_limit == 8
    torch._dynamo.reset()
    modules = []
    for i in range(16):
        obs, act = f"observation_{i}", f"action_{i}"
        data = TensorDict({obs: torch.randn(B, OBS)}, [B])
        if i % 2:
            module = Actor(_net(), in_keys=[obs], out_keys=[act])
        else:
            module = QValueActor(_net(N), in_keys=[obs], action_key=act, spec=Categorical(N))
        modules.append((module, torch.compile(module, fullgraph=True, dynamic=False,
                                              backend="eager"), data, act))
    with torch.no_grad():
        for _ in range(2):  # every compiled module stays valid after the others compiled
            for module, compiled, data, act in modules:
                assert torch.equal(compiled(data.clone())[act], module(data.clone())[act])


# ---- CUDA graphs: tensordict's CudaGraphModule around rlmods policies ----------------------
# CudaGraphModule takes tensordicts out of torch's pytree registry for the whole process
# ("irreversible", it warns), so the check runs in a process of its own. Without CUDA the
# wrapper runs the module eagerly: the check then covers the wrapper's key handling; on a GPU
# it covers the captured graph (the calls after the warm-up are replays).
CUDA_GRAPH_CHECK = r"""
import sys
import torch
from tensordict import TensorDict
from tensordict.nn import CudaGraphModule, NormalParamExtractor
from torch import nn
import rlmods

device = torch.device(sys.argv[1])
torch.manual_seed(0)
mlp = lambda n_in, n_out: nn.Sequential(nn.Linear(n_in, 16), nn.Tanh(), nn.Linear(16, n_out))
params = rlmods.SafeModule(nn.Sequential(mlp(3, 4), NormalParamExtractor()), ["observation"],
                           ["loc", "scale"])
policies = {
    "Actor": rlmods.Actor(mlp(3, 2)),
    "QValueActor": rlmods.QValueActor(mlp(3, 4), spec=rlmods.OneHot(4)),
    "ProbabilisticActor": rlmods.ProbabilisticActor(
        params, in_keys=["loc", "scale"], distribution_class=rlmods.TanhNormal,
        return_log_prob=True),
    "ValueOperator": rlmods.ValueOperator(rlmods.MLP(in_features=4, out_features=1, num_cells=[16]),
                                          in_keys=["observation", "action"]),
    "LSTMModule": rlmods.LSTMModule(3, 8, in_key="observation", out_key="features"),
    "MultiAgentMLP": rlmods.SafeModule(
        rlmods.MultiAgentMLP(3, 2, 4, centralized=False, share_params=False, depth=1),
        ["agents_obs"], ["agents_action"]),
}
for name, policy in policies.items():
    policy = policy.to(device)
    graphed = CudaGraphModule(policy, warmup=2)
    for call in range(5):
        td = TensorDict(observation=torch.randn(6, 3), action=torch.randn(6, 1),
                        is_init=torch.zeros(6, 1, dtype=torch.bool),
                        agents_obs=torch.randn(6, 4, 3), recurrent_state_h=torch.randn(6, 1, 8),
                        recurrent_state_c=torch.randn(6, 1, 8), batch_size=[6]).to(device)
        with torch.no_grad(), rlmods.set_exploration_type(rlmods.ExplorationType.DETERMINISTIC):
            out, ref = graphed(td.clone()), policy(td.clone())
        keys = sorted(ref.keys(True, True), key=str)
        assert sorted(out.keys(True, True), key=str) == keys, (name, keys)
        for key in keys:
            torch.testing.assert_close(out[key], ref[key], rtol=1e-5, atol=1e-6,
                                       msg=f"{name} {key}")
    print(name)
"""


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA graphs need a GPU"))])
def test_cuda_graph_module_wraps_rlmods_policies_with_identical_outputs(device):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", CUDA_GRAPH_CHECK, device], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["Actor", "QValueActor", "ProbabilisticActor", "ValueOperator",
                                   "LSTMModule", "MultiAgentMLP"]
