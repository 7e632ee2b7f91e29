"""Session state on the sandbox side: one snapshot file per user and session, carried from one
run's sandbox to the next run's, never opened here beyond its size.

The snapshot is made and read only inside a sandbox (sandbox-image/runtime/sandbox_state.py): this
side never deserializes it, it moves bytes. A session is named by its caller (the chat: a user in
a channel; `run --session NAME`) and always paired with the user id, so no other user can reach
it whatever name they give; the folder name is a hash of both, so no name the caller sends becomes
a path. With the sandbox service this store is the service's (`DATA_DIR/sessions/` of the service):
the bot holds no snapshot. Several service hosts share sessions only through shared storage
mounted there (docs/scaling.md); otherwise a run on another host starts with an empty namespace.

    <root>/<key>/state              the last saved snapshot (replaced atomically)
    <root>/<key>/imports            what the code of the session's runs imported, parsed here from
                                    the code (never the sandbox's word): the next run gets those
                                    auto-installed packages too, so the names it restores load
    <root>/<key>/run-<run id>/      what one run's warden sent (state, notes), moved or removed

Last use is the state file's modification time: runs touch it, expiry (`remove_expired`) and
`reset` remove the folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

STATE = "state"
NOTES = "notes"
IMPORTS = "imports"
MAX_IMPORTS = 64
MAX_NOTES = 40
MAX_NOTE_CHARS = 300
SESSION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
SESSION_RULE = "a session name is 1 to 128 letters, digits or _ . : -"
log = structlog.get_logger(__name__)


def is_session_id(value: object) -> bool:
    return isinstance(value, str) and SESSION_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class SessionRun:
    """One run's view of its session: the snapshot to restore (if any), where the new one goes."""

    folder: Path
    incoming: Path

    @property
    def state(self) -> Path:
        return self.folder / STATE

    def restore_from(self) -> Path | None:
        return self.state if self.state.is_file() and not self.state.is_symlink() else None


class SessionStates:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._locks: dict[str, asyncio.Lock] = {}

    def key(self, user_id: str, session_id: str) -> str:
        return hashlib.sha256(f"{user_id}\0{session_id}".encode()).hexdigest()[:40]

    def lock(self, user_id: str, session_id: str) -> asyncio.Lock:
        """One run of a session at a time in this process (each restores what the last saved)."""
        key = self.key(user_id, session_id)
        if key not in self._locks:
            self._locks[key] = asyncio.Lock()
        return self._locks[key]

    def open_run(self, user_id: str, session_id: str, run_id: str) -> SessionRun:
        folder = self.root / self.key(user_id, session_id)
        folder.mkdir(parents=True, exist_ok=True)
        run = SessionRun(folder=folder, incoming=folder / f"run-{run_id}")
        shutil.rmtree(run.incoming, ignore_errors=True)
        state = run.restore_from()
        if state is not None:
            os.utime(state)  # in use: not expired
        return run

    def imports(self, user_id: str, session_id: str) -> set[str]:
        """The top-level modules the code of the session's saved runs imported."""
        try:
            data = json.loads((self.root / self.key(user_id, session_id) / IMPORTS).read_text())
        except (OSError, ValueError):
            return set()
        if not isinstance(data, list):
            return set()
        return {n for n in data[:MAX_IMPORTS] if isinstance(n, str) and n.isidentifier()}

    def commit(
        self,
        run: SessionRun,
        received: dict[str, Path],
        problem: str = "",
        imports: set[str] | frozenset[str] = frozenset(),
    ) -> list[str]:
        """Make what the run's warden sent the session's state, unless `problem` says why not
        (the state before the run is kept then); the notes for the model. `imports`: what the
        run's code imports, kept with the state its names may come from. A few small file
        operations whatever the state's size (a rename); `discard` removes the rest."""
        notes = read_notes(received.get(NOTES))
        state = received.get(STATE)
        if state is not None and not problem:
            os.replace(state, run.state)
            self._remember_imports(run, imports)
            return notes
        if not any(note.startswith("state not saved") for note in notes):
            why = problem or "the run ended before its names were saved"
            notes.append(
                f"state not saved ({why}); the next run starts from the state before this run"
            )
        return notes

    def discard(self, run: SessionRun) -> None:
        """Remove what the run received and did not keep (after `commit`, off the reply's path:
        removing a folder costs milliseconds, a snapshot not kept more)."""
        shutil.rmtree(run.incoming, ignore_errors=True)

    def _remember_imports(self, run: SessionRun, imports: set[str] | frozenset[str]) -> None:
        path = run.folder / IMPORTS
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = []
        known = [n for n in known if isinstance(n, str)] if isinstance(known, list) else []
        merged = (sorted(imports - set(known)) + known)[:MAX_IMPORTS]  # the newest first
        if merged == known:
            return
        fresh = path.with_name(f"{IMPORTS}.{run.incoming.name}")
        fresh.write_text(json.dumps(merged))
        os.replace(fresh, path)

    def reset(self, user_id: str, session_id: str) -> bool:
        """Forget the session's state; whether there was any."""
        folder = self.root / self.key(user_id, session_id)
        existed = (folder / STATE).exists()
        shutil.rmtree(folder, ignore_errors=True)
        return existed

    def remove_expired(self, max_age_seconds: float) -> int:
        """Remove sessions unused for `max_age_seconds`; how many."""
        if not self.root.is_dir():
            return 0
        cutoff = time.time() - max_age_seconds
        removed = 0
        for entry in os.scandir(self.root):
            if not entry.is_dir(follow_symlinks=False):
                continue
            try:
                last = os.stat(Path(entry.path) / STATE).st_mtime
            except OSError:
                last = entry.stat(follow_symlinks=False).st_mtime
            if last < cutoff:
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
        if removed:
            log.info("expired session states removed", count=removed)
        return removed


def read_notes(path: Path | None) -> list[str]:
    """The notes the sandbox wrote (text for the model, like stdout): strings, capped."""
    if path is None:
        return []
    try:
        data = json.loads(path.read_bytes()[: 64 * 1024].decode("utf-8", "replace"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, list):
        return []
    notes = [str(note)[:MAX_NOTE_CHARS] for note in data[:MAX_NOTES] if isinstance(note, str)]
    return notes
