"""A simulated PV inverter with SunSpec models 1, 103 and 123, in simulated time.

Physics (per step of ``dt`` seconds):

* a command (WMaxLimPct, WMaxLim_Ena, Conn) takes effect ``latency_s`` after it arrives;
* the output follows ``target = min(P_available, WMaxLimPct x WMax)`` as a first-order lag
  ``P += (target - P)(1 - exp(-dt / tau))``, then limited to ``ramp_up_w_per_s`` upwards
  (model 704's WRmp bounds increases only) and ``ramp_down_w_per_s`` downwards (the
  converter's own slew), settling on the target once within ``settling_band_pct`` (1 %)
  of rated power; WMaxLimPct_RmpTms = 0 (model 123) adds no ramp of its own;
* ``Conn`` = 0 opens the output contactor: the output is 0 at once (after the latency);
  after ``Conn`` = 1 it rises again from 0 under the lag and the ramp limit;
* the revert timer: ``WMaxLimPct_RvrtTms`` seconds after the last limit command, the
  inverter drops to its safe default limit ``revert_limit_pct`` (0 %: an inverter
  commissioned for a no-export site).

Defaults are the slow end of what real string inverters do: time constant 2 s, command
latency 0.5 s, increases at 20 %/s of WMax, decreases at up to 100 %/s. SunSpec models 123
and 704 name these controls but give them no default values.

Register layout from 40000 (PDU address 40000): ``"SunS"``, model 1 (common, 66
registers), model 103 (three-phase inverter, 50), model 123 (immediate controls, 24), end
(0xFFFF, 0). WMaxLimPct has scale factor -2 (0.01 %), W has 0.

References
----------
.. [1] SunSpec Alliance, "SunSpec Information Model Specification" v1.0 and the model
   definitions 1 (Common), 103 (Inverter, three phase), 123 (Immediate Controls), 704
   (DER AC Controls).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from meterstack.core.errors import InvalidInputError
from meterstack.protocols.modbus.registers import encode_value

BASE_ADDRESS = 40000
SUNS = [0x5375, 0x6E53]
MODEL_1_LENGTH = 66
MODEL_103_LENGTH = 50
MODEL_123_LENGTH = 24
MODEL_1_AT = BASE_ADDRESS + 2
MODEL_103_AT = MODEL_1_AT + 2 + MODEL_1_LENGTH
MODEL_123_AT = MODEL_103_AT + 2 + MODEL_103_LENGTH
END_AT = MODEL_123_AT + 2 + MODEL_123_LENGTH
#: Offsets of the writable points of model 123 (from the model's first data register).
CONN = 2
WMAXLIMPCT = 3
WMAXLIMPCT_WINTMS = 4
WMAXLIMPCT_RVRTTMS = 5
WMAXLIMPCT_RMPTMS = 6
WMAXLIM_ENA = 7
WMAXLIMPCT_SF = 21
NOT_IMPLEMENTED_INT16 = 0x8000
NOT_IMPLEMENTED_UINT16 = 0xFFFF


@dataclass(frozen=True, slots=True)
class InverterSettings:
    """Nameplate and dynamics of the simulated inverter."""

    rated_power_w: float = 5000.0
    tau_s: float = 2.0
    latency_s: float = 0.5
    ramp_up_w_per_s: float = 1000.0
    ramp_down_w_per_s: float = 5000.0
    revert_limit_pct: float = 0.0
    settling_band_pct: float = 1.0
    serial: str = "INV0001"


class SimulatedInverter:
    """The inverter's state; advance it with :meth:`step`."""

    def __init__(self, settings: InverterSettings, start: float = 0.0) -> None:
        self.settings = settings
        self.now = start
        self.available_w = 0.0
        self.output_w = 0.0
        self.energy_wh = 0.0
        self.limit_pct = 100.0
        self.limit_enabled = False
        self.revert_s = 0.0
        self.connected = True
        self._last_command: float | None = None
        #: The controls as last written (the registers show them; they act after latency).
        self.requested: tuple[float, bool, float] = (100.0, False, 0.0)
        self.requested_connect = True
        self._pending: deque[tuple[float, float, bool, float]] = deque()
        self._pending_connect: deque[tuple[float, bool]] = deque()
        self.trips = 0

    @property
    def limit_w(self) -> float:
        pct = self.limit_pct if self.limit_enabled else 100.0
        return self.settings.rated_power_w * pct / 100.0

    def command(self, limit_pct: float, enabled: bool = True, revert_s: float = 0.0) -> None:
        """A WMaxLimPct write (takes effect after the latency).

        Raises
        ------
        InvalidInputError
            ``limit_pct`` outside 0-100 or not finite, or a negative revert time.
        """
        if not math.isfinite(limit_pct) or not 0.0 <= limit_pct <= 100.0:
            raise InvalidInputError("WMaxLimPct", limit_pct, "0 to 100 %")
        if not math.isfinite(revert_s) or revert_s < 0:
            raise InvalidInputError("WMaxLimPct_RvrtTms", revert_s, "a time of 0 s or more")
        self._pending.append((self.now + self.settings.latency_s, limit_pct, enabled, revert_s))
        self.requested = (limit_pct, enabled, revert_s)

    def connect(self, connected: bool) -> None:
        """A Conn write: close (True) or open (False) the output contactor, after the
        latency."""
        if connected != self.requested_connect:
            self._pending_connect.append((self.now + self.settings.latency_s, connected))
            self.requested_connect = connected

    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds."""
        settings = self.settings
        self.now += dt
        while self._pending and self._pending[0][0] <= self.now:
            _, pct, enabled, revert = self._pending.popleft()
            self.limit_pct, self.limit_enabled, self.revert_s = pct, enabled, revert
            self._last_command = self.now
        while self._pending_connect and self._pending_connect[0][0] <= self.now:
            _, connected = self._pending_connect.popleft()
            if self.connected and not connected:
                self.trips += 1
                self.output_w = 0.0  # the contactor opens: no ramp, no lag
            self.connected = connected
        if (
            self.limit_enabled
            and self.revert_s > 0
            and self._last_command is not None
            and self.now - self._last_command >= self.revert_s
        ):
            self.limit_pct = settings.revert_limit_pct
            self.revert_s = 0.0
            self.requested = (self.limit_pct, True, 0.0)
        target = min(self.available_w, self.limit_w) if self.connected else 0.0
        change = (target - self.output_w) * (1.0 - math.exp(-dt / settings.tau_s))
        change = min(change, settings.ramp_up_w_per_s * dt)
        change = max(change, -settings.ramp_down_w_per_s * dt)
        output = self.output_w + change
        if abs(target - output) < settings.settling_band_pct / 100.0 * settings.rated_power_w:
            # the converter settles on its setpoint: no endless exponential tail
            output = target
        self.output_w = max(0.0, output) if self.connected else 0.0
        self.energy_wh += self.output_w * dt / 3600.0

    # ------------------------------------------------------------------ registers

    def registers(self) -> dict[int, int]:
        """The SunSpec register image (address -> word)."""
        s = self.settings
        image: dict[int, int] = {}

        def put(address: int, words: list[int]) -> None:
            image.update(enumerate(words, start=address))

        put(BASE_ADDRESS, SUNS)
        put(MODEL_1_AT, [1, MODEL_1_LENGTH])
        common = (
            encode_value("meterstack", "string", length=32)
            + encode_value("SimInverter", "string", length=32)
            + encode_value("", "string", length=16)
            + encode_value("1.0", "string", length=16)
            + encode_value(s.serial, "string", length=32)
            + [1, 0x8000]
        )
        put(MODEL_1_AT + 2, common)
        put(MODEL_103_AT, [103, MODEL_103_LENGTH])
        watts = round(self.output_w)
        amps = round(self.output_w / (3 * 230.0) * 100)
        inverter = [NOT_IMPLEMENTED_UINT16] * MODEL_103_LENGTH
        inverter[0:5] = [amps * 3 // 3, amps, amps, amps, 0xFFFE]  # A, AphA-C, A_SF = -2
        inverter[5:8] = [NOT_IMPLEMENTED_UINT16] * 3
        inverter[8:12] = [2300, 2300, 2300, 0xFFFF]  # PhVphA-C, V_SF = -1
        inverter[12:14] = [watts, 0]  # W, W_SF
        inverter[14:16] = [5000, 0xFFFE]  # Hz, Hz_SF = -2
        inverter[16:22] = [watts, 0, 0, 0, 100, 0]  # VA, VA_SF, VAr, VAr_SF, PF, PF_SF
        inverter[22:24] = encode_value(round(self.energy_wh), "uint32")  # WH (acc32)
        inverter[24] = 0  # WH_SF
        inverter[25:31] = [
            NOT_IMPLEMENTED_UINT16,
            0,
            NOT_IMPLEMENTED_UINT16,
            0,
            NOT_IMPLEMENTED_INT16,
            0,
        ]
        inverter[31:36] = [NOT_IMPLEMENTED_INT16] * 4 + [0]
        inverter[36] = 4 if watts > 0 else 2  # St: 4 MPPT, 2 sleeping
        inverter[37] = 0
        inverter[38:50] = [0] * 12
        put(MODEL_103_AT + 2, inverter)
        put(MODEL_123_AT, [123, MODEL_123_LENGTH])
        controls = [0] * MODEL_123_LENGTH
        controls[CONN] = 1 if self.requested_connect else 0
        requested_pct, requested_enabled, requested_revert = self.requested
        controls[WMAXLIMPCT] = round(requested_pct * 100)
        controls[WMAXLIMPCT_RVRTTMS] = round(requested_revert)
        controls[WMAXLIM_ENA] = 1 if requested_enabled else 0
        controls[8:21] = [NOT_IMPLEMENTED_INT16] * 13
        controls[WMAXLIMPCT_SF] = 0xFFFE  # -2
        controls[22:24] = [0xFFFE, 0xFFFE]
        put(MODEL_123_AT + 2, controls)
        put(END_AT, [0xFFFF, 0])
        return image
