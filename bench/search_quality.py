"""Does the search find networks that beat the papers' networks, and beat random search?

One command on this machine and the built-in data: the papers' networks (and width variants of
the MobileNets near the target), the best network of every search run and the NetAdapt refinement
(`nas refine`, MobileNetV3's second step) of the best of them (or of every run's), all re-trained
with one final recipe and measured for latency the same way; searches with TPE, NSGA-II (Pareto)
and random sampling get the same wall-clock budget, for several seeds.

    python bench/search_quality.py [--quick] [--seeds 2] [--target-latency 20ms] [--budget 6m | --trials N]
                                   [--refine best|all|none] [--refine-speedup 1.3] [--verdict-seeds 3]
                                   [--final-data digits] [--workdir DIR] [--retime] [--json]

The verdict (the best found network against the baselines it must beat) is settled on the mean of
``--verdict-seeds`` trainings of each network involved: one seed of the final recipe moves a
network by up to 7 points on digits. Every step's result is kept in ``--workdir`` (default: a new
temporary folder), so the same command with the same ``--workdir`` resumes after an interruption
instead of starting over; a step whose command changed (another final recipe) runs again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).parent))

import optuna
from filelock import FileLock
from rich.console import Console
from rich.table import Table

from _common import RESULTS, save
from nas.errors import EXIT_NOT_REACHED
from nas.units import parse_duration_s, parse_latency_ms
from storage import Store
from storage.contract import TrialRecord

NAS = [sys.executable, "-m", "nas"]
# the papers' networks (`nas baselines`) and width variants of the MobileNets, so several land near 20 ms
PAPERS = ("mobilenetv1_100", "mobilenetv2_100", "mobilenetv3_large_100", "mobilenetv3_small_100", "mnasnet_100",
          "semnasnet_100", "efficientnet_b0", "efficientnet_lite0", "shufflenet_v2_x1_0", "resnet18")
WIDTH_VARIANTS = ("mobilenetv2_075", "mobilenetv3_large_075")
QUICK_BASELINES = ("mobilenetv3_small_075", "mobilenetv2_050")
METHODS = {"tpe": ["--sampler", "tpe"], "nsga2": ["--objective", "pareto", "--sampler", "nsga2"],
           "random": ["--sampler", "random"]}
QUICK_REFINE = ("--pretrain", "20", "--short-tune", "2", "--long-tune", "10")  # bench/netadapt.py --quick's budgets


def step_key(kind: str, name: str, seed: int = 0) -> str:
    """A step's key in ``steps.json``: ``KIND/NAME`` (search, train, baseline), and ``seedN/KIND/NAME``
    for another seed of the final recipe (the verdict's trainings)."""
    return f"{kind}/{name}" if seed == 0 else f"seed{seed}/{kind}/{name}"


def parse_step_key(key: str) -> tuple[str, int]:
    """(kind, seed) of a ``step_key``."""
    *head, kind, _ = key.split("/")
    return kind, int(head[0].removeprefix("seed")) if head else 0


def final_recipe(data: str, resolution: int, epochs: int) -> tuple[str, ...]:
    """The `nas train`/`nas baselines` flags of a final recipe (every final network trains with them)."""
    return ("--epochs", str(epochs), "--resolution", str(resolution), "--data", data)


def runs_folder(recipe: tuple[str, ...]) -> Path:
    """A final recipe's checkpoints (relative to the work folder): another recipe trains beside them."""
    return Path("runs") / hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:8]


class Training(NamedTuple):
    """One final-recipe training as a work-folder step: its key, its `nas` flags, and the
    checkpoint folder it alone writes."""

    key: str
    args: list[str]
    output: Path


def _seeded(recipe: tuple[str, ...], seed: int, folder: str) -> tuple[Path, list[str]]:
    """Where a training of ``recipe`` on ``seed`` keeps its checkpoint, and its seed flag."""
    return runs_folder(recipe) / (f"seed{seed}" if seed else "") / folder, ["--seed", str(seed)] if seed else []


def baseline_step(recipe: tuple[str, ...], name: str, seed: int = 0) -> Training:
    """One training of a paper's network: the same in every bench that trains the baselines, so
    one folder's trainings serve another (``Steps.adopt_baselines``)."""
    out, seeded = _seeded(recipe, seed, "baselines")
    return Training(step_key("baseline", name, seed), ["baselines", "--models", name, *recipe, *seeded, "-o", str(out)],
                    out / name)


