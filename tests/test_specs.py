"""Specs: contract, errors, and differential tests against torchrl.data."""

import inspect

import numpy as np
import pytest
import torch
import torchrl.data as trl

import rlmods
from rlmods import (Binary, Bounded, Categorical, Composite, MultiCategorical, MultiOneHot, OneHot,
                    Unbounded)

NAMES = ["Unbounded", "Bounded", "OneHot", "Categorical", "Binary", "MultiOneHot",
         "MultiCategorical", "Composite"]


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_torchrl(name):
    ours = inspect.signature(getattr(rlmods, name).__init__).parameters
    theirs = inspect.signature(getattr(trl, name).__init__).parameters
    assert list(ours) == list(theirs)
    for arg, param in theirs.items():
        if param.default is not inspect.Parameter.empty:
            assert ours[arg].default == param.default, arg


# Pairs built with the same arguments in both libraries.
CASES = {
    "unbounded": lambda m: m.Unbounded(3),
    "unbounded_int": lambda m: m.Unbounded(2, dtype=torch.int64),
    "bounded": lambda m: m.Bounded(-2.0, 3.0, shape=(2,)),
    "bounded_tensor": lambda m: m.Bounded(torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 5.0])),
    "bounded_int": lambda m: m.Bounded(0, 5, shape=(1,), dtype=torch.int64),
    "onehot": lambda m: m.OneHot(4),
    "onehot_batched": lambda m: m.OneHot(3, shape=(2, 3)),
    "categorical": lambda m: m.Categorical(4),
    "categorical_shaped": lambda m: m.Categorical(3, shape=(2,)),
    "binary": lambda m: m.Binary(3),
    "multionehot": lambda m: m.MultiOneHot([2, 3]),
    "multicategorical": lambda m: m.MultiCategorical([2, 3]),
}


@pytest.mark.parametrize("case", CASES)
def test_same_shape_dtype_and_domain_as_torchrl(case):
    ours, theirs = CASES[case](rlmods), CASES[case](trl)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert ours.domain == theirs.domain
    for shape in [(), (5,)]:
        for method in ["zero", "one"]:
            torch.testing.assert_close(getattr(ours, method)(shape), getattr(theirs, method)(shape))


@pytest.mark.parametrize("case", CASES)
def test_rand_is_in_and_agrees_with_torchrl_is_in(case):
    ours, theirs = CASES[case](rlmods), CASES[case](trl)
    sample = ours.rand((50,))
    assert sample.shape == (50, *ours.shape)
    assert ours.is_in(sample) and bool(theirs.is_in(sample))
    theirs_sample = theirs.rand((50,))
    assert ours.is_in(theirs_sample)


@pytest.mark.parametrize("case", ["bounded", "bounded_tensor"])
def test_bounded_rand_draws_the_same_numbers_as_torchrl(case):
    torch.manual_seed(3)
    theirs = CASES[case](trl).rand((4,))
    torch.manual_seed(3)
    torch.testing.assert_close(CASES[case](rlmods).rand((4,)), theirs)


def test_bounded_project_matches_torchrl_clamp():
    x = torch.tensor([[3.0, -9.0], [0.5, 4.0]])
    ours = Bounded(-2.0, 3.0, shape=(2,)).project(x)
    torch.testing.assert_close(ours, trl.Bounded(-2.0, 3.0, shape=(2,)).project(x))
    assert ours.tolist() == [[3.0, -2.0], [0.5, 3.0]]


@pytest.mark.parametrize("case", CASES)
def test_project_always_lands_inside(case):
    spec = CASES[case](rlmods)
    noise = torch.randn(20, *spec.shape) * 5
    assert spec.is_in(spec.project(noise))


@pytest.mark.parametrize("case", CASES)
def test_project_leaves_valid_values_unchanged(case):
    spec = CASES[case](rlmods)
    value = spec.rand((10,))
    torch.testing.assert_close(spec.project(value), value)


