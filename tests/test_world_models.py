"""rlmods.world_models against torchrl 0.14 (the oracle), plus what rlmods adds."""

import warnings

import pytest
import torch
import torchrl.data as tdata
import torchrl.modules as tm
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torch.testing import assert_close

from rlmods import (DreamerActor, InvalidValueError, ObsDecoder, ObsEncoder, RSSMPosterior,
                    RSSMPrior, RSSMRollout, SafeModule, Unbounded, WorldModelWrapper)
from rlmods.world_models import conv_out_size
from oracle_helpers import raised as _raised
from oracle_helpers import train_seeds_module


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _copy_weights(theirs, ours):
    """Load torchrl's state_dict into rlmods' module (strict: same names and shapes)."""
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours


# ---- the pixel encoder and decoder -----------------------------------------------------

@pytest.mark.parametrize("num_layers", [1, 2, 4])
@pytest.mark.parametrize("batch", [(), (3,), (2, 3)])
def test_obs_encoder_matches_torchrl(num_layers, batch):
    theirs = tm.ObsEncoder(channels=4, num_layers=num_layers, in_channels=3)
    ours = _copy_weights(theirs, ObsEncoder(channels=4, num_layers=num_layers, in_channels=3))
    frames = _randn(*batch, 3, 64, 64)
    out = ours(frames)
    assert_close(out, theirs(frames))
    assert out.shape == (*batch, 4 * 2 ** (num_layers - 1) * conv_out_size(64, num_layers) ** 2)


def test_lazy_obs_encoder_loads_a_torchrl_checkpoint():
    theirs = tm.ObsEncoder(channels=4)
    frames = _randn(2, 1, 64, 64)
    expected = theirs(frames)  # materialises the lazy first layer
    ours = ObsEncoder(channels=4)
    ours.load_state_dict(theirs.state_dict())
    assert_close(ours(frames), expected)
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize("num_layers,kernel_sizes", [(4, None), (3, None), (2, [5, 6]), (4, 4)])
def test_obs_decoder_matches_torchrl(num_layers, kernel_sizes):
    kwargs = dict(channels=4, num_layers=num_layers, kernel_sizes=kernel_sizes, out_channels=2)
    theirs = tm.ObsDecoder(latent_dim=10, **kwargs)
    ours = _copy_weights(theirs, ObsDecoder(latent_dim=10, **kwargs))
    state, belief = _randn(2, 3, 4), _randn(2, 3, 6, seed=1)
    out = ours(state, belief)
    assert_close(out, theirs(state, belief))
    assert out.shape[:3] == (2, 3, 2)


def test_default_obs_decoder_draws_64x64_frames_and_loads_a_lazy_torchrl_checkpoint():
    theirs = tm.ObsDecoder(channels=4)
    state, belief = _randn(5, 3), _randn(5, 7, seed=1)
    expected = theirs(state, belief)
    ours = ObsDecoder(channels=4)
    ours.load_state_dict(theirs.state_dict())
    assert_close(ours(state, belief), expected)
    assert expected.shape == (5, 3, 64, 64)


@pytest.mark.torchrl_bug
def test_torchrl_obs_decoder_with_one_layer_fails():
    with pytest.raises(RuntimeError):
        tm.ObsDecoder(channels=4, num_layers=1, latent_dim=10)(_randn(2, 4), _randn(2, 6))


def test_obs_decoder_with_one_layer_better_than_torchrl():
    decoder = ObsDecoder(channels=4, num_layers=1, latent_dim=10, out_channels=1)
    assert decoder(_randn(2, 4), _randn(2, 6)).shape == (2, 1, 5, 5)
    assert isinstance(decoder.decoder[0], nn.ReLU)  # torchrl's order: ReLU, then the layer


# ---- the RSSM ------------------------------------------------------------------------

def _prior_pair(hidden=16, rnn_hidden=16, state_dim=4, action_dim=2):
    theirs = tm.RSSMPrior(tdata.Bounded(-1.0, 1.0, (action_dim,)), hidden, rnn_hidden, state_dim,
                          action_dim=action_dim)
    ours = RSSMPrior(Unbounded(action_dim), hidden, rnn_hidden, state_dim)
    return theirs, _copy_weights(theirs, ours)


