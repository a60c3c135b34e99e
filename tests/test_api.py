"""Every public name is importable from rlmods with torchrl 0.14's constructor signature."""

import inspect

import pytest
import torchrl.data
import torchrl.envs
import torchrl.modules
import torchrl.modules.utils

import rlmods

# The names each chapter owns (../shared/API.md), as a torchrl user imports them.
CHAPTERS = {
    "specs_envs": ["Unbounded", "Bounded", "OneHot", "Categorical", "Composite", "Binary",
                   "MultiOneHot", "MultiCategorical", "EnvBase", "GymEnv", "TransformedEnv",
                   "TensorDictPrimer", "InitTracker", "ExplorationType", "set_exploration_type",
                   "exploration_type"],
    "nets": ["MLP", "ConvNet", "Conv3dNet", "SqueezeLayer", "Squeeze2dLayer", "BatchRenorm1d",
             "mappings", "inv_softplus", "biased_softplus"],
    "actors": ["SafeModule", "SafeSequential", "Actor", "TanhModule", "MultiStepActorWrapper",
               "VmapModule"],
    "distributions": ["Delta", "IndependentNormal", "NormalParamWrapper", "TanhNormal",
                      "TruncatedNormal", "TanhDelta", "OneHotCategorical", "MaskedCategorical",
                      "MaskedOneHotCategorical", "Ordinal", "OneHotOrdinal"],
    "probabilistic": ["SafeProbabilisticModule", "SafeProbabilisticTensorDictSequential",
                      "ProbabilisticActor"],
    "exploration": ["EGreedyModule", "EGreedyWrapper", "AdditiveGaussianModule",
                    "AdditiveGaussianWrapper", "OrnsteinUhlenbeckProcessModule",
                    "OrnsteinUhlenbeckProcessWrapper", "ConsistentDropout", "ConsistentDropoutModule",
                    "NoisyLinear", "NoisyLazyLinear", "reset_noise"],
    "qvalue": ["QValueModule", "QValueActor", "QValueHook", "DuelingCnnDQNet"],
    "distributional": ["DistributionalQValueModule", "DistributionalQValueActor",
                       "DistributionalQValueHook", "DistributionalDQNnet"],
    "value": ["ValueOperator", "ActorValueOperator", "ActorCriticOperator", "ActorCriticWrapper",
              "DdpgMlpActor", "DdpgMlpQNet", "DdpgCnnActor", "DdpgCnnQNet"],
    "rnn": ["LSTMCell", "LSTM", "GRUCell", "GRU", "LSTMModule", "GRUModule", "set_recurrent_mode",
            "recurrent_mode", "get_primers_from_module"],
    "planners": ["MPCPlannerBase", "CEMPlanner", "MPPIPlanner"],
    "sequence_models": ["DecisionTransformer", "DTActor", "OnlineDTActor",
                        "DecisionTransformerInferenceWrapper", "LMHeadActorValueOperator"],
    "multiagent": ["MultiAgentNetBase", "MultiAgentMLP", "MultiAgentConvNet", "QMixer", "VDNMixer"],
    "world_models": ["WorldModelWrapper", "ObsEncoder", "ObsDecoder", "RSSMPrior", "RSSMPosterior",
                     "DreamerActor", "RSSMRollout"],
}
NAMES = [name for names in CHAPTERS.values() for name in names]


def _torchrl(name):
    for module in (torchrl.modules, torchrl.modules.utils, torchrl.data, torchrl.envs, torchrl.envs.utils):
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(name)


@pytest.mark.parametrize("name", NAMES)
def test_name_is_importable_at_top_level(name):
    assert hasattr(rlmods, name), f"rlmods has no {name}"


@pytest.mark.parametrize("name", [n for n in NAMES if inspect.isclass(_torchrl(n))])
def test_constructor_signature_matches_torchrl(name):
    ours = inspect.signature(getattr(rlmods, name).__init__).parameters
    theirs = inspect.signature(_torchrl(name).__init__).parameters
    # *args/**kwargs catch-alls in torchrl (deprecation plumbing) are not part of the contract.
    named = {k: p for k, p in theirs.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    missing = [k for k in named if k not in ours]
    assert not missing, f"{name} lacks torchrl arguments {missing}"
    for key, param in named.items():
        if param.default is not inspect.Parameter.empty and ours[key].default is not inspect.Parameter.empty:
            assert _same_default(ours[key].default, param.default), f"{name}({key}=...) default differs"


def _same_default(ours, theirs):
    """Equal values; for classes (torch.nn.Tanh, SquashDims...) the same class name."""
    if inspect.isclass(theirs):
        return inspect.isclass(ours) and ours.__name__ == theirs.__name__
    return repr(ours) == repr(theirs)
