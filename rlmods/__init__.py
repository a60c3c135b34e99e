"""rlmods: torchrl.modules rebuilt from scratch on torch + tensordict, one chapter at a time."""

from rlmods._checks import InvalidTypeError, InvalidValueError, set_validate_args, validate_args
from rlmods.actors import (Actor, MultiStepActorWrapper, SafeModule, SafeSequential, TanhModule,
                            VmapModule)
from rlmods.distributional import (DistributionalDQNnet, DistributionalQValueActor,
                                   DistributionalQValueHook, DistributionalQValueModule,
                                   categorical_projection)
from rlmods.distributions import (Delta, IndependentNormal, MaskedCategorical, MaskedOneHotCategorical,
                                  NormalParamWrapper, OneHotCategorical, OneHotOrdinal, Ordinal,
                                  ReparamGradientStrategy, TanhDelta, TanhNormal, TruncatedNormal)
from rlmods.envs import (Compose, EnvBase, ExplorationType, GymEnv, InitTracker, InteractionType,
                         TensorDictPrimer, Transform, TransformedEnv, exploration_type,
                         interaction_type, set_exploration_type, set_interaction_type, step_mdp)
from rlmods.exploration import (AdditiveGaussianModule, AdditiveGaussianWrapper, ConsistentDropout,
                                ConsistentDropoutModule, EGreedyModule, EGreedyWrapper, NoisyLazyLinear,
                                NoisyLinear, OrnsteinUhlenbeckProcessModule,
                                OrnsteinUhlenbeckProcessWrapper, reset_noise)
from rlmods.multiagent import (Mixer, MultiAgentConvNet, MultiAgentMLP, MultiAgentNetBase, QMixer,
                               VDNMixer)
from rlmods.nets import (MLP, BatchRenorm1d, Conv3dNet, ConvNet, Squeeze2dLayer, SqueezeLayer,
                         biased_softplus, inv_softplus, mappings)
from rlmods.planners import CEMPlanner, MPCPlannerBase, MPPIPlanner
from rlmods.probabilistic import (ProbabilisticActor, SafeProbabilisticModule,
                                  SafeProbabilisticTensorDictSequential)
from rlmods.qvalue import DuelingCnnDQNet, QValueActor, QValueHook, QValueModule
from rlmods.rnn import (GRU, LSTM, GRUCell, GRUModule, LSTMCell, LSTMModule,
                        get_primers_from_module, recurrent_mode, set_recurrent_mode)
from rlmods.sequence_models import (DecisionTransformer, DecisionTransformerInferenceWrapper,
                                    DTActor, LMHeadActorValueOperator, OnlineDTActor)
from rlmods.specs import (Binary, Bounded, Categorical, Composite, MultiCategorical, MultiOneHot,
                          OneHot, Stacked, StackedComposite, TensorSpec, Unbounded)
from rlmods.value import (ActorCriticOperator, ActorCriticWrapper, ActorValueOperator, DdpgCnnActor,
                          DdpgCnnQNet, DdpgMlpActor, DdpgMlpQNet, ValueOperator)
from rlmods.world_models import (DreamerActor, ObsDecoder, ObsEncoder, RSSMPosterior, RSSMPrior,
                                 RSSMRollout, WorldModelWrapper)