def test_onehot_project_is_argmax_better_than_torchrl():
    # torchrl 0.14 samples among the positive entries; the nearest one-hot is the argmax.
    x = torch.tensor([0.2, 0.9, 0.1])
    for _ in range(20):
        assert OneHot(3).project(x).tolist() == [False, True, False]


def test_categorical_project_does_not_modify_input_better_than_torchrl():
    x = torch.tensor([7, -3, 1])
    out = Categorical(4, shape=(3,)).project(x)
    assert out.tolist() == [3, 0, 1] and x.tolist() == [7, -3, 1]
    x_trl = torch.tensor([7, -3, 1])
    trl.Categorical(4, shape=(3,)).project(x_trl)
    assert x_trl.tolist() != [7, -3, 1]  # torchrl clamps its input in place


def test_masks_restrict_rand_is_in_and_project():
    mask = torch.tensor([True, False, True, False])
    cat, hot = Categorical(4, mask=mask), OneHot(4, mask=mask)
    assert set(cat.rand((200,)).tolist()) == {0, 2}
    assert hot.rand((200,))[:, [1, 3]].sum() == 0
    assert not cat.is_in(torch.tensor(1)) and cat.is_in(torch.tensor(2))
    assert cat.project(torch.tensor(1)).item() in (0, 2)
    assert hot.project(torch.tensor([0.0, 5.0, 1.0, 9.0])).tolist() == [False, False, True, False]
    cat.update_mask(None)
    assert cat.is_in(torch.tensor(1))


def test_masked_rand_matches_torchrl_support():
    mask = torch.tensor([True, False, True, False])
    assert set(trl.Categorical(4, mask=mask).rand((200,)).tolist()) == set(
        Categorical(4, mask=mask).rand((200,)).tolist())


def test_multi_specs_masks():
    spec = MultiCategorical([2, 3], mask=torch.tensor([False, True, True, False, True]))
    sample = spec.rand((100,))
    assert set(sample[:, 0].tolist()) == {1} and set(sample[:, 1].tolist()) == {0, 2}
    assert spec.is_in(spec.project(torch.tensor([0, 1])))
    one_hot = MultiOneHot([2, 3], mask=torch.tensor([False, True, True, False, True]))
    assert one_hot.rand((50,))[:, [0, 3]].sum() == 0


@pytest.mark.parametrize("ours,theirs", [
    (lambda: OneHot(3), lambda: trl.OneHot(3)),
    (lambda: MultiOneHot([2, 3]), lambda: trl.MultiOneHot([2, 3])),
])
def test_one_hot_categorical_round_trip_matches_torchrl(ours, theirs):
    spec, ref = ours(), theirs()
    value = spec.rand((6,))
    torch.testing.assert_close(spec.to_categorical(value), ref.to_categorical(value))
    index = spec.to_categorical(value)
    torch.testing.assert_close(spec.to_categorical_spec().to_one_hot(index), value.bool())
    assert spec.to_categorical_spec().shape == ref.to_categorical_spec().shape


def test_categorical_to_one_hot_matches_torchrl():
    index = torch.tensor([0, 2, 1])
    torch.testing.assert_close(Categorical(3, shape=(3,)).to_one_hot(index),
                               trl.Categorical(3, shape=(3,)).to_one_hot(index))
    assert Categorical(3).to_one_hot_spec().shape == trl.Categorical(3).to_one_hot_spec().shape


def test_encode_matches_torchrl():
    torch.testing.assert_close(OneHot(3, dtype=torch.int64).encode(2),
                               trl.OneHot(3, dtype=torch.int64).encode(2))
    torch.testing.assert_close(Bounded(-1, 1, (2,)).encode(np.array([0.5, 0.2])),
                               trl.Bounded(-1, 1, (2,)).encode(np.array([0.5, 0.2])))


@pytest.mark.parametrize("case", CASES)
def test_expand_index_and_unsqueeze(case):
    spec = CASES[case](rlmods)
    big = spec.expand(4, *spec.shape)
    assert big.shape == (4, *spec.shape) and big.is_in(big.rand())
    assert big[0].shape == spec.shape and big[0].is_in(spec.rand())
    assert spec.unsqueeze(0).shape == (1, *spec.shape)
    assert spec.unsqueeze(0).squeeze(0).shape == spec.shape


