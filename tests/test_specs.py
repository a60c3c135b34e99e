"""Specs: contract, errors, and differential tests against torchrl.data."""

import inspect

import numpy as np
import pytest
import torch
import torchrl.data as trl

import rlmods
from rlmods import (Binary, Bounded, Categorical, Composite, MultiCategorical, MultiOneHot, OneHot,
                    Unbounded)
from oracle_helpers import raised

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
    double = spec.to(torch.float64)
    assert double.dtype == torch.float64 and double.low.dtype == torch.float64


def test_cardinality_matches_torchrl():
    for make in [lambda m: m.OneHot(3), lambda m: m.Categorical(5),
                 lambda m: m.MultiCategorical([2, 3])]:
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


def test_nested_composite_project_clamps_the_nested_leaf_as_torchrl():
    def build(lib):
        spec = lib.Composite(agent=lib.Composite(action=lib.Bounded(-1.0, 2.0, (2,)),
                                                 id=lib.Categorical(3, shape=(1,))))
        data = spec.zero()
        data["agent", "action"] = torch.tensor([-5.0, 7.0])
        return spec, data
    (ours, ours_td), (theirs, theirs_td) = build(rlmods), build(trl)
    projected = ours.project(ours_td)
    assert torch.equal(projected["agent", "action"], torch.tensor([-1.0, 2.0]))
    assert ours.is_in(projected) and not ours.is_in(build(rlmods)[1])
    torch.testing.assert_close(projected["agent", "action"], theirs.project(theirs_td)["agent", "action"])


def test_composite_batch_shape_expand_and_index():
    spec = Composite(obs=Unbounded((4, 3)), shape=(4,))
    assert spec.expand(2, 4)["obs"].shape == (2, 4, 3)
    assert spec[0]["obs"].shape == (3,) and spec[0].shape == ()
    assert spec.zero().batch_size == (4,)


# ---- errors -----------------------------------------------------------------------

def test_project_wrong_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Bounded: the value to project must end with shape "
                                         r"\(2,\), got shape \(3,\)"):
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
    with pytest.raises(ValueError,
                       match=r"Categorical: mask must end with shape \(4,\), got shape \(3,\)"):
        Categorical(4, mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="OneHot: mask must allow at least one category"):
        OneHot(2, mask=torch.tensor([False, False]))


def test_all_false_mask_check_follows_the_validation_switch():
    """The check reads the mask's values, so it runs only while rlmods.validate_args() is on."""
    from rlmods import set_validate_args
    mask = torch.tensor([[True, False], [False, False]])
    with pytest.raises(RuntimeError, match="OneHot: mask must allow at least one category"):
        OneHot(2, shape=(2, 2)).update_mask(mask)  # InvalidValueError: torchrl's RuntimeError too
    with set_validate_args(False):
        spec = OneHot(2, shape=(2, 2))
        spec.update_mask(mask)
    assert torch.equal(spec.mask, mask)


def test_composite_errors():
    with pytest.raises(ValueError,
                       match=r"Composite: the spec for 'obs' must have leading dims \(4,\)"):
        Composite(obs=Unbounded(3), shape=(4,))
    with pytest.raises(KeyError, match="Composite: no entry 'missing'"):
        Composite(obs=Unbounded(3))["missing"]
    with pytest.raises(ValueError, match=r"Unbounded.expand: the new shape must end with the "
                                         r"spec's shape \(3,\)"):
        Unbounded(3).expand(2, 4)


def test_is_in_wrong_shape_is_false_better_than_torchrl():
    assert not Bounded(-1.0, 1.0, (2,)).is_in(torch.zeros(3))


@pytest.mark.torchrl_bug
def test_torchrl_is_in_wrong_shape_raises():
    with pytest.raises(RuntimeError, match="Attempting to broadcast a dimension of length 3"):
        trl.Bounded(-1.0, 1.0, (2,)).is_in(torch.zeros(3))


