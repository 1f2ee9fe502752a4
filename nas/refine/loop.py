"""NetAdapt refinement: shrink a network step by step until it meets a latency target.

Iteration i aims at ``current - r0 * decay^(i-1)`` (r0 a fraction of the start's latency, and at
least 1% of it, MobileNetV3's rule), never below the target. Each proposal (``proposals``) takes
the widest width that meets the goal, its saving priced from the layers it changes timed beside the
parent's (``nas.refine.latency``), inherits its parent's
weights, is fine-tuned briefly and scored; the one kept maximises accuracy change per ms saved
(MobileNetV3) or accuracy (NetAdapt). Before each iteration the network kept last is timed beside
the start and re-anchored on the measured ratio, and the start's own latency (the anchor) is the
fastest of all its measurements (unless the caller gave it), so neither the savings' errors nor one
slow measurement of the start carry through the run; the run stops once the kept network measures
at the target.
The result is fine-tuned longer, then it and the start (given the same fine-tuning) are measured
for real. Every network is a trial of the refinement's own study, through the trial runner; each
kept network's weights are saved beside the database, so an interrupted refinement resumes after
the last kept iteration.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.architecture import Architecture
from nas.data import BUILTIN, load_proxy_data
from nas.errors import UsageError
from nas.estimators import LatencyEstimate
from nas.latency import ISOLATED, LatencySettings, Timer, device_fingerprint, measure_networks
from nas.notes import artifact_dir
from nas.proxy import TuneSettings, proxy_genotype
from nas.recipe import check_input_size
from nas.refine.guard import fail_abandoned, study_lock
from nas.refine.latency import SideBySideLatency
from nas.refine.proposals import current_width, proposals
from nas.refine.tune import Kept, Tuning, last_kept, ratio_score
from nas.results import record_genotype
from nas.reward import Reward
from nas.runner import TrialRunner
from nas.study import StudySpec, open_study
from search_spaces import Genotype
from storage import REFINE_BASELINE, REFINE_FINAL, REFINE_START, REWARD_METRICS, Store, StudyRecord, TrialRecord

SPACE = "netadapt"  # the ``space`` a refinement's study records
SELECTIONS = {"ratio": "accuracy change per ms saved (MobileNetV3)", "accuracy": "the most accurate (NetAdapt)"}
MIN_CUT = 0.01  # a proposal cuts at least 1% of the start's latency (MobileNetV3)
MUST_MATCH = ("space", "target_latency_ms", "dataset", "device", "base_arch", "base_resolution", "refine")
Progress = Callable[[str, int, int], None]  # (phase, done, total): one bar per phase


@dataclass(frozen=True)
class RefineConfig:
    """Everything ``refine`` needs; validated when made."""

    target_latency_ms: float
    decay: float = 0.96
    step_fraction: float = 0.025  # r0 as a fraction of the start's measured latency
    short_tune: int = 40  # steps per proposal; bench/netadapt.py: 10 steps lost 2.8 points of accuracy at 1.5x, 40 none
    long_tune: int = 180  # steps for the result (and for the start it is compared with)
    pretrain: int = 180  # steps that train the start from scratch (the search's proxy budget)
    select: str = "ratio"
    data: str = "digits"
    proxy_resolution: int = 16
    batch_size: int = 32
    lr: float = 3e-3  # pretraining's peak learning rate (the proxy's)
    tune_lr: float = 1e-3  # fine-tuning's peak learning rate
    seed: int = 0
    latency: LatencySettings = field(default_factory=LatencySettings)
    study: str | None = None
    start_latency_ms: float | None = None  # the start as the caller measured it (side by side with others); None: measure it

    def __post_init__(self) -> None:
        if self.start_latency_ms is not None and not self.start_latency_ms > 0:
            raise UsageError(f"the start's latency must be > 0 ms, got {self.start_latency_ms}")
        if not 0 < self.decay <= 1:
            raise UsageError(f"--decay must be in (0, 1], got {self.decay}")
        if not 0 < self.step_fraction < 1:
            raise UsageError(f"--step-fraction must be in (0, 1), got {self.step_fraction}")
        for flag, steps in (("--short-tune", self.short_tune), ("--long-tune", self.long_tune), ("--pretrain", self.pretrain)):
            if steps < 0:
                raise UsageError(f"{flag} must be >= 0 steps, got {steps}")
        if self.select not in SELECTIONS:
            raise UsageError(f"--select: unknown {self.select!r}; choose one of {', '.join(SELECTIONS)}")
        if not self.data:
            raise UsageError(f"--data: give a built-in dataset ({', '.join(BUILTIN)}) or a folder")
        if not 8 <= self.proxy_resolution <= 256:
            raise UsageError(f"--proxy-resolution must be between 8 and 256 pixels, got {self.proxy_resolution}")

    def schedule(self) -> dict[str, Any]:
        """What a resumed refinement must share (stored as the study's ``refine``)."""
        return {k: v for k, v in asdict(self).items()
                if k not in ("target_latency_ms", "data", "latency", "study", "start_latency_ms")}

    def goal_ms(self, iteration: int, current_ms: float, start_ms: float) -> float:
        """Iteration ``iteration``'s latency goal (NetAdapt's decaying schedule, 1% at least)."""
        cut = max(self.step_fraction * start_ms * self.decay ** (iteration - 1), MIN_CUT * start_ms)
        return max(self.target_latency_ms, current_ms - cut)

    def study_name(self, start: str) -> str:
        return self.study or f"refine-{re.sub(r'[^A-Za-z0-9_.]+', '-', start)}-{self.target_latency_ms:g}ms"

    def tune(self, steps: int, lr: float | None = None) -> TuneSettings:
        return TuneSettings(steps, lr or self.tune_lr, batch_size=self.batch_size, seed=self.seed)


@dataclass(frozen=True)
class Step:
    """One kept network on the path from the start to the result."""

    iteration: int
    trial: int
    proposal: str
    latency_ms: float
    accuracy: float


@dataclass(frozen=True)
class RefineResult:
    """What ``nas refine --json`` prints."""

    study: str
    start: str
    target_latency_ms: float
    reached: bool  # the result, timed beside the start, meets the target
    reason: str | None  # why not, when not
    iterations: int
    start_latency_ms: float  # measured, beside the result
    end_latency_ms: float  # measured
    speedup: float
    start_accuracy: float  # the start after the same long fine-tuning as the result
    end_accuracy: float
    final_trial: int
    arch_def: list[list[str]]
    network: dict[str, Any]
    path: tuple[Step, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Known:
    """A latency measured before the trial (start and result are measured together)."""

    estimate: LatencyEstimate
    device: dict[str, Any]

    def latency(self, genotype: Genotype) -> LatencyEstimate:
        return self.estimate


class _Refinement:
    """One refinement's study, latencies, runner settings and saved iterations."""

    def __init__(self, start: Architecture, config: RefineConfig, store: Store, progress: Progress | None,
                 timer: Timer) -> None:
        self.arch, self.config, self.store, self.progress, self.timer = start, config, store, progress, timer
        check_input_size(config.latency.resolution, start.genotype.total_stride)
        self.data = load_proxy_data(config.data, config.proxy_resolution)
        self.name = config.study_name(start.name)
        settings = StudyRecord(space=SPACE, target_latency_ms=config.target_latency_ms, reward="soft", dataset=self.data.name,
                               device=device_fingerprint(config.latency), base=start.name, base_arch=start.genotype.to_dict(),
                               base_resolution=config.latency.resolution, refine=config.schedule())
        spec = StudySpec(self.name, ("maximize",), REWARD_METRICS, settings, MUST_MATCH, "refinement", "--refine-study")
        self.study, _ = open_study(store, spec, lambda offset: optuna.samplers.RandomSampler(config.seed + offset),
                                   optuna.pruners.NopPruner(), on_create=self._measure_start)
        fail_abandoned(self.study, store)  # under the study's lock (``refine``): a RUNNING trial's process is gone
        self.start_ms = StudyRecord.from_study(self.study).base_latency_ms
        self.latency = SideBySideLatency(config.latency, self.start_ms, self._latency_progress, timer=timer)
        self.folder = artifact_dir(store.url) / self.name
        self.reward = Reward("soft", config.target_latency_ms)

    def _measure_start(self, settings: StudyRecord) -> StudyRecord:
        """Before the study exists: the start's real latency, which the target must be below."""
        start_ms = self.config.start_latency_ms
        if start_ms is None:
            start_ms = measure_networks([self.arch.genotype], self.config.latency, "measure the start network",
                                        self.progress, timer=self.timer)[0].latency_ms
        if self.config.target_latency_ms >= start_ms:
            raise UsageError(f"{self.arch.name} already runs in {start_ms:.2f} ms on this device, at or under "
                             f"--target-latency {self.config.target_latency_ms:g}ms: nothing to refine")
        return replace(settings, base_latency_ms=start_ms)

    def _report(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(phase, done, total)

    def _latency_progress(self, phase: str, done: int, total: int) -> None:
        self._report(f"latency: {phase}", done, total)

    def records(self) -> list[TrialRecord]:
        return [TrialRecord.from_trial(t) for t in self.study.get_trials(deepcopy=False)]

    def run_trial(self, genotype: Genotype, tuning: Tuning, latency: Any, extra: TrialRecord) -> TrialRecord:
        """One network as one trial, stored and returned COMPLETE, or FAIL with its ``fail_reason``
        when it diverged or crashed: one failed proposal does not end the refinement, as one failed
        trial does not end a search."""
        runner = TrialRunner(latency, tuning, self.reward, self.config.latency.resolution, store=self.store, requeue=False)
        with warnings.catch_warnings():  # the heartbeat reaps trials of a killed run; ask() warns it is meant for optimize()
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = self.study.ask()
        try:
            value = runner(trial, genotype, extra)
        except KeyboardInterrupt:
            self.study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception:  # the runner stored why
            state = TrialState.FAIL
            self.study.tell(trial, state=state)
        else:
            state = TrialState.COMPLETE
            self.study.tell(trial, value)
        return replace(TrialRecord.from_attrs(trial.user_attrs), number=trial.number, state=state.name)

    def start(self) -> Kept:
        """The last kept network: the start, trained from scratch, when nothing is saved yet."""
        saved = last_kept(self.folder)
        if saved is not None:
            return Kept.load(saved, self.data, self.config.proxy_resolution)
        tuning = Tuning(self.data, self.config.tune(self.config.pretrain, self.config.lr), self.config.proxy_resolution,
                        phase="pretrain", on_step=lambda done, total: self._report("train the start network", done, total))
        genotype = self.arch.genotype
        record = self.run_trial(genotype, tuning, self.latency, TrialRecord(iteration=0, proposal=REFINE_START))
        if record.state != TrialState.COMPLETE.name:
            raise UsageError(f"training {self.arch.name} from scratch failed ({record.fail_reason}); "
                             "a diverged training may take a lower learning rate")
        kept = Kept(0, record.number, genotype, self.start_ms, record.accuracy, tuning.models[genotype.key])
        kept.save(self.folder)
        return kept

    def iterate(self, parent: Kept) -> Kept | str:
        """One NetAdapt iteration from ``parent``: the network kept, or why none could be."""
        iteration = parent.iteration + 1
        goal = self.config.goal_ms(iteration, parent.latency_ms, self.start_ms)
        phase = f"iteration {iteration}: {parent.latency_ms:.2f} -> {goal:.2f} ms"
        candidates = []
        for proposal in proposals(parent.genotype, proxy_genotype(parent.genotype, self.config.proxy_resolution)):
            found = self.latency.largest_width(parent.genotype, parent.latency_ms, proposal, goal)
            if found is not None:
                width, genotype, latency = found
                candidates.append((proposal.describe(current_width(parent.genotype, proposal), width), genotype,
                                   _Known(LatencyEstimate(latency, "lut", predicted_ms=latency), self.latency.device)))
        if not candidates:
            return (f"no proposal reaches iteration {iteration}'s goal of {goal:.2f} ms from {parent.latency_ms:.2f} ms, "
                    f"even at the narrowest width (8 channels) of every layer")
        done = {r.proposal: r for r in self.records() if r.iteration == iteration and r.parent == parent.trial
                and r.state == TrialState.COMPLETE.name}
        tuning = Tuning(self.data, self.config.tune(self.config.short_tune), self.config.proxy_resolution, parent.model)
        self._report(phase, len(done), len(candidates))
        for description, genotype, latency in candidates:
            if description not in done:
                record = self.run_trial(genotype, tuning, latency,
                                        TrialRecord(parent=parent.trial, iteration=iteration, proposal=description))
                if record.state == TrialState.COMPLETE.name:
                    done[description] = record
            self._report(phase, sum(d in done for d, *_ in candidates), len(candidates))
        finished = [done[d] for d, *_ in candidates if d in done]
        if not finished:
            return f"every proposal of iteration {iteration} failed in fine-tuning (each trial's fail_reason says why)"
        chosen = max(finished, key=self._score(parent))
        genotype = record_genotype(chosen)
        model = tuning.models.get(genotype.key)
        if model is None:  # trained by an interrupted run: the seeded fine-tuning gives the same weights again
            tuning.accuracy(genotype, lambda step, value: None)
            model = tuning.models[genotype.key]
        kept = Kept(iteration, chosen.number, genotype, chosen.latency_ms, chosen.accuracy, model)
        kept.save(self.folder)
        return kept

    def _score(self, parent: Kept) -> Callable[[TrialRecord], tuple[float, float]]:
        if self.config.select == "accuracy":
            return lambda r: (r.accuracy, -r.latency_ms)
        return lambda r: (ratio_score(r.accuracy, r.latency_ms, parent), -r.latency_ms)

    def confirm(self, kept: Kept) -> Kept:
        """``kept`` with its latency re-anchored on a real measurement: it and the start timed side by
        side, the start's anchored figure times their ratio. The savings that led to it are layer
        timings; this is where the whole network answers for them. An anchor the refinement measured
        itself becomes the start's fastest measurement so far: interference only adds time, and the
        one taken when the study was made may have caught a slow moment (seen: 24% over the start's
        speed, after which every proposal was priced 1.4 ms too slow and the result cut far below the
        target). A caller's figure (``start_latency_ms``) is kept: the caller set the target on it."""
        networks = [self.arch.genotype] + ([kept.genotype] if kept.genotype.key != self.arch.genotype.key else [])
        measured = measure_networks(networks, self.config.latency, f"confirm iteration {kept.iteration} beside the start",
                                    self.progress, timer=self.timer)
        start_m, kept_m = measured[0], measured[-1]
        if self.config.start_latency_ms is None:
            self.start_ms = min(self.start_ms, start_m.latency_ms)
        return replace(kept, latency_ms=self.start_ms * kept_m.latency_ms / start_m.latency_ms)

    def finish(self, kept: Kept) -> tuple[TrialRecord, TrialRecord]:
        """The result and the start, each fine-tuned ``long_tune`` steps, measured side by side."""
        stored = [r for r in self.records() if r.state == TrialState.COMPLETE.name]
        finals = [r for r in stored if r.proposal == REFINE_FINAL and r.parent == kept.trial]
        baselines = [r for r in stored if r.proposal == REFINE_BASELINE]
        if finals and baselines:
            return baselines[-1], finals[-1]
        start = Kept.load(self.folder / "iteration-0.safetensors", self.data, self.config.proxy_resolution)
        start_m, end_m = measure_networks([start.genotype, kept.genotype], self.config.latency, "measure start and result",
                                          self.progress, timer=self.timer)
        device = self.latency.device
        records = []
        for origin, measured, extra in (
                (start, start_m, TrialRecord(parent=start.trial, iteration=0, proposal=REFINE_BASELINE)),
                (kept, end_m, TrialRecord(parent=kept.trial, iteration=kept.iteration, proposal=REFINE_FINAL))):
            tuning = Tuning(self.data, self.config.tune(self.config.long_tune), self.config.proxy_resolution, origin.model,
                            phase="long-tune", on_step=lambda done, total, p=extra.proposal: self._report(
                                f"long-tune the {'start' if p == REFINE_BASELINE else 'result'}", done, total))
            estimate = LatencyEstimate(measured.latency_ms, "measured", measured.spread_ms, measured.load_avg,
                                       predicted_ms=origin.latency_ms)
            record = self.run_trial(origin.genotype, tuning, _Known(estimate, device), extra)
            if record.state != TrialState.COMPLETE.name:
                raise UsageError(f"the long fine-tuning of the {extra.proposal} network failed ({record.fail_reason}); "
                                 "a diverged one may take fewer --long-tune steps")
            records.append(record)
        return records[0], records[1]

    def path(self, kept: Kept) -> tuple[Step, ...]:
        """The kept networks from the start to ``kept``, following each one's parent."""
        by_number = {r.number: r for r in self.records()}
        steps, number = [], kept.trial
        while number is not None:
            record = by_number[number]
            steps.append(Step(record.iteration, number, record.proposal, record.latency_ms, record.accuracy))
            number = record.parent
        return tuple(reversed(steps))


def refine(start: Architecture, config: RefineConfig, store: Store, progress: Progress | None = None, *,
           timer: Timer = ISOLATED) -> RefineResult:
    """Refine ``start`` to ``config.target_latency_ms`` (resuming its study when one is stored), holding
    the study's lock throughout: a second refinement of the same study is refused, not interleaved.
    ``timer`` times layers and whole networks (whole ones in the measuring child by default)."""
    with study_lock(store, config.study_name(start.name)):
        run = _Refinement(start, config, store, progress, timer)
        kept, reason = run.start(), None
        while True:
            kept = run.confirm(kept)  # measured: the schedule goes on from the measured figure
            if kept.latency_ms <= config.target_latency_ms:
                break
            step = run.iterate(kept)
            if isinstance(step, str):
                reason = step
                break
            kept = step
        baseline, final = run.finish(kept)
        path = run.path(kept)
    return RefineResult(
        study=run.name, start=start.name, target_latency_ms=config.target_latency_ms, reached=reason is None,
        reason=reason, iterations=kept.iteration, start_latency_ms=baseline.latency_ms, end_latency_ms=final.latency_ms,
        speedup=baseline.latency_ms / final.latency_ms, start_accuracy=baseline.accuracy, end_accuracy=final.accuracy,
        final_trial=final.number, arch_def=kept.genotype.arch_def, network=kept.genotype.network(), path=path)
