"""SandboxService: what the chat, `run`, `doctor` and the bot use of the sandbox.

Two implementations, chosen by app/wiring.py from SANDBOX_SERVICE_URL:

- SandboxRunner (app/sandbox/runner.py): the sandbox in this process, with its own engine,
  warm pool and package installer (the terminal tools, a bot on a host with Docker);
- SandboxClient (app/sandboxd/client.py): a client of `python -m app sandboxd`, which holds the
  runner and the only Docker access; the calling process needs none.

Both turn every fault into a RunResult (`sandbox_error` with a message when the sandbox cannot
be used), so a caller never handles a transport error. `status()` and `describe_policy()` are
for admin views and may raise SandboxUnavailable. A new field of a run (for example a session's
state) is a field of RunRequest or RunResult, carried by app/sandboxd/wire.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

from app.sandbox.environment import SandboxEnvironment
from app.sandbox.result import RunRequest, RunResult


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be asked right now; str() is one readable line."""


@dataclass(frozen=True)
class SandboxStatus:
    """A snapshot of the run slots and the warm pool (the admins' /sandbox, `doctor`)."""

    where: str
    """`in-process`, or the address of the sandbox service."""
    running: int
    waiting: int
    capacity: int
    warm_ready: int
    warm_size: int
    max_timeout: float
    engine_problem: str = ""
    """Empty while the Docker engine answers; else why it does not (runs are sandbox_error and
    the warm pool refills once it is back)."""

    def to_dict(self) -> dict:
        return asdict(self)


class SandboxService(Protocol):
    max_timeout: float
    """The longest exec step a run may ask for (CODE_EXECUTION_TIMEOUT of whoever runs it)."""

    @property
    def waiting(self) -> int:
        """Runs waiting for a slot now, as far as this process knows (a queue position never
        exceeds it)."""
        ...

    async def start(self) -> None:
        """Long-lived use: the runner reaps leftovers and fills its pool; the client checks that
        the service answers. Never raises."""
        ...

    async def close(self) -> None: ...

    async def run(
        self, request: RunRequest, on_queued: Callable[[int], None] | None = None
    ) -> RunResult:
        """One run; `on_queued(position)` is called whenever the run waits for a slot."""
        ...

    async def reset_session(self, user_id: str, session_id: str) -> bool:
        """Forget the state of a user's session (/reset); whether there was any. Never raises."""
        ...

    async def status(self) -> SandboxStatus: ...

    async def describe_policy(self) -> dict[str, object]:
        """policy_summary() of the policy the runs get."""
        ...

    async def describe_environment(self) -> SandboxEnvironment:
        """What the code finds (packages, state, limits): the model's tool description."""
        ...
