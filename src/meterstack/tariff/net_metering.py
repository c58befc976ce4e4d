"""Net metering: monthly netting with kWh or money carried to later cycles.

Both functions work on the net energy of each (cycle, period), ``N = imported - exported``
[kWh], for M meters at once; cycles are processed in order because credit carries over.

* kWh roll-over (URDB "Net Metering", PySAM ``ur_metering_option`` 0): a period's surplus
  is banked and offsets the same period's consumption in later cycles; at the true-up
  month the bank is paid at the year-end rate and emptied.
* Money credits (PySAM option 1): a period's surplus earns its sell rate; the money offsets
  energy charges of this and later cycles; the rest is paid out at the true-up month.

Blocks apply to the cycle's billed net consumption of all periods together, each period
taking its share (the rule of [1]_).

References
----------
.. [1] NREL, SAM Help, "Electricity Rates: Net Metering" and SSC ``cmod_utilityrate5``
   (monthly reconciliation; tier limits shared across periods in proportion to use).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from meterstack.tariff.blocks import block_amounts

__all__ = ["net_metering_credit", "net_metering_kwh", "shared_blocks"]


def shared_blocks(use: NDArray[np.float64], limits: NDArray[np.float64]) -> NDArray[np.float64]:
    """Split each period's use into blocks by its share of the total.

    use_{p,b} = use_p / sum(use) x blocks(sum(use))_b

    Parameters
    ----------
    use : array (M, P)
        Billed consumption per period, >= 0. [kWh]
    limits : array (M, B)
        Block limits of the cycle. [kWh]

    Returns
    -------
    array (M, P, B) [kWh]
    """
    total = use.sum(axis=1)
    blocks = block_amounts(total, limits)  # (M, B)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total[:, None] > 0, use / np.where(total > 0, total, 1.0)[:, None], 0.0)
    result: NDArray[np.float64] = share[:, :, None] * blocks[:, None, :]
    return result


def net_metering_kwh(
    net: NDArray[np.float64],
    limits: NDArray[np.float64],
    cycle_month: NDArray[np.int64],
    true_up_month: int,
    yearend_sell_rate: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Billed kWh per block after kWh roll-over, and the true-up payment.

    Parameters
    ----------
    net : array (M, K, P)
        Imported minus exported energy. [kWh]
    limits : array (M, K, B)
        Block limits. [kWh]
    cycle_month : int array (K,)
        Month 0-11 of each cycle.
    true_up_month : int
        Month 1-12 whose cycle ends the netting year.
    yearend_sell_rate : float
        Price of kWh left in the bank at true-up. [currency/kWh]

    Returns
    -------
    billed : array (M, K, P, B) [kWh]
    banked : array (M, K) kWh in the bank after each cycle [kWh]
    payout : array (M, K) true-up payment [currency]
    """
    m, k_n, p_n = net.shape
    bank = np.zeros((m, p_n))
    billed = np.zeros((m, k_n, p_n, limits.shape[-1]))
    banked = np.zeros((m, k_n))
    payout = np.zeros((m, k_n))
    for k in range(k_n):
        usage = net[:, k, :] - bank
        bank = np.maximum(-usage, 0.0)
        billed[:, k] = shared_blocks(np.maximum(usage, 0.0), limits[:, k])
        if int(cycle_month[k]) == true_up_month - 1:
            payout[:, k] = bank.sum(axis=1) * yearend_sell_rate
            bank = np.zeros_like(bank)
        banked[:, k] = bank.sum(axis=1)
    return billed, banked, payout


def net_metering_credit(  # noqa: PLR0917
    net: NDArray[np.float64],
    limits: NDArray[np.float64],
    rate: NDArray[np.float64],
    sell: NDArray[np.float64],
    cycle_month: NDArray[np.int64],
    true_up_month: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Billed kWh and money credits of net metering with money roll-over.

    Parameters
    ----------
    net, limits, cycle_month, true_up_month
        As in :func:`net_metering_kwh`.
    rate, sell : array (P, B)
        Buy and sell prices. [currency/kWh]

    Returns
    -------
    billed : array (M, K, P, B) [kWh]
    applied : array (M, K) credit applied to the cycle's energy charge [currency]
    carried : array (M, K) credit carried after the cycle [currency]
    payout : array (M, K) credit paid at true-up [currency]
    """
    m, k_n, p_n = net.shape
    billed = np.zeros((m, k_n, p_n, limits.shape[-1]))
    applied = np.zeros((m, k_n))
    carried = np.zeros((m, k_n))
    payout = np.zeros((m, k_n))
    credit = np.zeros(m)
    for k in range(k_n):
        use = np.maximum(net[:, k, :], 0.0)
        surplus = np.maximum(-net[:, k, :], 0.0)
        billed[:, k] = shared_blocks(use, limits[:, k])
        charge = (billed[:, k] * rate).sum(axis=(1, 2))
        earned = (shared_blocks(surplus, limits[:, k]) * sell).sum(axis=(1, 2))
        available = credit + earned
        applied[:, k] = np.minimum(available, charge)
        credit = available - applied[:, k]
        if int(cycle_month[k]) == true_up_month - 1:
            payout[:, k] = credit
            credit = np.zeros(m)
        carried[:, k] = credit
    return billed, applied, carried, payout
