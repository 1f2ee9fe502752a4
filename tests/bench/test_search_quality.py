"""bench/search_quality.py: the figures it derives from search runs, and one quick run end to end."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench_scripts import BENCH, load
from conftest import ONE_WORKER

_bench = load("search_quality")
Point, best_under, compare, front, hypervolume, time_to_reach, verdict_rivals = (
    _bench.Point, _bench.best_under, _bench.compare, _bench.front, _bench.hypervolume, _bench.time_to_reach,
    _bench.verdict_rivals)


def test_a_step_is_kept_with_its_command_and_run_again_only_where_allowed(tmp_path):
    steps = _bench.Steps(tmp_path)
    first = steps.run("train/a", ["show", "mobilenetv3_small_100"], tmp_path)
    assert first["name"] == "mobilenetv3_small_100"
    kept = json.loads((tmp_path / "steps.json").read_text())["done"]["train/a"]
    assert kept["args"] == ["show", "mobilenetv3_small_100"]
    assert steps.run("train/a", ["show", "mobilenetv3_small_100"], tmp_path) == first
    assert json.loads((tmp_path / "steps.json").read_text())["done"]["train/a"] == kept  # read back, not run again
    with pytest.raises(SystemExit, match="train/a run as `nas show mobilenetv3_small_100`"):
        steps.run("train/a", ["show", "mobilenetv2_100"], tmp_path)  # a search with other flags: another folder
    assert steps.run("train/a", ["show", "mobilenetv2_100"], tmp_path, redo=True)["name"] == "mobilenetv2_100"
    assert json.loads((tmp_path / "steps.json").read_text())["done"]["train/a"]["args"][-1] == "mobilenetv2_100"


def test_a_killed_training_s_leftovers_are_removed_before_its_step_runs_again(tmp_path):
    steps = _bench.Steps(tmp_path)
    left = tmp_path / "runs" / "m"
    left.mkdir(parents=True)
    (left / "checkpoint.safetensors").write_text("half an epoch")  # what a kill leaves: `nas train` would refuse it
    steps.run("train/m", ["show", "mobilenetv3_small_100"], tmp_path, output=Path("runs") / "m")
    assert not left.exists()
    left.mkdir()
    (left / "checkpoint.safetensors").write_text("a finished step's")
    steps.run("train/m", ["show", "mobilenetv3_small_100"], tmp_path, output=Path("runs") / "m")  # done: read back
    assert (left / "checkpoint.safetensors").read_text() == "a finished step's"


def test_another_folder_takes_the_baselines_trainings_and_nothing_else(tmp_path):
    first, second = _bench.Steps(tmp_path / "a"), _bench.Steps(tmp_path / "b")
    for folder in (tmp_path / "a", tmp_path / "b"):
        folder.mkdir()
    baseline = first.run("baseline/m", ["show", "mobilenetv3_small_100"], tmp_path)
    seeded = first.run("seed1/baseline/m", ["show", "mobilenetv2_100"], tmp_path)
    first.run("train/tpe-0", ["show", "mnasnet_100"], tmp_path)
    own = second.run("seed2/baseline/m", ["show", "resnet18"], tmp_path)
    assert second.adopt_baselines(first) == 2
    done = json.loads((tmp_path / "b" / "steps.json").read_text())["done"]
    assert sorted(done) == ["baseline/m", "seed1/baseline/m", "seed2/baseline/m"]  # not the found network's training
    assert done["seed2/baseline/m"]["answer"] == own  # its own are kept
    assert second.run("baseline/m", ["show", "mobilenetv3_small_100"], tmp_path) == baseline
    assert second.run("seed1/baseline/m", ["show", "mobilenetv2_100"], tmp_path) == seeded
    assert json.loads((tmp_path / "b" / "steps.json").read_text())["done"] == done  # read back, not run again
    assert second.adopt_baselines(first) == 0


def test_every_training_of_a_final_network_has_its_own_checkpoint_folder_and_seed():
    recipe = _bench.final_recipe("mnist", 32, 8)
    key, args, output = _bench.found_step(recipe, "tpe-0", 23)
    assert key == "train/tpe-0" and args[:4] == ["train", "23", "--study", "tpe-0"] and "--seed" not in args
    assert args[args.index("--data") + 1] == "mnist" and Path(args[args.index("-o") + 1]) == output
    key2, args2, output2 = _bench.found_step(recipe, "tpe-0", 23, seed=2)
    assert _bench.parse_step_key(key2) == ("train", 2) and args2[args2.index("--seed") + 1] == "2"
    baseline = _bench.baseline_step(recipe, "resnet18", 2)[2]
    assert len({output, output2, baseline, _bench.baseline_step(recipe, "resnet18")[2]}) == 4


def test_a_refined_network_is_refined_from_its_run_and_trained_from_its_file_with_its_own_folder():
    recipe = _bench.final_recipe("digits", 64, 12)
    args = _bench.refine_args("tpe-0", 23, 20.0, 15.38461, ("--pretrain", "20"))
    assert args[:4] == ["refine", "23", "--study", "tpe-0"] and args[-2:] == ["--pretrain", "20"]
    assert args[args.index("--target-latency") + 1] == "15.385ms" and args[args.index("--start-latency") + 1] == "20.000ms"
    assert Path(args[args.index("-o") + 1]) == _bench.refined_file("tpe-0")
    refined = {"name": "tpe-0 refined", "study": "tpe-0", "refined_from": 23}
    found = {"name": "tpe-0 trial 23", "study": "tpe-0", "trial": 23}
    paper = {"name": "resnet18"}
    trainings = [_bench.final_training(recipe, row, 2) for row in (refined, found, paper)]
    assert [_bench.parse_step_key(t.key) for t in trainings] == [("train-refined", 2), ("train", 2), ("baseline", 2)]
    assert trainings[0].args[:2] == ["train", str(_bench.refined_file("tpe-0"))]
    assert trainings[1].args[:2] == ["train", "23"] and trainings[2].args[:3] == ["baselines", "--models", "resnet18"]
    assert len({t.output for t in trainings} | {_bench.refined_step(recipe, "tpe-0").output}) == 4


def _points(*rows):
    return [Point(elapsed_s=t, accuracy=a, latency_ms=lat, number=i) for i, (t, a, lat) in enumerate(rows)]


def test_front_keeps_only_non_dominated_networks_by_latency():
    points = _points((1, 0.5, 10), (2, 0.4, 12), (3, 0.7, 15), (4, 0.6, 9), (5, 0.7, 18))
    assert [(p.accuracy, p.latency_ms) for p in front(points)] == [(0.6, 9), (0.7, 15)]


def test_hypervolume_is_the_area_the_front_dominates_up_to_the_reference_latency():
    points = _points((1, 0.6, 9), (2, 0.7, 15), (3, 0.9, 50))  # the last one lies beyond the reference
    assert hypervolume(points, 20) == pytest.approx((15 - 9) * 0.6 + (20 - 15) * 0.7)
    assert hypervolume(points, 5) == 0.0
    better = _points((1, 0.6, 9), (2, 0.8, 15))
    assert hypervolume(better, 20) > hypervolume(points, 20)


def test_best_under_target_and_time_to_reach_an_accuracy():
    points = _points((10, 0.5, 18), (20, 0.9, 25), (30, 0.6, 19), (40, 0.8, 12))
    assert best_under(points, 20).accuracy == 0.8 and best_under(points, 5) is None
    assert time_to_reach(points, 20, 0.6) == 30  # 0.9 at 20 s does not count: over the target
    assert time_to_reach(points, 20, 0.85) is None


def test_compare_states_both_mnasnet_claims():
    baselines = [{"name": "a", "accuracy": 0.80, "latency_ms": 10.0}, {"name": "b", "accuracy": 0.85, "latency_ms": 30.0},
                 {"name": "c", "accuracy": 0.90, "latency_ms": 40.0}]
    result = compare({"name": "found", "accuracy": 0.86, "latency_ms": 15.0}, baselines)
    assert result["best_baseline_at_equal_or_lower_latency"] == "a"
    assert result["accuracy_delta_pts"] == pytest.approx(6.0)
    assert result["best_baseline_of_equal_or_lower_accuracy"] == "b" and result["latency_ratio"] == pytest.approx(2.0)
    assert result["dominated_by"] == []
    alone = compare({"name": "found", "accuracy": 0.5, "latency_ms": 5.0}, baselines)
    assert alone["accuracy_delta_pts"] is None and alone["latency_ratio"] is None
    beaten = compare({"name": "found", "accuracy": 0.82, "latency_ms": 35.0}, baselines)
    assert beaten["dominated_by"] == ["b"] and beaten["latency_ratio"] == pytest.approx(10.0 / 35.0)


def test_the_verdict_is_settled_against_the_two_best_as_fast_and_the_best_less_accurate_baseline():
    baselines = [{"name": n, "accuracy": a, "latency_ms": lat} for n, a, lat in
                 [("fast-weak", 0.80, 5.0), ("fast-strong", 0.95, 9.0), ("fast-mid", 0.90, 8.0),
                  ("slow-weak", 0.85, 30.0), ("slow-strong", 0.97, 40.0)]]
    rivals = verdict_rivals({"name": "found", "accuracy": 0.88, "latency_ms": 10.0}, baselines)
    assert [b["name"] for b in rivals] == ["fast-strong", "fast-mid", "slow-weak"]
    alone = verdict_rivals({"name": "found", "accuracy": 0.5, "latency_ms": 1.0}, baselines)
    assert alone == []


@pytest.mark.slow
def test_quick_run_writes_every_figure_and_resumes_from_its_work_folder(tmp_path):
    args = [sys.executable, str(BENCH / "search_quality.py"), "--quick", "--space", "tiny", "--target-latency", "10s",
            "--budget", "10s", "--baselines", "mobilenetv3_small_050", "--final-epochs", "1", "--final-resolution", "32",
            "--verdict-seeds", "2", f"--search-args={' '.join(ONE_WORKER)}", "--workdir", str(tmp_path / "work"),
            "--results", str(tmp_path / "results"), "--json"]
    first = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    assert set(first["methods"]) == {"tpe", "nsga2", "random"}
    for method in first["methods"].values():
        assert {"best_accuracy_under_target", "spread", "hypervolume", "time_to_random_best_s"} <= set(method)
    assert [b["name"] for b in first["baselines"]] == ["mobilenetv3_small_050"]
    runs = first["runs"]
    assert all(r["trials"] >= 1 for r in runs)
    for r in runs:  # which trials are under the target is the machine's to say; the found one is the best of them
        found = r["found"]
        assert (found is None) == (r["best_proxy_under_target"] is None)
        assert found is None or (found["study"] == r["study"] and found["proxy_accuracy"] == r["best_proxy_under_target"])
    # the most accurate found network refined (NetAdapt) and re-trained; whether it reached the target is the machine's
    (refined_run,) = [r for r in runs if r["refined"]]
    assert refined_run["found"]["accuracy"] == max(r["found"]["accuracy"] for r in runs if r["found"])
    refined = refined_run["refined"]
    assert refined["refined_from"] == refined_run["found"]["trial"] and refined["study"] == refined_run["study"]
    assert (tmp_path / "work" / refined["arch_file"]).is_file()
    done = json.loads((tmp_path / "work" / "steps.json").read_text())["done"]
    refinement = done[_bench.step_key("refine", refined["study"])]["answer"]  # what `nas refine --json` answered
    assert refined["refine_reached"] is refinement["reached"]
    assert refined["refine_iterations"] == refinement["iterations"] == len(refinement["path"]) - 1  # start + one a step
    assert refined["accuracy"] == done[_bench.step_key("train-refined", refined["study"])]["answer"]["accuracy"]
    assert refined["refine_target_ms"] == pytest.approx(refined_run["found"]["search_latency_ms"] / 1.05)  # quick
    assert all("refined_accuracy_under_target" in m for m in first["methods"].values())
    assert {"accuracy_delta_pts", "latency_ratio"} <= set(first["found_vs_best_baseline"])
    verdict = first["verdict_over_seeds"]
    assert verdict["seeds"] == 2 and verdict["networks"][0]["name"] == first["found_vs_best_baseline"]["found"]
    refined_verdict = first["refined_verdict_over_seeds"]  # every refined network is under a 10 s target
    assert refined_verdict["networks"][0]["name"] == first["refined_vs_best_baseline"]["found"]
    for network in verdict["networks"] + refined_verdict["networks"]:  # seed 0: the table's training; seed 1: another
        assert len(network["seed_accuracies"]) == 2
        assert network["accuracy"] == pytest.approx(sum(network["seed_accuracies"]) / 2)
    assert (tmp_path / "results" / "search_quality.json").exists() and (tmp_path / "results" / "search_quality.html").exists()
    again = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    # trainings, searches and the side-by-side timing are read back from the folder, not run again
    assert [r["found"] for r in again["runs"]] == [r["found"] for r in runs]
    assert [r["refined"] for r in again["runs"]] == [r["refined"] for r in runs]
    assert [r["front"] for r in again["runs"]] == [r["front"] for r in runs]
    assert again["baselines"] == first["baselines"]
    assert [n["seed_accuracies"] for n in again["verdict_over_seeds"]["networks"]] == [
        n["seed_accuracies"] for n in verdict["networks"]]
