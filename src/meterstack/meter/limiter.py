"""The maximum-power limiter (DLMS interface class 71, "Limiter").

The monitored value is the active import power. When it stays above the threshold for at
least ``min_over_threshold_s`` the limiter trips the supply; it restores automatically once
``backoff_s`` has passed (if enabled), or when asked to.
"""

from __future__ import annotations

from typing import Any

from meterstack.core.errors import InvalidInputError
from meterstack.meter.config import LimiterConfig


class Limiter:
    """State of the limiter between measurements."""

    def __init__(self, config: LimiterConfig) -> None:
        self.threshold_w = config.threshold_w
        self.min_over_threshold_s = config.min_over_threshold_s
        self.backoff_s = config.backoff_s
        self.auto_restore = config.auto_restore
        self.over_since: float | None = None
        self.tripped_at: float | None = None

    @property
    def tripped(self) -> bool:
        return self.tripped_at is not None

    def set_threshold(self, threshold_w: float) -> None:
        if (
            not isinstance(threshold_w, (int, float))
            or not threshold_w > 0
            or threshold_w == float("inf")
        ):
            raise InvalidInputError(
                "threshold_w", threshold_w, "a limiter threshold is a positive power in W"
            )
        self.threshold_w = float(threshold_w)

    def observe(self, demand_w: float, start: float, end: float) -> bool:
        """Record that import power was ``demand_w`` over ``(start, end]``; return whether
        the limiter trips at ``end``."""
        if self.tripped_at is not None:
            return False
        if demand_w > self.threshold_w:
            if self.over_since is None:
                self.over_since = start
            if end - self.over_since >= self.min_over_threshold_s:
                self.tripped_at = end
                self.over_since = None
                return True
        else:
            self.over_since = None
        return False

    def restore_due(self, now: float) -> bool:
        """Whether an automatic restore is due at ``now``."""
        return (
            self.auto_restore
            and self.tripped_at is not None
            and now - self.tripped_at >= self.backoff_s
        )

    def restore(self) -> None:
        self.tripped_at = None
        self.over_since = None

    def to_state(self) -> dict[str, Any]:
        return {
            "threshold_w": self.threshold_w,
            "over_since": self.over_since,
            "tripped_at": self.tripped_at,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.threshold_w = float(state["threshold_w"])
        self.over_since = state["over_since"]
        self.tripped_at = state["tripped_at"]