def test_expand_of_masked_spec_keeps_mask():
    spec = Categorical(4, mask=torch.tensor([True, False, True, False])).expand(5)
    assert spec.mask.shape == (5, 4) and set(spec.rand().tolist()) <= {0, 2}


def test_equality_clone_and_to():
    spec = Bounded(-1.0, 1.0, (2,))
    assert spec == spec.clone() and spec != Bounded(-1.0, 2.0, (2,))
    assert spec.to(torch.float64).dtype == torch.float64 and spec.to(torch.float64).low.dtype == torch.float64


def test_cardinality_matches_torchrl():
    for make in [lambda m: m.OneHot(3), lambda m: m.Categorical(5), lambda m: m.MultiCategorical([2, 3])]:
        assert make(rlmods).cardinality() == make(trl).cardinality()


def test_binary_cardinality_counts_every_bit_pattern_better_than_torchrl():
    # torchrl 0.14 reports 2 and enumerates only 000 and 111: n bits take 2**n values.
    values = Binary(3).enumerate()
    assert Binary(3).cardinality() == len(values) == len(set(map(tuple, values.tolist()))) == 8
    assert trl.Binary(3).cardinality() == 2 and len(trl.Binary(3).enumerate()) == 2


def test_enumerate_matches_torchrl():
    for make in [lambda m: m.OneHot(3), lambda m: m.Categorical(4)]:
        ours, theirs = make(rlmods).enumerate(), make(trl).enumerate()
        assert sorted(map(tuple, ours.reshape(len(ours), -1).tolist())) == sorted(
            map(tuple, theirs.reshape(len(theirs), -1).tolist()))


def test_composite_nested_keys_rand_and_project():
    spec = Composite(observation=Unbounded(3), action=Bounded(-1.0, 1.0, (1,)))
    spec["next", "reward"] = Unbounded(1)
    assert list(spec.keys(True, True)) == ["observation", "action", ("next", "reward")]
    assert ("next", "reward") in spec and ("next", "nothing") not in spec
    td = spec.rand()
    assert spec.is_in(td) and td["next", "reward"].shape == (1,)
    td["action"] = torch.tensor([4.0])
    assert not spec.is_in(td) and spec.project(td)["action"].item() == 1.0
    theirs = trl.Composite(observation=trl.Unbounded(3), action=trl.Bounded(-1.0, 1.0, (1,)))
    theirs["next", "reward"] = trl.Unbounded(1)
    assert set(spec.keys(True, True)) == set(theirs.keys(True, True))


def test_composite_batch_shape_expand_and_index():
    spec = Composite(obs=Unbounded((4, 3)), shape=(4,))
    assert spec.expand(2, 4)["obs"].shape == (2, 4, 3)
    assert spec[0]["obs"].shape == (3,) and spec[0].shape == ()
    assert spec.zero().batch_size == (4,)


# ---- errors -----------------------------------------------------------------------

def test_project_wrong_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Bounded: the value to project must end with shape \(2,\), got shape \(3,\)"):
        Bounded(-1.0, 1.0, (2,)).project(torch.zeros(3))


def test_onehot_shape_must_end_with_n():
    with pytest.raises(ValueError, match=r"OneHot: shape must end with n=3, got shape \(2, 4\)"):
        OneHot(3, shape=(2, 4))


def test_bounded_needs_low_and_high_in_order():
    with pytest.raises(TypeError, match="Bounded: both low and high must be given"):
        Bounded(low=0.0)
    with pytest.raises(ValueError, match="Bounded: low must not exceed high"):
        Bounded(1.0, 0.0, (1,))


def test_mask_errors():
    with pytest.raises(ValueError, match=r"Categorical: mask must end with shape \(4,\), got shape \(3,\)"):
        Categorical(4, mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="OneHot: mask must allow at least one category"):
        OneHot(2, mask=torch.tensor([False, False]))


