"""Tariffs: the model of what a utility charges for, and vectorised rating of interval data.

Pure library: imports only ``meterstack.core`` and third-party packages, reads only files it is
handed and its own package data (templates, JSON Schema).
"""

from meterstack.tariff.errors import LoadDataError, TariffError, UnsupportedByPySAMError
from meterstack.tariff.model import Tariff
from meterstack.tariff.plan import RatingPlan, plan_rating
from meterstack.tariff.pysam_compat import PySAMBills, rate_pysam
from meterstack.tariff.rating import (
    COMPONENTS,
    RatingResult,
    rate,
    rate_on_calendar,
    rate_with_plan,
)
from meterstack.tariff.urdb import load_urdb, tariff_from_urdb

__all__ = [
    "COMPONENTS",
    "LoadDataError",
    "PySAMBills",
    "RatingPlan",
    "RatingResult",
    "Tariff",
    "TariffError",
    "UnsupportedByPySAMError",
    "load_urdb",
    "plan_rating",
    "rate",
    "rate_on_calendar",
    "rate_pysam",
    "rate_with_plan",
    "tariff_from_urdb",
]
