"""Validation, estimation and editing (VEE) of interval data, vectorised over meters."""

from meterstack.mdm.vee.editing import (
    EDIT_GRACE,
    EditResult,
    ReconcileReport,
    edit_intervals,
    pending_edits,
    reconcile_edits,
)
from meterstack.mdm.vee.estimation import (
    Estimates,
    LocalCalendar,
    estimate,
    interpolate_gap,
    like_day_sources,
)
from meterstack.mdm.vee.likeday import like_day_offsets
from meterstack.mdm.vee.run import VeeReport, local_calendar, run_vee
from meterstack.mdm.vee.run_log import (
    RECEIVED_OVERLAP,
    VeeRunRecord,
    last_successful_run,
    run_vee_recorded,
    run_vee_since_last,
    vee_runs,
)
from meterstack.mdm.vee.validation import (
    ChannelGrid,
    VeeConfig,
    row_quantiles,
    sum_check_failures,
    validate,
)

__all__ = [
    "EDIT_GRACE",
    "RECEIVED_OVERLAP",
    "ChannelGrid",
    "EditResult",
    "Estimates",
    "LocalCalendar",
    "ReconcileReport",
    "VeeConfig",
    "VeeReport",
    "VeeRunRecord",
    "edit_intervals",
    "estimate",
    "interpolate_gap",
    "last_successful_run",
    "like_day_offsets",
    "like_day_sources",
    "local_calendar",
    "pending_edits",
    "reconcile_edits",
    "row_quantiles",
    "run_vee",
    "run_vee_recorded",
    "run_vee_since_last",
    "sum_check_failures",
    "validate",
    "vee_runs",
]