@pytest.mark.parametrize("batch", [(), (1,), (7,)])
def test_rssm_prior_matches_torchrl_given_the_noise(batch):
    theirs, ours = _prior_pair()
    inputs = _randn(*batch, 4), _randn(*batch, 16, seed=1), _randn(*batch, 2, seed=2)
    noise = _randn(*batch, 4, seed=3)
    for a, b in zip(ours(*inputs, noise=noise), theirs(*inputs, noise=noise)):
        assert_close(a, b)


def test_rssm_prior_matches_torchrl_with_the_same_seed():
    theirs, ours = _prior_pair()
    inputs = _randn(7, 4), _randn(7, 16, seed=1), _randn(7, 2, seed=2)
    torch.manual_seed(5)
    expected = theirs(*inputs)
    torch.manual_seed(5)
    for a, b in zip(ours(*inputs), expected):
        assert_close(a, b)


def test_rssm_prior_without_belief_starts_from_zeros_as_torchrl():
    theirs, ours = _prior_pair()
    state, action, noise = _randn(7, 4), _randn(7, 2, seed=2), _randn(7, 4, seed=3)
    for a, b in zip(ours(state, None, action, noise), theirs(state, None, action, noise)):
        assert_close(a, b)


def test_rssm_prior_lazy_torchrl_checkpoint_loads():
    theirs = tm.RSSMPrior(tdata.Bounded(-1.0, 1.0, (2,)), 16, 16, 4)  # LazyLinear first layer
    inputs = _randn(7, 4), _randn(7, 16, seed=1), _randn(7, 2, seed=2)
    expected = theirs(*inputs, noise=torch.zeros(7, 4))
    ours = _copy_weights(theirs, RSSMPrior(Unbounded(2), 16, 16, 4))
    for a, b in zip(ours(*inputs, noise=torch.zeros(7, 4)), expected):
        assert_close(a, b)


def test_rssm_prior_state_is_mean_plus_noise_times_std_and_std_is_bounded():
    _, ours = _prior_pair()
    noise = _randn(7, 4, seed=3)
    mean, std, state, _ = ours(_randn(7, 4), _randn(7, 16, seed=1), _randn(7, 2, seed=2), noise)
    assert_close(state, mean + noise * std)
    assert (std >= 0.1).all()
    with torch.no_grad():
        ours.rnn_to_prior_projector[2].bias[4:] = -100.0  # softplus(-100) ~ 0: the floor holds
    std = ours(_randn(7, 4), _randn(7, 16, seed=1), _randn(7, 2, seed=2))[1]
    assert torch.equal(std, torch.full_like(std, 0.1))


@pytest.mark.torchrl_bug
def test_torchrl_rssm_prior_fails_when_hidden_dim_differs_from_rnn_hidden_dim():
    prior = tm.RSSMPrior(tdata.Bounded(-1.0, 1.0, (2,)), 16, 8, 4, action_dim=2)
    with pytest.raises(RuntimeError):
        prior(_randn(7, 4), _randn(7, 8), _randn(7, 2))


def test_rssm_prior_with_hidden_dim_not_rnn_hidden_dim_better_than_torchrl():
    prior = RSSMPrior(Unbounded(2), hidden_dim=16, rnn_hidden_dim=8, state_dim=4)
    mean, std, state, belief = prior(_randn(7, 4), _randn(7, 8), _randn(7, 2))
    assert mean.shape == std.shape == state.shape == (7, 4) and belief.shape == (7, 8)
    assert prior.rnn_to_prior_projector[0].in_features == 8


@pytest.mark.torchrl_bug
def test_torchrl_rssm_prior_fails_with_two_batch_dims():
    theirs, _ = _prior_pair()
    with pytest.raises(ValueError, match="Expected input to be 1D or 2D, got 3D"):
        theirs(_randn(5, 3, 4), _randn(5, 3, 16), _randn(5, 3, 2))


def test_rssm_prior_with_two_batch_dims_better_than_torchrl():
    theirs, ours = _prior_pair()
    inputs = _randn(5, 3, 4), _randn(5, 3, 16, seed=1), _randn(5, 3, 2, seed=2)
    noise = _randn(5, 3, 4, seed=3)
    flat = theirs(*(x.reshape(15, -1) for x in inputs), noise=noise.reshape(15, 4))
    for a, b in zip(ours(*inputs, noise=noise), flat):
        assert a.shape[:2] == (5, 3)
        assert_close(a.reshape(15, -1), b)


