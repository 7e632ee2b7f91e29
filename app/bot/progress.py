"""The live status message of a code run: appears after ~2 s, updated every few seconds.

Shows the queue position while the run waits for a sandbox slot, then "running (Ns)", and is
edited to the outcome at the end. Runs that finish quickly never show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from app.chat import run_notice
from app.sandbox import RunResult, RunStatus

log = structlog.get_logger(__name__)


def outcome_text(result: RunResult) -> str:
    seconds = f"{result.exec_seconds:.1f} s"
    if result.status is RunStatus.OK:
        return f"Code finished in {seconds}."
    if result.status is RunStatus.ERROR:
        return f"Code stopped with an error after {seconds}."
    return run_notice(result)


class RunProgress:
    """A RunObserver that talks to one channel; `send(text)` returns a message with `.edit()`."""

    def __init__(
        self,
        send: Callable[[str], Awaitable[object]],
        waiting: Callable[[], int] = lambda: 0,
        *,
        delay: float = 2.0,
        interval: float = 4.0,
    ) -> None:
        self.send = send
        self.waiting = waiting
        self.delay = delay
        self.interval = interval
        self.message: Any = None
        self._position = 0
        self._started = 0.0
        self._task: asyncio.Task | None = None

    def run_started(self, code: str) -> None:
        self._started = time.monotonic()
        self._position = 0
        self._task = asyncio.create_task(self._update())

    def run_queued(self, position: int) -> None:
        self._position = position

    def status_text(self) -> str:
        # Our place in the FIFO queue can only fall; the queue's length bounds it from above.
        self._position = min(self._position, self.waiting())
        elapsed = time.monotonic() - self._started
        if self._position > 0:
            return f"Waiting for a free sandbox (position {self._position}, {elapsed:.0f} s)"
        return f"Running your code ({elapsed:.0f} s)"

    async def run_finished(self, result: RunResult) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.message is not None:
            await self._edit(outcome_text(result))
        self.message = None

    async def _update(self) -> None:
        await asyncio.sleep(self.delay)
        try:
            self.message = await self.send(self.status_text())
        except Exception as exc:  # a status line is never worth failing the run for
            log.warning("progress message not sent", error=type(exc).__name__)
            return
        while True:
            await asyncio.sleep(self.interval)
            await self._edit(self.status_text())

    async def _edit(self, text: str) -> None:
        try:
            await self.message.edit(content=text)
        except Exception as exc:
            log.warning("progress message not edited", error=type(exc).__name__)
