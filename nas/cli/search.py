"""`nas search` and the commands that read a search back: spaces, trials, best, show."""

from __future__ import annotations

import shlex
import time
import warnings
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nas.cli.common import JsonOpt, StorageOpt, StudyOpt, app, err, nas_command, open_hints, out, print_json
from nas.errors import UsageError

if TYPE_CHECKING:
    from nas.config import SearchConfig
    from nas.search import SearchResult
    from storage import Store


def _ranked_json(ranked) -> list[dict[str, Any]]:
    """Ranked trials under the storage contract's names; ``reward`` is the (re-)score."""
    from nas.results import record_json

    return [{"rank": i, **record_json(record), "reward": score} for i, (score, record) in enumerate(ranked, 1)]


class _ProgressObserver:
    """A progress bar with trials done, the best value so far and the time left."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("best {task.fields[best]}"), TimeElapsedColumn(),
                                 TextColumn("{task.fields[left]}"), console=console)
        self.task = None
        self.remaining: int | None = None
        self.timeout_s: float | None = None
        self.started_at = 0.0
        self.done = 0

    def started(self, study, remaining, timeout_s) -> None:
        self.remaining, self.timeout_s, self.started_at = remaining, timeout_s, time.monotonic()
        self.task = self.progress.add_task(study.study_name, total=remaining, best=self._best(study),
                                           left=self._left())
        self.progress.start()

    def _left(self) -> str:
        """Estimated time left: mean trial time x trials left, capped by --timeout."""
        elapsed = time.monotonic() - self.started_at
        budgets = []
        if self.remaining is not None and self.done:
            budgets.append(elapsed / self.done * (self.remaining - self.done))
        if self.timeout_s is not None:
            budgets.append(max(0.0, self.timeout_s - elapsed))
        if not budgets:
            return "left -"
        seconds = int(min(budgets))
        return f"left {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    @staticmethod
    def _best(study) -> str:
        try:
            if len(study.directions) > 1:
                return f"front within T: {len(study.best_trials)}"  # Optuna's best_trials honour the latency constraint
            return f"{study.best_value:.4f}"
        except ValueError:
            return "-"

    def trial_finished(self, study, trial) -> None:
        from storage import TrialRecord

        self.done += 1
        record = TrialRecord.from_trial(trial)
        if trial.state.name == "COMPLETE":
            line = (f"trial {trial.number}: acc {100 * record.accuracy:.1f}%  {record.latency_ms:.2f} ms  "
                    f"value {', '.join(f'{v:.4f}' for v in trial.values)}")
        else:
            line = f"trial {trial.number}: {trial.state.name} {record.fail_reason or ''}".rstrip()
        self.progress.console.print(line)
        self.progress.update(self.task, advance=1, best=self._best(study), left=self._left())

    def announce(self, message: str) -> None:
        self.progress.console.print(message)

    def stop(self) -> None:
        self.progress.stop()


@app.command()
def search(
    target_latency: Annotated[str, typer.Option("--target-latency", help="latency target T, e.g. 20ms (us, ms, s)")],
    space: Annotated[str, typer.Option(help="search space (see `nas spaces`)")] = "mbconv",
    trials: Annotated[Optional[int], typer.Option(help="finished trials the study should hold [default: 20, or none with --timeout]")] = None,
    timeout: Annotated[Optional[str], typer.Option(help="stop starting trials after this long, e.g. 30m")] = None,
    reward: Annotated[str, typer.Option(help="soft | hard | tunas")] = "soft",
    reward_weight: Annotated[Optional[float], typer.Option(help="latency exponent w (soft/hard) or beta (tunas), <= 0")] = None,
    objective: Annotated[str, typer.Option(help="reward | pareto (accuracy up, latency down)")] = "reward",
    sampler: Annotated[Optional[str], typer.Option(help="tpe | nsga2 | random [default: tpe; nsga2 for pareto]")] = None,
    pruner: Annotated[str, typer.Option(help="median | sha (successive halving) | hyperband | none")] = "median",
    estimator: Annotated[str, typer.Option(help="accuracy estimator: train | synflow | naswot | grad_norm | snip | zen | "
                                                "params | macs (NAME:key=value,... sets options) | hybrid:PROXY:K | "
                                                "supernet[:NAME][,steps=N] (N steps from its weights first; "
                                                "see `nas estimators rank`)")] = "train",
    seed: Annotated[int, typer.Option(help="sampler seed")] = 0,
    seed_arch: Annotated[Optional[list[str]], typer.Option("--seed-arch", help="enqueue a paper network first (repeatable)")] = None,
    data: Annotated[str, typer.Option(help="digits | mnist | a folder of class sub-folders")] = "digits",
    epochs: Annotated[int, typer.Option(help="proxy training epochs (1: the best order measured within ~10 s a network)")] = 1,
    batch_size: Annotated[int, typer.Option(help="proxy training batch size")] = 32,
    proxy_resolution: Annotated[int, typer.Option(help="proxy training image size")] = 16,
    resolution: Annotated[int, typer.Option(help="latency input size (RGB)")] = 224,
    threads: Annotated[int, typer.Option(help="CPU threads for latency")] = 1,
    backend: Annotated[str, typer.Option(help="latency backend: torch (eager, default) | onnxruntime | cuda")] = "torch",
    allocator: Annotated[str, typer.Option(help="kept (glibc keeps freed memory, as deployed with DEPLOY.md's "
                                                "environment) | default (a plain process)")] = "kept",
    latency: Annotated[str, typer.Option(help="auto (the device's latency table when built, else measure) | lut | measure")] = "auto",
    top: Annotated[int, typer.Option(help="best architectures to print")] = 3,
    workers: Annotated[str, typer.Option(help="trials at once: N worker processes on one study (local, one thread "
                                              "each) or Ray Tune trials (ray); auto: one a core (Ray: a CPU)")] = "auto",
    runner: Annotated[str, typer.Option(help="local (worker processes) | ray (Ray Tune trials)")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="a Ray cluster: auto | ray://HOST:10001 "
                                                       "[default: start Ray on this machine]")] = None,
    storage: StorageOpt = None,
    study: Annotated[Optional[str], typer.Option(help="study name [default: SPACE-Tms-REWARD]")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search SPACE for the most accurate network that meets the latency target on this machine."""
    from nas.config import DEFAULT_TRIALS, SearchConfig
    from nas.latency import LatencySettings
    from nas.proxy import ProxySettings
    from nas.units import parse_duration_s, parse_latency_ms
    from nas.workers import ScaleOut, parse_workers, search as run_search
    from storage import Store

    import optuna

    timeout_s = parse_duration_s(timeout) if timeout is not None else None
    config = SearchConfig(
        target_latency_ms=parse_latency_ms(target_latency), space=space,
        trials=trials if trials is not None else (None if timeout_s else DEFAULT_TRIALS), timeout_s=timeout_s,
        reward=reward, reward_weight=reward_weight, objective=objective, sampler=sampler, pruner=pruner,
        seed=seed, study=study, estimator=estimator, seed_archs=tuple(seed_arch or ()), data=data,
        latency=LatencySettings.for_backend(backend, resolution=resolution, threads=threads, allocator=allocator),
        latency_mode=latency,
        proxy=ProxySettings(epochs=epochs, batch_size=batch_size, resolution=proxy_resolution),
    )
    scale = ScaleOut(workers=parse_workers(workers), runner=runner, ray_address=ray_address)
    store = Store.open(storage)
    scale.check(config, store)  # before the progress bar starts
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our progress bar reports each trial
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    observer = _ProgressObserver(err) if not as_json else None
    try:
        result = run_search(config, store, scale, observer, top=top)
    except KeyboardInterrupt:
        err.print("interrupted: every finished trial is stored; run the same command to resume")
        raise typer.Exit(130) from None
    finally:
        if observer:
            observer.stop()
    if as_json:
        from nas.results import front_json

        answer = front_json(result.front) if result.front is not None else {"pareto": False, "best": _ranked_json(result.best)}
        print_json({"study": result.study_name, "storage": result.storage_url, "ran": result.ran,
                    "counts": result.counts, "wall_s": result.wall_s, "latency_source": result.latency_source,
                    "checks": [{**asdict(c), "error_pct": c.error_pct} for c in result.checks], **answer})
        return
    _print_closing(result, config, store, storage)