@pytest.mark.parametrize("explicit", [True, False])
def test_rssm_posterior_matches_torchrl(explicit):
    dims = dict(rnn_hidden_dim=16, obs_embed_dim=12) if explicit else {}
    theirs = tm.RSSMPosterior(hidden_dim=8, state_dim=4, scale_lb=0.2, **dims)
    belief, embed, noise = _randn(2, 5, 16), _randn(2, 5, 12, seed=1), _randn(2, 5, 4, seed=2)
    expected = theirs(belief, embed, noise)
    ours = _copy_weights(theirs, RSSMPosterior(hidden_dim=8, state_dim=4, scale_lb=0.2, **dims))
    for a, b in zip(ours(belief, embed, noise), expected):
        assert_close(a, b)
    torch.manual_seed(3)
    expected = theirs(belief, embed)
    torch.manual_seed(3)
    assert_close(ours(belief, embed)[2], expected[2])
    assert (expected[1] >= 0.2).all()


def test_dreamer_actor_matches_torchrl():
    theirs = tm.DreamerActor(3, depth=2, num_cells=16, std_bias=2.0, std_min_val=0.1)
    state, belief = _randn(2, 5, 4), _randn(2, 5, 6, seed=1)
    expected = theirs(state, belief)
    ours = DreamerActor(3, depth=2, num_cells=16, std_bias=2.0, std_min_val=0.1)
    ours.load_state_dict(theirs.state_dict())
    for a, b in zip(ours(state, belief), expected):
        assert_close(a, b)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    zero = ours.backbone[-2].weight.new_zeros(())
    with torch.no_grad():
        for p in ours.parameters():
            p.copy_(zero)
    assert_close(ours(state, belief)[1], torch.full((2, 5, 3), 2.0))  # std_bias at 0


# ---- the rollout -----------------------------------------------------------------------

def _rollout_modules(module_cls, prior, posterior):
    """torchrl's Dreamer keys (torchrl.trainers.helpers.models._dreamer_make_world_model)."""
    return (module_cls(prior, in_keys=["state", "belief", "action"],
                       out_keys=[("next", "prior_mean"), ("next", "prior_std"), "_",
                                 ("next", "belief")]),
            module_cls(posterior, in_keys=[("next", "belief"), ("next", "encoded_latents")],
                       out_keys=[("next", "posterior_mean"), ("next", "posterior_std"),
                                 ("next", "state")]))


def _rollout_pair():
    theirs_prior, ours_prior = _prior_pair()
    theirs_post = tm.RSSMPosterior(8, 4, rnn_hidden_dim=16, obs_embed_dim=12)
    ours_post = _copy_weights(theirs_post, RSSMPosterior(8, 4, rnn_hidden_dim=16, obs_embed_dim=12))
    theirs = tm.RSSMRollout(*_rollout_modules(tm.SafeModule, theirs_prior, theirs_post))
    ours = RSSMRollout(*_rollout_modules(SafeModule, ours_prior, ours_post))
    return theirs, ours, ours_prior, ours_post


def _sequence(batch=(3,), steps=6):
    return TensorDict(state=torch.zeros(*batch, steps, 4), belief=torch.zeros(*batch, steps, 16),
                      action=_randn(*batch, steps, 2),
                      next={"encoded_latents": _randn(*batch, steps, 12, seed=1)},
                      batch_size=[*batch, steps])


ROLLOUT_KEYS = ["state", "belief", ("next", "prior_mean"), ("next", "prior_std"),
                ("next", "belief"), ("next", "posterior_mean"), ("next", "posterior_std"),
                ("next", "state")]


def test_rssm_rollout_matches_torchrl_with_the_same_seed():
    theirs, ours, _, _ = _rollout_pair()
    torch.manual_seed(0)
    expected = theirs(_sequence())
    torch.manual_seed(0)
    out = ours(_sequence())
    assert out.batch_size == expected.batch_size == (3, 6)
    for key in ROLLOUT_KEYS:
        assert_close(out[key], expected[key])


@pytest.mark.torchrl_bug
def test_torchrl_rssm_rollout_fails_with_two_batch_dims_before_time():
    theirs = _rollout_pair()[0]
    with pytest.raises(ValueError, match="Expected input to be 1D or 2D, got 3D"):
        theirs(_sequence(batch=(2, 3)))


