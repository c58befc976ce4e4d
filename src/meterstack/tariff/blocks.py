"""Block (tier) arithmetic over arrays: how much energy or demand falls in each block.

A block ``b`` spans ``(L[b-1], L[b]]`` with ``L[-1] = 0``. The quantity ``q`` in block ``b`` is

    q_b = clip(q, L[b-1], L[b]) - L[b-1]

Inclining and declining blocks differ only in their prices, not in this split.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["block_amounts", "tiered_charge"]


def block_amounts(
    quantity: NDArray[np.float64], limits: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Split ``quantity`` into blocks.

    Parameters
    ----------
    quantity : array (...)
        Total quantity, >= 0. [kWh or kW]
    limits : array (..., B)
        Upper limit of each block, increasing, broadcastable against ``quantity[..., None]``;
        ``inf`` for the last block. [same unit]

    Returns
    -------
    amounts : array (..., B)
        Quantity in each block; sums to ``quantity``.
    """
    q = np.asarray(quantity, dtype=np.float64)[..., None]
    upper = np.asarray(limits, dtype=np.float64)
    lower = np.concatenate([np.zeros_like(upper[..., :1]), upper[..., :-1]], axis=-1)
    amounts: NDArray[np.float64] = np.maximum(np.minimum(q, upper) - lower, 0.0)
    return amounts


def tiered_charge(
    quantity: NDArray[np.float64], limits: NDArray[np.float64], prices: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Sum over blocks of quantity in block x block price. [currency]"""
    if np.shape(limits)[-1] == 1:  # one block: no limit to split at
        single: NDArray[np.float64] = (
            np.asarray(quantity, dtype=np.float64) * np.asarray(prices, dtype=np.float64)[..., 0]
        )
        return single
    result: NDArray[np.float64] = (block_amounts(quantity, limits) * prices).sum(axis=-1)
    return result
