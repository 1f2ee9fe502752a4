"""`nas estimators reference|rank`: how well each accuracy estimator ranks networks, measured."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from nas.cli.common import JsonOpt, StorageOpt, app, err, out, print_json

estimators_app = typer.Typer(no_args_is_help=True, help="Accuracy estimators judged against long training.")
app.add_typer(estimators_app, name="estimators")

DEFAULT_RANKED = ("params", "macs", "synflow", "naswot", "grad_norm", "snip", "zen", "train")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("left"), TimeRemainingColumn(), console=err)


@estimators_app.command()
def reference(
    space: Annotated[str, typer.Option(help="search space")] = "mbconv",
    samples: Annotated[int, typer.Option(help="random networks of the space, besides the 8 seed networks")] = 30,
    data: Annotated[str, typer.Option(help="digits | mnist | a folder of class sub-folders")] = "mnist",
    resolution: Annotated[int, typer.Option(help="training image size")] = 16,
    epochs: Annotated[int, typer.Option(help="training epochs (the long budget)")] = 4,
    batch_size: Annotated[int, typer.Option(help="training batch size")] = 64,
    repeats: Annotated[int, typer.Option(help="networks trained with a second seed (the reference's noise)")] = 4,
    name: Annotated[Optional[str], typer.Option(help="reference name [default: from the settings]")] = None,
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train sampled networks and the seed networks long, as the reference estimators are ranked against.
    Each result is stored as it finishes: the same command resumes."""
    from nas.estimators.ranking import load_reference
    from nas.estimators.reference import ReferenceConfig, build_reference, planned_runs
    from nas.proxy import ProxySettings
    from storage import Store
    from storage import reference as reference_store

    config = ReferenceConfig(space=space, samples=samples, data=data, repeats=repeats, name=name,
                             proxy=ProxySettings(epochs=epochs, batch_size=batch_size, resolution=resolution))
    store = Store.open(storage)
    done = len(reference_store.results(store, config.reference_name))
    with _progress() as progress:
        task = progress.add_task(config.reference_name, total=len(planned_runs(config)), completed=done)

        def heard(label: str, seed: int, accuracy: float | None, seconds: float) -> None:
            shown = "FAIL" if accuracy is None else f"{100 * accuracy:.1f}%"
            progress.console.print(f"{label} (seed {seed}): {shown} in {seconds:.0f} s")
            progress.update(task, advance=1)

        try:
            built = load_reference(store, build_reference(config, store, heard))
        except KeyboardInterrupt:
            err.print("interrupted: every finished training is stored; run the same command to resume")
            raise typer.Exit(130) from None
    summary = {"reference": built.name, "networks": len(built.accuracy), "repeated": len(built.repeated),
               "self_kendall_tau": built.self_tau, "seed_noise": built.seed_noise, "settings": built.settings,
               "accuracy": built.accuracy}
    if as_json:
        print_json(summary)
        return
    out.print(f"reference {built.name!r}: {len(built.accuracy)} networks; its own two seeds agree with Kendall tau "
              f"{built.self_tau if built.self_tau is None else round(built.self_tau, 3)} (mean |difference| "
              f"{100 * (built.seed_noise or 0):.2f} points): no estimator can rank better than that")


@estimators_app.command()
def rank(
    estimators: Annotated[Optional[list[str]], typer.Option(
        "--estimator", help=f"an estimator, NAME or NAME:key=value,... (repeatable) [default: {', '.join(DEFAULT_RANKED)}]")] = None,
    reference_name: Annotated[Optional[str], typer.Option("--reference", help="reference name [default: the only one]")] = None,
    data: Annotated[str, typer.Option(help="the estimators' data set (their search-time data)")] = "digits",
    storage: StorageOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rank the reference's networks by each estimator: Kendall tau, Spearman, signal-to-noise, cost."""
    from nas.estimators.choose import make_estimator, parse_spec
    from nas.estimators.ranking import held, load_reference, rank_estimator, store_ranking
    from storage import Store

    specs = list(estimators or DEFAULT_RANKED)
    for spec in specs:
        parse_spec(spec)  # every name checked before the first one runs
    store = Store.open(storage)
    ref = load_reference(store, reference_name)
    rankings = []
    space = ref.settings.get("space", "mbconv")
    with _progress() as progress:
        for spec in specs:
            first = make_estimator(spec, data, 0, space=space)
            scored = held(ref, first)  # a supernet scores only its space's networks
            task = progress.add_task(spec, total=len(scored.accuracy) + len(scored.repeated))
            ranking = rank_estimator(scored, spec, lambda seed, spec=spec, first=first:
                                     first if seed == 0 else make_estimator(spec, data, seed, space=space),
                                     lambda task=task: progress.update(task, advance=1))
            store_ranking(store, ref, ranking, {"data": data})
            rankings.append(ranking)
    rows = [{"estimator": r.estimator, "kendall_tau": r.kendall_tau, "spearman": r.spearman, "snr": r.snr,
             "seconds_per_arch": r.seconds_per_arch, "tau_per_second": r.tau_per_second} for r in rankings]
    if as_json:
        print_json({"reference": ref.name, "self_kendall_tau": ref.self_tau, "estimators": rows})
        return
    from nas.render import estimator_table

    self_tau = ref.self_tau if ref.self_tau is None else round(ref.self_tau, 3)
    out.print(estimator_table(rows, f"estimators against {ref.name!r} ({len(ref.accuracy)} networks; the reference's "
                                    f"own seed-to-seed tau: {self_tau})"))