def _print_closing(result: SearchResult, config: SearchConfig, store: Store, storage: str | None) -> None:
    """What the search found (a Pareto study's front, else the best by reward) and how to open it."""
    from nas.render import block_table, front_table, ranking_table
    from nas.results import record_genotype

    out.print(f"study {result.study_name!r}: {result.ran} trial(s) run now in {result.wall_s:.0f} s; "
              f"stored: {', '.join(f'{n} {k.lower()}' for k, n in result.counts.items())}")
    if result.ran == 0 and config.trials is not None and not result.counts.get("RUNNING"):
        out.print(f"the study already holds {config.trials} finished trials; pass a larger --trials to search on")
    chosen, title = None, ""
    if result.front is not None and result.front.members:
        out.print(front_table(result.front, f"accuracy-latency front, T = {result.front.target_ms:g} ms"))
        chosen = result.front.choice
        title = f"most accurate within T: trial {chosen.number}" if chosen else ""
    elif result.front is None and result.best:
        out.print(ranking_table(result.best, f"best by {config.reward_fn.describe()}, T = {config.target_latency_ms:g} ms",
                                config.target_latency_ms))
        _, chosen = result.best[0]
        title = f"best: trial {chosen.number}"
    if chosen is not None:
        out.print(block_table(record_genotype(chosen), title))
    for check in result.checks:
        out.print(f"trial {check.trial}: table predicted {check.predicted_ms:.2f} ms, measured "
                  f"{check.measured_ms:.2f} ms +-{check.spread_ms:.2f} ({check.error_pct:+.1f}%)")
    out.print(_trust(config.estimator, store))
    if result.latency_source == "measured" and config.latency_mode == "auto":
        out.print(f"latency was timed for every candidate: `{_table_command(config, result.storage_url, storage)}`, "
                  "once on this device, lets later searches predict it instead (README: \"Where the 10x is\")",
                  soft_wrap=True, highlight=False)
    for line in open_hints(storage, result.storage_url, result.study_name):
        out.print(line, soft_wrap=True, highlight=False)


