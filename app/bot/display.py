"""TurnDisplay: what the live reply shows while a turn (or a re-run) goes.

It observes the chat service (a TurnObserver: the service knows nothing of Discord) and renders
the current state with the same function as the final answer: finished runs' lines, the text
streamed so far, and one status line: "Thinking…", the queue position, or "Running code (run 2,
12 s)", refreshed every second or two while code runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.bot.live import LiveReply
from app.bot.replies import THINKING, compose, status_text
from app.chat import ChatAnswer, CodeRun, TurnEvents

TICK_SECONDS = 2.0
STOPPED = "Stopped."


@dataclass
class _Running:
    number: int
    started: float
    position: int = 0


class TurnDisplay(TurnEvents):
    def __init__(
        self,
        live: LiveReply,
        waiting: Callable[[], int] = lambda: 0,
        *,
        idle: str = THINKING,
        clock: Callable[[], float] = time.monotonic,
        tick: float = TICK_SECONDS,
    ) -> None:
        self.live = live
        self.waiting = waiting
        self.idle = idle
        self.clock = clock
        self.tick = tick
        self.text = ""
        self.runs: list[CodeRun] = []
        self.running: _Running | None = None
        self._new_round = False
        self._thinking = True  # until the model's first words (or the re-run's start)
        self._ticker: asyncio.Task | None = None

    # TurnObserver

    def model_started(self) -> None:
        self._new_round = bool(self.text)
        self._thinking = True
        self._push()

    def text_delta(self, text: str) -> None:
        self._thinking = False
        if self._new_round:
            self.text = self.text.rstrip() + "\n\n"
            self._new_round = False
        self.text += text
        self._push()

    def run_started(self, number: int, code: str) -> None:
        self._thinking = False
        self.running = _Running(number, self.clock())
        self._push()
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick())

    def run_queued(self, position: int) -> None:
        if self.running is not None:
            self.running.position = position
        self._push()

    async def run_finished(self, run: CodeRun) -> None:
        self.running = None
        self.runs.append(run)
        self._push()

    # Rendering

    def status(self) -> str | None:
        running = self.running
        if running is not None:
            # Our place in the FIFO queue can only fall; the queue's length bounds it from above.
            running.position = min(running.position, self.waiting())
            return status_text(running.number, running.position, self.clock() - running.started)
        return self.idle if self._thinking else None

    def render(self) -> str:
        return compose(self.runs, self.text, status=self.status())[0]

    def partial_answer(self, note: str = STOPPED) -> ChatAnswer:
        """What the user saw when the turn was stopped, as an answer to finish with."""
        return ChatAnswer(text=self.text.strip(), runs=list(self.runs), notices=[note])

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self.live.stop()

    def _push(self) -> None:
        self.live.update(self.render())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            if self.running is not None:
                self._push()