@pytest.mark.parametrize("make,error,message", [
    (lambda: Bounded(-1.0, 1.0, (1,)).assert_is_in(torch.tensor([2.0])), AssertionError,
     r"Bounded: value is not in the spec's domain \(shape \(1,\), dtype torch.float32\); "
     r"call project"),
    (lambda: Bounded(-1.0, 1.0, (1,)).type_check(torch.zeros(1, dtype=torch.float64)), TypeError,
     "Bounded: value dtype must be torch.float32, got torch.float64"),
    (lambda: Bounded(-1.0, 1.0, (1,), maxi=3), TypeError,
     r"Bounded: unexpected arguments \['maxi'\]"),
    (lambda: Binary(), TypeError, "Binary: give n or shape, got neither"),
    (lambda: Binary(3, shape=(4,)), ValueError,
     r"Binary: shape must end with n=3, got shape \(4,\)"),
    (lambda: Binary(3).update_mask(torch.ones(3, dtype=torch.bool)), ValueError,
     "Binary: takes no mask"),
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


# ---- issue 9: bugs ----------------------------------------------------------------

def _typed(m):
    return m.Composite(a=m.Unbounded(2), b=m.Composite(c=m.Categorical(3)))


def test_composite_type_check_takes_a_tensordict_like_torchrl():
    for m in (rlmods, trl):
        spec = _typed(m)
        spec.type_check(spec.zero())
        spec.type_check(torch.zeros(2), "a")
        bad = spec.zero()
        bad["a"] = torch.zeros(2, dtype=torch.float64)
        with pytest.raises(TypeError, match="torch.float64"):
            spec.type_check(bad)


def test_composite_type_check_checks_nested_entries_better_than_torchrl():
    bad = _typed(rlmods).zero()
    bad["b", "c"] = torch.zeros((), dtype=torch.int32)
    with pytest.raises(TypeError, match="Categorical: value dtype must be torch.int64, got "
                                        "torch.int32"):
        _typed(rlmods).type_check(bad)


@pytest.mark.torchrl_bug
def test_torchrl_type_check_skips_nested_entries():
    bad = _typed(trl).zero()
    bad["b", "c"] = torch.zeros((), dtype=torch.int32)
    _typed(trl).type_check(bad)  # passes: the nested call filters on the key "b"


@pytest.mark.parametrize("make", [
    lambda m: m.MultiCategorical([2, 3]),
    lambda m: m.MultiCategorical([2, 3], shape=(4, 2)),
    lambda m: m.MultiOneHot([2, 3]),
    lambda m: m.MultiOneHot([3, 1, 2], shape=(2, 6)),
])
def test_multi_enumerate_matches_torchrl(make):
    ours, theirs = make(rlmods), make(trl)
    values = ours.enumerate()
    torch.testing.assert_close(values, theirs.enumerate())
    assert len(values) == ours.cardinality() and ours.is_in(values)


def test_2d_nvec_enumerate_counts_every_value_better_than_torchrl():
    spec = MultiCategorical([[2, 3], [2, 3]])
    values = spec.enumerate()
    assert len(values) == spec.cardinality() == 36 and spec.is_in(values)
    assert len(set(map(str, values.tolist()))) == 36


@pytest.mark.torchrl_bug
def test_torchrl_2d_nvec_enumerate_misses_values():
    spec = trl.MultiCategorical([[2, 3], [2, 3]])
    assert spec.cardinality() == 36 and len(spec.enumerate()) == 6


def test_multicategorical_masked_enumerate_stays_in_the_mask():
    spec = MultiCategorical([2, 3], mask=torch.tensor([False, True, True, False, True]))
    assert spec.enumerate(use_mask=True).tolist() == [[1, 0], [1, 2]]
    assert len(spec.enumerate()) == 6


def test_composite_enumerate_matches_torchrl():
    def make(m):
        return m.Composite(a=m.Categorical(2, shape=(3,)), b=m.OneHot(3, shape=(3, 3)),
                           shape=(3,))
    ours, theirs = make(rlmods).enumerate(), make(trl).enumerate()
    assert ours.batch_size == theirs.batch_size == (6, 3)
    for key in ("a", "b"):
        torch.testing.assert_close(ours[key], theirs[key])


@pytest.mark.parametrize("make,value", [
    (lambda m: m.Unbounded(2), 0),
    (lambda m: m.Unbounded(2), [1.0, 2.0, 3.0]),
    (lambda m: m.Bounded(0.0, 1.0, (2,)), 0.5),
    (lambda m: m.Categorical(3, shape=(2,)), 2),
])
def test_encode_rejects_a_value_of_the_wrong_shape_like_torchrl(make, value):
    with pytest.raises(RuntimeError, match="Shape mismatch"):
        make(trl).encode(value)
    with pytest.raises(ValueError, match=r"\.encode: the value must end with shape \(2,\), got"):
        make(rlmods).encode(value)


def test_encode_keeps_batched_and_reshapes_flat_values():
    assert Unbounded(2).encode(np.zeros((5, 2))).shape == (5, 2)
    torch.testing.assert_close(Unbounded((2, 2)).encode([1, 2, 3, 4]),
                               torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert OneHot(4).encode([0, 3]).shape == (2, 4)
    with pytest.raises(ValueError, match=r"OneHot.encode: the value must end with shape \(2, 4\)"):
        OneHot(4, shape=(2, 4)).encode(1)


def test_encode_checks_a_tensor_too_better_than_torchrl():
    with pytest.raises(ValueError, match=r"Unbounded.encode: .* got shape \(3,\)"):
        Unbounded(2).encode(torch.zeros(3))


@pytest.mark.torchrl_bug
def test_torchrl_encode_passes_a_tensor_of_any_shape():
    assert trl.Unbounded(2).encode(torch.zeros(3)).shape == (3,)


def test_nested_composite_without_shape_takes_the_parent_shape_like_torchrl():
    for m in (rlmods, trl):
        inner = m.Composite(b=m.Unbounded((4, 2)))
        spec = m.Composite(a=inner, shape=(4,))
        assert spec["a"].shape == (4,) and inner.shape == ()  # the caller's spec is unchanged
        spec["c"] = m.Composite()
        assert spec["c"].shape == (4,)


def test_multicategorical_2d_nvec_like_torchrl():
    nvec = [[2, 3], [4, 5]]
    ours, theirs = MultiCategorical(nvec), trl.MultiCategorical(nvec)
    assert ours.shape == theirs.shape == (2, 2) and ours.cardinality() == theirs.cardinality()
    sample = ours.rand((500,))
    assert sample.shape == (500, 2, 2) and theirs.is_in(sample) and ours.is_in(sample)
    assert sample.amax(0).tolist() == [[1, 2], [3, 4]]  # every category is drawn, none above
    for value in ([[1, 2], [3, 4]], [[1, 3], [3, 4]], [[2, 0], [0, 0]]):
        value = torch.tensor(value)
        assert ours.is_in(value) == theirs.is_in(value)
    assert ours.project(torch.tensor([[9, 9], [9, -4]])).tolist() == [[1, 2], [3, 0]]
    assert MultiCategorical(nvec, shape=(3, 2, 2)).rand().shape == (3, 2, 2)


def test_multicategorical_2d_nvec_errors():
    with pytest.raises(ValueError, match=r"MultiCategorical: a mask needs a 1-D nvec, got nvec "
                                         r"of shape \(2, 2\)"):
        MultiCategorical([[2, 3], [4, 5]], mask=torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="MultiCategorical: one-hot needs a 1-D nvec"):
        MultiCategorical([[2, 3], [4, 5]]).to_one_hot_spec()


@pytest.mark.parametrize("make", [lambda m: m.Unbounded((3, 2)),
                                  lambda m: m.Composite(a=m.Unbounded((3, 2)), shape=(3,))])
def test_index_out_of_range_raises_like_torchrl(make):
    for m in (rlmods, trl):
        with pytest.raises(IndexError, match="out of bounds"):
            make(m)[5]


@pytest.mark.parametrize("index", [[[0, 1]], [0, 2], [[0], [1]], (slice(None), [0, 1])])
def test_list_index_follows_numpy_like_torchrl(index):
    import warnings
    ours, theirs = Unbounded((3, 2)), trl.Unbounded((3, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ours[index].shape == theirs[index].shape == torch.zeros(3, 2)[
            torch.tensor(index) if isinstance(index, list) else index].shape


def test_bool_bounded_rand_like_torchrl():
    for m in (rlmods, trl):
        spec = m.Bounded(0, 1, (3,), dtype=torch.bool)
        sample = spec.rand((50,))
        assert sample.dtype == torch.bool and sample.shape == (50, 3) and spec.is_in(sample)
    assert Bounded(1, 1, (3,), dtype=torch.bool).rand().all()


@pytest.mark.parametrize("make", [lambda m: m.Unbounded(2),
                                  lambda m: m.Composite(a=m.Unbounded(2))])
def test_to_none_returns_the_spec_like_torchrl(make):
    for m in (rlmods, trl):
        spec = make(m)
        assert spec.to(None) == spec


def test_keys_view_unravels_like_torchrl():
    for m in (rlmods, trl):
        spec = m.Composite(a=m.Composite(b=m.Unbounded(1)))
        assert ("a",) in spec.keys() and ("a", "b") not in spec.keys()
        assert ("a", ("b",)) in spec.keys(True) and len(spec.keys(True)) == 2
        assert 3 not in rlmods.Composite().keys()


def test_multicategorical_singleton_rand_keeps_the_spec_shape_better_than_torchrl():
    spec = MultiCategorical(5)
    assert spec.shape == (1,) and spec.rand().shape == (1,) and spec.is_in(spec.rand())


@pytest.mark.torchrl_bug
def test_torchrl_multicategorical_singleton_rand_drops_the_spec_shape():
    spec = trl.MultiCategorical(5)
    assert spec.shape == (1,) and spec.rand().shape == ()


# ---- issue 9: features ------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_to_numpy_matches_torchrl(case):
    ours, theirs = CASES[case](rlmods), CASES[case](trl)
    value = ours.rand((3,))
    np.testing.assert_array_equal(ours.to_numpy(value), theirs.to_numpy(value))
    np.testing.assert_array_equal(ours.to_numpy(value, safe=True),
                                  theirs.to_numpy(value, safe=True))


def test_to_numpy_safe_checks_the_domain_like_torchrl():
    for m in (rlmods, trl):
        spec = m.Bounded(0.0, 1.0, (2,))
        assert spec.to_numpy(torch.tensor([1.5, 0.25])).tolist() == [1.5, 0.25]
        with pytest.raises(AssertionError, match="not in (space|the spec's domain)"):
            spec.to_numpy(torch.tensor([1.5, 0.25]), safe=True)


def test_composite_to_numpy_matches_torchrl():
    def make(m):
        return m.Composite(a=m.Unbounded(2), b=m.Composite(c=m.OneHot(3)))
    value = make(rlmods).rand()
    ours, theirs = make(rlmods).to_numpy(value), make(trl).to_numpy(value)
    np.testing.assert_array_equal(ours["a"], theirs["a"])
    np.testing.assert_array_equal(ours["b"]["c"], theirs["b"]["c"])


STACKS = {
    "equal": lambda m: [m.Bounded(0.0, 1.0, (3,))] * 2,
    "bounds": lambda m: [m.Bounded(0.0, 1.0, (3,)), m.Bounded(-1.0, 2.0, (3,))],
    "onehot": lambda m: [m.OneHot(3, shape=(2, 3))] * 3,
    "categorical_n": lambda m: [m.Categorical(3), m.Categorical(4)],
    "shapes": lambda m: [m.Unbounded(3), m.Unbounded(4)],
}


@pytest.mark.parametrize("dim", [0, -1])
@pytest.mark.parametrize("case", STACKS)
def test_stack_shape_and_parts_match_torchrl(case, dim):
    if case == "onehot" and dim == -1:
        dim = -2  # the last dim holds the categories
    ours, theirs = torch.stack(STACKS[case](rlmods), dim), torch.stack(STACKS[case](trl), dim)
    assert ours.shape == theirs.shape
    assert ours == torch.stack(STACKS[case](rlmods), dim)
    assert list(ours.unbind(dim)) == STACKS[case](rlmods)
    if dim == 0:  # torchrl's unbind fails or ignores dim otherwise
        for mine, ref in zip(ours.unbind(0), theirs.unbind(0)):
            assert mine.shape == ref.shape and type(ref).__name__.startswith(type(mine).__name__)
    assert [p.shape for p in torch.unbind(ours, dim)] == [p.shape for p in ours.unbind(dim)]


@pytest.mark.parametrize("case", ["equal", "bounds", "onehot", "categorical_n"])
def test_stack_rand_is_in_agrees_with_torchrl(case):
    ours, theirs = torch.stack(STACKS[case](rlmods), 0), torch.stack(STACKS[case](trl), 0)
    sample = ours.rand((20,))
    assert sample.shape == (20, *ours.shape) and ours.is_in(sample)
    assert all(theirs.is_in(value) for value in sample)
    assert ours.zero().shape == ours.shape
    outside = ours.one() * 3
    assert ours.is_in(outside.to(ours.dtype)) == theirs.is_in(outside.to(ours.dtype))


def test_stacked_bounds_stay_dense_better_than_torchrl():
    spec = torch.stack([Bounded(0.0, 1.0, (3,)), Bounded(-1.0, 2.0, (3,))], 0)
    assert type(spec) is Bounded and spec.high[:, 0].tolist() == [1.0, 2.0]
    assert spec.project(torch.full((2, 3), 5.0)).tolist() == [[1.0] * 3, [2.0] * 3]


@pytest.mark.torchrl_bug
def test_torchrl_stacked_leaf_rand_has_no_shape():
    spec = torch.stack([trl.Bounded(0.0, 1.0, (3,)), trl.Bounded(-1.0, 2.0, (3,))], 0)
    assert spec.shape == (2, 3)
    with pytest.raises(RuntimeError, match="NestedTensorImpl doesn't support sizes"):
        spec.rand().shape  # a nested tensor, though every part has shape (3,)


def test_stacked_heterogeneous_shapes_cannot_draw_a_tensor():
    spec = torch.stack([Unbounded(3), Unbounded(4)], 0)
    assert spec.is_in(torch.zeros(2, 5)) is False and spec[1] == Unbounded(4)
    with pytest.raises(ValueError, match=r"Stacked: the parts' shapes differ \(\(2, -1\)\)"):
        spec.rand()


def _agents(m):
    a = m.Composite(obs=m.Unbounded(3), act=m.Bounded(0.0, 1.0, (2,)))
    b = m.Composite(obs=m.Unbounded(4), act=m.Bounded(0.0, 2.0, (2,)))
    return a, b


def test_stacked_composite_matches_torchrl():
    (a, b), (ta, tb) = _agents(rlmods), _agents(trl)
    ours, theirs = torch.stack([a, b], 0), torch.stack([ta, tb], 0)
    assert type(ours).__name__ == type(theirs).__name__ == "StackedComposite"
    assert ours.shape == theirs.shape == (2,)
    assert ours["obs"].shape == theirs["obs"].shape == (2, -1)
    assert ours["act"].shape == theirs["act"].shape == (2, 2)
    assert sorted(ours.keys(True, True)) == sorted(theirs.keys(True, True))
    assert ours[1] == b and ours.unbind(0)[0] == a and ours[0:1][0] == a
    assert ours == torch.stack([a, b], 0) and ours != torch.stack([b, a], 0)
    for td in (ours.rand(), ours.zero(), theirs.rand()):
        assert ours.is_in(td) and theirs.is_in(td)
        assert td[0]["obs"].shape == (3,) and td[1]["obs"].shape == (4,)
    assert ours.rand((5,)).batch_size == theirs.rand((5,)).batch_size == (5, 2)
    bad = ours.zero()
    bad[1]["act"] = torch.full((2,), 5.0)
    assert not ours.is_in(bad) and not theirs.is_in(bad)
    assert ours.is_in(ours.project(bad))


def test_stacked_composite_of_equal_composites_is_dense_like_torchrl():
    a, _ = _agents(rlmods)
    ta, _ = _agents(trl)
    ours, theirs = torch.stack([a, a], 1 - 1), torch.stack([ta, ta], 0)
    assert type(ours) is Composite and type(theirs).__name__ == "Composite"
    assert ours["obs"].shape == theirs["obs"].shape == (2, 3)
    assert ours.expand(4, 2).shape == (4, 2)


def test_stacked_composite_set_lock_and_expand():
    a, b = _agents(rlmods)
    spec = torch.stack([a, b], 0)
    spec["reward"] = Unbounded((2, 1))
    assert a["reward"] == Unbounded(1) and spec["reward"].shape == (2, 1)
    assert spec.expand(3, 2).shape == (3, 2) and spec.expand(3, 2)["obs"].shape == (3, 2, -1)
    spec.lock_()
    with pytest.raises(RuntimeError, match="locked"):
        a["x"] = Unbounded(1)


@pytest.mark.parametrize("make,dim,index", [
    (lambda m: m.Bounded(torch.arange(4.0).reshape(2, 2), 10.0), 0, [1, 1, 0]),
    (lambda m: m.Categorical(3, shape=(3,), mask=torch.eye(3, dtype=torch.bool)), 0, [2, 0]),
    (lambda m: m.OneHot(3, shape=(4, 3)), 0, [3, 1]),
    (lambda m: m.MultiCategorical([2, 3], shape=(3, 2)), 0, [0, 2]),
    (lambda m: m.Bounded(torch.arange(6.0).reshape(2, 3), 10.0), 1, [2, 0]),
    (lambda m: m.OneHot(3, shape=(2, 4, 3)), 1, [3, 1]),
])
def test_index_select_matches_torchrl(make, dim, index):
    index = torch.tensor(index)
    ours = torch.index_select(make(rlmods), dim, index)
    theirs = torch.index_select(make(trl), dim, index)
    assert ours.shape == theirs.shape
    sample = ours.rand((30,))
    assert ours.is_in(sample) and theirs.is_in(sample)
    if isinstance(ours, Bounded):
        torch.testing.assert_close(ours.low, theirs.low)


def test_composite_index_select_matches_torchrl():
    for m in (rlmods, trl):
        spec = torch.index_select(m.Composite(a=m.Unbounded((3, 2)), shape=(3,)), 0,
                                  torch.tensor([0, 2]))
        assert spec.shape == (2,) and spec["a"].shape == (2, 2)


def test_lock_like_torchrl():
    for m in (rlmods, trl):
        spec = m.Composite(a=m.Composite(b=m.Unbounded(1)))
        spec.lock_()
        assert spec.is_locked and spec["a"].is_locked
        for key in ("x", ("a", "x")):
            with pytest.raises(RuntimeError, match="locked"):
                spec[key] = m.Unbounded(1)
        with pytest.raises(RuntimeError, match="locked"):
            spec.shape = ()
        spec.unlock_()
        assert not spec.is_locked and not spec["a"].is_locked
        spec["x"] = m.Unbounded(1)
        spec.lock_(recurse=False)
        assert spec.is_locked and not spec["a"].is_locked


def test_locked_composite_forbids_deleting_better_than_torchrl():
    spec = Composite(a=Unbounded(1)).lock_()
    with pytest.raises(RuntimeError, match="Composite: cannot set 'a' of a locked Composite"):
        del spec["a"]


@pytest.mark.torchrl_bug
def test_torchrl_locked_composite_lets_an_entry_be_deleted():
    spec = trl.Composite(a=trl.Unbounded(1)).lock_()
    del spec["a"]
    assert "a" not in spec.keys()


def test_shape_setter_propagates_like_torchrl():
    for m in (rlmods, trl):
        spec = m.Composite(a=m.Unbounded((4, 3)), b=m.Composite(c=m.Unbounded((4, 3, 2))))
        spec.shape = (4, 3)
        assert spec.shape == spec["b"].shape == (4, 3)
        assert spec.zero().batch_size == (4, 3)
        spec.shape = (4,)
        assert spec["b"].shape == (4, 3)  # already starts with (4,)
        with pytest.raises(ValueError, match="mismatch|must have leading dims"):
            spec.shape = (5,)


def test_clear_device_like_torchrl():
    for m in (rlmods, trl):
        spec = m.Composite(a=m.Composite(b=m.Unbounded(1), device="cpu"), device="cpu")
        assert spec.clear_device_() is spec
        assert spec.device is None and spec["a"].device is None
        assert spec["a", "b"].device == torch.device("cpu")


def test_space_setter_like_torchrl():
    from rlmods.specs import ContinuousBox
    from torchrl.data.tensor_specs import ContinuousBox as TrlBox
    for m, box in ((rlmods, ContinuousBox), (trl, TrlBox)):
        spec = m.Bounded(0.0, 1.0, (2,))
        spec.space = box(torch.zeros(2) - 1, torch.ones(2) * 3)
        assert spec.low.tolist() == [-1.0, -1.0] and spec.high.tolist() == [3.0, 3.0]
        assert spec.is_in(torch.tensor([2.0, 2.0]))


def test_dynamic_dims_like_torchrl():
    for m in (rlmods, trl):
        spec = m.Unbounded((-1, 3))
        assert spec.shape == (-1, 3) and spec.is_in(torch.zeros(5, 3))
        assert spec.rand().shape == spec.zero().shape == (1, 3)
        assert spec.expand(4, -1, 3).shape == (4, -1, 3)
        assert m.Bounded(0.0, 1.0, (-1, 3)).is_in(torch.full((7, 3), 0.5))
    assert not Unbounded((-1, 3)).is_in(torch.zeros(5, 4))  # torchrl raises here


# ---- errors: same exception classes as torchrl ------------------------------------

def _locked(m):
    return m.Composite(a=m.Unbounded(1)).lock_()


ERROR_CASES = {
    "encode_shape": lambda m: m.Unbounded(2).encode(0),
    "project_shape": lambda m: m.Bounded(-1.0, 1.0, (2,)).project(torch.zeros(3)),
    "mask_shape": lambda m: m.Categorical(4, mask=torch.ones(3, dtype=torch.bool)),
    "locked_set": lambda m: _locked(m).__setitem__("b", m.Unbounded(1)),
    "locked_shape": lambda m: setattr(_locked(m), "shape", ()),
    "reserved_key": lambda m: m.Composite().__setitem__("shape", m.Unbounded(1)),
    "nested_reserved_key": lambda m: m.Composite().__setitem__(("a", "dtype"), m.Unbounded(1)),
    "stack_classes": lambda m: torch.stack([m.Unbounded(2), m.Bounded(0.0, 1.0, (2,))]),
    "stack_dtypes": lambda m: torch.stack([m.Unbounded(2), m.Unbounded(2, dtype=torch.float64)]),
    "stack_ndims": lambda m: torch.stack([m.Unbounded(2), m.Unbounded((2, 2))]),
    "stack_composite_shapes": lambda m: torch.stack([m.Composite(shape=(2,)),
                                                     m.Composite(shape=(3,))]),
    "stack_out": lambda m: torch.stack([m.Unbounded(1)] * 2, 0, out=m.Unbounded(1)),
    "stack_dim": lambda m: torch.stack([m.Unbounded(2)] * 2, 5),
    "index": lambda m: m.Unbounded((3, 2))[5],
    "unbind_dim": lambda m: m.Bounded(0.0, 1.0, (2, 3)).unbind(5),
    "index_select_range": lambda m: torch.index_select(m.Unbounded((3, 2)), 0, torch.tensor([5])),
    "index_select_categories": lambda m: torch.index_select(m.OneHot(3, (2, 3)), 1,
                                                            torch.tensor([0])),
    "missing_key": lambda m: m.Composite(a=m.Unbounded(1))["b"],
    "composite_entry_shape": lambda m: m.Composite(a=m.Unbounded(3), shape=(4,)),
    "shape_setter": lambda m: setattr(m.Composite(a=m.Unbounded((4, 3)), shape=(4,)),
                                      "shape", (5,)),
    "type_check": lambda m: m.Unbounded(1).type_check(torch.zeros(1, dtype=torch.int64)),
    "onehot_shape": lambda m: m.OneHot(3, shape=(2, 4)),
    "multicategorical_shape": lambda m: m.MultiCategorical([2, 3], shape=(3,)),
    "expand": lambda m: m.Unbounded(3).expand(2, 4),
    "binary_neither": lambda m: m.Binary(),
    "composite_key_type": lambda m: m.Composite().__setitem__(3, m.Unbounded(1)),
    "assert_is_in": lambda m: m.Bounded(-1.0, 1.0, (1,)).assert_is_in(torch.tensor([2.0])),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_error_types_match_torchrl(case):
    theirs = raised(lambda: ERROR_CASES[case](trl))
    ours = raised(lambda: ERROR_CASES[case](rlmods))
    assert isinstance(ours, type(theirs)), (type(ours), type(theirs), ours)
    assert str(ours).strip("'\"").startswith((  # rlmods' message form: owner first
        "Composite", "Unbounded", "Bounded", "Categorical", "OneHot", "MultiCategorical",
        "Binary", "torch.", "index"))


def test_spec_errors_are_value_and_type_errors_too():
    with pytest.raises(ValueError, match=r"Categorical: mask must end with shape \(4,\)"):
        ERROR_CASES["mask_shape"](rlmods)
    with pytest.raises(ValueError, match="Composite: cannot set 'b' of a locked Composite"):
        ERROR_CASES["locked_set"](rlmods)
    with pytest.raises(ValueError, match=r"Composite: keys must not be one of \('shape'"):
        ERROR_CASES["reserved_key"](rlmods)
    with pytest.raises(TypeError, match="torch.stack: the specs must be of one class, got "
                                        "Unbounded and Bounded"):
        ERROR_CASES["stack_classes"](rlmods)
    with pytest.raises(ValueError, match="torch.stack: the specs' dtype must agree"):
        ERROR_CASES["stack_dtypes"](rlmods)
    with pytest.raises(ValueError, match="Composite: data_cls, step_mdp_static and names are "
                                         "not supported"):
        Composite(step_mdp_static=True)


@pytest.mark.parametrize("make,value", [
    (lambda m: m.Unbounded((2, 2)), [1.0, 2.0, 3.0, 4.0]),
    (lambda m: m.Bounded(-1, 1, (2,)), np.array([0.5, 0.2])),
    (lambda m: m.OneHot(3, dtype=torch.int64), 2),
    (lambda m: m.Categorical(4), 3),
])
def test_memoize_encode_gives_the_same_tensors_as_torchrl(make, value):
    import warnings
    ours, theirs = make(rlmods), make(trl)
    ours.memoize_encode()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchrl warns that its cache is experimental
        theirs.memoize_encode()
    for _ in range(2):  # the first call fills the cache, the second reads it
        torch.testing.assert_close(ours.encode(value), theirs.encode(value))
    assert len(ours._encode_memo) == 1
    ours.erase_memoize_cache()
    assert ours._encode_memo == {}
    ours.memoize_encode(False)
    torch.testing.assert_close(ours.encode(value), theirs.encode(value))


def test_memoize_encode_still_rejects_a_wrong_shape_and_reaches_composite_entries():
    spec = Composite(a=Unbounded(2), b=Composite(c=OneHot(3)))
    spec.memoize_encode()
    assert spec.encode({"a": [1.0, 2.0]})["a"].tolist() == [1.0, 2.0]
    assert spec["b", "c"]._encode_memo == {} and spec["a"]._encode_memo
    with pytest.raises(ValueError, match=r"Unbounded.encode: the value must end with shape"):
        spec["a"].encode([1.0, 2.0, 3.0])
    spec.erase_memoize_cache()
    assert spec["a"]._encode_memo == {}


def test_categorical_space_setter_like_torchrl():
    from rlmods.specs import CategoricalBox
    from torchrl.data.tensor_specs import CategoricalBox as TrlBox
    for m, box in ((rlmods, CategoricalBox), (trl, TrlBox)):
        spec = m.Categorical(3)
        spec.space = box(5)
        assert spec.n == spec.cardinality() == 5 and spec.is_in(torch.tensor(4))
        assert spec.rand((200,)).max() == 4


@pytest.mark.parametrize("make", [
    lambda: OneHot(3), lambda: Categorical(3, mask=torch.tensor([True, False, True]))])
def test_space_setter_keeps_n_where_the_shape_or_mask_pins_it_better_than_torchrl(make):
    from rlmods.specs import CategoricalBox
    spec = make()
    with pytest.raises(ValueError, match="space.n can change only for a Categorical without a "
                                         "mask, got n=5 for n=3"):
        spec.space = CategoricalBox(5)
    assert spec.n == 3


@pytest.mark.torchrl_bug
def test_torchrl_onehot_space_setter_breaks_the_shape():
    from torchrl.data.tensor_specs import CategoricalBox
    spec = trl.OneHot(3)
    spec.space = CategoricalBox(5)
    assert spec.shape == (3,) and spec.rand().shape == (5,)


def test_stacked_composite_nested_under_agents_like_torchrl():
    def make(m):
        agents = torch.stack(list(_agents(m)), 0)
        return m.Composite(agents=agents, reward=m.Unbounded(1))
    ours, theirs = make(rlmods), make(trl)
    assert sorted(map(str, ours.keys(True, True))) == sorted(map(str, theirs.keys(True, True)))
    assert ours["agents", "obs"].shape == theirs["agents", "obs"].shape == (2, -1)
    for td in (ours.rand(), theirs.rand(), ours.zero((3,))[0]):
        assert ours.is_in(td) and theirs.is_in(td)
        assert td["agents"][1]["obs"].shape == (4,)
    assert ours.rand((3,))["agents"].batch_size == theirs.rand((3,))["agents"].batch_size


def test_stacked_constructors_take_torchrl_arguments():
    from rlmods.specs import Stacked, StackedComposite
    parts = {m: (m.Unbounded(3), m.Unbounded(4)) for m in (rlmods, trl)}
    assert Stacked(*parts[rlmods], dim=0).shape == trl.Stacked(*parts[trl], dim=0).shape
    (a, b), (ta, tb) = _agents(rlmods), _agents(trl)
    ours, theirs = StackedComposite(a, b, dim=0), trl.StackedComposite(ta, tb, dim=0)
    assert ours.shape == theirs.shape and ours == torch.stack([a, b], 0)
    assert not ours.is_in(ours[0].rand()) and not Stacked(*parts[rlmods], dim=0).is_in(
        torch.zeros(4))
    with pytest.raises(ValueError, match="torch.stack: the specs' shape must agree"):
        StackedComposite(a, Composite(shape=(2,)), dim=0)


def test_stack_never_splits_the_category_dim():
    with pytest.raises(ValueError, match=r"torch.stack: dim must be in \[-2, 1\] and not after "
                                         r"the category dim of OneHot of shape \(3,\), got -1"):
        torch.stack([OneHot(3), OneHot(3)], -1)
    assert torch.stack([OneHot(3), OneHot(3)], -2).shape == (2, 3)


# ---- is_in's value checks: few reductions, the same answers --------------------------------
@pytest.mark.parametrize("value,expected", [
    ([[0, 1, 0], [1, 0, 0]], True), ([[0, 0, 0]], False), ([[1, 0, 5]], False),
    ([[0, 2, 0]], False), ([[1, 0, 0], [0, 0, 0]], False)])
def test_one_hot_is_in_checks_every_entry(value, expected):
    assert OneHot(3, dtype=torch.int64).is_in(torch.tensor(value)) is expected
    assert bool(trl.OneHot(3, dtype=torch.int64).is_in(torch.tensor(value))) is expected


@pytest.mark.parametrize("value", [[[2, -1, 0]], [[1, 1, -1]]])
def test_one_hot_is_in_rejects_entries_other_than_0_and_1_better_than_torchrl(value):
    assert not OneHot(3, dtype=torch.int64).is_in(torch.tensor(value))


@pytest.mark.torchrl_bug
@pytest.mark.parametrize("value", [[[2, -1, 0]], [[1, 1, -1]]])
def test_torchrl_one_hot_is_in_only_checks_the_sum(value):
    assert bool(trl.OneHot(3, dtype=torch.int64).is_in(torch.tensor(value)))


def test_one_hot_is_in_bool_mask_and_empty_batch():
    spec = OneHot(3)  # bool by default
    assert spec.is_in(torch.tensor([[False, True, False]]))
    assert not spec.is_in(torch.tensor([[True, True, False]]))
    assert spec.is_in(torch.zeros(0, 3, dtype=spec.dtype))
    masked = OneHot(3, dtype=torch.int64, mask=torch.tensor([True, False, True]))
    assert masked.is_in(torch.tensor([[1, 0, 0]])) and not masked.is_in(torch.tensor([[0, 1, 0]]))


@pytest.mark.parametrize("value,expected", [([0, 2, 1], True), ([-1, 0], False), ([3], False)])
def test_categorical_is_in_checks_the_range(value, expected):
    assert Categorical(3).is_in(torch.tensor(value)) is expected
    assert Categorical(3).is_in(torch.zeros(0, dtype=torch.int64))


def test_bounded_is_in_rejects_nan_and_values_outside():
    spec = Bounded(-1.0, 1.0, shape=(2,))
    assert spec.is_in(torch.tensor([[0.5, -1.0], [1.0, 0.0]]))
    assert not spec.is_in(torch.tensor([[0.5, 1.5]]))
    assert not spec.is_in(torch.tensor([[float("nan"), 0.0]]))
    assert not bool(trl.Bounded(-1.0, 1.0, shape=(2,)).is_in(torch.tensor([[float("nan"), 0.0]])))
    flags = Bounded(False, True, shape=(2,), dtype=torch.bool)
    assert flags.is_in(torch.tensor([True, False]))


def test_encode_of_a_numpy_array_shares_its_memory_like_as_tensor():
    spec = Unbounded(3)
    array = np.zeros(3, dtype=np.float32)
    tensor = spec.encode(array)
    array[0] = 7.0  # torch.as_tensor shares memory too: a gymnasium array is fresh each step
    assert tensor.tolist() == [7.0, 0.0, 0.0] and tensor.dtype == torch.float32
    cast = spec.encode(np.zeros(3, dtype=np.float64))  # another dtype: converted, not shared
    assert cast.dtype == torch.float32
    assert Unbounded(3, dtype=torch.float64).encode(array).dtype == torch.float64
