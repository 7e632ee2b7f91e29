"""Starting a sandbox: the container, its output warden and the in-container runner, all ready.

One starter serves both paths: a cold run creates its container when the run arrives, the warm
pool ahead of time. Either way the container is created from the policy with the host attached to
its main process (the warden, another uid) before it starts, with a code uid of its own
(app/sandbox/identities.py); the runner is then exec'd as that uid, forks the child that will run
the code and says it is ready. Setup is over, and the run's timer may start, only when both have
said so. No other process is ever started as the code's uid.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.sandbox.engine import STDOUT, DeadlineExceeded, Engine, ExecStream
from app.sandbox.execution import CappedBuffer
from app.sandbox.identities import CodeUids
from app.sandbox.markers import READY_MARKER
from app.sandbox.policy import SandboxPolicy
from app.sandbox.warden import Warden, WardenGone

READY_TIMEOUT = 60.0
IMAGE_BUILD_HINT = "python -m app image build"
ArgsFor = Callable[[int], dict]
"""The container's arguments for a given code uid (SandboxPolicy.container_args)."""


class RunnerNotReady(RuntimeError):
    """The in-container runner failed before it could take the code."""


@dataclass
class Sandbox:
    """A started container whose runner waits for the code. It serves exactly one run."""

    container_id: str
    stream: ExecStream
    """The runner's stdio: the job goes in, the code's stdout and stderr come out."""
    warden: Warden
    code_uid: int
    """The uid this container's code runs as, its own among the engine's live containers."""
    staging: Path | None = None
    """A warm container's own input folder (removed with it); None for a cold one."""
    ready_at: float = field(default_factory=time.monotonic)

    def is_quiet(self) -> bool:
        """An idle runner and warden say nothing; a word or a closed stream means trouble."""
        return self.stream.is_quiet() and self.warden.is_quiet()

    def close(self) -> None:
        self.stream.close()
        self.warden.close()


class ContainerStarter:
    def __init__(self, policy: SandboxPolicy, engine: Engine) -> None:
        self.policy = policy
        self.engine = engine
        self.uids = CodeUids(policy, engine)

    def create_blocking(self, args_for: ArgsFor) -> tuple[str, ExecStream, int]:
        """Create and start a container attached to its warden, with a code uid no other live
        container of the engine has; (id, attached stream, code uid)."""
        streams: dict[str, ExecStream] = {}

        def create(uid: int) -> str:
            container_id, attached = self.engine.create_attach_start(args_for(uid))
            streams[container_id] = attached
            return container_id

        def discard(container_id: str) -> None:
            streams.pop(container_id).close()
            self.engine.remove(container_id)

        container_id, uid = self.uids.claim(create, discard)
        return container_id, streams[container_id], uid

    async def create(self, args_for: ArgsFor) -> tuple[str, ExecStream, int]:
        """`create_blocking` off the loop; a cancellation (shutdown) waits for the id to clean up.

        The engine call finishes in its thread whatever happens to the awaiting task, so without
        the id the caller could not remove a container created a moment later.
        """
        creating = asyncio.ensure_future(self.engine.call(self.create_blocking, args_for))
        try:
            return await asyncio.shield(creating)
        except asyncio.CancelledError:
            try:
                container_id, attached, _ = await creating
            except Exception:
                raise asyncio.CancelledError from None
            attached.close()
            await asyncio.shield(self.engine.call(self.engine.remove, container_id))
            raise

    async def start_processes(self, container_id: str, attached: ExecStream, uid: int) -> Sandbox:
        """A cold container's runner, started beside its warden (the container is the caller's
        to remove, also when this fails)."""
        stream, warden = await self.engine.call(self.processes, container_id, attached, uid)
        return Sandbox(container_id, stream, warden, uid)

    def start_blocking(
        self, args_for: ArgsFor, preload: tuple[str, ...] = (), defer: tuple[str, ...] = ()
    ) -> Sandbox:
        """Create, start and make ready in one go (the warm pool, on an engine thread); the
        container is removed again when any step fails."""
        container_id, attached, uid = self.create_blocking(args_for)
        try:
            stream, warden = self.processes(container_id, attached, uid, preload, defer)
        except BaseException:
            self.engine.remove(container_id)
            raise
        return Sandbox(container_id, stream, warden, uid)

    def processes(
        self,
        container_id: str,
        attached: ExecStream,
        uid: int,
        preload: tuple[str, ...] = (),
        defer: tuple[str, ...] = (),
    ) -> tuple[ExecStream, Warden]:
        """Start the runner next to the warden (the main process, `attached`); wait for both."""
        warden = Warden(attached)
        try:
            exec_args = self.policy.runner_exec(uid, preload, defer)
            stream = self.engine.exec_attach(container_id, **exec_args)
        except BaseException:
            warden.close()
            raise
        try:
            await_ready(stream)
            try:
                warden.await_ready(time.monotonic() + READY_TIMEOUT)
            except WardenGone as exc:
                raise RunnerNotReady(
                    f"{exc} (is the image current? `{IMAGE_BUILD_HINT}`)"
                ) from None
        except BaseException:
            stream.close()
            warden.close()
            raise
        return stream, warden


def await_ready(stream: ExecStream) -> None:
    """Setup ends when the runner says it is ready; anything else is a broken image."""
    seen = bytearray()
    errors = CappedBuffer(2000)
    try:
        while len(seen) < len(READY_MARKER):
            item = stream.next_chunk(time.monotonic() + READY_TIMEOUT)
            if item is None:
                break
            kind, chunk = item
            if kind == STDOUT:
                seen += chunk
            else:
                errors.add(chunk)
    except DeadlineExceeded:
        raise RunnerNotReady(f"no answer within {READY_TIMEOUT:g} s") from None
    if bytes(seen) != READY_MARKER:
        detail = errors.text().strip() or "it exited without a word"
        raise RunnerNotReady(f"{detail[-500:]} (is the image current? `{IMAGE_BUILD_HINT}`)")