def _table_command(config: SearchConfig, database: str, storage: str | None) -> str:
    """`nas latency build` for the device the search timed on: its flags that differ from the defaults,
    and its database (a table elsewhere, or of another device, is never used)."""
    from nas.latency import LatencySettings
    from nas.latency.settings import BACKENDS

    settings, default = config.latency, LatencySettings()
    flags = [f"--space {config.space}"]
    if settings.backend != default.backend:
        flags.append(f"--backend {next(flag for flag, name in BACKENDS.items() if name == settings.backend)}")
    flags += [f"--{name} {getattr(settings, name)}" for name in ("threads", "resolution", "allocator")
              if getattr(settings, name) != getattr(default, name)]
    if storage is not None:
        flags.append(f"--storage {shlex.quote(database)}")
    return f"{nas_command()} latency build {' '.join(flags)}"


def _trust(estimator: str, store: Store) -> str:
    """How far the search's accuracy estimate can be trusted, as measured on this database
    (a hybrid search's final order is its trained estimator's)."""
    from nas.estimators.choose import TRAINED, parse_hybrid
    from storage import reference as reference_store

    estimator = TRAINED if parse_hybrid(estimator) else estimator

    measured = reference_store.rankings_of(store, estimator)
    if not measured:
        return (f"how well {estimator!r} ranks networks is not measured here: `nas estimators reference` then "
                f"`nas estimators rank --estimator {estimator}` tell (Kendall tau against long training)")
    best = measured[0]
    verdict = "trust its order" if best.kendall_tau >= 0.6 else (
        "a rough order: re-train the top few before choosing" if best.kendall_tau >= 0.3 else
        "barely better than chance: re-train several candidates before choosing")
    return f"{estimator!r} ranks networks with Kendall tau {best.kendall_tau:.2f} against {best.reference!r}: {verdict}"


@app.command()
def spaces(as_json: JsonOpt = False) -> None:
    """List the search spaces and how many architectures each holds."""
    from search_spaces import SPACES

    rows = [{"name": s.name, "description": s.description, "stages": len(s.skeleton), "size": s.size,
             "ops": list(s.ops)} for s in SPACES.values()]
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="search spaces")
    for column in ("name", "stages", "architectures", "ops", "description"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["name"], str(r["stages"]), f"{r['size']:.3g}", ", ".join(r["ops"]), r["description"])
    out.print(table)