def found_step(recipe: tuple[str, ...], study: str, trial: int, seed: int = 0) -> Training:
    """One training of a search run's best network (trial ``trial`` of study ``study``)."""
    out, seeded = _seeded(recipe, seed, study)
    return Training(step_key("train", study, seed), ["train", str(trial), "--study", study, *recipe, *seeded,
                                                     "-o", str(out)], out)


def refined_file(study: str) -> Path:
    """Where a search run's refined network is written (relative to the work folder)."""
    return Path("refined") / f"{study}.json"


def refine_args(study: str, trial: int, start_ms: float, target_ms: float, extra: tuple[str, ...]) -> list[str]:
    """`nas refine` of a search run's best network (trial ``trial`` of ``study``) from ``start_ms``, its
    latency as the search measured it, to ``target_ms``: anchored on the search's figure, the target
    is a speed-up of it, whatever a later measurement of the start reads (one 18% faster, with the
    target only 5% below the search's figure, stopped `nas refine` as "nothing to refine")."""
    return ["refine", str(trial), "--study", study, "--start-latency", f"{start_ms:.3f}ms",
            "--target-latency", f"{target_ms:.3f}ms", "--refine-study", f"refine-{study}", "-o", str(refined_file(study)),
            *extra]


def refined_step(recipe: tuple[str, ...], study: str, seed: int = 0) -> Training:
    """One training of a search run's refined network (its architecture file)."""
    out, seeded = _seeded(recipe, seed, f"{study}-refined")
    return Training(step_key("train-refined", study, seed),
                    ["train", str(refined_file(study)), *recipe, *seeded, "-o", str(out)], out)


def final_training(recipe: tuple[str, ...], row: dict, seed: int) -> Training:
    """Another seed's training of a network of the table: refined, found or a paper's."""
    if "refined_from" in row:
        return refined_step(recipe, row["study"], seed)
    if "study" in row:
        return found_step(recipe, row["study"], row["trial"], seed)
    return baseline_step(recipe, row["name"], seed)


@dataclass(frozen=True)
class Point:
    """One stored search trial: when it finished (s after the run started), its estimate, its latency."""

    elapsed_s: float
    accuracy: float
    latency_ms: float
    number: int