def test_rssm_rollout_with_two_batch_dims_before_time_better_than_torchrl():
    theirs, ours, _, _ = _rollout_pair()
    data = _sequence(batch=(2, 3))
    torch.manual_seed(0)  # the same draws as torchrl's on the flattened batch
    expected = theirs(data.reshape(6, 6))
    torch.manual_seed(0)
    out = ours(data)
    assert out.batch_size == (2, 3, 6)
    for key in ROLLOUT_KEYS:
        assert_close(out[key].reshape(6, 6, -1), expected[key])


def test_rssm_rollout_feeds_the_posterior_of_t_into_the_prior_of_t_plus_1():
    _, rollout, prior, posterior = _rollout_pair()
    data = _sequence()
    torch.manual_seed(0)
    out = rollout(data.clone())
    assert torch.equal(out["state"][:, 1:], out["next", "state"][:, :-1])
    assert torch.equal(out["belief"][:, 1:], out["next", "belief"][:, :-1])
    assert not torch.equal(out["state"][:, 1:], out["state"][:, :-1])  # the state moves
    torch.manual_seed(0)  # the same loop by hand, on tensors, draws the same noise
    state, belief = data["state"][:, 0], data["belief"][:, 0]
    for t in range(6):
        _, _, _, belief = prior(state, belief, data["action"][:, t])
        _, _, state = posterior(belief, data["next", "encoded_latents"][:, t])
        assert_close(out["next", "state"][:, t], state)
        assert_close(out["next", "belief"][:, t], belief)


def test_rssm_rollout_keys_and_compiled_step_argument():
    theirs, ours, prior, posterior = _rollout_pair()
    assert sorted(map(str, ours.in_keys)) == sorted(map(str, theirs.in_keys))
    assert sorted(map(str, ours.out_keys)) == sorted(map(str, theirs.out_keys))
    assert ours._step_fn == ours._step
    compiled = RSSMRollout(*_rollout_modules(SafeModule, prior, posterior), compile_step=True,
                           compile_backend="eager")
    assert compiled._step_fn != compiled._step


# ---- the world model wrapper ----------------------------------------------------------

def test_world_model_wrapper_matches_torchrl():
    transition = TensorDictModule(nn.Linear(3, 3), ["state"], [("next", "state")])
    reward = TensorDictModule(nn.Linear(3, 1), [("next", "state")], [("next", "reward")])
    ours, theirs = WorldModelWrapper(transition, reward), tm.WorldModelWrapper(transition, reward)
    td = TensorDict(state=_randn(4, 3), batch_size=[4])
    out, expected = ours(td.clone()), theirs(td.clone())
    for key in [("next", "state"), ("next", "reward")]:
        assert_close(out[key], expected[key])
    assert ours.get_transition_model_operator() is transition
    assert ours.get_reward_operator() is reward
    assert ours.in_keys == theirs.in_keys and ours.out_keys == theirs.out_keys


# ---- errors --------------------------------------------------------------------------

def test_encoder_rejects_frames_with_the_wrong_channel_count():
    with pytest.raises(InvalidValueError, match=r"ObsEncoder: observation must have 3 channels "
                                                r"\(dim -3\), got shape \(2, 1, 64, 64\)\."):
        ObsEncoder(channels=4, in_channels=3)(torch.zeros(2, 1, 64, 64))


def test_lazy_encoder_rejects_a_channel_count_other_than_its_first():
    encoder = ObsEncoder(channels=4)
    encoder(torch.zeros(2, 3, 64, 64))
    with pytest.raises(InvalidValueError, match="must have 3 channels"):
        encoder(torch.zeros(2, 1, 64, 64))


def test_encoder_rejects_frames_too_small_for_its_layers():
    with pytest.raises(InvalidValueError, match=r"ObsEncoder: observation frames must be at "
                                                r"least 46x46 for 4 layers \(Dreamer uses 64x64\), "
                                                r"got shape \(2, 3, 32, 32\)\."):
        ObsEncoder(channels=4, in_channels=3)(torch.zeros(2, 3, 32, 32))
    assert conv_out_size(45, 4) == 0 and conv_out_size(46, 4) == 1
    ObsEncoder(channels=4, in_channels=3)(torch.zeros(2, 3, 46, 46))  # the smallest that works