def test_composite_errors():
    with pytest.raises(ValueError, match=r"Composite: the spec for 'obs' must have leading dims \(4,\)"):
        Composite(obs=Unbounded(3), shape=(4,))
    with pytest.raises(KeyError, match="Composite: no entry 'missing'"):
        Composite(obs=Unbounded(3))["missing"]
    with pytest.raises(ValueError, match=r"Unbounded.expand: the new shape must end with the spec's shape \(3,\)"):
        Unbounded(3).expand(2, 4)


def test_is_in_wrong_shape_is_false_not_a_crash():
    # torchrl raises a broadcasting RuntimeError here.
    assert not Bounded(-1.0, 1.0, (2,)).is_in(torch.zeros(3))
    with pytest.raises(RuntimeError):
        trl.Bounded(-1.0, 1.0, (2,)).is_in(torch.zeros(3))


@pytest.mark.parametrize("make,error,message", [
    (lambda: Bounded(-1.0, 1.0, (1,)).assert_is_in(torch.tensor([2.0])), AssertionError,
     r"Bounded: value is not in the spec's domain \(shape \(1,\), dtype torch.float32\); call project"),
    (lambda: Bounded(-1.0, 1.0, (1,)).type_check(torch.zeros(1, dtype=torch.float64)), TypeError,
     "Bounded: value dtype must be torch.float32, got torch.float64"),
    (lambda: Bounded(-1.0, 1.0, (1,), maxi=3), TypeError, r"Bounded: unexpected arguments \['maxi'\]"),
    (lambda: Binary(), TypeError, "Binary: give n or shape, got neither"),
    (lambda: Binary(3, shape=(4,)), ValueError, r"Binary: shape must end with n=3, got shape \(4,\)"),
    (lambda: Binary(3).update_mask(torch.ones(3, dtype=torch.bool)), ValueError, "Binary: takes no mask"),
    (lambda: MultiCategorical([2, 3], shape=(3,)), ValueError,
     r"MultiCategorical: shape must end with nvec's shape \(2,\), got shape \(3,\)"),
    (lambda: Composite().__setitem__(3, Unbounded(1)), TypeError,
     "Composite: keys must be strings or tuples of strings, got 3"),
    (lambda: Composite(a=Unbounded((4, 1)), shape=(4,)).expand(3, 5), ValueError,
     r"Composite.expand: the new shape must end with the spec's shape \(4,\) \(up to its 1s\), "
     r"got \(3, 5\)"),
])
def test_other_error_messages(make, error, message):
    with pytest.raises(error, match=message):
        make()


# ---- Composite.update -------------------------------------------------------------

@pytest.mark.parametrize("other", [
    lambda m: m.Composite(obs=m.Composite(y=m.Unbounded(2)), reward=m.Unbounded(1)),
    lambda m: {"obs": {"y": m.Unbounded(2)}, "reward": m.Unbounded(1)},
])
def test_update_merges_nested_composites_like_torchrl(other):
    ours = Composite(obs=Composite(x=Unbounded(1)))
    theirs = trl.Composite(obs=trl.Composite(x=trl.Unbounded(1)))
    assert ours.update(other(rlmods)) is ours
    theirs.update(other(trl))
    assert sorted(map(str, ours.keys(True, True))) == sorted(map(str, theirs.keys(True, True)))
    assert ours["obs", "x"].shape == (1,) and ours["obs", "y"].shape == (2,)


def test_update_replaces_a_nested_composite_by_a_leaf_better_than_torchrl():
    spec = Composite(obs=Composite(x=Unbounded(1))).update({"obs": Unbounded(2)})
    assert spec["obs"] == Unbounded(2)


@pytest.mark.torchrl_bug
def test_torchrl_update_cannot_replace_a_nested_composite_by_a_leaf():
    spec = trl.Composite(obs=trl.Composite(x=trl.Unbounded(1)))
    with pytest.raises(AttributeError, match="has no attribute 'items'"):
        spec.update({"obs": trl.Unbounded(2)})
