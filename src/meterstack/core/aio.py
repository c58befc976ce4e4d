"""Waiting with a deadline in asyncio without losing a cancellation.

On Python 3.11, ``asyncio.wait_for`` returns the awaited result instead of raising
``CancelledError`` when the task is cancelled in the same loop turn as the awaited future
completes (CPython issue gh-86296, fixed in 3.12). A service loop built on it then never
stops: ``task.cancel()`` is lost and ``await task`` waits forever. ``asyncio.timeout`` counts
cancellations (``Task.uncancel``) and tells its own from an outside one, so every deadline in
meterstack goes through it.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; True if it was set."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
