"""Rewards that trade accuracy against latency for a target ``T`` (MnasNet, TuNAS)."""

from __future__ import annotations

from dataclasses import dataclass

from nas.errors import UsageError

# kind -> default weight: soft/hard from MnasNet (section 3), tunas from TuNAS (beta = -0.10)
REWARD_KINDS = {"soft": -0.07, "hard": -1.0, "tunas": -0.10}


@dataclass(frozen=True)
class Reward:
    """``soft``: ACC*(LAT/T)^w, w = alpha = beta; ``hard``: alpha = 0, beta = w (default -1);
    ``tunas``: ACC + w*|LAT/T - 1|."""

    kind: str
    target_ms: float
    weight: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in REWARD_KINDS:
            raise UsageError(f"--reward: unknown reward {self.kind!r}; choose one of {', '.join(REWARD_KINDS)}")
        if not self.target_ms > 0:
            raise UsageError(f"target latency must be greater than zero, got {self.target_ms}")
        if self.weight is not None and self.weight > 0:
            raise UsageError(f"--reward-weight must be <= 0 (a penalty), got {self.weight}")

    @property
    def w(self) -> float:
        return REWARD_KINDS[self.kind] if self.weight is None else self.weight

    @property
    def alpha(self) -> float:
        return 0.0 if self.kind == "hard" else self.w

    @property
    def beta(self) -> float:
        return self.w

    def __call__(self, accuracy: float, latency_ms: float) -> float:
        ratio = latency_ms / self.target_ms
        if self.kind == "tunas":
            return accuracy + self.w * abs(ratio - 1.0)
        return accuracy * ratio ** (self.alpha if ratio <= 1.0 else self.beta)

    def describe(self) -> str:
        """The formula as computed, for table headers: one ``w`` where both sides of T share it."""
        if self.kind == "tunas":
            return f"tunas: ACC - {abs(self.w):g}*|LAT/T - 1|"
        if self.alpha == self.beta:
            return f"{self.kind}: ACC*(LAT/T)^w, w = {self.w:g}"
        return f"{self.kind}: ACC*(LAT/T)^w, w = {self.alpha:g} if LAT <= T else {self.beta:g}"
