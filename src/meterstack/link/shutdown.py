"""Stopping background tasks whose cancellation may be swallowed.

aiomqtt waits for CONNACK, SUBACK and PUBACK with ``asyncio.wait_for``. On Python 3.11 that
call returns the result instead of raising ``CancelledError`` when the task is cancelled in
the same loop turn as the awaited future completes (CPython gh-86296, fixed in 3.12; see
:mod:`meterstack.core.aio`). A service loop that was inside such a call (a connection loop
connecting, a dispatcher publishing a command) then carries on as if nothing happened, and a
plain ``task.cancel(); await task`` waits forever. :func:`cancel_and_wait` cancels again until
the task has really ended.
"""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(task: asyncio.Task[object] | None, *, retry_s: float = 0.2) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling again every ``retry_s``.

    A ``CancelledError`` of the task is absorbed; any other exception it ended with is
    raised. If the caller itself is cancelled meanwhile, that cancellation propagates.

    Parameters
    ----------
    task : asyncio.Task, optional
        The task to end; None or a finished task is a no-op (apart from its exception).
    retry_s : float
        Time between cancellations while the task keeps running. [s]
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=retry_s)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()


async def cancel_all(tasks: list[asyncio.Task[None]] | set[asyncio.Task[None]]) -> None:
    """:func:`cancel_and_wait` for several tasks: all are cancelled first, then awaited."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    for task in pending:
        await cancel_and_wait(task)
