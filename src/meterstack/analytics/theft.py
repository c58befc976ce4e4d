"""Theft and non-technical losses: who, on a transformer that loses energy, is taking it.

Three kinds of evidence are combined into a ranked inspection list:

**The energy balance.** On a transformer with a check meter, a customer who bypasses a
share ``f`` of their load makes the non-technical loss follow their own recorded load:
with ``x_i`` the energy the meter recorded, the stolen energy is ``f / (1 - f) x_i``. The
non-technical loss of :func:`~meterstack.analytics.losses.energy_balance` is therefore
regressed on the recorded loads of the transformer's customers,

.. math:: E_{ntl}(t) \\approx \\sum_i \\beta_i\\, x_i(t), \\qquad \\beta_i \\ge 0,

by non-negative least squares (an active-set solution of the normal equations, batched
over all transformers at once), in windows of ``window_days`` and over the whole period,
so that a theft that starts midway is not diluted. ``f_i = beta_i / (1 + beta_i)`` is the
estimated share of the customer's load that bypasses the meter.

**The meter's own events.** Fraud-log events (terminal or main cover opened, strong
magnetic field, reverse current, missing neutral, current with the relay open) counted
per meter over the period.

**The load's shape.** A consumption drop (the last window's mean against the first's,
relative to the same ratio of the customer's neighbours on the transformer, which removes
the weather) and flat lines (the longest run of identical interval values, a stuck or
bypassed register).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from meterstack.analytics.losses import EnergyBalance
from meterstack.analytics.network import NetworkModel
from meterstack.core.errors import InvalidInputError

Float32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TheftThresholds:
    """When a customer goes on the inspection list.

    Attributes
    ----------
    stolen_share : float
        Estimated bypassed share of the load that flags a customer on its own.
    supporting_share : float
        A lower estimated share that flags a customer together with a fraud event or a drop.
    drop : float
        A consumption drop (relative to the neighbours) that counts as supporting evidence.
    flat_line_h : float
        A run of identical interval values this long counts as supporting evidence. [h]
    min_ntl_share : float
        Transformers losing less than this share of their energy are not searched by the
        balance (their residual is the technical-loss model's error).
    """

    stolen_share: float = 0.15
    supporting_share: float = 0.06
    drop: float = 0.3
    flat_line_h: float = 24.0
    min_ntl_share: float = 0.003


@dataclass(frozen=True)
class Suspect:
    """One customer on the inspection list, with the evidence.

    ``stolen_share`` is the estimated share of the load that bypasses the meter, from the
    best-fitting window; ``stolen_wh`` applies it to everything the meter recorded over the
    period (an upper estimate when the theft began within the period). [Wh]
    """

    meter: int
    serial: str
    transformer: str
    score: float
    stolen_share: float
    stolen_wh: float
    fraud_events: dict[str, int]
    consumption_drop: float
    flat_line_h: float
    reasons: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class InspectionList:
    suspects: list[Suspect]
    #: Estimated bypassed share per meter (NaN where no check meter or no data).
    stolen_share: FloatArray
    score: FloatArray
    flagged: npt.NDArray[np.bool_]

    def ranked_meters(self) -> list[int]:
        return [s.meter for s in self.suspects]


def detect_theft(
    network: NetworkModel,
    customer_wh: Float32Array,
    balance: EnergyBalance,
    interval_s: int,
    *,
    fraud_events: Mapping[str, npt.NDArray[np.integer]] | None = None,
    window_days: int = 7,
    thresholds: TheftThresholds | None = None,
) -> InspectionList:
    """Rank the customers whose evidence points at theft.

    Parameters
    ----------
    customer_wh : float32 array (n_meters, T)
        Recorded active import per interval. [Wh]
    balance : EnergyBalance
        From :func:`~meterstack.analytics.losses.energy_balance` on the same data.
    fraud_events : mapping of str to int array (n_meters,), optional
        Fraud-log event counts per meter, by kind (``"terminal_cover"``, ``"magnet"``...).
    window_days : int
        Length of the windows the balance is regressed in. [d]
    """
    thresholds = thresholds or TheftThresholds()
    n_m, n_int = customer_wh.shape
    if n_m != network.n_meters:
        raise InvalidInputError("customer_wh", customer_wh.shape, "one row per meter")
    per_day = 86400 // interval_s
    if window_days < 1 or per_day * window_days > n_int:
        raise InvalidInputError(
            "window_days", window_days, f"1 to {n_int // max(per_day, 1)} days of data"
        )
    x = np.nan_to_num(customer_wh, nan=0.0).astype(np.float32, copy=False)
    events = {k: np.asarray(v) for k, v in (fraud_events or {}).items()}
    for kind, counts in events.items():
        if counts.shape != (n_m,):
            raise InvalidInputError(f"fraud_events[{kind}]", counts.shape, f"shape ({n_m},)")

    share, stolen_wh = _balance_shares(
        network, x, balance, per_day=per_day, window_days=window_days, thresholds=thresholds
    )
    drop = _consumption_drop(network, x, per_day * window_days)
    flat_h = _longest_flat_run(x) * interval_s / 3600.0
    fraud_total = np.sum(list(events.values()), axis=0) if events else np.zeros(n_m, np.int64)

    s = np.nan_to_num(share, nan=0.0)
    supporting = (fraud_total > 0) | (drop >= thresholds.drop) | (flat_h >= thresholds.flat_line_h)
    flagged = (s >= thresholds.stolen_share) | (supporting & (s >= thresholds.supporting_share))
    flagged |= (fraud_total > 0) & (drop >= thresholds.drop)
    score = (
        np.minimum(s / thresholds.stolen_share, 4.0)
        + 0.75 * (fraud_total > 0)
        + np.clip(drop, 0.0, 1.0)
        + 0.5 * (flat_h >= thresholds.flat_line_h)
    )
    order = np.lexsort((np.arange(n_m), -score))
    suspects = []
    for i in order[flagged[order]]:
        reasons = []
        if s[i] >= thresholds.supporting_share:
            reasons.append(f"balance: about {s[i]:.0%} of the load unrecorded")
        if fraud_total[i]:
            reasons.append(
                "fraud events: "
                + ", ".join(f"{k} x{int(v[i])}" for k, v in sorted(events.items()) if v[i])
            )
        if drop[i] >= thresholds.drop:
            reasons.append(f"consumption {drop[i]:.0%} below the neighbours' trend")
        if flat_h[i] >= thresholds.flat_line_h:
            reasons.append(f"flat for {flat_h[i]:.0f} h")
        t = int(network.meter_transformer[i])
        suspects.append(
            Suspect(
                meter=int(i),
                serial=network.meters[i],
                transformer=network.transformers[t],
                score=float(score[i]),
                stolen_share=float(s[i]),
                stolen_wh=float(stolen_wh[i]),
                fraud_events={k: int(v[i]) for k, v in sorted(events.items()) if v[i]},
                consumption_drop=float(drop[i]),
                flat_line_h=float(flat_h[i]),
                reasons=tuple(reasons),
            )
        )
    return InspectionList(suspects, share, score, flagged)


def _balance_shares(
    network: NetworkModel,
    x: Float32Array,
    balance: EnergyBalance,
    *,
    per_day: int,
    window_days: int,
    thresholds: TheftThresholds,
) -> tuple[FloatArray, FloatArray]:
    """Estimated bypassed share and stolen energy per meter, by batched NNLS.

    The normal equations are accumulated per day, so every window of ``window_days``
    consecutive days (a one-day stride) costs only a sum of daily Gram matrices. Each
    transformer keeps the window whose fit explains most of its non-technical loss: a window
    that straddles the start of a theft fits badly (the loss steps up inside it) and lets
    innocent neighbours soak up part of the step, a window wholly inside the theft fits well.
    """
    n_m, n_int = x.shape
    share = np.full(n_m, np.nan)
    stolen = np.zeros(n_m)
    has_check = np.flatnonzero(balance.has_check_meter)
    share[np.isin(network.meter_transformer, has_check)] = 0.0
    days = n_int // per_day
    if days < window_days:
        return share, stolen
    ntl = np.nan_to_num(balance.non_technical_wh, nan=0.0)
    delivered = np.nan_to_num(balance.delivered_wh, nan=0.0)
    # Search the transformers whose loss in some window exceeds the technical model's error.
    used = days * per_day
    ntl_days = ntl[:, :used].reshape(ntl.shape[0], days, per_day).sum(axis=2, dtype=np.float64)
    dlv_days = (
        delivered[:, :used].reshape(ntl.shape[0], days, per_day).sum(axis=2, dtype=np.float64)
    )
    kernel = np.ones(window_days)
    ntl_win = np.apply_along_axis(np.convolve, 1, ntl_days, kernel, "valid")
    dlv_win = np.apply_along_axis(np.convolve, 1, dlv_days, kernel, "valid")
    with np.errstate(invalid="ignore", divide="ignore"):
        worst = np.where(dlv_win > 0, ntl_win / dlv_win, -np.inf).max(axis=1)
    searched = np.flatnonzero(balance.has_check_meter & (worst >= thresholds.min_ntl_share))
    if searched.size == 0:
        return share, stolen
    k = int(network.customers_per_transformer()[searched].max())
    offsets = network.transformer_offsets
    members = np.full((searched.size, k), -1, dtype=np.int64)
    for row, t in enumerate(searched):
        ms = network.meters_by_transformer[offsets[t] : offsets[t + 1]]
        members[row, : ms.size] = ms
    padded = np.concatenate([x[:, :used], np.zeros((1, used), dtype=np.float32)])
    y_all = ntl[searched, :used].astype(np.float32)
    n_windows = days - window_days + 1
    # Batches of transformers bound the memory of the (batch, k, T) design tensor.
    batch = max(1, int(2e8 // max(k * used * 4, 1)))
    for lo in range(0, searched.size, batch):
        hi = min(lo + batch, searched.size)
        b = hi - lo
        # Day-major (days, b, k, per_day): the daily sums below come out contiguous.
        design = padded[members[lo:hi]].reshape(b, k, days, per_day).transpose(2, 0, 1, 3)
        y = y_all[lo:hi].reshape(b, days, per_day).transpose(1, 0, 2)
        gram_c = np.zeros((days + 1, b, k, k))
        np.cumsum(np.matmul(design, design.transpose(0, 1, 3, 2)), axis=0, out=gram_c[1:])
        rhs_c = np.zeros((days + 1, b, k))
        np.cumsum(np.matmul(design, y[..., None])[..., 0], axis=0, out=rhs_c[1:])
        yy_c = np.zeros((days + 1, b))
        np.cumsum(np.einsum("dbt,dbt->db", y, y, dtype=np.float64), axis=0, out=yy_c[1:])
        valid = members[lo:hi] >= 0
        # Choose each transformer's window by the least-squares fit (cheap), then solve
        # the non-negative problem on that window alone.
        eye = np.eye(k)
        best_r2 = np.full(b, -np.inf)
        best_w = np.zeros(b, dtype=np.int64)
        for w in range(n_windows):
            gram = gram_c[w + window_days] - gram_c[w]
            rhs = rhs_c[w + window_days] - rhs_c[w]
            yy = yy_c[w + window_days] - yy_c[w]
            ridge = 1e-9 * np.maximum(np.trace(gram, axis1=1, axis2=2) / k, 1.0)
            system = gram + eye * (ridge[:, None, None] + (~valid)[:, :, None])
            beta = np.linalg.solve(system, np.where(valid, rhs, 0.0)[:, :, None])[:, :, 0]
            with np.errstate(invalid="ignore", divide="ignore"):
                r2 = np.where(yy > 0, np.einsum("bk,bk->b", beta, rhs) / yy, -np.inf)
            better = r2 > best_r2
            best_r2 = np.where(better, r2, best_r2)
            best_w = np.where(better, w, best_w)
        pick = np.arange(b)
        gram = gram_c[best_w + window_days, pick] - gram_c[best_w, pick]
        rhs = rhs_c[best_w + window_days, pick] - rhs_c[best_w, pick]
        best = _nnls_batched(gram, rhs, valid)
        totals = design.sum(axis=(0, 3), dtype=np.float64)  # (b, k) whole-period recorded
        customers = members[lo:hi][valid]
        stolen[customers] = (best * totals)[valid]
        share[customers] = (best / (1.0 + best))[valid]
    return share, stolen


def _nnls_batched(
    gram: FloatArray, rhs: FloatArray, valid: npt.NDArray[np.bool_], passes: int = 0
) -> FloatArray:
    """Non-negative least squares from normal equations, for a batch of small systems.

    The active-set method of Lawson and Hanson [1]_ on ``G b = r`` (``G = X'X``,
    ``r = X'y``), run on every system of the batch at once: solve on the free variables;
    if some come out negative, step back along the segment from the last feasible point
    until the first one reaches zero and fix it; once the free solution is feasible,
    release the fixed variable whose gradient ``r - G b`` is largest and positive; stop when
    none is. It starts from the unconstrained solution with its negative variables fixed
    (usually the answer already), and works on the systems that are not yet done. Padding
    variables (``valid`` False) stay fixed at zero; a tiny ridge keeps a customer with no
    consumption from making a system singular.

    References
    ----------
    .. [1] C. L. Lawson, R. J. Hanson, Solving Least Squares Problems, SIAM, 1995, ch. 23.
    """
    b, k, _ = gram.shape
    scale = np.maximum(np.trace(gram, axis1=1, axis2=2) / max(k, 1), 1.0)
    # Warm start: drop negatives until the free solution is feasible.
    free = valid.copy()
    beta = np.zeros((b, k))
    for _ in range(k + 1):
        beta = _solve_free(gram, rhs, free, scale)
        negative = free & (beta <= 0)
        if not negative.any():
            break
        free &= ~negative
    beta = np.where(free, np.maximum(beta, 0.0), 0.0)
    active = np.arange(b)
    for _ in range(passes or 3 * k + 10):
        if active.size == 0:
            break
        g, r, f, bt, sc = gram[active], rhs[active], free[active], beta[active], scale[active]
        rows = np.arange(active.size)
        gradient = r - np.einsum("bkj,bj->bk", g, bt)
        candidates = np.where(valid[active] & ~f, gradient, -np.inf)
        best = candidates.argmax(axis=1)
        release = candidates[rows, best] > 1e-10 * sc
        f[rows[release], best[release]] = True
        for _inner in range(k + 1):
            trial = _solve_free(g, r, f, sc)
            bad = f & (trial <= 0)
            if not bad.any():
                bt = trial
                break
            # Step from bt towards trial until the first free variable reaches zero.
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(bad, bt / (bt - trial), np.inf)
            alpha = np.minimum(ratio.min(axis=1), 1.0)[:, None]
            bt = bt + alpha * (trial - bt)
            f &= ~(bad & (bt <= 1e-12 * np.maximum(np.abs(trial), 1.0)))
            bt[~f] = 0.0
        free[active], beta[active] = f, bt
        active = active[release]
    return np.maximum(beta, 0.0)


def _solve_free(
    gram: FloatArray, rhs: FloatArray, free: npt.NDArray[np.bool_], scale: FloatArray
) -> FloatArray:
    """Solve ``G b = r`` on the free variables of each system; fixed ones are zero."""
    k = gram.shape[1]
    eye = np.eye(k)
    system = np.where(free[:, :, None] & free[:, None, :], gram, 0.0)
    system += eye * (1e-12 * scale)[:, None, None] + eye * (~free)[:, :, None]
    solution: FloatArray = np.linalg.solve(system, np.where(free, rhs, 0.0)[:, :, None])[:, :, 0]
    solution[~free] = 0.0
    return solution


def _consumption_drop(network: NetworkModel, x: Float32Array, window: int) -> FloatArray:
    """1 - (last window / first window) of each meter, relative to its transformer's median."""
    first = x[:, :window].mean(axis=1, dtype=np.float64)
    last = x[:, -window:].mean(axis=1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(first > 0, last / first, np.nan)
    # The median per transformer, for all at once: the finite ratios sorted by
    # (transformer, ratio), then the middle one or two of each transformer's run.
    finite = np.flatnonzero(np.isfinite(ratio))
    transformer = network.meter_transformer[finite]
    ordered = ratio[finite][np.lexsort((ratio[finite], transformer))]
    counts = np.bincount(transformer, minlength=network.n_transformers)
    starts = np.cumsum(counts) - counts
    has = counts > 0
    low = starts[has] + (counts[has] - 1) // 2
    high = starts[has] + counts[has] // 2
    reference = np.full(network.n_transformers, np.nan)
    reference[has] = (ordered[low] + ordered[high]) / 2.0
    relative = ratio / reference[network.meter_transformer]
    drop: FloatArray = np.nan_to_num(np.clip(1.0 - relative, 0.0, 1.0), nan=0.0)
    return drop


def _longest_flat_run(x: Float32Array, chunk: int = 8192) -> npt.NDArray[np.int64]:
    """Longest run of identical consecutive values per row, in intervals (0 if none)."""
    n, n_int = x.shape
    out = np.zeros(n, dtype=np.int64)
    if n_int < 2:
        return out
    for lo in range(0, n, chunk):
        rows = x[lo : lo + chunk]
        same = rows[:, 1:] == rows[:, :-1]
        count = np.cumsum(same, axis=1, dtype=np.int32)
        reset = np.where(same, 0, count)
        run = count - np.maximum.accumulate(reset, axis=1)
        longest = run.max(axis=1)
        out[lo : lo + chunk] = np.where(longest > 0, longest + 1, 0)
    return out
