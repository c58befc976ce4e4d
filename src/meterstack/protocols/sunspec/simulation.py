"""Export control against the simulated inverter in simulated time (deterministic).

A scenario gives the site's load and the sun's available power as functions of time and
the spans when the meter link is down. Every ``dt`` the inverter advances; the meter takes a
reading every ``meter_period_s`` that reaches the controller ``meter_delay_s`` later (never
while the link is down); the controller ticks every ``config.period_s`` and its commands
reach the inverter after the inverter's own latency. The report gives the worst export
above the limit [W] and the longest time it lasted [s] (ENA G100: at most 5 s).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from meterstack.meter import Meter
from meterstack.meter.events import EventCode
from meterstack.meter.export_control import (
    ExportControlConfig,
    ExportController,
    MeterReading,
)
from meterstack.protocols.sunspec.inverter import InverterSettings, SimulatedInverter


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    duration_s: float
    load_w: Callable[[float], float]
    available_w: Callable[[float], float]
    link_down: Sequence[tuple[float, float]] = ()
    meter_period_s: float = 0.2
    meter_delay_s: float = 0.3


@dataclass
class ExportReport:
    scenario: str
    worst_overshoot_w: float = 0.0
    longest_over_limit_s: float = 0.0
    episodes: int = 0
    energy_exported_wh: float = 0.0
    generation_wh: float = 0.0
    trips: int = 0
    transitions: list[tuple[float, int, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "scenario": self.scenario,
            "worst_overshoot_w": round(self.worst_overshoot_w, 1),
            "longest_over_limit_s": round(self.longest_over_limit_s, 2),
            "episodes": self.episodes,
            "exported_wh": round(self.energy_exported_wh, 2),
            "generated_wh": round(self.generation_wh, 1),
            "trips": self.trips,
            "transitions": len(self.transitions),
        }


def simulate(
    scenario: Scenario,
    config: ExportControlConfig,
    inverter_settings: InverterSettings,
    *,
    dt: float = 0.05,
    meter: Meter | None = None,
    start: datetime | None = None,
) -> ExportReport:
    """Run ``scenario``; log the controller's transitions into ``meter`` if given."""
    inverter = SimulatedInverter(inverter_settings)
    controller = ExportController(config)
    report = ExportReport(scenario.name)
    steps = round(scenario.duration_s / dt)
    sample_every = max(1, round(scenario.meter_period_s / dt))
    control_every = max(1, round(config.period_s / dt))
    in_flight: list[MeterReading] = []
    delivered: MeterReading | None = None
    over_since: float | None = None

    def down(t: float) -> bool:
        return any(a <= t < b for a, b in scenario.link_down)

    for step in range(steps + 1):
        t = step * dt
        inverter.available_w = scenario.available_w(t)
        net = scenario.load_w(t) - inverter.output_w
        if step % sample_every == 0 and not down(t):
            in_flight.append(MeterReading(t + scenario.meter_delay_s, net))
        while in_flight and in_flight[0].at <= t:
            arrived = in_flight.pop(0)
            delivered = MeterReading(arrived.at - scenario.meter_delay_s, arrived.net_power_w)
        if step % control_every == 0:
            setpoint = controller.update(t, delivered, inverter.output_w)
            inverter.command(setpoint.limit_pct, True, setpoint.revert_timeout_s)
            inverter.connect(setpoint.connect)
            for code, detail in setpoint.events:
                report.transitions.append((t, int(code), detail))
                if meter is not None and start is not None:
                    meter.record_event(code, start + timedelta(seconds=t), detail)
        inverter.step(dt)
        export = max(0.0, inverter.output_w - scenario.load_w(t + dt))
        report.energy_exported_wh += export * dt / 3600.0
        report.generation_wh += inverter.output_w * dt / 3600.0
        over = export - config.export_limit_w
        if over > 0:
            report.worst_overshoot_w = max(report.worst_overshoot_w, over)
            if over_since is None:
                over_since = t
                report.episodes += 1
            report.longest_over_limit_s = max(report.longest_over_limit_s, t + dt - over_since)
        else:
            over_since = None
    report.trips = sum(
        1 for _, code, _ in report.transitions if code == EventCode.EXPORT_GENERATION_TRIPPED
    )
    return report


def step_at(when: float, before: float, after: float) -> Callable[[float], float]:
    return lambda t: before if t < when else after


def standard_scenarios(rated_w: float = 5000.0) -> list[Scenario]:
    """Load steps (one to no load at all), sun steps, cloud transients, link loss, a slow
    meter link (readings every 1 s, 0.8 s late)."""

    def clouds(t: float) -> float:
        # passing clouds: 20 % sun for 4 s in every 15 s, back to full in one step
        return rated_w * (0.2 if (t % 15.0) < 4.0 else 1.0)

    return [
        Scenario("load_drop", 60, step_at(20, 4500, 300), lambda t: rated_w),
        Scenario("load_off", 60, step_at(20, 4500, 0), lambda t: rated_w),
        Scenario(
            "load_steps",
            90,
            lambda t: (300, 3000, 800, 4000, 100, 2500)[min(int(t // 15), 5)],
            lambda t: rated_w,
        ),
        Scenario("sun_step", 60, lambda t: 1500, step_at(10, 500, rated_w)),
        Scenario("cloud_transients", 90, lambda t: 1200, clouds),
        Scenario("link_loss", 60, step_at(25, 4000, 500), lambda t: rated_w, link_down=((20, 40),)),
        Scenario(
            "slow_link",
            60,
            step_at(20, 4500, 200),
            lambda t: rated_w,
            meter_period_s=1.0,
            meter_delay_s=0.8,
        ),
    ]