@app.command()
def trials(storage: StorageOpt = None, study: StudyOpt = None, as_json: JsonOpt = False) -> None:
    """List a study's trials with accuracy, latency, params and MACs."""
    from nas.results import load_study, record_json, study_checks, trial_records
    from storage import Store

    store = Store.open(storage, create=False)
    loaded = load_study(store, study)
    records = trial_records(loaded, study_checks(store, loaded))
    if as_json:
        print_json({"study": loaded.study_name, "study_attrs": loaded.user_attrs,
                     "trials": [record_json(r) for r in records]})
        return
    from nas.render import device_line, trials_table
    from storage import StudyRecord

    out.print(trials_table(records, f"study {loaded.study_name!r}"))
    if device := StudyRecord.from_study(loaded).device:
        out.print(f"latency on {device_line(device)}")


@app.command()
def best(
    top: Annotated[int, typer.Option(help="how many by reward (a Pareto study shows its whole front)")] = 5,
    target_latency: Annotated[Optional[str], typer.Option("--target-latency", help="re-score for another target, e.g. 15ms; a Pareto study: "
                                                                                    "its most accurate front member within it")] = None,
    reward: Annotated[Optional[str], typer.Option(help="re-score with another reward: soft | hard | tunas")] = None,
    storage: StorageOpt = None,
    study: StudyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rank stored trials, re-scored from stored accuracy and latency (nothing is retrained); a Pareto
    study shows its accuracy-latency front instead, and with --reward the ranking too."""
    from nas.results import front_json, is_pareto, load_study, pareto_front, rank, study_checks, study_reward
    from nas.units import parse_latency_ms
    from storage import Store

    target = parse_latency_ms(target_latency) if target_latency else None
    if top < 1:
        raise UsageError(f"--top must be >= 1, got {top}")
    store = Store.open(storage, create=False)
    loaded = load_study(store, study)
    checks = study_checks(store, loaded)
    front = pareto_front(loaded, target, checks) if is_pareto(loaded) else None
    scoring = study_reward(loaded, target, reward)
    ranked = rank(loaded, scoring, top, checks) if front is None or reward else None
    if as_json:
        answer = {"study": loaded.study_name, "pareto": False, "target_latency_ms": scoring.target_ms}
        if front is not None:
            answer.update(front_json(front))
        if ranked is not None:
            answer.update(reward=scoring.kind, best=_ranked_json(ranked))
        print_json(answer)
        return
    from nas.render import front_table, ranking_table

    if front is not None and front.members:
        out.print(front_table(front, f"{loaded.study_name}: accuracy-latency front, T = {front.target_ms:g} ms"))
    if ranked:
        out.print(ranking_table(ranked, f"{loaded.study_name}: best by {scoring.describe()}, T = {scoring.target_ms:g} ms",
                                scoring.target_ms))
    if not ranked and not (front and front.members):
        out.print(f"study {loaded.study_name!r} has no completed trial yet")


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="a paper network name, a trial number, or an architecture JSON file")],
    resolution: Annotated[Optional[int], typer.Option(help="input size for MACs [default: the architecture's, else 224]")] = None,
    storage: StorageOpt = None,
    study: StudyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print an architecture's blocks with its params and MACs."""
    from nas.metrics import count_macs, count_params
    from nas.render import block_rows, block_table, fmt_count
    from nas.results import resolve_architecture
    from search_spaces import build_model
    from storage import Store

    if resolution is not None and not 32 <= resolution <= 1024:
        raise UsageError(f"--resolution must be between 32 and 1024, got {resolution}")
    from nas.baselines import BASELINES, baseline_size
    from search_spaces import PAPER_NAMES

    if ref in BASELINES and ref not in PAPER_NAMES:  # a paper network timm's builder does not make (torchvision, ours)
        size = baseline_size(ref, resolution or 224)
        if as_json:
            print_json(asdict(size))
            return
        out.print(f"{size.name} ({size.paper}): params {fmt_count(size.params)} ({size.params:,}), "
                  f"MACs {fmt_count(size.macs)} at {size.resolution}x{size.resolution}")
        return
    arch = resolve_architecture(ref, Store.open(storage, create=False), study)
    label, genotype = arch.name, arch.genotype
    resolution = resolution or arch.input_size()
    params = count_params(build_model(genotype))
    macs = count_macs(genotype, resolution)
    if as_json:
        print_json({**arch.to_dict(), "params": params, "macs": macs, "resolution": resolution,
                    "blocks": block_rows(genotype)})
        return
    out.print(block_table(genotype, label))
    out.print(f"params {fmt_count(params)} ({params:,}), MACs {fmt_count(macs)} at {resolution}x{resolution}")