def test_encoder_rejects_frames_without_channel_and_spatial_dims():
    with pytest.raises(InvalidValueError, match=r"shape \(\*batch, C, H, W\), got shape \(64, 64\)"):
        ObsEncoder(channels=4, in_channels=1)(torch.zeros(64, 64))


def test_decoder_rejects_a_latent_of_the_wrong_size():
    with pytest.raises(InvalidValueError, match=r"ObsDecoder: cat\(\[state, rnn_hidden\], -1\) "
                                                r"must have 10 entries in its last dim, "
                                                r"got shape \(2, 12\)\."):
        ObsDecoder(channels=4, latent_dim=10)(torch.zeros(2, 4), torch.zeros(2, 8))


def test_prior_rejects_an_action_that_does_not_match_the_spec():
    prior = RSSMPrior(Unbounded(2), 16, 16, 4)
    with pytest.raises(InvalidValueError, match=r"RSSMPrior: action must have 2 entries in its "
                                                r"last dim, got shape \(7, 3\)\."):
        prior(torch.zeros(7, 4), torch.zeros(7, 16), torch.zeros(7, 3))


@pytest.mark.parametrize("args,match", [
    ((torch.zeros(7, 5), torch.zeros(7, 16), torch.zeros(7, 2)),
     r"state must have 4 entries in its last dim, got shape \(7, 5\)"),
    ((torch.zeros(7, 4), torch.zeros(7, 15), torch.zeros(7, 2)),
     r"belief must have 16 entries in its last dim, got shape \(7, 15\)"),
    ((torch.zeros(7, 4), torch.zeros(6, 16), torch.zeros(7, 2)),
     r"the inputs must share their leading dims, got state \(7, 4\), belief \(6, 16\), "
     r"action \(7, 2\)"),
    ((torch.zeros(7, 4), torch.zeros(7, 16), torch.zeros(7, 2), torch.zeros(7, 3)),
     r"noise must have the state's shape \(7, 4\), got shape \(7, 3\)"),
])
def test_prior_forward_errors(args, match):
    with pytest.raises(InvalidValueError, match="RSSMPrior: " + match):
        RSSMPrior(Unbounded(2), 16, 16, 4)(*args)


def test_posterior_errors_name_the_argument_and_shapes():
    posterior = RSSMPosterior(8, 4, rnn_hidden_dim=16, obs_embed_dim=12)
    with pytest.raises(InvalidValueError, match=r"RSSMPosterior: obs_embedding must have 12 "
                                                r"entries in its last dim, got shape \(3, 10\)\."):
        posterior(torch.zeros(3, 16), torch.zeros(3, 10))
    lazy = RSSMPosterior(8, 4)
    lazy(torch.zeros(3, 16), torch.zeros(3, 12))
    with pytest.raises(InvalidValueError, match=r"cat\(\[belief, obs_embedding\], -1\) must have "
                                                r"28 entries in its last dim, got shape \(3, 26\)"):
        lazy(torch.zeros(3, 16), torch.zeros(3, 10))
    half = RSSMPosterior(8, 4, rnn_hidden_dim=16)  # lazy, yet the given size is checked
    with pytest.raises(InvalidValueError, match=r"belief must have 16 entries"):
        half(torch.zeros(3, 15), torch.zeros(3, 10))


