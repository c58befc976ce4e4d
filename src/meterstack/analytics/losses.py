"""Energy balance of each transformer: what its check meter delivered against what its
customers' meters recorded, less the technical losses of the low-voltage network between.

The check meter sits on the transformer's low-voltage side, so the transformer's own losses
are upstream of it. Between it and the customers' meters the energy that is lost without
anyone stealing it is

* the meters' own consumption: each meter's power supply draws from the utility side of
  its measuring element, a constant ``meter_self_w`` per meter (IEC 62053-21/-23 cap the
  voltage circuit's burden at 2 W and 10 VA for class 1 and 2 meters [1]_);
* the Joule losses of the LV feeders and service cables, ``R I^2``: at constant voltage they
  grow with the square of the power delivered, ``L(P) = l_r P_r (P / P_r)^2`` where ``l_r``
  is the loss fraction at the rated power ``P_r`` of the transformer [2]_.

Per interval of ``dt`` hours, with ``E_c`` the check meter's energy and ``E_i`` the
customers' energies, all in Wh:

.. math::

    E_{tl} = n\\,p_m\\,dt + l_r\\,\\frac{(E_c/dt)^2}{P_r}\\,dt, \\qquad
    E_{ntl} = E_c - \\sum_i E_i - E_{tl}

:math:`E_{ntl}` is the non-technical loss: theft, meters that under-record, and unbilled
connections.

References
----------
.. [1] IEC 62053-21:2020, 7.2 Power consumption (voltage circuit).
.. [2] J. Nagrath, D. Kothari, Power System Engineering, 2nd ed., 2007, ch. 5: series
   losses proportional to the square of the current.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from meterstack.analytics.network import NetworkModel
from meterstack.core.errors import InvalidInputError

Float32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TechnicalLossModel:
    """Parameters of the LV network's technical losses.

    Attributes
    ----------
    meter_self_w : float
        Own consumption of each customer meter, upstream of its register. [W]
    line_loss_at_rated : float
        Joule-loss fraction of the power delivered when the transformer runs at its rating.
    power_factor : float
        Typical power factor, to turn a kVA rating into the rated active power.
    default_rating_kva : float
        Rating assumed where the asset register gives none. [kVA]
    """

    meter_self_w: float = 1.5
    line_loss_at_rated: float = 0.04
    power_factor: float = 0.95
    default_rating_kva: float = 100.0

    def __post_init__(self) -> None:
        for name, value, low, high in (
            ("meter_self_w", self.meter_self_w, 0.0, 20.0),
            ("line_loss_at_rated", self.line_loss_at_rated, 0.0, 0.3),
            ("power_factor", self.power_factor, 0.1, 1.0),
            ("default_rating_kva", self.default_rating_kva, 1.0, 1e5),
        ):
            if not low <= value <= high:
                raise InvalidInputError(name, value, f"must be within [{low}, {high}]")

    def losses_wh(
        self,
        check_wh: Float32Array,
        customers: npt.NDArray[np.int64],
        rating_kva: FloatArray,
        interval_s: int,
    ) -> Float32Array:
        """Technical losses per transformer and interval. [Wh] (n_transformers, T)"""
        dt_h = interval_s / 3600.0
        rating = np.where(np.isnan(rating_kva), self.default_rating_kva, rating_kva)
        rated_w = (rating * 1000.0 * self.power_factor).astype(np.float32)[:, None]
        power_w = check_wh / np.float32(dt_h)
        joule = np.float32(self.line_loss_at_rated * dt_h) * power_w * power_w / rated_w
        fixed = (customers.astype(np.float32) * np.float32(self.meter_self_w * dt_h))[:, None]
        out: Float32Array = (joule + fixed).astype(np.float32)
        return out


@dataclass(frozen=True)
class EnergyBalance:
    """Per transformer and interval, in Wh; rows without a check meter are NaN.

    ``ntl_share`` is the non-technical loss over the whole period as a share of what the
    check meter delivered.
    """

    delivered_wh: Float32Array
    billed_wh: Float32Array  # net of the customers' export
    technical_wh: Float32Array
    non_technical_wh: Float32Array
    has_check_meter: npt.NDArray[np.bool_]

    @property
    def ntl_share(self) -> FloatArray:
        delivered = np.nansum(self.delivered_wh, axis=1, dtype=np.float64)
        ntl = np.nansum(self.non_technical_wh, axis=1, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(delivered > 0, ntl / delivered, np.nan)
        share[~self.has_check_meter] = np.nan
        return share


def customer_sums(network: NetworkModel, customer_wh: Float32Array) -> Float32Array:
    """Sum of the customers' interval energies on each transformer. (n_transformers, T)"""
    out = np.zeros((network.n_transformers, customer_wh.shape[1]), dtype=np.float32)
    counts = network.customers_per_transformer()
    occupied = np.flatnonzero(counts)
    if occupied.size:
        starts = network.transformer_offsets[:-1][occupied]
        out[occupied] = np.add.reduceat(customer_wh[network.meters_by_transformer], starts, axis=0)
    return out


def energy_balance(
    network: NetworkModel,
    customer_wh: Float32Array,
    check_wh: Float32Array,
    interval_s: int,
    model: TechnicalLossModel | None = None,
    *,
    customer_export_wh: Float32Array | None = None,
) -> EnergyBalance:
    """The balance of every transformer.

    Parameters
    ----------
    customer_wh : float32 array (n_meters, T)
        Active energy import each customer meter recorded per interval. [Wh]
    check_wh : float32 array (n_transformers, T)
        Each transformer's check meter (net energy delivered into the LV network), NaN
        rows where it has none. [Wh]
    interval_s : int
        Interval length. [s]
    customer_export_wh : float32 array (n_meters, T), optional
        Energy the customers exported (rooftop PV), which the check meter sees netted. [Wh]
    """
    model = model or TechnicalLossModel()
    _check_arrays(network, customer_wh, check_wh)
    net = np.nan_to_num(customer_wh, nan=0.0)
    if customer_export_wh is not None:
        if customer_export_wh.shape != customer_wh.shape:
            raise InvalidInputError(
                "customer_export_wh", customer_export_wh.shape, f"must be {customer_wh.shape}"
            )
        net = net - np.nan_to_num(customer_export_wh, nan=0.0)
    billed = customer_sums(network, net)
    has_check = ~np.all(np.isnan(check_wh), axis=1)
    technical = model.losses_wh(
        np.nan_to_num(check_wh, nan=0.0),
        network.customers_per_transformer(),
        network.rating_kva,
        interval_s,
    )
    ntl = (check_wh - billed - technical).astype(np.float32)
    technical[~has_check] = np.nan
    return EnergyBalance(check_wh, billed, technical, ntl, has_check)


def _check_arrays(network: NetworkModel, customer_wh: Float32Array, check_wh: Float32Array) -> None:
    if customer_wh.ndim != 2 or customer_wh.shape[0] != network.n_meters:
        raise InvalidInputError(
            "customer_wh", customer_wh.shape, f"must be (n_meters={network.n_meters}, T)"
        )
    if check_wh.shape != (network.n_transformers, customer_wh.shape[1]):
        raise InvalidInputError(
            "check_wh",
            check_wh.shape,
            f"must be (n_transformers={network.n_transformers}, T={customer_wh.shape[1]})",
        )
    if np.any(customer_wh < 0):
        raise InvalidInputError("customer_wh", "negative", "import energy cannot be negative")
