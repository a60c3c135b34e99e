"""rlmods: torchrl.modules rebuilt from scratch on torch + tensordict, one chapter at a time."""

from rlmods.envs import (Compose, EnvBase, ExplorationType, GymEnv, InitTracker, TensorDictPrimer,
                         Transform, TransformedEnv, exploration_type, set_exploration_type, step_mdp)
from rlmods.specs import (Binary, Bounded, Categorical, Composite, MultiCategorical, MultiOneHot,
                          OneHot, TensorSpec, Unbounded)
