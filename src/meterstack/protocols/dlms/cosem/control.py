"""Interface classes 70 "Disconnect control" and 71 "Limiter".

Disconnect control, 0.0.96.3.10.255: 2 ``output_state`` (boolean, TRUE connected), 3
``control_state`` (enum 0 disconnected, 1 connected, 2 ready for reconnection), 4
``control_mode`` (enum 0-6); methods 1 ``remote_disconnect`` and 2 ``remote_reconnect``
(parameter integer 0), moving the meter's relay through transitions a-d.

Limiter, 0.0.17.0.0.255: 2 ``monitored_value`` (the active import power's demand
register), 3 ``threshold_active`` and 4 ``threshold_normal`` [W] (a SET moves the meter's
threshold; refused unless 1 W to 1 MW), 6 ``min_over_threshold_duration`` [s], 7
``min_under_threshold_duration`` [s] (the meter's back-off), 10
``emergency_profile_active``, 11 ``actions``.

References
----------
.. [1] IEC 62056-6-2:2017 (Blue Book ed. 12), 4.5.8 "Disconnect control" (class_id 70),
   4.5.9 "Limiter" (class_id 71).
"""

from __future__ import annotations

from meterstack.core.errors import MeterstackError
from meterstack.core.obis import ObisCode
from meterstack.protocols.dlms.apdu import AccessSelection, DataAccessResult
from meterstack.protocols.dlms.axdr import Data
from meterstack.protocols.dlms.cosem.base import (
    CosemError,
    CosemObject,
    ServiceContext,
    meter_refusal,
    type_unmatched,
    unavailable,
)

#: The largest limiter threshold accepted over the wire. [W]
MAX_THRESHOLD_W = 1_000_000


class DisconnectControlObject(CosemObject):
    """Class 70 bound to the meter's relay."""

    class_id = 70
    attribute_count = 4
    methods = frozenset({1, 2})

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        relay = ctx.binding.meter.relay
        if attribute == 2:
            return Data.boolean(relay.output_state)
        if attribute == 3:
            return Data.enum(int(relay.state))
        return Data.enum(relay.control_mode)

    def invoke(self, method: int, parameters: Data | None, ctx: ServiceContext) -> Data | None:
        if parameters is not None and parameters.value not in (0, None):
            raise type_unmatched("the parameter is integer 0")
        meter = ctx.binding.meter
        at = ctx.binding.now()
        try:
            if method == 1:
                meter.remote_disconnect(at)
            else:
                meter.remote_reconnect(at)
        except MeterstackError as exc:
            raise meter_refusal(exc, action=True) from exc
        return None


def _threshold(value: Data) -> float:
    try:
        watts = value.as_int("threshold")
    except MeterstackError as exc:
        raise type_unmatched("a threshold is an integer number of W") from exc
    if not 1 <= watts <= MAX_THRESHOLD_W:
        raise CosemError(
            DataAccessResult.OTHER_REASON, f"threshold {watts} W outside 1-{MAX_THRESHOLD_W} W"
        )
    return float(watts)


class LimiterObject(CosemObject):
    """Class 71 bound to the meter's limiter."""

    class_id = 71
    attribute_count = 11
    writable = frozenset({3, 4})

    def read(self, attribute: int, ctx: ServiceContext, access: AccessSelection | None) -> Data:
        limiter = ctx.binding.meter.limiter
        if attribute == 2:
            return Data.structure(
                Data.long_unsigned(5),
                Data.octet_string(ObisCode(1, 0, 1, 4, 0).to_bytes()),
                Data.integer(2),
            )
        if limiter is None:
            raise unavailable("this meter has no limiter")
        if attribute in (3, 4, 5):
            return Data.double_long_unsigned(round(limiter.threshold_w))
        if attribute == 6:
            return Data.double_long_unsigned(round(limiter.min_over_threshold_s))
        if attribute == 7:
            return Data.double_long_unsigned(round(limiter.backoff_s))
        if attribute == 8:
            return Data.structure(
                Data.long_unsigned(0),
                Data.octet_string(b"\xff" * 12),
                Data.double_long_unsigned(0),
            )
        if attribute == 9:
            return Data.array([])
        if attribute == 10:
            return Data.boolean(False)
        # actions: {action_over_threshold, action_under_threshold}, each a script reference
        # to the disconnector script table 0.0.10.0.106.255 (1 disconnect, 2 reconnect).
        script_table = Data.octet_string(ObisCode(0, 0, 10, 0, 106).to_bytes())
        return Data.structure(
            Data.structure(script_table, Data.long_unsigned(1)),
            Data.structure(script_table, Data.long_unsigned(2)),
        )

    def write(self, attribute: int, value: Data, ctx: ServiceContext) -> None:
        watts = _threshold(value)
        try:
            ctx.binding.meter.set_limiter_threshold(watts, ctx.binding.now())
        except MeterstackError as exc:
            raise meter_refusal(exc, action=False) from exc
