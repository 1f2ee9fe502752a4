"""Search configuration: one frozen value, validated when it is made (the CLI only parses)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nas.data import BUILTIN
from nas.errors import UsageError
from nas.estimators.choose import HYBRID, parse_spec
from nas.estimators.latency import LATENCY_MODES
from nas.latency import LatencySettings
from nas.proxy import ProxySettings
from nas.reward import Reward
from search_spaces import PAPER_NAMES, get_space

OBJECTIVES = ("reward", "pareto")
SAMPLERS = ("tpe", "nsga2", "random")
PRUNERS = ("median", "hyperband", "sha", "none")  # sha: successive halving
DEFAULT_TRIALS = 20


@dataclass(frozen=True)
class SearchConfig:
    """Everything ``run_search`` needs. ``trials`` is the study's total of finished trials, so
    the same command resumes an interrupted search instead of starting over."""

    target_latency_ms: float
    space: str = "mbconv"
    reward: str = "soft"
    reward_weight: float | None = None
    objective: str = "reward"
    sampler: str | None = None  # None: tpe for a reward, nsga2 for pareto
    pruner: str = "median"
    seed: int = 0
    trials: int | None = DEFAULT_TRIALS
    timeout_s: float | None = None
    study: str | None = None
    seed_archs: tuple[str, ...] = ()
    data: str = "digits"
    latency: LatencySettings = field(default_factory=LatencySettings)
    latency_mode: str = "auto"
    proxy: ProxySettings = field(default_factory=ProxySettings)
    estimator: str = "train"  # NAME[:key=value,...], see nas.estimators.choose

    def __post_init__(self) -> None:
        try:
            get_space(self.space)
        except ValueError as err:
            raise UsageError(f"--space: {err}") from None
        if self.objective not in OBJECTIVES:
            raise UsageError(f"--objective: unknown {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise UsageError(f"--sampler: unknown {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if self.pruner not in PRUNERS:
            raise UsageError(f"--pruner: unknown {self.pruner!r}; choose one of {', '.join(PRUNERS)}")
        if self.latency_mode not in LATENCY_MODES:
            raise UsageError(f"--latency: unknown {self.latency_mode!r}; choose one of {', '.join(LATENCY_MODES)}")
        if self.trials is not None and self.trials < 1:
            raise UsageError(f"--trials must be >= 1, got {self.trials}")
        if self.trials is None and self.timeout_s is None:
            raise UsageError("give a budget: --trials N, --timeout 30m, or both")
        for name in self.seed_archs:
            if name not in PAPER_NAMES:
                raise UsageError(f"--seed-arch: unknown architecture {name!r}; known: {', '.join(PAPER_NAMES)}")
        if not self.data:
            raise UsageError(f"--data: give a built-in dataset ({', '.join(BUILTIN)}) or a folder")
        if parse_spec(self.estimator)[0] == HYBRID and (self.trials is None or self.objective == "pareto"):
            raise UsageError("--estimator hybrid:PROXY:K needs --trials N (the candidates to screen) and --objective reward")
        self.reward_fn  # noqa: B018 -- building the reward validates its kind, target and weight

    @property
    def reward_fn(self) -> Reward:
        return Reward(self.reward, self.target_latency_ms, self.reward_weight)

    @property
    def sampler_name(self) -> str:
        return self.sampler or ("nsga2" if self.objective == "pareto" else "tpe")

    @property
    def study_name(self) -> str:
        kind = "pareto" if self.objective == "pareto" else self.reward
        return self.study or f"{self.space}-{self.target_latency_ms:g}ms-{kind}"
