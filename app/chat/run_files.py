"""Between the file store and the sandbox: a user's stored files as a run's inputs, a run's
outputs as stored files. The two packages know nothing of each other; this is where their values
meet (the chat, `run` and `doctor` use it)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path, PurePosixPath

import structlog

from app.files import FileEmpty, FileStore, FileTooLarge, StoredFile
from app.files.scopes import PRIVATE
from app.files.types import file_type_for
from app.sandbox import InputFile, RunResult

log = structlog.get_logger(__name__)


def input_file(stored: StoredFile) -> InputFile:
    """A stored file as the run sees it: its id, display name, name on disk, type and category."""
    return InputFile(
        file_id=stored.file_id,
        name=stored.name,
        filename=PurePosixPath(stored.path).name,
        size=stored.size,
        type=stored.type,
        category=stored.category,
    )


def typed_input(file_id: str, name: str, filename: str, size: int) -> InputFile:
    """An input file that is not in the store (doctor's probe): typed from the table by name."""
    known = file_type_for(name) or file_type_for(filename)
    return InputFile(
        file_id=file_id,
        name=name,
        filename=filename,
        size=size,
        type=known.type if known else "",
        category=known.category if known else "",
    )


async def run_inputs(
    store: FileStore,
    user_id: str,
    only: Collection[str] | None = None,
    link_dir: Path | None = None,
) -> tuple[Path, tuple[InputFile, ...]]:
    """The folder to mount read-only and the manifest of the user's unexpired files.

    With `only` (file ids: a chat turn's files of its scope), the run sees those files and
    nothing else: they are linked into `link_dir`, a fresh folder under DATA_DIR that is
    mounted instead of the user's folder, so another scope's file is not even on the mount.
    """
    folder, files = await store.readable_files(user_id)
    if only is None:
        return folder, tuple(input_file(stored) for stored in files)
    if link_dir is None:
        raise ValueError("a run limited to some files needs a link_dir to mount")
    chosen = [stored for stored in files if stored.file_id in only]
    sources = [store.absolute_path(stored) for stored in chosen]
    await asyncio.to_thread(_link_inputs, sources, link_dir)
    return link_dir, tuple(input_file(stored) for stored in chosen)


def _link_inputs(sources: list[Path], link_dir: Path) -> None:
    link_dir.mkdir(parents=True)
    os.chmod(link_dir, 0o755)  # the code's uid reads it, whatever the umask
    for source in sources:
        target = link_dir / source.name
        try:
            os.link(source, target)  # same inode: no copy, and mode 0644 as stored
        except OSError:  # another filesystem, or a file the bot's uid does not own
            shutil.copyfile(source, target)
            os.chmod(target, 0o644)


async def store_outputs(
    store: FileStore, user_id: str, result: RunResult, scope: str = PRIVATE
) -> RunResult:
    """Store a run's output files for the user (source "generated", the conversation's scope)
    and set their file_id.

    A file that cannot be stored (empty, too large) keeps file_id None and stays where it is.
    StorageUnavailable is raised as for any save.
    """
    stored_files = []
    for output in result.files:
        try:
            with open(output.path, "rb") as fh:
                stored = await store.save(user_id, output.name, fh, source="generated", scope=scope)
        except (FileEmpty, FileTooLarge) as exc:
            log.info("output not stored", name=output.name, reason=str(exc))
            stored_files.append(output)
            continue
        stored_files.append(replace(output, file_id=stored.file_id))
    return replace(result, files=tuple(stored_files))