class Steps:
    """Each finished step's JSON answer, kept with its command in ``workdir/steps.json``: a rerun
    skips a step done with the same command and runs it again when its command changed (another
    final recipe re-trains, the searches are kept). Several processes may share a folder
    (``--only baselines`` beside the searches): each write merges under a lock."""

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "steps.json"
        self.lock = FileLock(str(workdir / "steps.lock"))

    def _read(self) -> dict:
        return json.loads(self.path.read_text()) if self.path.exists() else {"done": {}}

    def _write(self, kept: dict) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(kept))
        tmp.replace(self.path)  # atomic: a kill never leaves half a file

    def _claim(self, key: str, args: list[str], redo: bool) -> dict | None:
        """The step's answer when done with ``args``; else claim it for this process (None),
        waiting while another live process of the folder runs it. A step done with other args is
        run again only when ``redo`` (its output goes elsewhere); else the folder is refused."""
        while True:
            with self.lock:
                kept = self._read()
                done = kept["done"].get(key)
                if done is not None and done["args"] == args:
                    return done["answer"]
                if done is not None and not redo:
                    raise SystemExit(f"{self.path.parent} holds {key} run as `nas {' '.join(done['args'])}`; "
                                     "use another --workdir for other search settings")
                running = kept.setdefault("running", {})
                if not _alive(running.get(key)):
                    running[key] = os.getpid()
                    self._write(kept)
                    return None
            time.sleep(5)

    def run(self, key: str, args: list[str], cwd: Path, redo: bool = False, output: Path | None = None,
            ok: tuple[int, ...] = (0,)) -> object:
        """The step's answer, running ``nas ARGS`` in ``cwd`` unless done. ``output``: the folder
        this step alone writes (a training's checkpoint); what a killed run left there is removed
        first, so the step starts over instead of failing on a half-trained checkpoint. ``ok``: the
        exit codes that still answer (`nas refine` stopping at its closest network: 8)."""
        answer = self._claim(key, args, redo)
        if answer is not None:
            return answer
        if output is not None:
            shutil.rmtree(cwd / output, ignore_errors=True)
        start = time.perf_counter()
        proc = subprocess.run([*NAS, *args, "--json"], cwd=cwd, capture_output=True, text=True)
        if proc.returncode not in ok:
            raise SystemExit(f"`nas {' '.join(args)}` failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
        with self.lock:
            kept = self._read()
            kept["done"][key] = {"args": args, "answer": json.loads(proc.stdout), "wall_s": time.perf_counter() - start}
            kept.get("running", {}).pop(key, None)
            self._write(kept)
        return kept["done"][key]["answer"]

    def train(self, training: Training, cwd: Path) -> object:
        """A final-recipe training's answer; run again if its flags changed (another recipe)."""
        return self.run(training.key, training.args, cwd, redo=True, output=training.output)

    def adopt_baselines(self, other: Steps) -> int:
        """Take the baselines' trainings (every seed) that ``other`` folder has done and this one has
        not: another search setting is judged against the very same trainings. Returns how many."""
        with self.lock:
            kept, theirs = self._read(), other._read()["done"]
            taken = {k: v for k, v in theirs.items() if parse_step_key(k)[0] == "baseline" and k not in kept["done"]}
            kept["done"].update(taken)
            self._write(kept)
        return len(taken)

    def kept(self, key: str) -> object | None:
        """A value this folder keeps under ``key`` (not a command's answer), or None."""
        return self._read().get("kept", {}).get(key)

    def keep(self, key: str, value: object) -> None:
        with self.lock:
            kept = self._read()
            kept.setdefault("kept", {})[key] = value
            self._write(kept)

    def wall_s(self, key: str) -> float:
        return self._read()["done"][key]["wall_s"]


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def study_points(store: Store, name: str) -> list[Point]:
    """The completed trials of a search run, timed from the run's first trial."""
    trials = optuna.load_study(study_name=name, storage=store.optuna()).get_trials(deepcopy=False)
    start = min(t.datetime_start for t in trials if t.datetime_start)
    points = []
    for trial in trials:
        record = TrialRecord.from_trial(trial)
        if trial.state == optuna.trial.TrialState.COMPLETE and record.accuracy is not None and record.latency_ms:
            points.append(Point((trial.datetime_complete - start).total_seconds(), record.accuracy, record.latency_ms,
                                trial.number))
    return sorted(points, key=lambda p: p.elapsed_s)


def best_under(points: list[Point], target_ms: float) -> Point | None:
    feasible = [p for p in points if p.latency_ms <= target_ms]
    return max(feasible, key=lambda p: (p.accuracy, -p.latency_ms)) if feasible else None


def front(points: list[Point]) -> list[Point]:
    """The non-dominated points (higher accuracy, lower latency), by latency."""
    kept: list[Point] = []
    for p in sorted(points, key=lambda p: (p.latency_ms, -p.accuracy)):
        if not kept or p.accuracy > kept[-1].accuracy:
            kept.append(p)
    return kept


def hypervolume(points: list[Point], max_latency_ms: float) -> float:
    """Area (accuracy x ms) the front dominates up to latency ``max_latency_ms`` and down to accuracy
    0: larger is better; the same reference point for every method. Between one front member's
    latency and the next one's, the most accurate network available is that member."""
    members = [p for p in front(points) if p.latency_ms <= max_latency_ms]
    edges = [p.latency_ms for p in members[1:]] + [max_latency_ms] * bool(members)
    return sum((edge - p.latency_ms) * p.accuracy for p, edge in zip(members, edges, strict=True))


def time_to_reach(points: list[Point], target_ms: float, accuracy: float) -> float | None:
    """Seconds until the run first held a network under the target with at least ``accuracy``."""
    return next((p.elapsed_s for p in points if p.latency_ms <= target_ms and p.accuracy >= accuracy), None)


def spread(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def compare(found: dict, baselines: list[dict]) -> dict:
    """MnasNet's two claims for one found network: more accurate than every baseline at equal or
    lower latency (points), and faster than the best baseline of equal or lower accuracy (ratio)."""
    as_fast = [b for b in baselines if b["latency_ms"] <= found["latency_ms"]]
    less_accurate = [b for b in baselines if b["accuracy"] <= found["accuracy"]]
    rival = max(as_fast, key=lambda b: b["accuracy"]) if as_fast else None
    slower = max(less_accurate, key=lambda b: b["accuracy"]) if less_accurate else None
    return {
        "found": found["name"], "accuracy": found["accuracy"], "latency_ms": found["latency_ms"],
        "best_baseline_at_equal_or_lower_latency": rival and rival["name"],
        "accuracy_delta_pts": rival and 100 * (found["accuracy"] - rival["accuracy"]),
        "best_baseline_of_equal_or_lower_accuracy": slower and slower["name"],
        "latency_ratio": slower and slower["latency_ms"] / found["latency_ms"],
        # the baselines both faster and more accurate: a ratio against a dominated baseline proves little
        "dominated_by": [b["name"] for b in baselines
                         if b["latency_ms"] <= found["latency_ms"] and b["accuracy"] > found["accuracy"]],
    }


def plot(figures: dict, fronts: dict[str, list[Point]], path: Path) -> list[str]:
    """Re-trained accuracy against measured latency (left) and each run's search front (right)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    target = figures["settings"]["target_latency_ms"]
    fig = make_subplots(1, 2, subplot_titles=("re-trained with the final recipe", "search fronts (proxy estimate)"))
    base = figures["baselines"]
    fig.add_trace(go.Scatter(x=[b["latency_ms"] for b in base], y=[100 * b["accuracy"] for b in base], mode="markers+text",
                             text=[b["name"] for b in base], textposition="top center", name="papers' networks",
                             marker={"color": "grey", "size": 9}), 1, 1)
    for method in figures["methods"]:
        for which, symbol in (("found", "star"), ("refined", "diamond")):
            networks = [r[which] for r in figures["runs"] if r["method"] == method and r.get(which)]
            fig.add_trace(go.Scatter(x=[n["latency_ms"] for n in networks], y=[100 * n["accuracy"] for n in networks],
                                     mode="markers", name=f"{which}: {method}", marker={"size": 12, "symbol": symbol},
                                     legendgroup=method), 1, 1)
    for key, points in fronts.items():
        members = front(points)
        fig.add_trace(go.Scatter(x=[p.latency_ms for p in members], y=[100 * p.accuracy for p in members],
                                 mode="lines+markers", line={"shape": "hv"}, name=f"front: {key}",
                                 legendgroup=key.split("-")[0]), 1, 2)
    for column in (1, 2):
        fig.add_vline(x=target, line_dash="dash", line_color="red", row=1, col=column)
        fig.update_xaxes(title_text="latency on this CPU (ms, batch 1, 224 px)", row=1, col=column)
    fig.update_yaxes(title_text="validation accuracy (%)", row=1, col=1)
    fig.update_layout(width=1400, height=600, title=f"nas search vs the papers' networks, T = {target:g} ms")
    html = path.with_suffix(".html")
    fig.write_html(html, include_plotlyjs="cdn")
    written = [html.name]
    try:
        fig.write_image(path.with_suffix(".png"))
        written.append(path.with_suffix(".png").name)
    except Exception as error:  # kaleido needs a Chromium on PATH; the HTML is enough without one
        print(f"no PNG ({type(error).__name__}: {error})", file=sys.stderr)
    return written


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, 1-minute searches, two baselines, a short recipe")
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--target-latency", default="20ms")
    parser.add_argument("--budget", help="wall time of each search run [default: 6m; quick: 1m]")
    parser.add_argument("--trials", type=int, help="give each search run this many trials instead of a wall time: "
                                                   "fair while every method uses the same estimator, and immune to "
                                                   "other work on a shared machine")
    parser.add_argument("--seeds", type=int, help="search runs per method [default: 2; quick: 1]")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated: tpe, nsga2, random")
    parser.add_argument("--baselines", help="comma-separated `nas baselines` names [default: the papers' networks and "
                                            "width variants of the MobileNets]")
    parser.add_argument("--verdict-seeds", type=int, help="train the best found network and the baselines it is judged "
                                                          "against this many times (seeds 0..N-1) and judge on the "
                                                          "means [default: 3; quick: 1]")
    parser.add_argument("--final-epochs", type=int, help="final recipe epochs (`nas train --epochs`) [default: 12; quick: 2]")
    parser.add_argument("--final-resolution", type=int, help="final recipe resolution: 64 leaves a 2x2 last map at "
                                                             "total stride 32, as the proxy's [default: 64]")
    parser.add_argument("--final-data", default="digits", help="final recipe data: digits | mnist | a folder of "
                                                               "class sub-folders (`bench/final_recipe.py` measures "
                                                               "which one tells networks apart) [default: digits]")
    parser.add_argument("--search-args", default="", help="extra `nas search` flags for every run, e.g. '--epochs 2'")
    parser.add_argument("--refine", choices=("best", "all", "none"), default="best",
                        help="refine (`nas refine`, NetAdapt) the best found network, every run's, or none; each "
                             "result is re-trained [default: best]")
    parser.add_argument("--refine-speedup", type=float,
                        help="refine to the network's search latency / this [default: 1.3, the speed-up MnasNet's "
                             "claim asks; quick: 1.05, a step or two]")
    parser.add_argument("--refine-args", default="", help="extra `nas refine` flags [quick: small tuning budgets]")
    parser.add_argument("--retime", action="store_true", help="time the final networks again (kept in --workdir "
                                                              "otherwise; time them on a quiet machine)")
    parser.add_argument("--only", choices=("baselines", "searches"), help="run this stage only (its results are kept)")
    parser.add_argument("--workdir", type=Path, help="keep every step here; the same command resumes [default: a temp folder]")
    parser.add_argument("--baselines-from", type=Path, help="another run's --workdir: its baselines' trainings (same "
                                                            "recipe and seeds) are taken, not trained again, so other "
                                                            "--search-args are judged against the same trainings")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for search_quality.json and the plot")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


@dataclass(frozen=True)
class Bench:
    """What every stage needs: the settings, the kept steps and the study database."""

    space: str
    target_ms: float
    budget_s: float
    trials: int | None
    seeds: int
    methods: tuple[str, ...]
    baselines: tuple[str, ...]
    recipe: tuple[str, ...]  # `nas train`/`nas baselines` flags of the final recipe
    verdict_seeds: int
    search_args: tuple[str, ...]
    refine: str  # best | all | none
    refine_speedup: float
    refine_extra: tuple[str, ...]  # more `nas refine` flags (quick: small budgets)
    workdir: Path
    steps: Steps
    store: Store
    console: Console


def run_searches(bench: Bench) -> tuple[list[dict], dict[str, list[Point]]]:
    """Every method and seed for the same wall time; the best network under the target of each re-trained."""
    runs, fronts = [], {}
    for method in bench.methods:
        for seed in range(bench.seeds):
            key = f"{method}-{seed}"
            budget = ["--trials", str(bench.trials)] if bench.trials else ["--timeout", f"{bench.budget_s}s"]
            bench.console.print(f"search {key}: {' '.join(budget)}")
            bench.steps.run(step_key("search", key), ["search", "--space", bench.space, "--target-latency", f"{bench.target_ms}ms",
                                              *budget, "--seed", str(seed), "--study", key,
                                              *METHODS[method], *bench.search_args], bench.workdir)
            points = fronts[key] = study_points(bench.store, key)
            chosen = best_under(points, bench.target_ms)
            found = None
            if chosen:
                bench.console.print(f"re-train {key}: trial {chosen.number} (proxy {100 * chosen.accuracy:.1f}%)")
                trained = bench.steps.train(found_step(bench.recipe, key, chosen.number), bench.workdir)
                found = {"name": f"{key} trial {chosen.number}", "study": key, "trial": chosen.number,
                         "proxy_accuracy": chosen.accuracy, "search_latency_ms": chosen.latency_ms,
                         **{k: trained[k] for k in ("accuracy", "params", "macs")}}
            runs.append({"method": method, "seed": seed, "study": key, "trials": len(points),
                         "search_wall_s": bench.steps.wall_s(step_key("search", key)), "found": found, "refined": None,
                         "best_proxy_under_target": chosen and chosen.accuracy,
                         "hypervolume": hypervolume(points, 2 * bench.target_ms),
                         "front": [vars(p) for p in front(points)]})
    for run in runs:  # each run against random search with the same seed
        random_best = best_under(fronts.get(f"random-{run['seed']}", []), bench.target_ms)
        reached = random_best and time_to_reach(fronts[run["study"]], bench.target_ms, random_best.accuracy)
        run["time_to_random_best_s"] = reached
        run["trials_to_random_best"] = None if reached is None else sum(p.elapsed_s <= reached for p in fronts[run["study"]])
    return runs, fronts


def run_refinements(bench: Bench, runs: list[dict]) -> None:
    """MobileNetV3's second step: `nas refine` of the most accurate found network (``best``; each
    was under the target by its search's measurement, before the side-by-side timing) or of every
    run's (``all``; one refinement took 7-18 minutes on this CPU) to its search latency over
    ``refine_speedup``, weights inherited on the proxy task; each result re-trained from scratch
    with the final recipe like every network of the table."""
    found = [r for r in runs if r["found"]]
    if bench.refine == "none" or not found:
        return
    for run in found if bench.refine == "all" else [max(found, key=lambda r: r["found"]["accuracy"])]:
        run["refined"] = refine_found(bench, run["study"], run["found"])


def refine_found(bench: Bench, study: str, found: dict) -> dict:
    target_ms = found["search_latency_ms"] / bench.refine_speedup
    bench.console.print(f"refine {study}: trial {found['trial']} to {target_ms:.2f} ms")
    args = refine_args(study, found["trial"], found["search_latency_ms"], target_ms, bench.refine_extra)
    key = step_key("refine", study)
    answer = bench.steps.run(key, args, bench.workdir, ok=(0, EXIT_NOT_REACHED))
    trained = bench.steps.train(refined_step(bench.recipe, study), bench.workdir)
    return {"name": f"{study} refined", "study": study, "refined_from": found["trial"],
            "arch_file": str(refined_file(study)), "refine_target_ms": target_ms, "refine_reached": answer["reached"],
            "refine_iterations": answer["iterations"], "refine_speedup": answer["speedup"],
            "refine_accuracy_change_pts": 100 * (answer["end_accuracy"] - answer["start_accuracy"]),
            "refine_wall_s": bench.steps.wall_s(key),
            **{k: trained[k] for k in ("accuracy", "params", "macs")}}


def run_baselines(bench: Bench) -> list[dict]:
    rows = []
    for name in bench.baselines:
        bench.console.print(f"baseline {name}")
        (row,) = bench.steps.train(baseline_step(bench.recipe, name), bench.workdir)
        rows.append({k: row[k] for k in ("name", "accuracy", "params", "macs")})
    return rows


def time_side_by_side(bench: Bench, baselines: list[dict], runs: list[dict], retime: bool, rounds: int = 3) -> None:
    """Every final network timed in one pass, in turn, ``rounds`` times; each keeps its fastest round
    (as ``nas latency validate`` does): networks compared under the same conditions. Kept in the
    folder for the same set of networks (more seeds of the final recipe change no latency); a
    rerun with ``retime`` times them all again."""
    from nas.baselines import baseline_model
    from nas.latency import LatencySettings, measure_latency
    from nas.results import resolve_architecture
    from search_spaces import build_model

    networks = {b["name"]: (b, lambda name=b["name"]: baseline_model(name).make(1000)) for b in baselines}
    for run in runs:
        if run["found"]:
            arch = resolve_architecture(str(run["found"]["trial"]), bench.store, run["study"])
            networks[run["found"]["name"]] = (run["found"], lambda genotype=arch.genotype: build_model(genotype))
        if run.get("refined"):
            arch = resolve_architecture(str(bench.workdir / run["refined"]["arch_file"]), bench.store)
            networks[run["refined"]["name"]] = (run["refined"], lambda genotype=arch.genotype: build_model(genotype))
    kept = bench.steps.kept("timing")
    if not retime and kept is not None and sorted(kept) == sorted(networks):
        for name, (row, _) in networks.items():
            row["latency_ms"], row["latency_spread_ms"] = kept[name]
        return
    models = {name: make() for name, (_, make) in networks.items()}
    for model in models.values():
        model.eval()
    settings = LatencySettings()
    best: dict[str, tuple[float, float]] = {}
    for index in range(rounds):
        bench.console.print(f"timing round {index + 1}/{rounds}: {len(models)} networks")
        for name, model in models.items():
            measured = measure_latency(model, settings)
            if name not in best or measured.latency_ms < best[name][0]:
                best[name] = (measured.latency_ms, measured.spread_ms)
    for name, (row, _) in networks.items():
        row["latency_ms"], row["latency_spread_ms"] = best[name]
    bench.steps.keep("timing", best)


def main() -> None:
    args = parse_args()
    quick = args.quick
    methods = tuple(m for m in args.methods.split(",") if m)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or "random" not in methods:
        raise SystemExit(f"--methods: known {', '.join(METHODS)}, and random must be one of them (got {args.methods})")
    refine_speedup = args.refine_speedup or (1.05 if quick else 1.3)
    if refine_speedup <= 1:
        raise SystemExit(f"--refine-speedup must be > 1, got {refine_speedup:g}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="search-quality-"))
    workdir.mkdir(parents=True, exist_ok=True)
    recipe = final_recipe(args.final_data, args.final_resolution or 64, args.final_epochs or (2 if quick else 12))
    budget_s = parse_duration_s(args.budget or ("1m" if quick else "6m"))
    bench = Bench(
        space=args.space, target_ms=parse_latency_ms(args.target_latency), budget_s=budget_s, trials=args.trials,
        seeds=args.seeds or (1 if quick else 2), methods=methods,
        baselines=tuple(args.baselines.split(",") if args.baselines else QUICK_BASELINES if quick else PAPERS + WIDTH_VARIANTS),
        recipe=recipe, verdict_seeds=args.verdict_seeds or (1 if quick else 3),
        search_args=tuple(args.search_args.split()), refine=args.refine, refine_speedup=refine_speedup,
        refine_extra=tuple(args.refine_args.split()) or (QUICK_REFINE if quick else ()), workdir=workdir, steps=Steps(workdir),
        store=Store.open(f"sqlite:///{workdir / 'nas.db'}"), console=Console(stderr=True))
    bench.console.print(f"work folder {workdir} (pass --workdir to resume there)")
    if args.baselines_from:
        if not (args.baselines_from / "steps.json").is_file():
            raise SystemExit(f"--baselines-from {args.baselines_from}: no steps.json there (not a --workdir of this bench)")
        taken = bench.steps.adopt_baselines(Steps(args.baselines_from))
        bench.console.print(f"took {taken} baseline trainings from {args.baselines_from}")
    if args.only == "baselines":
        run_baselines(bench)
        return
    runs, fronts = run_searches(bench)
    if args.only == "searches":
        return
    run_refinements(bench, runs)
    rows = run_baselines(bench)
    time_side_by_side(bench, rows, runs, args.retime)
    figures = summarize(bench, rows, runs)
    figures["verdict_over_seeds"] = settle_verdict(bench, rows, best_found_under(runs, bench.target_ms))
    figures["refined_verdict_over_seeds"] = settle_verdict(bench, rows, best_found_under(runs, bench.target_ms, "refined"))
    args.results.mkdir(parents=True, exist_ok=True)
    figures["plots"] = plot(figures, fronts, args.results / "search_quality")
    report(figures, bench.console)
    path = save("search_quality", figures, args.results)
    bench.console.print(f"saved {path}")
    if args.json:
        print(json.dumps(figures, indent=2, default=str))


def best_found_under(runs: list[dict], target_ms: float, which: str = "found") -> dict | None:
    """The most accurate under the target of the runs' ``which`` networks (``found`` or ``refined``)."""
    found = [r[which] for r in runs if r.get(which) and r[which]["latency_ms"] <= target_ms]
    return max(found, key=lambda f: f["accuracy"]) if found else None


def verdict_rivals(found: dict, baselines: list[dict]) -> list[dict]:
    """The baselines that decide MnasNet's two claims on one seed: the two most accurate at equal or
    lower latency (the runner-up may win on other seeds) and the most accurate of equal or lower
    accuracy."""
    as_fast = sorted((b for b in baselines if b["latency_ms"] <= found["latency_ms"]), key=lambda b: -b["accuracy"])
    less_accurate = [b for b in baselines if b["accuracy"] <= found["accuracy"]]
    picked = {b["name"] for b in as_fast[:2]} | ({max(less_accurate, key=lambda b: b["accuracy"])["name"]}
                                                  if less_accurate else set())
    return [b for b in baselines if b["name"] in picked]


def settle_verdict(bench: Bench, rows: list[dict], found: dict | None) -> dict | None:
    """MnasNet's claims again on the mean accuracy of ``verdict_seeds`` trainings of one found
    network and its rivals: one seed of the final recipe moves a network by several points."""
    if found is None or bench.verdict_seeds < 2:
        return None
    networks = []
    for row in [found, *verdict_rivals(found, rows)]:
        accuracies = [row["accuracy"]]
        for seed in range(1, bench.verdict_seeds):
            answer = bench.steps.train(final_training(bench.recipe, row, seed), bench.workdir)
            accuracies.append((answer[0] if isinstance(answer, list) else answer)["accuracy"])  # baselines: a list
        networks.append({"name": row["name"], "latency_ms": row["latency_ms"], "seed_accuracies": accuracies,
                         "accuracy": statistics.fmean(accuracies), "spread": spread(accuracies)})
    return {"seeds": bench.verdict_seeds, "networks": networks, **compare(networks[0], networks[1:])}


def summarize(bench: Bench, rows: list[dict], runs: list[dict]) -> dict:
    target = bench.target_ms
    methods_summary = {}
    for method in bench.methods:
        mine = [r for r in runs if r["method"] == method]
        finals = [r["found"]["accuracy"] for r in mine if r["found"] and r["found"]["latency_ms"] <= target]
        times = [r["time_to_random_best_s"] for r in mine]
        refined = [r["refined"]["accuracy"] for r in mine if r.get("refined") and r["refined"]["latency_ms"] <= target]
        methods_summary[method] = {
            "best_accuracy_under_target": mean(finals), "spread": spread(finals),
            "refined_accuracy_under_target": mean(refined), "refined_spread": spread(refined),
            "found_over_target": sum(1 for r in mine if r["found"] and r["found"]["latency_ms"] > target),
            "hypervolume": mean([r["hypervolume"] for r in mine]),
            "time_to_random_best_s": statistics.median(times) if all(t is not None for t in times) else None,
            "reached_random_best": f"{sum(t is not None for t in times)}/{len(times)}",
            "trials_to_random_best": [r["trials_to_random_best"] for r in mine],
            "trials_per_run": mean([r["trials"] for r in mine]),
        }
    best_found, best_refined = best_found_under(runs, target), best_found_under(runs, target, "refined")
    under = [b for b in rows if b["latency_ms"] <= target]
    return {
        "settings": {"space": bench.space, "target_latency_ms": target, "budget_s": None if bench.trials else bench.budget_s,
                     "trials_per_run": bench.trials, "seeds": bench.seeds, "verdict_seeds": bench.verdict_seeds,
                     "final_recipe": list(bench.recipe), "search_args": list(bench.search_args),
                     "refine": bench.refine, "refine_speedup": bench.refine_speedup, "refine_args": list(bench.refine_extra),
                     "latency": "every final network timed side by side in one pass, fastest of 3 rounds",
                     "hypervolume_reference": {"latency_ms": 2 * target, "accuracy": 0.0}},
        "methods": methods_summary,
        "baselines": rows,
        "best_baseline_under_target": max(under, key=lambda b: b["accuracy"])["name"] if under else None,
        "found_vs_best_baseline": compare(best_found, rows) if best_found else None,
        "refined_vs_best_baseline": compare(best_refined, rows) if best_refined else None,
        "runs": runs,
    }


def report(figures: dict, console: Console) -> None:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}"

    def claims(c: dict) -> str:
        delta, ratio = c["accuracy_delta_pts"], c["latency_ratio"]
        return (f"vs {c['best_baseline_at_equal_or_lower_latency']} (as fast or faster): "
                f"{'-' if delta is None else format(delta, '+.1f')} pts; "
                f"vs {c['best_baseline_of_equal_or_lower_accuracy']} (as accurate or less): "
                f"{'-' if ratio is None else format(ratio, '.2f')}x faster; "
                f"dominated by (faster and more accurate): {', '.join(c['dominated_by']) or 'none'}")

    settings = figures["settings"]
    budget = f"{settings['trials_per_run']} trials" if settings["trials_per_run"] else f"{settings['budget_s']:g} s"
    table = Table(title=f"search methods, T = {settings['target_latency_ms']:g} ms, {budget} a run, {settings['seeds']} seed(s)")
    for column in ("method", "final acc under T (%)", "spread", "refined (%)", "hypervolume", "s to random's best",
                   "reached", "trials/run"):
        table.add_column(column)
    for method, m in figures["methods"].items():
        table.add_row(method, pct(m["best_accuracy_under_target"]), pct(m["spread"]), pct(m["refined_accuracy_under_target"]),
                      f"{m['hypervolume']:.2f}",
                      "-" if m["time_to_random_best_s"] is None else f"{m['time_to_random_best_s']:.0f}",
                      m["reached_random_best"], f"{m['trials_per_run']:.0f}")
    console.print(table)
    networks = Table(title="every network, re-trained with one recipe")
    for column in ("network", "accuracy (%)", "latency (ms)", "params"):
        networks.add_column(column)
    found = [r[which] for r in figures["runs"] for which in ("found", "refined") if r.get(which)]
    for row in sorted(figures["baselines"] + found, key=lambda r: r["latency_ms"]):
        networks.add_row(row["name"], pct(row["accuracy"]), f"{row['latency_ms']:.2f}", f"{row['params'] / 1e6:.2f}M")
    console.print(networks)
    for label, key in (("best found", "found_vs_best_baseline"), ("best refined", "refined_vs_best_baseline")):
        c = figures.get(key)
        if c:
            console.print(f"{label} {c['found']}: {pct(c['accuracy'])}% at {c['latency_ms']:.2f} ms; {claims(c)}")
    for key in ("verdict_over_seeds", "refined_verdict_over_seeds"):
        v = figures.get(key)
        if v:
            means = ", ".join(f"{n['name']} {pct(n['accuracy'])}% ({' / '.join(pct(a) for a in n['seed_accuracies'])})"
                              for n in v["networks"])
            console.print(f"over {v['seeds']} seeds: {means}; {claims(v)}")


if __name__ == "__main__":
    main()
