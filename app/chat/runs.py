"""One code run of a turn (or a re-run): the user's files in, the runner, the outputs stored.

The sandbox is reached only through the runner's public surface (`run`, `max_timeout`, `slots`).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import structlog

from app.chat.run_files import run_inputs, store_outputs
from app.chat.values import CodeRun, DeliveredFile, TurnObserver
from app.files import FileStore, FileStoreError
from app.sandbox import RunRequest, RunStatus, SandboxRunner

log = structlog.get_logger(__name__)


async def run_code(
    runner: SandboxRunner,
    store: FileStore,
    runs_dir: Path,
    user_id: str,
    code: str,
    timeout: float | None,
    number: int,
    observer: TurnObserver,
) -> CodeRun:
    """Run `code` with the user's current files; the files it writes are stored for the user."""
    output_dir = runs_dir / uuid.uuid4().hex
    try:
        input_dir, files = await run_inputs(store, user_id)
        request = RunRequest(
            code=code,
            user_id=user_id,
            output_dir=output_dir,
            input_dir=input_dir if files else None,
            files=files,
            timeout=timeout,
        )
        observer.run_started(number, code)
        result = await runner.run(request, on_queued=observer.run_queued)
        if result.status is RunStatus.SANDBOX_ERROR:
            log.warning("sandbox unavailable", message=result.message)
        delivered: list[DeliveredFile] = []
        if result.files:
            try:
                result = await store_outputs(store, user_id, result)
            except FileStoreError as exc:
                log.warning("outputs not stored", error=str(exc))
            for produced in result.files:
                stored = await store.get(user_id, produced.file_id) if produced.file_id else None
                if stored is not None:
                    delivered.append(
                        DeliveredFile(
                            name=stored.name,
                            path=store.absolute_path(stored),
                            size=stored.size,
                            file_id=stored.file_id,
                        )
                    )
        run = CodeRun(code=code, result=result, files=tuple(delivered), number=number)
        await observer.run_finished(run)
        return run
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)
