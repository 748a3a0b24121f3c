"""Long-running loops (consumers, workers) tied to the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def running_tasks(**loops: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run each named loop as a task while the block runs; cancel and await them all on exit.

    For loops whose unit of work is safe to abandon (work that is acknowledged only after it is
    done, so a cancelled item is simply redelivered or retried).
    """
    tasks = [asyncio.create_task(loop, name=name) for name, loop in loops.items()]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
