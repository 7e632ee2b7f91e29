"""One code run of a turn (or a re-run): the turn's files in, the runner, the outputs stored.

The sandbox is reached only through SandboxService (`run`, `max_timeout`): the runner in
this process or the sandbox service's client.
Which of the user's files a run may see is the turn's (app/files/scopes.py): set once per turn
with `use_files`, read here, and grown by the files the turn's runs produce.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import shutil
import uuid
from dataclasses import replace
from pathlib import Path

import structlog

from app.chat.budget import DailyBudget
from app.chat.records import DailyAmounts
from app.chat.run_files import run_inputs, store_outputs
from app.chat.values import ChatAnswer, CodeRun, DeliveredFile, TurnFiles, TurnObserver
from app.files import FileStore, FileStoreError, StoredFile, scopes
from app.sandbox import RunRequest, RunStatus, SandboxService
from app.sandbox.sessions import is_session_id

log = structlog.get_logger(__name__)

# The files of the turn in progress: set by the chat service, read where a run gets its inputs,
# so a run never sees a file of another scope (one task per turn, so one value per turn).
_turn_files: contextvars.ContextVar[TurnFiles | None] = contextvars.ContextVar(
    "turn_files", default=None
)
NO_FILES = TurnFiles(scopes.PRIVATE)
RUN_REFUSED = "the user's code execution time for today is used up"


def session_name(channel_id: str, suffix: str = "") -> str:
    """The sandbox session of a conversation: one per user (the sandbox pairs it with the user
    id) and channel or thread; `suffix` separates processes (each `chat` starts empty)."""
    name = f"chat-{channel_id}{suffix}"
    return name if is_session_id(name) else "chat-" + hashlib.sha256(name.encode()).hexdigest()


def current_files() -> TurnFiles:
    return _turn_files.get() or NO_FILES


def use_files(files: TurnFiles) -> contextvars.Token:
    """The files the current turn may use from now on (reset with the token it returns)."""
    return _turn_files.set(files)


def reset_files(token: contextvars.Token) -> None:
    _turn_files.reset(token)


async def turn_files(store: FileStore, user_id: str, text: str) -> list[StoredFile]:
    """The files this turn may use: its scope's, and those the user named by id in `text` (a
    deliberate use elsewhere). What the model is shown is what its runs get, plus the files
    those runs produce."""
    try:
        files = await store.list(user_id)
    except FileStoreError:
        files = []
    scope = current_files().scope
    named = scopes.named_ids(text)
    visible = [f for f in files if f.scope == scope or f.file_id in named]
    use_files(replace(current_files(), file_ids=frozenset(f.file_id for f in visible)))
    return visible


class CodeRuns:
    """Runs within what is left of the user's code execution time today (DailyBudget)."""

    def __init__(
        self,
        runner: SandboxService,
        store: FileStore,
        runs_dir: Path,
        budget: DailyBudget | None = None,
    ) -> None:
        self.runner = runner
        self.store = store
        self.runs_dir = runs_dir
        self.budget = budget

    async def run(
        self,
        user_id: str,
        code: str,
        timeout: float | None,
        number: int,
        observer: TurnObserver,
        answer: ChatAnswer,
        turn_runs: list[str] | None = None,
        call_id: str = "",
    ) -> CodeRun | None:
        """The run, or None (the reason among the answer's notices) when no time is left
        today. A turn's run is added to `turn_runs` as it starts, so Re-run and Code find it
        even when the turn is stopped during it."""
        reservation = None
        if self.budget is not None:
            wanted = min(timeout or self.runner.max_timeout, self.runner.max_timeout)
            reservation, note = await self.budget.run_allowance(user_id, wanted)
            if note and note not in answer.notices:
                answer.notices.append(note)
            if reservation is None:
                return None
            timeout = reservation.amounts.seconds
        if turn_runs is not None:
            turn_runs.append(call_id)
        used = 0.0
        try:
            run = await run_code(
                self.runner, self.store, self.runs_dir, user_id, code, timeout, number, observer
            )
            # Saving and restoring the state are outside the timeout, not outside the budget.
            used = run.result.exec_seconds + run.result.state_seconds
            if run.notice and run.notice not in answer.notices:
                answer.notices.append(run.notice)
            return run
        finally:
            if self.budget is not None:
                await asyncio.shield(self.budget.settle(reservation, DailyAmounts(seconds=used)))


async def run_code(
    runner: SandboxService,
    store: FileStore,
    runs_dir: Path,
    user_id: str,
    code: str,
    timeout: float | None,
    number: int,
    observer: TurnObserver,
) -> CodeRun:
    """Run `code` with the turn's files; the files it writes are stored for the user in the
    turn's scope, and become the turn's files too."""
    run_id = uuid.uuid4().hex
    output_dir = runs_dir / run_id
    link_dir = runs_dir / f"{run_id}-inputs"
    allowed = current_files()
    notice = ""
    try:
        try:
            input_dir, files = await run_inputs(
                store, user_id, only=allowed.file_ids, link_dir=link_dir
            )
        except FileStoreError as exc:
            log.warning("run inputs unreadable", error=str(exc))
            input_dir, files = link_dir, ()
            notice = f"Run {number} went without your files: they could not be read ({exc})."
        request = RunRequest(
            code=code,
            user_id=user_id,
            output_dir=output_dir,
            input_dir=input_dir if files else None,
            files=files,
            timeout=timeout,
            session_id=allowed.session,
        )
        observer.run_started(number, code)
        result = await runner.run(request, on_queued=observer.run_queued)
        if result.status is RunStatus.SANDBOX_ERROR:
            log.warning("sandbox unavailable", message=result.message)
        delivered: list[DeliveredFile] = []
        if result.files:
            try:
                result = await store_outputs(store, user_id, result, allowed.scope)
            except FileStoreError as exc:
                log.warning("outputs not stored", error=str(exc))
                names = ", ".join(f.name for f in result.files if not f.file_id)
                notice = f"The files run {number} made ({names}) could not be kept: {exc}"
            made = {f.file_id for f in result.files if f.file_id}
            use_files(replace(allowed, file_ids=allowed.file_ids | made))
            for produced in result.files:
                stored = None
                try:
                    if produced.file_id:
                        stored = await store.get(user_id, produced.file_id)
                except FileStoreError:
                    pass  # stored a moment ago, unreadable now: /files lists it later
                if stored is not None:
                    delivered.append(
                        DeliveredFile(
                            name=stored.name,
                            path=store.absolute_path(stored),
                            size=stored.size,
                            file_id=stored.file_id,
                        )
                    )
        run = CodeRun(code, result, tuple(delivered), number, notice)
        await observer.run_finished(run)
        return run
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)
        shutil.rmtree(link_dir, ignore_errors=True)