@pytest.mark.parametrize("build,error,match", [
    (lambda: ObsEncoder(num_layers=0), InvalidValueError,
     r"ObsEncoder: num_layers must be at least 1, got 0\."),
    (lambda: ObsDecoder(num_layers=0), InvalidValueError,
     r"ObsDecoder: num_layers must be at least 1, got 0\."),
    (lambda: ObsDecoder(num_layers=3, kernel_sizes=[5, 5]), ValueError,
     r"ObsDecoder: kernel_sizes must have num_layers=3 entries, got \[5, 5\]\."),
    (lambda: RSSMPrior(Unbounded(2), action_dim=3), ValueError,
     r"RSSMPrior: action_dim must match the action_spec's last dim 2, got action_dim=3\."),
    (lambda: RSSMPrior(Unbounded(())), ValueError,
     r"RSSMPrior: action_spec must be a spec with a last \(action\) dim"),
    (lambda: RSSMRollout(*_rollout_modules(SafeModule, *_rollout_pair()[2:]), use_scan=True),
     ValueError, r"RSSMRollout: use_scan must be False"),
])
def test_constructor_errors(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_rollout_needs_a_time_dim():
    rollout = _rollout_pair()[1]
    with pytest.raises(ValueError, match=r"RSSMRollout: the tensordict must have a time dim \(its "
                                         r"last batch dim\), got batch size \(\)\."):
        rollout(_sequence(batch=(), steps=1)[0])


def test_rollout_without_the_initial_state_names_the_key():
    rollout = _rollout_pair()[1]
    with pytest.raises(KeyError, match=r"SafeModule: expected key \W+state\W+ in the input"):
        rollout(_sequence().exclude("state"))


def test_depth_is_an_alias_for_channels_with_a_warning():
    with pytest.warns(UserWarning, match="depth argument"):
        encoder = ObsEncoder(depth=4, in_channels=1)
    with pytest.warns(UserWarning, match="depth argument"):
        decoder = ObsDecoder(depth=4, latent_dim=6)
    assert encoder.encoder[0].out_channels == 4 and decoder._depth == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ObsEncoder(channels=4, in_channels=1)


ERROR_CASES = {  # the same mistake in both libraries: the exception classes must be compatible
    "encoder channels": lambda lib: lib.ObsEncoder(channels=4, in_channels=3)(
        torch.zeros(2, 1, 64, 64)),
    "encoder frame size": lambda lib: lib.ObsEncoder(channels=4, in_channels=3)(
        torch.zeros(2, 3, 32, 32)),
    "encoder num_layers": lambda lib: lib.ObsEncoder(num_layers=0),
    "decoder latent size": lambda lib: lib.ObsDecoder(channels=4, latent_dim=10)(
        torch.zeros(2, 4), torch.zeros(2, 8)),
    "prior action size": lambda lib: lib.RSSMPrior(
        (tdata if lib is tm else __import__("rlmods")).Unbounded(2), 16, 16, 4, action_dim=2)(
        torch.zeros(7, 4), torch.zeros(7, 16), torch.zeros(7, 3)),
    "posterior embed size": lambda lib: lib.RSSMPosterior(8, 4, rnn_hidden_dim=16,
                                                          obs_embed_dim=12)(
        torch.zeros(3, 16), torch.zeros(3, 10)),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_error_types_match_torchrl(case):
    import rlmods

    theirs, ours = _raised(lambda: ERROR_CASES[case](tm)), _raised(lambda: ERROR_CASES[case](rlmods))
    assert isinstance(ours, type(theirs)), (type(ours), type(theirs))
    assert isinstance(ours, ValueError)


# ---- the chapter's stored five-seed results ---------------------------------------------

def _stored_results_problems(stored: dict) -> list:
    """How the stored results differ from the chapter's ``train`` cells (hash, HPARAMS)."""
    import nbformat

    train_seeds = train_seeds_module()
    nb = nbformat.read(train_seeds.ROOT / "book" / "13_world_models.ipynb", as_version=4)
    cells = [c.source for c in nb.cells if "train" in c.metadata.get("tags", [])]
    namespace = {}
    exec(next(c for c in cells if "HPARAMS =" in c), namespace)  # noqa: S102 - the imports + HPARAMS
    problems = []
    if stored["code_hash"] != train_seeds.code_hash(cells):
        problems.append("code_hash")
    if stored["hparams"] != namespace["HPARAMS"]:
        problems.append("hparams")
    return problems


def test_stored_world_model_seeds_match_the_chapters_training_cells():
    import json

    stored = json.loads((train_seeds_module().DATA / "world_model_seeds.json").read_text())
    assert _stored_results_problems(stored) == []
    assert sorted(stored["seeds"]) == ["0", "1", "2", "3", "4"]
    for run in stored["seeds"].values():
        assert len(run["reco"]) == stored["steps"] and run["after"] < run["baseline"]


def test_stored_world_model_seeds_check_detects_other_code_and_hyperparameters():
    import json

    stored = json.loads((train_seeds_module().DATA / "world_model_seeds.json").read_text())
    stored["hparams"]["lr"] *= 2
    stored["code_hash"] = "0" * 16
    assert _stored_results_problems(stored) == ["code_hash", "hparams"]


# ---- more contract details ----------------------------------------------------------------

def test_a_scalar_where_a_vector_is_expected_is_named():
    with pytest.raises(InvalidValueError, match=r"RSSMPrior: action must have 1 entry in its last "
                                                r"dim, got shape \(\)\."):
        RSSMPrior(Unbounded(1), 16, 16, 4)(torch.zeros(4), torch.zeros(16), torch.tensor(0.5))


@pytest.mark.parametrize("build,args,owner", [
    (lambda: ObsDecoder(channels=4, latent_dim=10), (torch.zeros(2, 4), torch.zeros(3, 6)),
     "ObsDecoder"),
    (lambda: RSSMPosterior(8, 4, rnn_hidden_dim=16, obs_embed_dim=12),
     (torch.zeros(2, 16), torch.zeros(3, 12)), "RSSMPosterior"),
    (lambda: DreamerActor(2, depth=1, num_cells=8), (torch.zeros(2, 4), torch.zeros(3, 6)),
     "DreamerActor"),
])
def test_inputs_with_different_leading_dims_are_named(build, args, owner):
    with pytest.raises(InvalidValueError, match=rf"{owner}: the inputs must share their leading "
                                                r"dims, got \w+ \(2, \d+\), \w+ \(3, \d+\)\."):
        build()(*args)


def test_decoder_and_actor_keep_any_leading_dims():
    decoder = ObsDecoder(channels=4, latent_dim=10, out_channels=1)
    state, belief = _randn(2, 3, 4), _randn(2, 3, 6, seed=1)
    flat = decoder(state.reshape(6, 4), belief.reshape(6, 6))
    assert_close(decoder(state, belief).reshape(6, 1, 64, 64), flat)
    assert decoder(state[0, 0], belief[0, 0]).shape == (1, 64, 64)  # no batch dim at all
    actor = DreamerActor(2, depth=1, num_cells=8)
    loc, scale = actor(state, belief)
    assert loc.shape == scale.shape == (2, 3, 2)


def test_encoder_without_batch_dims_returns_a_vector_as_torchrl():
    theirs = tm.ObsEncoder(channels=4, in_channels=1)
    ours = _copy_weights(theirs, ObsEncoder(channels=4, in_channels=1))
    frame = _randn(1, 64, 64)
    assert ours(frame).shape == theirs(frame).shape == (4 * 8 * 2 * 2,)
    assert_close(ours(frame), theirs(frame))


# ---- details found by mutation testing (tools/mutation.sh world_models) -------------------

@pytest.mark.parametrize("name", ["ObsEncoder", "ObsDecoder", "RSSMPrior", "RSSMPosterior",
                                  "DreamerActor", "RSSMRollout", "WorldModelWrapper"])
def test_signature_and_defaults_are_torchrl_s(name):
    import inspect

    import rlmods

    ours = inspect.signature(getattr(rlmods, name).__init__).parameters
    theirs = inspect.signature(getattr(tm, name).__init__).parameters
    assert list(ours) == list(theirs)
    assert [repr(p.default) for p in ours.values()] == [repr(p.default) for p in theirs.values()]


@pytest.mark.parametrize("build", [
    lambda d: ObsEncoder(channels=4, in_channels=1, device=d),
    lambda d: ObsEncoder(channels=4, device=d),
    lambda d: ObsDecoder(channels=4, latent_dim=10, device=d),
    lambda d: ObsDecoder(channels=4, device=d),
    lambda d: RSSMPrior(Unbounded(2), 16, 16, 4, device=d),
    lambda d: RSSMPosterior(8, 4, rnn_hidden_dim=16, obs_embed_dim=12, device=d),
    lambda d: RSSMPosterior(8, 4, device=d),
    lambda d: DreamerActor(2, depth=1, num_cells=8, device=d),
])
def test_every_parameter_is_created_on_the_device(build):
    module = build("meta")
    assert {p.device.type for p in module.parameters()} == {"meta"}


def test_explicit_sizes_build_the_first_layers_at_once():
    decoder = ObsDecoder(channels=4, latent_dim=10)
    assert type(decoder.state_to_latent[0]) is nn.Linear and decoder.state_to_latent[0].in_features == 10
    posterior = RSSMPosterior(8, 4, rnn_hidden_dim=16, obs_embed_dim=12)
    first = posterior.obs_rnn_to_post_projector[0]
    assert type(first) is nn.Linear and first.in_features == 28
    assert RSSMPrior(Unbounded(2), 16, 16, 4).action_shape == Unbounded(2).shape


def test_encoder_frame_checks_each_side_and_the_smallest_size():
    encoder = ObsEncoder(channels=4, in_channels=1)
    with pytest.raises(InvalidValueError, match=r"at least 46x46 for 4 layers"):
        encoder(torch.zeros(1, 64, 32))  # only the width is too small
    with pytest.raises(InvalidValueError, match=r"at least 4x4 for 1 layers"):
        ObsEncoder(channels=4, num_layers=1, in_channels=1)(torch.zeros(1, 3, 3))


def test_depth_warning_text():
    # (Where the warning points, stacklevel=3, is not asserted: mutmut's trampolines add frames.)
    with pytest.warns(UserWarning, match=r"ObsEncoder: the depth argument will soon mean the depth "
                                         r"of the network; use channels for the layer size and "
                                         r"num_layers for the depth\."):
        ObsEncoder(depth=4, in_channels=1)


def test_prior_without_belief_checks_and_flattens_the_batch():
    prior = RSSMPrior(Unbounded(2), 16, 16, 4)
    with pytest.raises(InvalidValueError, match=r"RSSMPrior: the inputs must share their leading "
                                                r"dims, got state \(3, 4\), action \(2, 2\)\."):
        prior(torch.zeros(3, 4), None, torch.zeros(2, 2))
    noise = _randn(5, 3, 4, seed=3)
    out = prior(_randn(5, 3, 4), None, _randn(5, 3, 2, seed=1), noise)
    flat = prior(_randn(5, 3, 4).reshape(15, 4), None, _randn(5, 3, 2, seed=1).reshape(15, 2),
                 noise.reshape(15, 4))
    for a, b in zip(out, flat):
        assert_close(a.reshape(15, -1), b)


def test_posterior_floors_the_std_and_names_itself_in_every_error():
    posterior = RSSMPosterior(8, 4, scale_lb=0.2, rnn_hidden_dim=16, obs_embed_dim=12)
    with torch.no_grad():
        posterior.obs_rnn_to_post_projector[2].bias[4:] = -100.0
    std = posterior(torch.zeros(3, 16), torch.zeros(3, 12))[1]
    assert torch.equal(std, torch.full_like(std, 0.2))
    with pytest.raises(InvalidValueError, match=r"^RSSMPosterior: belief must have 16 entries"):
        posterior(torch.zeros(3, 15), torch.zeros(3, 12))
    with pytest.raises(InvalidValueError, match=r"^RSSMPosterior: noise must have the state's "
                                                r"shape \(3, 4\), got shape \(3, 5\)\."):
        posterior(torch.zeros(3, 16), torch.zeros(3, 12), torch.zeros(3, 5))
    half = RSSMPosterior(8, 4, rnn_hidden_dim=16)  # lazy: sized by its first call
    half(torch.zeros(3, 16), torch.zeros(3, 10))
    with pytest.raises(InvalidValueError, match=r"^RSSMPosterior: cat\(\[belief, obs_embedding\], "
                                                r"-1\) must have 26 entries"):
        half(torch.zeros(3, 16), torch.zeros(3, 12))


def test_use_scan_message_in_full():
    with pytest.raises(ValueError, match=r"^RSSMRollout: use_scan must be False \(rlmods runs the "
                                         r"Python loop, which gives the same results\), got True\.$"):
        RSSMRollout(*_rollout_modules(SafeModule, *_rollout_pair()[2:]), use_scan=True)


def test_compiled_rollout_step_gives_the_same_results():
    _, ours, prior, posterior = _rollout_pair()
    compiled = RSSMRollout(*_rollout_modules(SafeModule, prior, posterior), compile_step=True,
                           compile_backend="eager", compile_mode=None)
    assert (compiled.compile_backend, compiled.compile_mode) == ("eager", None)
    torch.manual_seed(0)
    expected = ours(_sequence(steps=3))
    torch.manual_seed(0)
    out = compiled(_sequence(steps=3))
    for key in ROLLOUT_KEYS:
        assert_close(out[key], expected[key])
