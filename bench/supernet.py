"""A supernet trained once, then candidates estimated from it: `nas supernet train --space mbconv` on the
built-in data, the time per step and in all, the seconds per candidate of the `supernet` estimator,
(with --rank) how its accuracies rank candidates against the search's proxy training, (with
--reference) against the estimators' long-training reference, and (with --search N) the wall time
of an N-candidate `nas search --estimator supernet --latency lut` (on --search-workers processes).

    python bench/supernet.py [--space mbconv] [--data digits] [--epochs 30] [--candidates 50] [--rank 10]
                             [--reference NAME --storage URL] [--search 2000 [--search-workers 2]]
                             [--workdir DIR] [--results DIR] [--json]
    python bench/supernet.py --quick     # 1 epoch, 10 candidates, no ranking: a smoke check of a few minutes

With --workdir the trained supernet is kept there and a rerun resumes or reuses it.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from rich.console import Console
from rich.table import Table

from _common import RESULTS, save

from nas.checkpoint import read_state
from nas.estimators.supernet import SupernetEstimator
from nas.supernet import SupernetEpoch, SupernetResult, SupernetSettings, random_genotype, train_supernet
from search_spaces import get_space

NAS = [sys.executable, "-m", "nas"]


class _StepTimer:
    """Seconds of each training step (an epoch's last step includes its BN-calibrated evaluation)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.last = time.perf_counter()

    def started(self, steps: int, steps_per_epoch: int, resumed_step: int) -> None:
        self.last = time.perf_counter()

    def step(self, step: int, loss: float) -> None:
        now = time.perf_counter()
        self.seconds.append(now - self.last)
        self.last = now

    def epoch_done(self, record: SupernetEpoch) -> None:
        print(f"epoch {record.epoch}: loss {record.loss:.4f}  distill {record.distill_loss:.4f}  "
              f"largest {100 * record.largest_accuracy:.1f}%  smallest {100 * record.smallest_accuracy:.1f}%",
              file=sys.stderr, flush=True)


def _rank(estimated: list[float], genotypes: list, settings: SupernetSettings) -> dict:
    """Kendall tau between the supernet's accuracies and the search's proxy training on the same networks."""
    from scipy.stats import kendalltau

    from nas.data import load_proxy_data
    from nas.estimators.training import ProxyTraining
    from nas.proxy import ProxySettings

    proxy = ProxyTraining(load_proxy_data(settings.data, settings.resolution), ProxySettings(resolution=settings.resolution))
    start = time.perf_counter()
    trained = [proxy.accuracy(g, lambda step, value: None) for g in genotypes]
    tau = kendalltau(estimated, trained).statistic
    return {"networks": len(genotypes), "kendall_tau": tau, "proxy_accuracy": trained, "proxy_s": time.perf_counter() - start}


def _trained(settings: SupernetSettings, path: Path, observer: _StepTimer) -> SupernetResult:
    """Train into ``path``, resume an unfinished checkpoint there, or read a finished one back."""
    if not path.exists():
        return train_supernet(settings, path, observer=observer)
    state = read_state(path)
    if state["settings"] != settings.recipe():
        raise SystemExit(f"{path} was trained with other settings ({state['settings']}); use another --workdir")
    if state["step"] < state["steps"]:
        return train_supernet(settings, path, resume=True, observer=observer)
    return SupernetResult(path, [SupernetEpoch(**r) for r in state["history"]], state["step"], state["train_s"])


def _rank_reference(estimator: SupernetEstimator, storage: str, name: str | None) -> dict:
    """Kendall tau and Spearman against the long-training reference, on its networks the supernet
    holds (the papers' seed networks lie outside the space)."""
    from nas.estimators.ranking import load_reference, rank_estimator
    from storage import Store

    reference = load_reference(Store.open(storage), name)
    ranking = rank_estimator(reference, "supernet", lambda seed: estimator if seed == 0 else SupernetEstimator(
        estimator.checkpoint, seed=seed))  # another seed, another calibration draw: the read-off's noise
    return {"reference": reference.name, "networks": len(ranking.scores),
            "outside_space": len(reference.networks) - len(ranking.scores), "reference_self_tau": reference.self_tau,
            "kendall_tau": ranking.kendall_tau, "spearman": ranking.spearman, "snr": ranking.snr,
            "seconds_per_arch": ranking.seconds_per_arch}


def timed_search(workdir: Path, estimator: str, settings: dict, trials: int, target: str, study: str,
                 workers: int = 1) -> dict:
    """A search of ``trials`` candidates estimated by ``estimator`` (a ``supernet:NAME,...`` spec of
    the supernet in ``workdir/supernets`` trained with ``settings``) on ``workers`` worker processes,
    latency from the device's table (built first, not timed: one table serves every search on the device)."""
    storage = f"sqlite:///{workdir / 'nas.db'}"
    subprocess.run([*NAS, "latency", "build", "--space", settings["space"], "--storage", storage, "--json"], cwd=workdir,
                   check=True, capture_output=True)
    start = time.perf_counter()
    proc = subprocess.run([*NAS, "search", "--space", settings["space"], "--target-latency", target,
                           "--estimator", estimator, "--data", settings["data"],
                           "--proxy-resolution", str(settings["resolution"]), "--latency", "lut", "--trials", str(trials),
                           "--workers", str(workers), "--storage", storage, "--study", study, "--json"],
                          cwd=workdir, capture_output=True, text=True)
    wall_s = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"the supernet search failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    answer = json.loads(proc.stdout)
    return {"trials": trials, "workers": workers, "target_latency": target, "wall_s": wall_s, "seconds_per_trial": wall_s / trials,
            "counts": answer["counts"], "latency_source": answer["latency_source"], "best": answer["best"][:1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--epochs", type=int, default=SupernetSettings.epochs)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--rank", type=int, default=10, help="candidates also proxy-trained for Kendall tau (0: none)")
    parser.add_argument("--reference", nargs="?", const="", help="rank against this stored long-training reference "
                                                                  "(no value: the only one in --storage)")
    parser.add_argument("--storage", default="sqlite:///bench/.estimators.db", help="database holding the reference")
    parser.add_argument("--search", type=int, default=0, help="then time a search of this many candidates (0: none)")
    parser.add_argument("--search-workers", type=int, default=1, help="worker processes of that search (one thread each)")
    parser.add_argument("--target-latency", default="20ms")
    parser.add_argument("--workdir", type=Path, help="keep the supernet (and the search's database) here; a rerun "
                                                     "resumes or reuses it [default: a temporary folder]")
    parser.add_argument("--quick", action="store_true", help="1 epoch, 10 candidates, no ranking")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for supernet.json")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.candidates, args.rank = 1, 10, 0
    settings = SupernetSettings(space=args.space, data=args.data, epochs=args.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        name = f"{args.space}-{args.data}-{settings.resolution}px-{args.epochs}ep"
        path = workdir / "supernets" / f"{name}.safetensors"  # where `--estimator supernet:NAME` looks from workdir
        path.parent.mkdir(parents=True, exist_ok=True)
        timer = _StepTimer()
        result = _trained(settings, path, timer)
        start = time.perf_counter()
        estimator = SupernetEstimator(path, space=args.space)
        open_s = time.perf_counter() - start
        rng = random.Random(0)
        genotypes = [random_genotype(get_space(args.space), rng) for _ in range(args.candidates)]
        accuracies, seconds = [], []
        for genotype in genotypes:
            start = time.perf_counter()
            accuracies.append(estimator.accuracy(genotype, lambda step, value: None))
            seconds.append(time.perf_counter() - start)
        size = path.stat().st_size
        reference = _rank_reference(estimator, args.storage, args.reference or None) if args.reference is not None else None
        search = (timed_search(workdir, f"supernet:{name}", settings.recipe(), args.search, args.target_latency,
                               f"supernet-{args.search}-{args.search_workers}w", args.search_workers) if args.search else None)
    last = result.history[-1]
    figures = {
        "mode": "quick" if args.quick else "full", "settings": settings.recipe(), "threads": settings.threads,
        "steps": result.steps, "train_s": result.train_s,
        "step_s_median": statistics.median(timer.seconds) if timer.seconds else None,  # None: read back, not trained
        "checkpoint_mb": size / 1e6, "largest_accuracy": last.largest_accuracy, "smallest_accuracy": last.smallest_accuracy,
        "history": [asdict(r) for r in result.history], "estimator_open_s": open_s, "candidates": args.candidates,
        "seconds_per_candidate": statistics.mean(seconds), "seconds_per_candidate_median": statistics.median(seconds),
        "seconds_per_candidate_max": max(seconds), "candidate_accuracy": {
            "min": min(accuracies), "mean": statistics.mean(accuracies), "max": max(accuracies)},
        "ranking": _rank(accuracies[:args.rank], genotypes[:args.rank], settings) if args.rank > 1 else None,
        "reference_ranking": reference, "search": search,
    }
    path = save("supernet", figures, args.results)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=f"{args.space} supernet on {args.data} at {settings.resolution}px, {args.epochs} epochs "
                        f"({figures['mode']})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [("train (min)", f"{result.train_s / 60:.1f}"), ("steps", str(result.steps)),
            ("s per step (median)", "-" if figures["step_s_median"] is None else f"{figures['step_s_median']:.2f}"),
            ("largest val acc %", f"{100 * last.largest_accuracy:.1f}"),
            ("smallest val acc %", f"{100 * last.smallest_accuracy:.1f}"),
            ("checkpoint MB", f"{figures['checkpoint_mb']:.0f}"), ("estimator load s", f"{open_s:.2f}"),
            ("s per candidate (mean)", f"{figures['seconds_per_candidate']:.3f}"),
            ("s per candidate (median / max)", f"{figures['seconds_per_candidate_median']:.3f} / {max(seconds):.3f}"),
            ("candidate val acc % (min / mean / max)", " / ".join(f"{100 * v:.1f}" for v in figures["candidate_accuracy"].values()))]
    if figures["ranking"] is not None:
        rows.append((f"Kendall tau vs proxy training ({args.rank} networks)", f"{figures['ranking']['kendall_tau']:.2f}"))
    if reference is not None:
        rows.append((f"Kendall tau / Spearman vs reference {reference['reference']} ({reference['networks']} networks)",
                     f"{reference['kendall_tau']:.2f} / {reference['spearman']:.2f}"))
    if search is not None:
        rows.append((f"search of {search['trials']} candidates, {search['workers']} worker(s) (min)", f"{search['wall_s'] / 60:.1f}"))
    for row in rows:
        table.add_row(*row)
    Console(width=120).print(table)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
