"""Correlated random series used by the weather, cloud and voltage models."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["ar1_series", "smoothed_noise"]

FloatArray = npt.NDArray[np.float64]


def ar1_series(rng: np.random.Generator, n: int, phi: float) -> FloatArray:
    """Unit-variance first-order autoregressive series, started from its stationary law.

    x[0] = e[0],  x[k] = phi x[k-1] + sqrt(1 - phi^2) e[k],  e ~ N(0, 1)

    The recursion is a plain loop: it is used for one value per day (a few dozen to a few
    thousand scalars), never per meter or per interval.

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
        Length of the series.
    phi : float
        Lag-one autocorrelation, |phi| < 1. [-]
    """
    shocks = rng.standard_normal(n)
    series = np.empty(n)
    innovation = float(np.sqrt(1.0 - phi * phi))
    previous = float(shocks[0]) if n else 0.0
    for k in range(n):
        if k:
            previous = phi * previous + innovation * float(shocks[k])
        series[k] = previous
    return series


def smoothed_noise(rng: np.random.Generator, n: int, timescale_steps: float) -> FloatArray:
    """Unit-variance Gaussian noise with an exponential autocorrelation of ``timescale_steps``.

    White noise is convolved with the kernel exp(-j / tau), j = 0 .. 4 tau, and divided by the
    kernel's Euclidean norm, so each value keeps unit variance; the first 4 tau outputs, which
    see only part of the kernel, are discarded. The convolution is vectorised (``np.convolve``).

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
        Length of the series.
    timescale_steps : float
        Decorrelation time tau, in steps of the series. Below 0.5 the noise is white. [-]
    """
    if timescale_steps < 0.5:
        return rng.standard_normal(n)
    length = int(np.ceil(4.0 * timescale_steps)) + 1
    kernel = np.exp(-np.arange(length) / timescale_steps)
    kernel /= np.sqrt(np.sum(kernel * kernel))
    white = rng.standard_normal(n + length - 1)
    result: FloatArray = np.convolve(white, kernel, mode="valid")
    return result
