"""The benchmark suite: ``python -m benchmarks --quick`` runs every case and writes its JSON.

Timings are not asserted (they are measurements, not tests); the report's structure is, and
that every ratio is computed from the medians it reports.
"""

import json
import statistics

import pytest

import benchmarks
from benchmarks import registry, runner
from benchmarks.registry import RLMODS, TORCH, TORCHRL

CANDIDATE_FIELDS = {"median_us", "min_us", "max_us", "rounds_us"}


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "results.json"
    returned = benchmarks.main(["--quick", "--json", str(path)])
    return returned, json.loads(path.read_text())


def test_quick_run_writes_every_registered_case(quick_report):
    returned, written = quick_report
    assert written == json.loads(json.dumps(returned))
    names = [result["case"] for result in written["results"]]
    assert sorted(names) == sorted(registry.CASES) and len(names) >= 7
    assert {"actor", "probabilistic_actor_tanh_normal", "qvalue_actor_categorical",
            "qvalue_actor_one_hot", "egreedy_qvalue_actor", "distributional_qvalue_actor",
            "rollout_cartpole_qvalue", "rollout_pendulum_random"} <= set(names)
    meta = written["meta"]
    assert meta["quick"] is True and meta["device"] == "cpu" and meta["threads"] == 1
    assert meta["torchrl"] is not None  # installed here as the oracle: compared everywhere


def test_quick_run_reports_medians_spread_and_ratios_of_medians(quick_report):
    _, written = quick_report
    for result in written["results"]:
        times = result["candidates"]
        assert {RLMODS, TORCH, TORCHRL} <= set(times), result["case"]
        for name, t in times.items():
            assert set(t) == CANDIDATE_FIELDS, (result["case"], name)
            assert len(t["rounds_us"]) == written["meta"]["rounds"]
            assert t["median_us"] == statistics.median(t["rounds_us"])
            assert t["min_us"] == min(t["rounds_us"]) <= t["median_us"] <= t["max_us"]
            assert t["max_us"] == max(t["rounds_us"]) and t["min_us"] > 0
        rlmods = times[RLMODS]["median_us"]
        assert result["ratios"]["rlmods/torch"] == pytest.approx(rlmods / times[TORCH]["median_us"])
        assert result["ratios"]["rlmods/torchrl"] == pytest.approx(
            rlmods / times[TORCHRL]["median_us"])
        measured = {key: bound for key, bound in result["goals"].items()
                    if set(key.split("/", 1)) <= set(times)}  # the CUDA-graph goal needs a GPU
        assert result["met"] == {key: result["ratios"][key] <= bound
                                 for key, bound in measured.items()}
        rounds = zip(times[RLMODS]["rounds_us"], times[TORCH]["rounds_us"])
        assert result["paired_ratios"]["rlmods/torch"] == pytest.approx(
            statistics.median(a / b for a, b in rounds))


def test_rollouts_report_steps_per_second(quick_report):
    _, written = quick_report
    rollouts = [r for r in written["results"] if r["family"] == "rollouts"]
    assert len(rollouts) == 2
    for result in rollouts:
        assert result["steps"] == 20  # --quick
        for name, rate in result["steps_per_s"].items():
            assert rate == pytest.approx(20 / (result["candidates"][name]["median_us"] * 1e-6))


def test_ratios_come_from_the_medians_including_a_goals_extra_candidate():
    times = {RLMODS: {"median_us": 3.0}, TORCH: {"median_us": 2.0},
             TORCHRL: {"median_us": 12.0}, "torch loop": {"median_us": 30.0}}
    got = runner.ratios(times, {"rlmods/torch loop": 0.2})
    assert got == {"rlmods/torch": 1.5, "rlmods/torchrl": 0.25, "rlmods/torch loop": 0.1}
    assert runner.ratios({RLMODS: {"median_us": 1.0}, TORCH: {"median_us": 4.0}}, {}) == {
        "rlmods/torch": 0.25}  # without torchrl


def test_a_new_family_plugs_in_with_one_decorated_function(monkeypatch):
    monkeypatch.setattr(registry, "CASES", dict(registry.load_cases()))
    monkeypatch.setattr(runner, "load_cases", lambda: registry.CASES)

    @registry.case("demo_case", batches=(2, 3), goals={2: {"rlmods/torch": 100.0}})
    def demo(setting):
        """A demo case."""
        return {"rlmods": lambda: setting.batch + 1, "torch": lambda: setting.batch}

    report = runner.run_cases(["demo_case"], rounds=2, min_run_time=0.001, log=lambda line: None)
    assert [(r["case"], r["family"], r["batch"]) for r in report["results"]] == [
        ("demo_case", "test_benchmarks", 2), ("demo_case", "test_benchmarks", 3)]
    assert report["results"][0]["description"] == "A demo case."
    assert set(report["results"][0]["met"]) == {"rlmods/torch"}
    assert report["results"][1]["goals"] == {} and "rlmods/torchrl" not in report["results"][1][
        "ratios"]
    with pytest.raises(ValueError, match="'demo_case' is registered twice"):
        registry.case("demo_case")(demo)


def test_a_case_without_its_floor_and_an_unknown_name_are_errors(monkeypatch):
    monkeypatch.setattr(registry, "CASES", {})
    monkeypatch.setattr(runner, "load_cases", lambda: registry.CASES)
    registry.case("no_floor", batches=(1,))(lambda setting: {"rlmods": lambda: None})
    with pytest.raises(ValueError, match=r"case 'no_floor' must return the candidates \['torch'\]"):
        runner.run_cases(["no_floor"], rounds=1, min_run_time=0.001, log=lambda line: None)
    with pytest.raises(ValueError, match=r"unknown cases \['nope'\]"):
        runner.run_cases(["nope"], log=lambda line: None)


@pytest.mark.parametrize("name", ["lstm_step", "gru_step", "lstm_sequence_resets",
                                  "gru_sequence_resets", "cem_planner", "mppi_planner",
                                  "multiagent_mlp_unshared", "multiagent_mlp_shared"])
def test_the_floor_computes_what_rlmods_and_torchrl_compute(name):
    import torch

    case = registry.load_cases()[name]
    candidates = case.build(registry.Setting(torch.device("cpu"), case.batches[0], quick=True))
    key = "action" if case.family == "planners" else "features"
    outputs = {}
    with torch.no_grad():
        for candidate, fn in candidates.items():
            torch.manual_seed(3)  # the planners draw the same candidates
            out = fn()
            out = out[0] if isinstance(out, tuple) else out  # a bare LSTMCell: (h, c)
            outputs[candidate] = out if isinstance(out, torch.Tensor) else out[key]
    assert {RLMODS, TORCH, TORCHRL} <= set(outputs)
    for candidate in set(outputs) - {RLMODS}:  # the multi-agent cases add a Python loop
        torch.testing.assert_close(outputs[candidate], outputs[RLMODS], rtol=1e-5, atol=1e-5)


def test_a_goal_compares_any_two_candidates():
    medians = [("rlmods", 12.0), ("torch", 10.0), ("rlmods cudagraph", 6.0),
               ("torch cudagraph", 5.0)]
    times = {name: {"median_us": us} for name, us in medians}
    out = runner.ratios(times, {"rlmods cudagraph/torch cudagraph": 1.2, "rlmods/absent": 1.0})
    assert out == pytest.approx({"rlmods/torch": 1.2, "rlmods cudagraph/torch cudagraph": 1.2})
